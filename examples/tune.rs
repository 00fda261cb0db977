//! Parameter sweep for `tree::Config` (how the defaults were chosen):
//! 1-thread random insert and point-read throughput on N random 8-byte keys
//! for each combination of leaf chain threshold, leaf size and inner fan-out.
//!
//! `cargo run --release --example tune -- [keys]` (default 1,000,000).

use std::time::Instant;

use bwtx::tree::{Config, Tree};
use bwtx_kit::SplitMix64;

fn keys(n: usize) -> Vec<[u8; 8]> {
    // SplitMix64: deterministic, distinct enough for a benchmark
    let mut rng = SplitMix64::new(0x1234_5678_9abc_def0);
    (0..n).map(|_| rng.next_u64().to_be_bytes()).collect()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let ks = keys(n);
    let mut probe = ks.clone();
    probe.reverse();
    println!(
        "{:>10} {:>8} {:>9} {:>12} {:>12}",
        "leaf_chain", "leaf_max", "inner_max", "insert/s", "get/s"
    );
    for leaf_chain in [4u16, 8, 16, 24] {
        for leaf_max in [64usize, 128, 256] {
            for inner_max in [64usize, 256] {
                let cfg = Config {
                    leaf_chain,
                    leaf_max,
                    leaf_min: leaf_max / 8,
                    inner_max,
                    inner_min: inner_max / 8,
                    ..Config::default()
                };
                let tree = Tree::with_config(cfg).unwrap();
                let t = Instant::now();
                for k in &ks {
                    tree.put(k, 1, k).unwrap();
                }
                let ins = n as f64 / t.elapsed().as_secs_f64();
                let t = Instant::now();
                for k in &probe {
                    assert!(tree.get(k, 1).unwrap().is_some());
                }
                let get = n as f64 / t.elapsed().as_secs_f64();
                println!(
                    "{leaf_chain:>10} {leaf_max:>8} {inner_max:>9} {:>11.0}k {:>11.0}k",
                    ins / 1e3,
                    get / 1e3
                );
            }
        }
    }
}
