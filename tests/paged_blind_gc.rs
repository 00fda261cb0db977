//! GC over blind chains (`design/storage.md` §5.6): the version deltas
//! over an evicted leaf's stub are collected among themselves at the GC
//! watermark, without reading or faulting in the leaf. Per key, the
//! versions below its newest one at or below the watermark go; so does
//! that newest one if it is a tombstone and the stub's key set says the
//! image does not hold the key live. A tombstone over a live image value
//! stays (dropping it would bring the value back), and so does every
//! version a snapshot can still read.
//!
//! One leaf (the default tree configuration, ten keys), so each test knows
//! what the chain holds.

mod common;

use bwtx::fs::FaultFs;
use bwtx::{Db, Stats};
use common::blind::{all, key, open};

/// One committed write of `v` to key `k` (`None`: a delete).
fn put(db: &Db, k: u8, v: Option<u8>) {
    common::blind::put(db, k, v).unwrap();
}

/// Keys 0..10 live, key 2 deleted, the leaf evicted: a stub with a key set.
fn evicted(fs: &FaultFs) -> Db {
    let db = open(fs);
    for k in 0..10 {
        put(&db, k, Some(k));
    }
    put(&db, 2, None);
    assert!(db.evict_all().unwrap() > 0);
    db
}

fn want(kvs: &[(u8, u8)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    kvs.iter().map(|&(k, v)| (key(k), vec![v])).collect()
}

fn moved(before: &Stats, after: &Stats, f: fn(&Stats) -> u64) -> u64 {
    f(after) - f(before)
}

#[test]
fn gc_collects_blind_chains_without_faulting_in() {
    let fs = FaultFs::new();
    let db = evicted(&fs);
    let start = db.stats();
    put(&db, 1, Some(11));
    put(&db, 1, Some(21)); // hides 11
    put(&db, 3, None); // a tombstone over a live value: kept
    put(&db, 30, None); // a tombstone of a key the image lacks: dropped
    put(&db, 31, Some(31)); // an insert, then its delete: both dropped
    put(&db, 31, None);
    put(&db, 2, None); // a tombstone over the image's tombstone: dropped
    let before = db.stats();
    assert_eq!(moved(&start, &before, |s| s.blind_writes), 7, "{before:?}");
    assert_eq!(moved(&start, &before, |s| s.cache_misses), 0);
    assert_eq!(before.live_keys, 8);

    assert_eq!(db.collect_garbage(), 5);
    let after = db.stats();
    assert_eq!(moved(&before, &after, |s| s.versions_collected), 5, "{after:?}");
    assert_eq!(moved(&before, &after, |s| s.cache_misses), 0, "no fault-in");
    assert_eq!(moved(&before, &after, |s| s.key_set_reads), 0, "no read");
    assert!(
        after.resident_bytes < before.resident_bytes,
        "the deltas' bytes are freed"
    );
    assert_eq!(after.live_keys, 8);
    // Nothing more to collect without the image.
    assert_eq!(db.collect_garbage(), 0);

    // Evicting the chain writes what is left as a delta flush, no fault-in.
    let before = db.stats();
    assert!(db.evict_all().unwrap() > 0);
    let after = db.stats();
    assert_eq!(moved(&before, &after, |s| s.delta_flushes), 1, "{after:?}");
    assert_eq!(moved(&before, &after, |s| s.cache_misses), 0);
    // The page reads as it did (keys 1 and 3 from the flushed deltas, the
    // keys whose deltas went from the image).
    let snap = db.snapshot();
    assert_eq!(snap.get(key(1)).unwrap().as_deref(), Some(&[21u8][..]));
    for k in [2, 3, 30, 31] {
        assert_eq!(snap.get(key(k)).unwrap(), None, "key {k}");
    }
    assert_eq!(snap.len(), 8);
    drop(snap);
    let model = want(&[(0, 0), (1, 21), (4, 4), (5, 5), (6, 6), (7, 7), (8, 8), (9, 9)]);

    assert_eq!(all(&db), model);
    db.checkpoint().unwrap();
    drop(db);
    let db = open(&fs);
    assert_eq!(all(&db), model);
    assert_eq!(db.stats().live_keys, 8);
}

#[test]
fn gc_of_a_blind_chain_keeps_what_snapshots_read() {
    let fs = FaultFs::new();
    let db = evicted(&fs);
    put(&db, 1, Some(11));
    put(&db, 40, Some(40));
    put(&db, 41, None);
    let old = db.snapshot();
    put(&db, 1, Some(21));
    put(&db, 40, None);
    // `old` reads 1 = 11 and 40 = 40, and nothing newer goes: only the
    // tombstone of 41 (a key the image lacks) does.
    assert_eq!(db.collect_garbage(), 1);
    assert_eq!(old.get(key(1)).unwrap().as_deref(), Some(&[11u8][..]));
    assert_eq!(old.get(key(40)).unwrap().as_deref(), Some(&[40u8][..]));
    assert_eq!(old.len(), 10);
    let s = db.stats();
    assert_eq!((s.cache_misses, s.live_keys), (0, 9), "{s:?}");
    drop(old);
    // Now 1 = 11, and 40's value and its tombstone go.
    assert_eq!(db.collect_garbage(), 3);
    let snap = db.snapshot();
    assert_eq!(snap.get(key(1)).unwrap().as_deref(), Some(&[21u8][..]));
    assert_eq!(snap.get(key(40)).unwrap(), None);
    assert_eq!(snap.len(), 9);
    drop(snap);
    let model = want(&[(0, 0), (1, 21), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7), (8, 8), (9, 9)]);
    assert_eq!(all(&db), model);
    drop(db);
    let db = open(&fs);
    assert_eq!(all(&db), model);
}
