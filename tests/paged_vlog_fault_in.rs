//! A fault-in reads no value-log value its collection drops
//! (`design/storage.md` §5, fault-in): large values overwritten or deleted
//! while a snapshot held the old ones, every leaf evicted with both
//! versions on disk, the snapshot released: faulting the leaves in reads
//! only the live values and leaves the dead ones unread, loses nothing
//! across evictions, checkpoints and a restart, and with the snapshot still
//! held reads everything it can see.

mod common;

use std::collections::BTreeMap;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Options, Snapshot};
use common::{dump, fault_opts, DIR};

const KEYS: usize = 40;

fn opts(fs: &FaultFs) -> Options {
    fault_opts(fs)
        .durability(Durability::Sync)
        .cache_size(16 << 10)
        .segment_bytes(64 << 10)
        .value_log_threshold(1 << 10)
}

fn key(k: usize) -> String {
    format!("k{k:03}")
}

fn value(k: usize, round: usize) -> String {
    let mut v = format!("v{round}-{k}-");
    v.extend(std::iter::repeat_n((b'a' + (k % 26) as u8) as char, 2_000 - v.len()));
    v
}

/// Every key written with a 2,000-byte value, checkpointed; then, under a
/// snapshot, even keys overwritten and odd keys deleted, checkpointed and
/// every leaf evicted: each leaf's on-disk chain holds both versions.
/// Returns the snapshot and the model of the newest state.
fn two_versions_on_disk(db: &Db) -> (Snapshot, BTreeMap<String, String>) {
    db.force_read_through(Some(false));
    for k in 0..KEYS {
        let mut tx = db.begin();
        tx.put(key(k), value(k, 0)).unwrap();
        tx.commit().unwrap();
    }
    db.checkpoint().unwrap();
    let snap = db.snapshot();
    let mut model = BTreeMap::new();
    for k in 0..KEYS {
        let mut tx = db.begin();
        if k % 2 == 0 {
            tx.put(key(k), value(k, 1)).unwrap();
            model.insert(key(k), value(k, 1));
        } else {
            tx.delete(key(k)).unwrap();
        }
        tx.commit().unwrap();
    }
    db.checkpoint().unwrap();
    db.collect_garbage();
    db.evict_all().unwrap();
    db.evict_all().unwrap();
    (snap, model)
}

/// Value-log reads and reads left unread since `before`.
fn reads(db: &Db, before: &bwtx::Stats) -> (u64, u64) {
    let s = db.stats();
    (
        s.value_log_reads - before.value_log_reads,
        s.value_log_reads_skipped - before.value_log_reads_skipped,
    )
}

#[test]
fn a_fault_in_leaves_the_values_it_drops_unread() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let (snap, model) = two_versions_on_disk(&db);
    drop(snap);
    // Raises the watermark; evicted leaves are not swept.
    db.collect_garbage();
    let before = db.stats();
    assert_eq!(dump(&db).1, model);
    // Read: the 20 live values. Unread: the 20 overwritten and the 20
    // deleted ones.
    assert_eq!(reads(&db, &before), (KEYS as u64 / 2, KEYS as u64), "{:?}", db.stats());
    assert_eq!(db.stats().versions_stored, model.len() as u64);
    // Nothing is lost through evictions, a checkpoint and a restart.
    db.evict_all().unwrap();
    db.checkpoint().unwrap();
    assert_eq!(dump(&db).1, model);
    drop(db);
    let db = opts(&fs).open(DIR).unwrap();
    db.force_read_through(Some(false));
    assert_eq!(dump(&db).1, model);
    db.evict_all().unwrap();
    assert_eq!(dump(&db).1, model);
}

#[test]
fn a_fault_in_under_a_snapshot_reads_what_it_sees() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let (snap, model) = two_versions_on_disk(&db);
    let before = db.stats();
    // The snapshot sees every old value: nothing is left unread.
    for k in 0..KEYS {
        assert_eq!(snap.get(key(k)).unwrap().as_deref(), Some(value(k, 0).as_bytes()));
    }
    assert_eq!(dump(&db).1, model);
    let (read, skipped) = reads(&db, &before);
    assert_eq!(skipped, 0);
    assert!(read >= (KEYS + KEYS / 2) as u64, "{read}");
    // Released: the next fault-ins read only the live values.
    drop(snap);
    db.collect_garbage();
    db.evict_all().unwrap();
    let before = db.stats();
    assert_eq!(dump(&db).1, model);
    assert_eq!(reads(&db, &before).0, KEYS as u64 / 2, "{:?}", db.stats());
}

/// Blind writes over evicted leaves (single-key transactions while every
/// leaf is on disk) overwrite even keys and delete odd ones, each followed
/// by a GC sweep that raises the watermark past it: when a write's
/// consolidation faults a leaf in, the values its earlier blind writes hide
/// are left unread; nothing is lost.
#[test]
fn a_fault_in_leaves_the_values_blind_writes_hide_unread() {
    let fs = FaultFs::new();
    // A cache the data fits: only `evict_all` evicts.
    let db = opts(&fs).cache_size(1 << 20).open(DIR).unwrap();
    db.force_read_through(Some(false));
    for k in 0..KEYS {
        let mut tx = db.begin();
        tx.put(key(k), value(k, 0)).unwrap();
        tx.commit().unwrap();
    }
    db.checkpoint().unwrap();
    db.evict_all().unwrap();
    db.evict_all().unwrap();
    let before = db.stats();
    let mut model = BTreeMap::new();
    for k in 0..KEYS {
        let mut tx = db.begin();
        if k % 2 == 0 {
            tx.put(key(k), value(k, 1)).unwrap();
            model.insert(key(k), value(k, 1));
        } else {
            tx.delete(key(k)).unwrap();
        }
        tx.commit().unwrap();
        db.collect_garbage();
    }
    let s = db.stats();
    assert!(s.blind_writes - before.blind_writes >= KEYS as u64 / 2, "{s:?}");
    // Every old value was read once or left unread once: left unread when
    // its key's blind write was at or below the watermark when a write's
    // consolidation faulted the leaf in (most), read when it was not yet
    // (the write that faulted it in) or when the key was not written yet.
    let (read, unread) = reads(&db, &before);
    assert_eq!(read + unread, KEYS as u64, "{s:?}");
    assert!(unread >= KEYS as u64 / 2, "{s:?}");
    assert_eq!(dump(&db).1, model);
    db.collect_garbage();
    assert_eq!(db.stats().versions_stored, model.len() as u64);
    db.evict_all().unwrap();
    db.checkpoint().unwrap();
    drop(db);
    let db = opts(&fs).open(DIR).unwrap();
    db.force_read_through(Some(false));
    assert_eq!(dump(&db).1, model);
}
