//! What a larger-than-memory point read costs (issue 11's throughput goal):
//! per fault-in, the positional reads, bytes read and allocations, and the
//! process's CPU time per transaction, for YCSB C (and optionally scans, as
//! in E) after a load and an update pass over every key (what `bwtx bench`
//! does when a second workload reloads the same directory).
//!
//! ```text
//! cargo run --release --example fault_in -- DIR KEYS CACHE_BYTES TXNS [--leaf-max N] [--no-update] [--u N] [--a N] [--scans N]
//! cargo run --release --example fault_in -- /tmp/d 5000000 67108864 200000
//! ```
//!
//! `DIR` must not exist (it is created, and deleted at the end). Keys
//! `user<12 digits>`, 100-byte values, loaded 1,000 per transaction by 2
//! threads; then every key updated once (unless `--no-update`); then `TXNS`
//! transactions of 2 reads each (2 threads, scrambled zipfian 0.99); then,
//! with `--scans N`, `N` transactions of one scan of 1-100 keys from a
//! zipfian start; with `--u N`, `N` transactions of one uniform update
//! each (before A); with `--a N`, `N` transactions of YCSB A (one read or one
//! update, half each) before the scans. CPU time is the whole process's
//! (`/proc/self/stat`: the background threads count); reads and bytes are
//! `/proc/self/io`'s `syscr` and `rchar` (every read system call, so the
//! page store's `pread`s); fault-ins are `Stats::cache_misses`; each phase
//! also prints the retired-memory throttle's sleeps
//! (`Stats::reclaim_waits`, `reclaim_wait_micros`), the evictions and the
//! page bytes written. `--leaf-max N` sets the tree's `Config::leaf_max`
//! (and `leaf_min` to an eighth of it).
//!
//! For instruction counts that do not depend on the machine's load, run it
//! small under callgrind with a dump at each phase's start (the second
//! part is the C phase):
//! ```text
//! valgrind --tool=callgrind --dump-before='fault_in::phase' \
//!     target/release/examples/fault_in /tmp/d 200000 2621440 20000 --a 10000
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bwtx::{Db, Options};
use bwtx_kit::alloc::{Counting, ALLOCS, COUNTING};
use bwtx_kit::ycsb::{fnv, key};
use bwtx_kit::{SplitMix64, Zipf};

#[global_allocator]
static GLOBAL: Counting = Counting;

const THREADS: u64 = 2;
const VALUE: usize = 100;

/// Process CPU seconds (user + system; clock ticks of 10 ms).
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // Fields 14 and 15 of the file; 12 and 13 after the name (state is not a number).
    f.get(10).zip(f.get(11)).map_or(0.0, |(u, s)| (u + s) as f64 / 100.0)
}

/// `(syscr, rchar)` of `/proc/self/io`.
fn io() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("syscr:"), field("rchar:"))
}

/// Run `txns` transactions of `op` on `THREADS` threads; print the costs.
/// The process's peak and current resident set (`/proc/self/status`).
fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

fn phase(db: &Db, what: &str, txns: u64, op: &(dyn Fn(&Db, &mut SplitMix64) + Sync)) {
    let next = AtomicU64::new(0);
    let s0 = db.stats();
    let (c0, io0, a0, f0, t0) = (cpu(), io(), ALLOCS.load(Relaxed), s0.cache_misses, Instant::now());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let next = &next;
            s.spawn(move || {
                let mut rng = SplitMix64::new(100 + t);
                while next.fetch_add(1, Relaxed) < txns {
                    op(db, &mut rng);
                }
            });
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    let s1 = db.stats();
    let (c1, io1, a1, f1) = (cpu(), io(), ALLOCS.load(Relaxed), s1.cache_misses);
    let (cpu_s, faults) = (c1 - c0, (f1 - f0).max(1));
    println!(
        "{what:<6} {txns} txns in {wall:.2} s: {:.0} txns/s, {:.1} us CPU/txn; {} fault-ins ({:.2}/txn): \
         {:.2} reads, {:.0} bytes read, {:.1} allocations per fault-in",
        txns as f64 / wall,
        cpu_s * 1e6 / txns as f64,
        f1 - f0,
        (f1 - f0) as f64 / txns as f64,
        (io1.0 - io0.0) as f64 / faults as f64,
        (io1.1 - io0.1) as f64 / faults as f64,
        (a1 - a0) as f64 / faults as f64,
    );
    println!(
        "{what:<6} throttle: {} sleeps ({:.3} per txn), {:.1} ms asleep ({:.1} us per txn); \
         {} evictions, {} page bytes written; {:.1} allocations per txn",
        s1.reclaim_waits - s0.reclaim_waits,
        (s1.reclaim_waits - s0.reclaim_waits) as f64 / txns as f64,
        (s1.reclaim_wait_micros - s0.reclaim_wait_micros) as f64 / 1e3,
        (s1.reclaim_wait_micros - s0.reclaim_wait_micros) as f64 / txns as f64,
        s1.evictions - s0.evictions,
        s1.page_bytes_written - s0.page_bytes_written,
        (a1 - a0) as f64 / txns as f64,
    );
}

