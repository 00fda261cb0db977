//! The costs of issue 13's features, each as a ratio against the same run
//! without the feature:
//!
//! - `len`: `Snapshot::len` on a loaded database (a counter read) against a
//!   full scan's count;
//! - `changes`: commits per second of 2 committers with and without a
//!   consumer tailing the change stream (`Changes::wait_next`), and the
//!   consumer's rate.
//!
//! (The cost of `history_retention` on YCSB A is measured with the bench:
//! `bwtx bench --workload a --history-retention 60` against the same run
//! without it.)
//!
//! ```text
//! cargo run --release --example history                 # 1,000,000 keys, 2 s per phase
//! cargo run --release --example history -- 10000000 3   # 10M keys, 3 s per phase
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bwtx::{Db, Durability, Options};

fn main() -> bwtx::Result<()> {
    let mut a = std::env::args().skip(1);
    let keys: u64 = a.next().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let secs: u64 = a.next().and_then(|s| s.parse().ok()).unwrap_or(2);
    counts(keys)?;
    changes(Duration::from_secs(secs))?;
    Ok(())
}

/// `len` against a scan, on `keys` keys loaded in batches.
fn counts(keys: u64) -> bwtx::Result<()> {
    let db = Db::in_memory();
    let t = Instant::now();
    for start in (0..keys).step_by(10_000) {
        db.transaction(|tx| (start..(start + 10_000).min(keys)).try_for_each(|i| tx.put(i.to_be_bytes(), [1u8; 8])))?;
    }
    println!("loaded {keys} keys in {:.1?}", t.elapsed());
    let snap = db.snapshot();
    let t = Instant::now();
    let n = 100_000;
    let mut sum = 0;
    for _ in 0..n {
        sum += snap.len();
    }
    let len_ns = t.elapsed().as_nanos() as f64 / n as f64;
    assert_eq!(sum, keys * n);
    let t = Instant::now();
    let scanned = snap.range::<&[u8], _>(..).count() as u64;
    let scan = t.elapsed();
    assert_eq!(scanned, keys);
    println!(
        "len: {len_ns:.0} ns per call; a full scan's count: {scan:.2?} ({:.0}x the len call)",
        scan.as_nanos() as f64 / len_ns
    );
    Ok(())
}

/// Commits per second of 2 committers for `d`, with and without a tailing
/// consumer.
fn changes(d: Duration) -> bwtx::Result<()> {
    let dir = std::env::temp_dir().join(format!("bwtx-example-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Options::new()
        .durability(Durability::Buffered(Duration::from_millis(10)))
        .open(&dir)?;
    let run = |tail: bool| -> bwtx::Result<(f64, f64)> {
        let start = db.snapshot().ts();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicU64::new(0));
        let consumer = tail.then(|| {
            let mut ch = db.changes_since(start).expect("changes");
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    if let Some(c) = ch.wait_next(Duration::from_millis(50)) {
                        c.expect("change");
                        seen.fetch_add(1, Relaxed);
                    }
                }
            })
        });
        let t = Instant::now();
        let committers: Vec<_> = (0..2u64)
            .map(|w| {
                let db = db.clone();
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while t.elapsed() < d {
                        let k = (w << 40 | n).to_be_bytes();
                        db.transaction(|tx| tx.put(k, [7u8; 100])).expect("commit");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let commits: u64 = committers.into_iter().map(|c| c.join().unwrap()).sum();
        let secs = t.elapsed().as_secs_f64();
        stop.store(true, Relaxed);
        if let Some(c) = consumer {
            c.join().unwrap();
        }
        Ok((commits as f64 / secs, seen.load(Relaxed) as f64 / secs))
    };
    let (alone, _) = run(false)?;
    let (with, tailed) = run(true)?;
    println!(
        "change stream: 2 committers {alone:.0} commits/s alone, {with:.0} with a tailing consumer ({:.2}x); \
         the consumer read {tailed:.0} changes/s",
        with / alone
    );
    drop(db);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
