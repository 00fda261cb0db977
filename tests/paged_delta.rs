//! Delta flushes (`design/storage.md` §4): a checkpoint after updating 1% of
//! the keys at random writes at most 5% of the data (only the versions each
//! page gained, linked to its on-disk chain), for four checkpoints in a row,
//! each after a restart (the chains are read back at fault-in); and random updates and deletes with
//! repeated checkpoints, evictions, garbage collection and reopens, under a
//! tiny cache, read back exactly what a `BTreeMap` model holds, old
//! snapshots included.

mod common;

use std::collections::BTreeMap;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Options};
use bwtx_kit::rng::SplitMix64;
use common::{dump, fault_opts, DIR};

fn key(i: u64) -> String {
    format!("key{i:06}")
}

fn value(i: u64, round: u64, len: usize) -> String {
    let mut v = format!("value-{round}-{i}-");
    v.extend(std::iter::repeat_n('x', len.saturating_sub(v.len())));
    v
}

/// Default pages (128 keys), 1 MiB segments.
fn opts(fs: &FaultFs, cache: u64) -> Options {
    fault_opts(fs)
        .tree_config(bwtx::tree::Config::default())
        .durability(Durability::Sync)
        .segment_bytes(1 << 20)
        .cache_size(cache)
}

/// Put `keys` (value round `round`), 100 per commit.
fn put(db: &Db, keys: &[u64], round: u64, model: &mut BTreeMap<String, String>) {
    for chunk in keys.chunks(100) {
        let mut tx = db.begin();
        for &i in chunk {
            tx.put(key(i), value(i, round, 100)).unwrap();
            model.insert(key(i), value(i, round, 100));
        }
        tx.commit().unwrap();
    }
}

#[test]
fn a_checkpoint_after_random_1pct_updates_writes_at_most_5pct() {
    let fs = FaultFs::new();
    let mut model = BTreeMap::new();
    let n = 20_000u64;
    let db = opts(&fs, 1 << 30).open(DIR).unwrap();
    put(&db, &(0..n).collect::<Vec<_>>(), 0, &mut model);
    let data: u64 = model.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
    drop(db);
    let mut rng = SplitMix64::new(7);
    // One round: 1% of the keys at random, then a checkpoint; its bytes.
    let mut update = |db: &Db, round: u64, model: &mut BTreeMap<String, String>| {
        let before = db.stats().checkpoint_bytes;
        let keys: Vec<u64> = (0..n / 100).map(|_| rng.below(n)).collect();
        put(db, &keys, round, model);
        db.checkpoint().unwrap();
        let wrote = db.stats().checkpoint_bytes - before;
        eprintln!("round {round}: data {data} bytes, checkpoint after 1% random updates wrote {wrote}");
        wrote
    };
    // Rounds 1-4, each in a new run: the chains are read back at fault-in
    // (a base image, then with one, two and three delta flushes) and grow;
    // in round 4 the pages touched in each of rounds 1-3 have FLUSH_CHAIN
    // (4) parts and are rebased (one delta flush on the base image).
    for round in 1..=4 {
        let db = opts(&fs, 1 << 30).open(DIR).unwrap();
        let wrote = update(&db, round, &mut model);
        let s = db.stats();
        assert!(s.delta_flushes > 0, "{s:?}");
        assert!(wrote <= data / 20, "round {round}: {wrote} bytes of {data}: {s:?}");
        assert_eq!(dump(&db).1, model);
    }
    // Steady state (reported, not asserted): as the rebased deltas reach a
    // quarter of their base image, pages are written whole again.
    let db = opts(&fs, 1 << 30).open(DIR).unwrap();
    let before = db.stats().checkpoint_bytes;
    for round in 5..=60 {
        update(&db, round, &mut model);
    }
    let mean = (db.stats().checkpoint_bytes - before) / 56;
    eprintln!(
        "rounds 5-60: mean {mean} bytes a checkpoint ({:.1}% of the data)",
        mean as f64 * 100.0 / data as f64
    );
    drop(db);
    let db = opts(&fs, 1 << 30).open(DIR).unwrap();
    assert_eq!(dump(&db).1, model);
}

/// One run of the model test: random puts and deletes over `keys` keys,
/// checkpoints, evictions, GC sweeps, reopens and snapshot checks.
fn model_run(seed: u64, steps: usize, keys: u64, cache: u64) -> u64 {
    let fs = FaultFs::new();
    let mut rng = SplitMix64::new(seed);
    let mut model: BTreeMap<String, String> = BTreeMap::new();
    let mut db = opts(&fs, cache).open(DIR).unwrap();
    let mut deltas = 0;
    // A snapshot and the model state it must read.
    let mut held: Option<(bwtx::Snapshot, BTreeMap<String, String>)> = None;
    for step in 0..steps as u64 {
        match rng.below(20) {
            0..=11 => {
                let mut tx = db.begin();
                for _ in 0..1 + rng.below(12) {
                    let i = rng.below(keys);
                    if rng.below(4) == 0 {
                        tx.delete(key(i)).unwrap();
                        model.remove(&key(i));
                    } else {
                        let v = value(i, step, 20 + rng.below(120) as usize);
                        tx.put(key(i), v.clone()).unwrap();
                        model.insert(key(i), v);
                    }
                }
                tx.commit().unwrap();
            }
            12 | 13 => {
                db.checkpoint().unwrap();
            }
            14 => {
                db.evict_all().unwrap();
            }
            15 => {
                db.collect_garbage();
            }
            16 => {
                let snap = db.snapshot();
                held = Some((snap, model.clone()));
            }
            17 => {
                if let Some((snap, want)) = held.take() {
                    for (k, v) in &want {
                        assert_eq!(
                            snap.get(k).unwrap().as_deref(),
                            Some(v.as_bytes()),
                            "seed {seed} step {step}"
                        );
                    }
                    let n = snap.range::<&[u8], _>(..).count();
                    assert_eq!(n, want.len(), "seed {seed} step {step}");
                }
            }
            18 => {
                held = None;
                deltas += db.stats().delta_flushes;
                drop(db);
                db = opts(&fs, cache).open(DIR).unwrap();
            }
            _ => {
                for _ in 0..20 {
                    let k = key(rng.below(keys));
                    let got = db.snapshot().get(&k).unwrap();
                    assert_eq!(
                        got.as_deref(),
                        model.get(&k).map(|v| v.as_bytes()),
                        "seed {seed} step {step}"
                    );
                }
            }
        }
    }
    assert_eq!(dump(&db).1, model, "seed {seed}");
    deltas += db.stats().delta_flushes;
    drop(held);
    drop(db);
    let db = opts(&fs, cache).open(DIR).unwrap();
    assert_eq!(dump(&db).1, model, "seed {seed}: reopened");
    deltas
}

#[test]
fn random_updates_with_checkpoints_evictions_and_reopens_read_back_exactly() {
    let mut deltas = 0;
    for seed in 0..4 {
        // A 32 KiB cache: a few default pages resident, every step evicts.
        deltas += model_run(seed, 400, 3_000, 32 << 10);
    }
    assert!(deltas > 0, "the runs wrote delta flushes");
}