fn write_all(db: &Db, keys: u64, seed: u64) {
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let next = &next;
            s.spawn(move || {
                let mut rng = SplitMix64::new(seed + t);
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
                    .expect("write");
                }
            });
        }
    });
}

fn main() -> ExitCode {
    COUNTING.store(true, Relaxed);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let mut pos = Vec::new();
    let mut skip = false;
    for a in &args {
        if skip {
            skip = false;
        } else if a == "--leaf-max" || a == "--scans" || a == "--a" {
            skip = true;
        } else if !a.starts_with("--") {
            pos.push(a);
        }
    }
    let (Some(dir), Some(Ok(keys)), Some(Ok(cache)), Some(Ok(txns))) = (
        pos.first().map(PathBuf::from),
        pos.get(1).map(|s| s.parse::<u64>()),
        pos.get(2).map(|s| s.parse::<u64>()),
        pos.get(3).map(|s| s.parse::<u64>()),
    ) else {
        eprintln!("usage: fault_in DIR KEYS CACHE_BYTES TXNS [--leaf-max N] [--no-update] [--a N] [--scans N]");
        return ExitCode::FAILURE;
    };
    if dir.exists() || keys == 0 {
        eprintln!("{} exists (give a new directory), or KEYS is 0", dir.display());
        return ExitCode::FAILURE;
    }
    let mut opts = Options::new()
        .durability(bwtx::Durability::Buffered(Duration::from_millis(10)))
        .cache_size(cache);
    if let Some(n) = flag("--leaf-max") {
        let n = n as usize;
        opts = opts.tree_config(bwtx::tree::Config {
            leaf_max: n,
            leaf_min: (n / 8).max(2),
            ..Default::default()
        });
    }
    let db = match opts.open(&dir) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("open: {e}");
            return ExitCode::FAILURE;
        }
    };
    let t = Instant::now();
    write_all(&db, keys, 1);
    println!("load   {keys} keys in {:.1} s", t.elapsed().as_secs_f64());
    if !args.iter().any(|a| a == "--no-update") {
        let t = Instant::now();
        write_all(&db, keys, 7);
        println!("update {keys} keys in {:.1} s", t.elapsed().as_secs_f64());
    }
    let zipf = Zipf::new(keys, 0.99);
    let c = |db: &Db, rng: &mut SplitMix64| {
        let tx = db.begin();
        for _ in 0..2 {
            let k = key(fnv(zipf.rank(rng.f64())) % keys);
            let _ = tx.get(k).expect("get");
        }
    };
    phase(&db, "C", txns, &c);
    if let Some(n) = flag("--u") {
        // Uniform single-key updates (`bwtx bench --workload u`'s mix).
        let u = |db: &Db, rng: &mut SplitMix64| {
            let k = key(rng.below(keys));
            let mut v = [b'u'; VALUE];
            v[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
            db.transaction(|tx| tx.put(k, v)).expect("update");
        };
        phase(&db, "U", n, &u);
        println!("U      {}", rss());
    }
    if let Some(n) = flag("--a") {
        let a = |db: &Db, rng: &mut SplitMix64| {
            let k = key(fnv(zipf.rank(rng.f64())) % keys);
            if rng.below(2) == 0 {
                let _ = db.begin().get(k).expect("get");
            } else {
                let mut v = [b'y'; VALUE];
                v[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
                db.transaction(|tx| tx.put(k, v)).expect("update");
            }
        };
        phase(&db, "A", n, &a);
    }
    if let Some(n) = flag("--scans") {
        let e = |db: &Db, rng: &mut SplitMix64| {
            let tx = db.begin();
            let from = key(fnv(zipf.rank(rng.f64())) % keys);
            let len = 1 + rng.below(100) as usize;
            for kv in tx.range(from..).take(len) {
                let _ = kv.expect("scan");
            }
        };
        phase(&db, "scans", n, &e);
    }
    let s = db.stats();
    println!(
        "cache: {} misses; {} page bytes written; {} blind writes, {} blind reads; \
         resident {} B, stubs {} B, retired {} B; {}",
        s.cache_misses,
        s.page_bytes_written,
        s.blind_writes,
        s.blind_reads,
        s.resident_bytes,
        s.stub_bytes,
        s.retired_bytes,
        rss()
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}
