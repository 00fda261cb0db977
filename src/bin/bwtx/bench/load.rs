//! Loading the records before a run, with a progress bar.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bwtx_kit::SplitMix64;
use indicatif::{ProgressBar, ProgressStyle};

use super::{BenchArgs, Engine, Workload, BALANCE};

/// Keys written per loading transaction at most ...
const LOAD_BATCH: u64 = 1000;
/// ... and value bytes per loading transaction at most: a thread holds a
/// batch's values twice (its own and the engine's copy), and one
/// transaction must stay far below the 2 GiB of the largest log record.
const LOAD_BATCH_BYTES: u64 = 64 << 20;

/// Keys per loading transaction for values of `value_size` bytes.
fn load_batch(value_size: usize) -> u64 {
    (LOAD_BATCH_BYTES / (value_size as u64 + 32)).clamp(1, LOAD_BATCH)
}

pub(super) fn bar(len: u64, what: &str, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{msg:>8} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(what.to_owned());
    pb
}

/// Load `n` records in batches, from `threads` threads.
pub fn load(db: &dyn Engine, args: &BenchArgs, hidden: bool) -> Result<Duration, String> {
    let start = Instant::now();
    let pb = bar(args.keys, "load", hidden);
    let next = AtomicU64::new(0);
    let err: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for t in 0..args.threads.max(1) {
            let (next, pb, err) = (&next, &pb, &err);
            s.spawn(move || {
                let mut rng = SplitMix64::new(args.seed ^ (t as u64 + 1).wrapping_mul(0x1234_5678_9ABC_DEF1));
                let mut value = vec![b'x'; args.value_size];
                let per_txn = load_batch(args.value_size);
                let mut batch = Vec::with_capacity(per_txn as usize);
                loop {
                    let lo = next.fetch_add(per_txn, Ordering::Relaxed);
                    if lo >= args.keys {
                        return;
                    }
                    let hi = (lo + per_txn).min(args.keys);
                    batch.clear();
                    for i in lo..hi {
                        if args.workload == Workload::Bank {
                            batch.push((i, BALANCE.to_le_bytes().to_vec()));
                        } else {
                            fill(&mut value, &mut rng);
                            batch.push((i, value.clone()));
                        }
                    }
                    if let Err(e) = db.load(&batch) {
                        *err.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(format!("{} load failed: {e}", db.name()));
                        return;
                    }
                    pb.inc(hi - lo);
                }
            });
        }
    });
    pb.finish_and_clear();
    match err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(start.elapsed()),
    }
}

pub(super) fn fill(value: &mut [u8], rng: &mut SplitMix64) {
    let r = rng.next_u64().to_le_bytes();
    let n = value.len().min(8);
    value[..n].copy_from_slice(&r[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small values load 1000 to a transaction; large ones fewer, so that a
    /// transaction holds at most about 64 MiB of values (before: always
    /// 1000, so `--value-size 3000000` made 3 GB transactions, past the
    /// largest log record); the largest value loads alone.
    #[test]
    fn load_batches_keep_to_their_bytes() {
        assert_eq!(load_batch(100), LOAD_BATCH);
        assert_eq!(load_batch(3_000_000), (64 << 20) / 3_000_032);
        assert_eq!(load_batch(bwtx::tree::MAX_VALUE_LEN), 1);
        for size in [0, 100, 4096, 1 << 20, 3_000_000, bwtx::tree::MAX_VALUE_LEN] {
            assert!(load_batch(size) * (size as u64 + 32) <= LOAD_BATCH_BYTES.max(size as u64 + 32));
        }
    }
}
