//! Loading the records before a run, with a progress bar.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bwtx_kit::SplitMix64;
use indicatif::{ProgressBar, ProgressStyle};

use super::{BenchArgs, Engine, Workload, BALANCE};

/// Keys written per loading transaction.
const LOAD_BATCH: u64 = 1000;

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
                let mut batch = Vec::with_capacity(LOAD_BATCH as usize);
                loop {
                    let lo = next.fetch_add(LOAD_BATCH, Ordering::Relaxed);
                    if lo >= args.keys {
                        return;
                    }
                    let hi = (lo + LOAD_BATCH).min(args.keys);
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
