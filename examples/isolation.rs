//! Serializable against snapshot isolation on the same transactions: the
//! cost of recording and validating reads (issue 12's goal: serializable
//! within 15% of SI on YCSB A and B).
//!
//! ```text
//! cargo run --release --example isolation                     # 100,000 keys, 2 threads
//! cargo run --release --example isolation -- --keys 1000000 --threads 4 --ms 1000
//! ```
//!
//! Data: `--keys` 8-byte keys with 8-byte values, in memory, loaded once.
//! Keys are drawn from a zipfian distribution (theta 0.99, as YCSB); rank
//! `r` is the key `mix(r)`, so hot keys are scattered over the key space. Two transaction mixes (one transaction = one element):
//!
//! * `A` (YCSB-A-like, half the operations update): `get(k1)`, then a
//!   read-modify-write of `k2`.
//! * `B` (YCSB-B-like, about 5% of operations update): 19 `get`s, then a
//!   read-modify-write of one more key.
//!
//! A conflict is retried at once on a fresh transaction until it commits;
//! rates count commits and the aborted attempts are reported. Each cell is
//! the best of 3 passes of `--ms` milliseconds (default 400), the passes of
//! the two levels interleaved, so a burst of load elsewhere hits both.
//! Besides wall-clock rates it prints commits per CPU-second of the worker
//! threads (their on-CPU time from `/proc/thread-self/schedstat`, Linux),
//! which a machine shared with other jobs disturbs far less.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bwtx::{Db, Isolation};
use bwtx_kit::rng::SplitMix64;
use bwtx_kit::zipf::Zipf;

struct Args {
    keys: u64,
    threads: usize,
    ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        keys: 100_000,
        threads: 2,
        ms: 400,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse::<u64>().ok());
        match (pair[0].as_str(), value) {
            ("--keys", Some(v)) => a.keys = v.max(1),
            ("--threads", Some(v)) => a.threads = v.max(1) as usize,
            ("--ms", Some(v)) => a.ms = v.max(1),
            _ => {
                eprintln!("usage: isolation [--keys N] [--threads N] [--ms N]");
                std::process::exit(2);
            }
        }
    }
    a
}

/// Key of rank `i`: scattered over the key space (a bijective mix), so hot
/// keys do not share leaves.
fn key(i: u64) -> [u8; 8] {
    bwtx_kit::rng::mix(i).to_be_bytes()
}

/// One transaction of `reads` gets and a read-modify-write, retried until it
/// commits; returns the aborted attempts.
fn txn(db: &Db, level: Isolation, zipf: &Zipf, rng: &mut SplitMix64, reads: usize) -> u64 {
    let picks: Vec<u64> = (0..=reads).map(|_| zipf.rank(rng.f64())).collect();
    let mut aborts = 0;
    loop {
        let mut tx = db.begin_with(level);
        for &k in &picks[..reads] {
            tx.get(key(k)).unwrap();
        }
        let k = key(picks[reads]);
        let v = tx
            .get(k)
            .unwrap()
            .map_or(0, |v| u64::from_be_bytes(v[..8].try_into().unwrap()));
        tx.put(k, (v + 1).to_be_bytes()).unwrap();
        match tx.commit() {
            Ok(_) => return aborts,
            Err(e) if e.is_conflict() => aborts += 1,
            Err(e) => panic!("{e}"),
        }
    }
}

/// This thread's on-CPU time in nanoseconds (0 where unknown).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One pass's rates.
#[derive(Clone, Copy, Default)]
struct Rates {
    /// Commits per second of wall-clock time.
    wall: f64,
    /// Commits per second of the workers' summed on-CPU time.
    cpu: f64,
    /// Aborted attempts per 1,000 commits.
    aborts: f64,
}

/// One timed pass.
fn pass(db: &Db, level: Isolation, zipf: &Zipf, reads: usize, a: &Args, seed: u64) -> Rates {
    let (commits, aborts, cpu) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_millis(a.ms);
    std::thread::scope(|s| {
        for t in 0..a.threads {
            let (commits, aborts, cpu) = (&commits, &aborts, &cpu);
            s.spawn(move || {
                let cpu0 = thread_cpu_ns();
                let mut rng = SplitMix64::new(seed ^ ((t as u64 + 1) * 0x9E37_79B9));
                let (mut c, mut x) = (0, 0);
                while Instant::now() < until {
                    for _ in 0..64 {
                        x += txn(db, level, zipf, &mut rng, reads);
                        c += 1;
                    }
                }
                commits.fetch_add(c, Relaxed);
                aborts.fetch_add(x, Relaxed);
                cpu.fetch_add(thread_cpu_ns().saturating_sub(cpu0), Relaxed);
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let (c, x) = (commits.load(Relaxed) as f64, aborts.load(Relaxed) as f64);
    let cpu_secs = cpu.load(Relaxed) as f64 / 1e9;
    Rates {
        wall: c / secs,
        cpu: if cpu_secs > 0.0 { c / cpu_secs } else { 0.0 },
        aborts: 1000.0 * x / c,
    }
}

fn main() {
    let a = args();
    let db = Db::in_memory();
    for chunk in (0..a.keys).collect::<Vec<_>>().chunks(1000) {
        let mut tx = db.begin();
        for &i in chunk {
            tx.put(key(i), 0u64.to_be_bytes()).unwrap();
        }
        tx.commit().unwrap();
    }
    let zipf = Zipf::new(a.keys, 0.99);
    println!(
        "{} keys, zipf(0.99), {} threads, best of 3 interleaved passes of {} ms; load average {}",
        a.keys,
        a.threads,
        a.ms,
        bwtx_kit::machine::loadavg()
    );
    println!(
        "mix  reads  SI txns/s  SER txns/s  SER/SI | SI per CPU-s  SER per CPU-s  SER/SI | SI aborts/1k  SER aborts/1k"
    );
    for (name, reads) in [("A", 1), ("B", 19)] {
        let (mut si, mut ser) = (Rates::default(), Rates::default());
        for round in 0..3 {
            let s = pass(&db, Isolation::Snapshot, &zipf, reads, &a, round);
            let z = pass(&db, Isolation::Serializable, &zipf, reads, &a, round + 100);
            si.aborts = si.aborts.max(s.aborts);
            ser.aborts = ser.aborts.max(z.aborts);
            (si.wall, si.cpu) = (si.wall.max(s.wall), si.cpu.max(s.cpu));
            (ser.wall, ser.cpu) = (ser.wall.max(z.wall), ser.cpu.max(z.cpu));
        }
        println!(
            "{name:<4} {reads:>5}  {:>9.0}  {:>10.0}  {:>6.2} | {:>12.0}  {:>13.0}  {:>6.2} | {:>12.2}  {:>13.2}",
            si.wall,
            ser.wall,
            ser.wall / si.wall,
            si.cpu,
            ser.cpu,
            ser.cpu / si.cpu,
            si.aborts,
            ser.aborts
        );
    }
    println!("(aborts: the highest of the 3 passes)");
}
