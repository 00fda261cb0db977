//! Cold stubs (`design/storage.md` §5.9): evicted leaves packed into a
//! small record in their mapping-table slot, rebuilt on their next use.
//!
//! - Every use of a packed leaf sees the same data: point reads (read
//!   through or faulted in), scans, blind writes (the live-key count stays
//!   exact), a checkpoint (whose listing leaves them packed), segment
//!   cleaning (which moves cold leaves packed) and a reopen (whose leaves
//!   start cold).
//! - Their memory: under 150 bytes a leaf without a key set.
//! - Evictions leave cold stubs under a tiny cache.
//! - Concurrent writers, readers and scans against a thread that evicts,
//!   packs, checkpoints and cleans: every acknowledged write reads back. Sized by
//!   `BWTX_STRESS_OPS` (the CI's valgrind step runs it small).

mod common;

use std::collections::BTreeMap;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability};
use common::{fault_opts, DIR};

const KEYS: u32 = 2_000;

fn open(fs: &FaultFs, cache: u64) -> Db {
    fault_opts(fs)
        .durability(Durability::Sync)
        .cache_size(cache)
        .segment_bytes(64 << 10)
        .open(DIR)
        .expect("open")
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn check(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>, ctx: &str) {
    let snap = db.snapshot();
    for i in 0..KEYS + 100 {
        let got = snap.get(key(i)).unwrap();
        assert_eq!(got.as_deref(), model.get(&key(i)).map(|v| &v[..]), "{ctx}: key {i}");
    }
    let scan: Vec<(Vec<u8>, Vec<u8>)> = snap
        .range::<&[u8], _>(..)
        .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(scan, want, "{ctx}: scan");
    assert_eq!(db.stats().live_keys, model.len() as u64, "{ctx}: live keys");
}

/// Evict every leaf and pack every stub; returns how many were packed.
fn evict_and_pack(db: &Db) -> usize {
    db.evict_all().unwrap();
    db.pack_stubs()
}

#[test]
fn packed_leaves_read_write_checkpoint_clean_and_reopen_exactly() {
    let fs = FaultFs::new();
    // A cache far above the data: only the hooks evict and pack.
    let db = open(&fs, 64 << 20);
    let mut model = BTreeMap::new();
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(100) {
        let mut tx = db.begin();
        for &i in chunk {
            let v = format!("v{i}").into_bytes();
            tx.put(key(i), v.clone()).unwrap();
            model.insert(key(i), v);
        }
        tx.commit().unwrap();
    }
    db.checkpoint().unwrap();
    // Evicted clean (the checkpoint wrote every leaf): cold stubs without
    // key sets, under 150 bytes a leaf with these 9-byte keys.
    let packed = db.evict_all().unwrap();
    assert!(packed > 50, "{packed} leaves evicted");
    let s = db.stats();
    assert_eq!(s.cold_stubs_packed, s.evictions, "every eviction left a cold stub");
    let cold = s.stub_bytes;
    assert!(
        cold < 150 * packed as u64,
        "{cold} bytes of cold stubs for {packed} leaves"
    );
    assert_eq!(db.pack_stubs(), 0, "no stub left to pack");
    // Read through (as under pressure), every leaf stays packed.
    db.force_read_through(Some(true));
    let through = db.stats().read_throughs;
    check(&db, &model, "reads of packed leaves");
    assert!(db.stats().read_throughs > through, "read through");
    assert_eq!(db.pack_stubs(), 0, "reads and scans left every leaf packed");
    // (Less only by the few leaves whose reads reached the admission.)
    let s = db.stats();
    assert!(
        s.stub_bytes * 10 > cold * 9,
        "{} of {cold} bytes, {} faults",
        s.stub_bytes,
        s.cache_misses
    );
    // Faulted in, each leaf is unpacked and installed.
    db.force_read_through(Some(false));
    let misses = db.stats().cache_misses;
    check(&db, &model, "reads faulting packed leaves in");
    let s = db.stats();
    assert!(s.cache_misses > misses, "faulted in");
    // (The database's own small tree keeps its one leaf, cold: 80 bytes.)
    assert!(s.stub_bytes <= 80, "every leaf resident: {} stub bytes", s.stub_bytes);
    db.force_read_through(None);

    // Blind writes on packed leaves: overwrites, inserts and deletes; the
    // live-key count needs each key's liveness (from the key sets, read
    // from disk for leaves evicted clean).
    evict_and_pack(&db);
    for i in (0..KEYS + 100).step_by(7) {
        let mut tx = db.begin();
        if i % 3 == 0 {
            tx.delete(key(i)).unwrap();
            model.remove(&key(i));
        } else {
            let v = format!("w{i}").into_bytes();
            tx.put(key(i), v.clone()).unwrap();
            model.insert(key(i), v);
        }
        tx.commit().unwrap();
    }
    assert!(db.stats().blind_writes > 0);
    check(&db, &model, "blind writes on packed leaves");

    // A checkpoint over packed leaves, and the same state after it.
    evict_and_pack(&db);
    db.checkpoint().unwrap();
    assert_eq!(db.pack_stubs(), 0, "the listing left its leaves packed");
    check(&db, &model, "after a checkpoint");

    // Segment cleaning moves packed leaves' chains without unpacking them.
    evict_and_pack(&db);
    let moved = db.clean_now().unwrap();
    assert_eq!(db.pack_stubs(), 0, "cleaning left the leaves packed");
    check(&db, &model, &format!("after cleaning ({moved} segments)"));

    // Reopened, every leaf starts cold.
    db.checkpoint().unwrap();
    drop(db);
    let db = open(&fs, 64 << 20);
    let s = db.stats();
    // Under 150 bytes a page id (leaves and inner pages alike).
    assert!(
        s.stub_bytes < 150 * s.tree.page_ids,
        "restored stubs {} bytes for {} page ids",
        s.stub_bytes,
        s.tree.page_ids
    );
    assert_eq!(db.pack_stubs(), 0, "restored leaves are cold already");
    check(&db, &model, "after reopening");
}

#[test]
fn evictions_and_the_clock_leave_cold_stubs() {
    let fs = FaultFs::new();
    // A tiny cache: writes keep the evictor's hand turning.
    let db = open(&fs, 16 << 10);
    let mut model = BTreeMap::new();
    for round in 0..3u32 {
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(50) {
            let mut tx = db.begin();
            for &i in chunk {
                let v = format!("r{round}-{i}").into_bytes();
                tx.put(key(i), v.clone()).unwrap();
                model.insert(key(i), v);
            }
            tx.commit().unwrap();
        }
    }
    let s = db.stats();
    assert!(s.evictions > 100, "{s:?}");
    assert!(s.cold_stubs_packed > 50, "{} cold stubs made", s.cold_stubs_packed);
    check(&db, &model, "after the hand packed");
}

/// The thread that owns `key` in the concurrent test (keys are `t` mod 3).
fn owner(key: &[u8]) -> u32 {
    let digits = std::str::from_utf8(&key[3..]).expect("a key is key<digits>");
    digits.parse::<u32>().expect("a key is key<digits>") % 3
}

fn ops() -> u32 {
    std::env::var("BWTX_STRESS_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

#[test]
fn concurrent_use_while_leaves_are_packed() {
    let fs = FaultFs::new();
    let db = open(&fs, 32 << 10);
    let ops = ops();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let models: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                evict_and_pack(&db);
                db.checkpoint().unwrap();
                db.clean_now().unwrap();
                std::thread::yield_now();
            }
        });
        let writers: Vec<_> = (0..3u32)
            .map(|t| {
                let db = &db;
                s.spawn(move || {
                    let mut model = BTreeMap::new();
                    for n in 0..ops {
                        // Each thread owns the keys equal to `t` mod 3.
                        let i = (n * 7 + t) % 600 * 3 + t;
                        if n % 5 == 4 {
                            db.transaction(|tx| tx.delete(key(i))).unwrap();
                            model.remove(&key(i));
                        } else {
                            let v = format!("t{t}n{n}").into_bytes();
                            db.transaction(|tx| tx.put(key(i), v.clone())).unwrap();
                            model.insert(key(i), v);
                        }
                        let got = db.snapshot().get(key(i)).unwrap();
                        assert_eq!(got.as_deref(), model.get(&key(i)).map(|v| &v[..]), "thread {t} op {n}");
                        if n % 64 == 63 {
                            // A scan (read through or faulting) sees this
                            // thread's keys exactly as its model has them.
                            let mine: Vec<(Vec<u8>, Vec<u8>)> = db
                                .snapshot()
                                .range::<&[u8], _>(..)
                                .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                                .filter(|(k, _)| owner(k) == t)
                                .collect();
                            let want: Vec<(Vec<u8>, Vec<u8>)> =
                                model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                            assert_eq!(mine, want, "thread {t}: scan after op {n}");
                        }
                    }
                    model
                })
            })
            .collect();
        let models = writers.into_iter().map(|w| w.join().unwrap()).collect();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        models
    });
    let model: BTreeMap<_, _> = models.into_iter().flatten().collect();
    check(&db, &model, "after the threads");
    let s = db.stats();
    assert!(s.cold_stubs_packed > 0, "{s:?}");
    drop(db);
    let db = open(&fs, 32 << 10);
    check(&db, &model, "reopened");
}
