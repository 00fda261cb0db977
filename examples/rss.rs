//! Where a paged database's memory goes (issue 11's memory goal): RSS,
//! peak RSS, live heap bytes and the cache's resident-byte estimate, at each
//! phase of a `bwtx bench`-like run.
//!
//! ```text
//! cargo run --release --example rss -- DIR KEYS CACHE_BYTES SECS [--count] [--updates]
//! cargo run --release --example rss -- /tmp/d 2000000 67108864 30
//! cargo run --release --example rss -- /tmp/d 0 67108864 0      # a fresh Db only
//! cargo run --release --example rss -- /tmp/d 2000000 67108864 30 --updates
//! ```
//!
//! `DIR` must not exist (it is created, and deleted at the end). The run
//! loads `KEYS` records of 100-byte values as `bwtx bench` does (keys
//! `user<12 digits>`, 1,000 per transaction, 2 threads), then runs YCSB A
//! (2 threads, 2 operations a transaction, half reads and half updates,
//! scrambled zipfian 0.99; with `--updates`, two uniform updates a
//! transaction, the bench's workload `u`) for `SECS` seconds, printing once
//! a second and at each phase's end: `VmRSS` and `VmHWM`
//! (`/proc/self/status`), the live heap bytes and their peak so far (with `--count`: a counting allocator,
//! which costs a shared atomic per allocation, so leave it off for
//! throughput), `Stats::resident_bytes` (the cache's own estimate),
//! `Stats::stub_bytes` (the evicted leaves' stubs, outside the budget) and
//! `Stats::retired_bytes` (retired chains the epoch has not freed yet).
//! The difference between RSS and the live heap is the allocator's: free
//! memory it has not given back (`design/storage.md` §5.1).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bwtx::{Db, Options};
use bwtx_kit::alloc::{Counting, COUNTING, LIVE, PEAK};
use bwtx_kit::ycsb::{fnv, key};
use bwtx_kit::{SplitMix64, Zipf};

#[global_allocator]
static GLOBAL: Counting = Counting;

const THREADS: u64 = 2;
const VALUE: usize = 100;

/// `(VmRSS, VmHWM)` in MiB, if known.
fn rss() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn report(what: &str, db: Option<&Db>, start: Instant) {
    let (rss, hwm) = rss();
    let heap = if COUNTING.load(Relaxed) {
        let mib = |b: isize| b as f64 / (1 << 20) as f64;
        format!("{:7.1} (peak {:7.1})", mib(LIVE.load(Relaxed)), mib(PEAK.load(Relaxed)))
    } else {
        "      -".into()
    };
    let stats = db.map(|db| db.stats());
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let resident = stats.as_ref().map_or(f64::NAN, |s| mib(s.resident_bytes));
    let pending = stats.as_ref().map_or(f64::NAN, |s| mib(s.retired_bytes));
    let stubs = stats.as_ref().map_or(f64::NAN, |s| mib(s.stub_bytes));
    println!(
        "{what:<14} t={:6.1}s  rss {rss:7.1}  peak {hwm:7.1}  heap {heap}  resident {resident:7.1} stubs {stubs:6.1} retired {pending:6.1} (MiB)",
        start.elapsed().as_secs_f64()
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count = args.iter().any(|a| a == "--count");
    // `--updates`: workload `u` (uniform updates only) instead of YCSB A.
    let updates = args.iter().any(|a| a == "--updates");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let (Some(dir), Some(Ok(keys)), Some(Ok(cache)), Some(Ok(secs))) = (
        pos.first().map(PathBuf::from),
        pos.get(1).map(|s| s.parse::<u64>()),
        pos.get(2).map(|s| s.parse::<u64>()),
        pos.get(3).map(|s| s.parse::<f64>()),
    ) else {
        eprintln!("usage: rss DIR KEYS CACHE_BYTES SECS [--count] [--updates]");
        return ExitCode::FAILURE;
    };
    if dir.exists() {
        eprintln!("{} exists: give a new directory", dir.display());
        return ExitCode::FAILURE;
    }
    COUNTING.store(count, Relaxed);
    let start = Instant::now();
    report("start", None, start);
    let db = match Options::new()
        .durability(bwtx::Durability::Buffered(Duration::from_millis(10)))
        .cache_size(cache)
        .open(&dir)
    {
        Ok(db) => db,
        Err(e) => {
            eprintln!("open: {e}");
            return ExitCode::FAILURE;
        }
    };
    report("opened", Some(&db), start);

    // Load, as `bwtx bench` does.
    let next = AtomicU64::new(0);
    let loading = AtomicBool::new(true);
    std::thread::scope(|s| {
        let (db_, loading_) = (&db, &loading);
        s.spawn(move || {
            let mut n = 0;
            while loading_.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                n += 1;
                if n % 10 == 0 {
                    report("load", Some(db_), start);
                }
            }
        });
        let mut handles = Vec::new();
        for t in 0..THREADS {
            let (db, next) = (&db, &next);
            handles.push(s.spawn(move || {
                let mut rng = SplitMix64::new(t + 1);
                loop {
                    let lo = next.fetch_add(1000, Relaxed);
                    if lo >= keys {
                        return;
                    }
                    db.transaction(|tx| {
                        for i in lo..(lo + 1000).min(keys) {
                            let mut v = [b'x'; VALUE];
                            v[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
                            tx.put(key(i), v)?;
                        }
                        Ok(())
                    })
                    .expect("load");
                }
            }));
        }
        for h in handles {
            let _ = h.join();
        }
        loading.store(false, Relaxed);
    });
    report("loaded", Some(&db), start);

    // YCSB A, or uniform updates (`--updates`).
    if keys > 0 && secs > 0.0 {
        let stop = AtomicBool::new(false);
        let txns = AtomicU64::new(0);
        // Uniform updates draw no zipfian rank (its table is O(keys)).
        let zipf = (!updates).then(|| Zipf::new(keys, 0.99));
        let run = Instant::now();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (db, stop, txns, zipf) = (&db, &stop, &txns, &zipf);
                s.spawn(move || {
                    let mut rng = SplitMix64::new(100 + t);
                    while !stop.load(Relaxed) {
                        let mut tx = db.begin();
                        let mut ok = true;
                        for _ in 0..2 {
                            let k = match zipf {
                                None => key(rng.below(keys)),
                                Some(z) => key(fnv(z.rank(rng.f64())) % keys),
                            };
                            if !updates && rng.below(2) == 0 {
                                ok &= tx.get(k).is_ok();
                            } else {
                                let mut v = [b'y'; VALUE];
                                v[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
                                ok &= tx.put(k, v).is_ok();
                            }
                        }
                        if ok && tx.commit().is_ok() {
                            txns.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
            let mut next = 1.0;
            while run.elapsed().as_secs_f64() < secs {
                std::thread::sleep(Duration::from_millis(50));
                if run.elapsed().as_secs_f64() >= next {
                    report(&format!("run {next:.0}s"), Some(&db), start);
                    next += 1.0;
                }
            }
            stop.store(true, Relaxed);
        });
        report("run end", Some(&db), start);
        println!("{:.0} txns/s", txns.load(Relaxed) as f64 / run.elapsed().as_secs_f64());
    }
    let s = db.stats();
    println!(
        "evictions {} cache_misses {} pages_written {} checkpoints {}",
        s.evictions, s.cache_misses, s.pages_written, s.checkpoints
    );
    drop(db);
    report("closed", None, start);
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}
