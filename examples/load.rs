//! Load a bare `bwtx` tree (no transactions; `bwtx bench` measures those)
//! with random 8-byte keys and measure it.
//!
//! ```text
//! cargo run --release --example load                  # 1,000,000 keys
//! cargo run --release --example load -- --keys 200000
//! ```
//!
//! For 1 and 2 threads: load N random 8-byte big-endian keys with 8-byte
//! values into a fresh tree, then do N random point reads and N/10 100-key
//! scans; print ops/s. Then load once more on one thread with a counting
//! allocator switched on and print heap bytes per key and `tree.stats()`.

use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bwtx::tree::Tree;
use bwtx_kit::alloc::{Counting, COUNTING, LIVE};
use bwtx_kit::par::{par, value_of};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

#[global_allocator]
static GLOBAL: Counting = Counting;

const SCAN_LEN: usize = 100;

fn load(tree: &Tree, keys: &[u64], threads: usize) -> Duration {
    par(threads, keys.len(), |b, e| {
        for &k in &keys[b..e] {
            tree.put(k.to_be_bytes(), 1, value_of(k).to_be_bytes()).expect("put");
        }
    })
}

fn rate(ops: usize, d: Duration) -> String {
    let r = ops as f64 / d.as_secs_f64();
    if r >= 1e6 {
        format!("{:.2}M ops/s", r / 1e6)
    } else {
        format!("{:.0}k ops/s", r / 1e3)
    }
}

fn parse_args() -> Result<usize, String> {
    let mut keys = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--keys" | "-n" => {
                let v = args.next().ok_or("--keys needs a number")?;
                keys = v.replace('_', "").parse().map_err(|_| format!("bad key count {v:?}"))?;
            }
            "--help" | "-h" => {
                return Err("usage: load [--keys N]   (default 1000000)".into());
            }
            other => return Err(format!("unknown argument {other:?}; usage: load [--keys N]")),
        }
    }
    if keys == 0 {
        return Err("--keys must be positive".into());
    }
    Ok(keys)
}

fn main() -> ExitCode {
    let n = match parse_args() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rng = SmallRng::seed_from_u64(0x6277_7478);
    let keys: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
    let mut probes = keys.clone();
    probes.shuffle(&mut rng);
    let n_scans = (n / 10).max(1);
    println!("{n} random 8-byte keys, 8-byte values; reads and scan starts hit present keys in random order");

    for threads in [1, 2] {
        let tree = Tree::new();
        let t_load = load(&tree, &keys, threads);
        let t_get = par(threads, n, |b, e| {
            for &k in &probes[b..e] {
                let v = tree.get(k.to_be_bytes(), u64::MAX).expect("get").expect("present key");
                assert_eq!(v[..], value_of(k).to_be_bytes(), "wrong value for {k:#x}");
            }
        });
        let t_scan = par(threads, n_scans, |b, e| {
            let mut seen = 0;
            for &k in &probes[b..e] {
                for kv in tree.range(k.to_be_bytes().., u64::MAX).take(SCAN_LEN) {
                    seen += kv.expect("scan").1.len();
                }
            }
            std::hint::black_box(seen);
        });
        println!(
            "{threads} thread{}: insert {}  get {}  scan{SCAN_LEN} {} ({:.1}s)",
            if threads == 1 { " " } else { "s" },
            rate(n, t_load),
            rate(n, t_get),
            rate(n_scans, t_scan),
            (t_load + t_get + t_scan).as_secs_f64(),
        );
    }

    // Memory: a fresh tree loaded on one thread, counting every allocation.
    LIVE.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let tree = Tree::new();
    load(&tree, &keys, 1);
    let loaded = LIVE.load(Relaxed);
    // Let epoch-based reclamation free the chains consolidation retired.
    for _ in 0..64 {
        crossbeam_epoch::pin().flush();
    }
    let settled = LIVE.load(Relaxed);
    COUNTING.store(false, Relaxed);
    println!(
        "heap bytes/key: {:.1} (right after loading: {:.1})",
        settled as f64 / n as f64,
        loaded as f64 / n as f64
    );
    println!("stats: {:?}", tree.stats());
    ExitCode::SUCCESS
}
