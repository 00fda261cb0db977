//! Multithreaded stress on tiny pages: installs, deletes, reads and scans on
//! overlapping and disjoint keys while splits, merges and consolidations run.
//! The final state is checked exactly; scans never miss or repeat a key that
//! existed for the whole scan. `BWTX_STRESS_OPS` scales it (valgrind uses a
//! small value).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bwtx::tree::{Config, Tree};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const WRITERS: usize = 4;
const SHARED: u32 = 64;
const STABLE: u32 = 200;

fn ops() -> usize {
    bwtx_kit::env::parse("BWTX_STRESS_OPS").unwrap_or(20_000)
}

fn shared_key(i: u32) -> Vec<u8> {
    format!("shared/{i:04}").into_bytes()
}
fn own_key(t: usize, i: u32) -> Vec<u8> {
    format!("own/{t}/{i:05}").into_bytes()
}
fn stable_key(i: u32) -> Vec<u8> {
    format!("stable/{i:04}").into_bytes()
}

type Writes = Vec<(Vec<u8>, u64, Option<Vec<u8>>)>;

#[test]
fn concurrent_mixed_workload_ends_exact() {
    let tree = Tree::with_config(Config::tiny()).unwrap();
    let clock = AtomicU64::new(1);
    // Timestamps taken but not yet installed: the GC watermark stays below
    // them, as the MVCC layer's watermark will.
    let inflight: Vec<AtomicU64> = (0..WRITERS).map(|_| AtomicU64::new(u64::MAX)).collect();
    for i in 0..STABLE {
        tree.put(stable_key(i), 1, b"stable").unwrap();
    }
    let stop = AtomicBool::new(false);
    let n = ops();
    let all_writes: Vec<Writes> = std::thread::scope(|s| {
        // Scanners: forward and reverse, at the newest timestamp, while
        // everything else churns; the stable keys must each appear once.
        for rev in [false, true] {
            let (tree, stop) = (&tree, &stop);
            s.spawn(move || {
                let mut scans = 0;
                while !stop.load(Ordering::Relaxed) || scans < 3 {
                    let lo = stable_key(0);
                    let hi = stable_key(STABLE);
                    let cur = tree.range(lo..hi, u64::MAX);
                    let keys: Vec<_> = if rev {
                        let mut v: Vec<_> = cur.rev().map(|r| r.unwrap().0).collect();
                        v.reverse();
                        v
                    } else {
                        cur.map(|r| r.unwrap().0).collect()
                    };
                    let want: Vec<_> = (0..STABLE).map(stable_key).collect();
                    assert_eq!(keys.len(), want.len(), "scan (rev={rev}) missed or repeated a key");
                    for (g, w) in keys.iter().zip(&want) {
                        assert_eq!(&g[..], &w[..]);
                    }
                    // A whole-tree scan is strictly increasing (no duplicates).
                    let all: Vec<_> = tree.range::<&[u8], _>(.., u64::MAX).map(|r| r.unwrap().0).collect();
                    assert!(
                        all.windows(2).all(|w| w[0] < w[1]),
                        "whole scan not strictly increasing"
                    );
                    scans += 1;
                    // Readers spin until the writers finish; yielding keeps them
                    // from starving the writers where threads share a core
                    // (valgrind runs one thread at a time).
                    std::thread::yield_now();
                }
            });
        }
        // A point reader on the stable keys.
        {
            let (tree, stop) = (&tree, &stop);
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(99);
                while !stop.load(Ordering::Relaxed) {
                    let i = rng.gen_range(0..STABLE);
                    assert_eq!(
                        tree.get(stable_key(i), u64::MAX).unwrap().as_deref(),
                        Some(&b"stable"[..])
                    );
                    std::thread::yield_now();
                }
            });
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                let (tree, clock, inflight) = (&tree, &clock, &inflight);
                s.spawn(move || {
                    let mut rng = SmallRng::seed_from_u64(t as u64);
                    let mut writes: Writes = Vec::new();
                    for op in 0..n {
                        let key = if rng.gen_bool(0.3) {
                            shared_key(rng.gen_range(0..SHARED))
                        } else {
                            own_key(t, rng.gen_range(0..(n as u32 / 4).max(8)))
                        };
                        inflight[t].store(clock.load(Ordering::SeqCst), Ordering::SeqCst);
                        let ts = clock.fetch_add(1, Ordering::SeqCst) + 1;
                        if rng.gen_bool(0.35) {
                            tree.delete(&key, ts).unwrap();
                            writes.push((key, ts, None));
                        } else {
                            let v = format!("{t}:{op}").into_bytes();
                            tree.put(&key, ts, &v).unwrap();
                            writes.push((key, ts, Some(v)));
                        }
                        inflight[t].store(u64::MAX, Ordering::SeqCst);
                        if op % 997 == 0 {
                            // Collect garbage behind every timestamp still being installed
                            // (no reader here reads in the past).
                            let now = clock.load(Ordering::SeqCst);
                            let oldest = inflight.iter().map(|x| x.load(Ordering::SeqCst)).min().unwrap();
                            tree.collect_garbage(now.saturating_sub(1000).min(oldest.saturating_sub(1)));
                        }
                    }
                    writes
                })
            })
            .collect();
        let all = writers.into_iter().map(|h| h.join().unwrap()).collect();
        stop.store(true, Ordering::Relaxed);
        all
    });

    // Expected final state: per key, the write with the highest timestamp.
    let mut last: HashMap<Vec<u8>, (u64, Option<Vec<u8>>)> = HashMap::new();
    for (k, ts, v) in all_writes.into_iter().flatten() {
        let e = last.entry(k).or_insert((0, None));
        if ts > e.0 {
            *e = (ts, v);
        }
    }
    for (k, (ts, v)) in &last {
        assert_eq!(
            tree.get(k, u64::MAX).unwrap().map(|b| b.to_vec()),
            *v,
            "key {:?} last written at {ts}, newest in tree {:?}",
            String::from_utf8_lossy(k),
            tree.newest_ts(k).unwrap()
        );
        // GC drops a tombstone that is the newest version at or below the
        // watermark; a value stays.
        match v {
            Some(_) => assert_eq!(tree.newest_ts(k).unwrap(), Some(*ts)),
            None => assert!(tree.newest_ts(k).unwrap() <= Some(*ts)),
        }
    }
    let mut want: Vec<Vec<u8>> = last
        .iter()
        .filter(|(_, (_, v))| v.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    want.extend((0..STABLE).map(stable_key));
    want.sort();
    let got: Vec<Vec<u8>> = tree
        .range::<&[u8], _>(.., u64::MAX)
        .map(|r| r.unwrap().0.to_vec())
        .collect();
    assert_eq!(got, want);
    let s = tree.stats();
    if n >= 5000 {
        assert!(s.splits > 0 && s.merges > 0 && s.consolidations > 0, "{s:?}");
    }
}
