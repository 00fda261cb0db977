//! A fault-in reads no value-log value of a version that garbage
//! collection drops (`design/storage.md` §10, "Read"): values overwritten
//! or deleted while their leaf was evicted are not read back when it is
//! faulted in, once no snapshot can see them; a snapshot that can still see
//! them keeps them read. `Stats::value_log_reads` counts the values read,
//! `value_log_reads_skipped` the references left unread. With the fault-in
//! collecting at the evicted page's own watermark (as before), the first
//! test reads every old value back and fails.

mod common;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability};
use common::{fault_opts, DIR};

const KEYS: usize = 40;

/// A large cache (the test evicts with `evict_all`), values above 1 KiB in
/// the value log, reads that fault in (no read-through), and one leaf that
/// takes a write of every key without consolidating (so the tree's GC
/// watermark, raised by `collect_garbage` after the write, is the one its
/// fault-in collects at).
fn open(fs: &FaultFs) -> Db {
    let cfg = bwtx::tree::Config {
        leaf_chain: 100,
        page_bytes: 1 << 20,
        ..Default::default()
    };
    let db = fault_opts(fs)
        .tree_config(cfg)
        .durability(Durability::Sync)
        .cache_size(1 << 30)
        .segment_bytes(64 << 10)
        .value_log_threshold(1 << 10)
        .open(DIR)
        .unwrap();
    db.force_read_through(Some(false));
    db
}

fn value(key: usize, round: usize) -> Vec<u8> {
    let mut v = format!("v{round}-{key}-").into_bytes();
    v.resize(2_000, b'a' + (key % 26) as u8);
    v
}

fn write_round(db: &Db, round: usize, delete: impl Fn(usize) -> bool) {
    let mut tx = db.begin();
    for k in 0..KEYS {
        if delete(k) {
            tx.delete(format!("k{k:03}")).unwrap();
        } else {
            tx.put(format!("k{k:03}"), value(k, round)).unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Every key's value now, read through fault-ins.
fn read_all(db: &Db) -> Vec<Option<Vec<u8>>> {
    let snap = db.snapshot();
    (0..KEYS)
        .map(|k| snap.get(format!("k{k:03}")).unwrap().map(|v| v.to_vec()))
        .collect()
}

/// The value-log values read, and the references left unread, since `before`.
fn vlog_reads(db: &Db, before: &bwtx::Stats) -> (u64, u64) {
    let s = db.stats();
    (
        s.value_log_reads - before.value_log_reads,
        s.value_log_reads_skipped - before.value_log_reads_skipped,
    )
}

#[test]
fn a_fault_in_does_not_read_overwritten_or_deleted_values() {
    let fs = FaultFs::new();
    let db = open(&fs);
    write_round(&db, 0, |_| false);
    db.checkpoint().unwrap();
    assert!(db.evict_all().unwrap() > 0);
    let before = db.stats();
    // Overwritten (even keys) or deleted (odd ones) while evicted: blind
    // writes over the stub of round 0's image.
    write_round(&db, 1, |k| k % 2 == 1);
    assert_eq!(db.stats().blind_writes - before.blind_writes, KEYS as u64);
    db.collect_garbage();
    db.evict_all().unwrap();
    let got = read_all(&db);
    for (k, v) in got.iter().enumerate() {
        let want = (k % 2 == 0).then(|| value(k, 1));
        assert_eq!(v.as_deref(), want.as_deref(), "k{k:03}");
    }
    // Only the live values are read (round 1's, one per even key), and
    // every value of round 0 is left unread.
    assert_eq!(vlog_reads(&db, &before), ((KEYS / 2) as u64, KEYS as u64));
    // The dropped versions are counted as collected.
    let s = db.stats();
    assert_eq!(s.versions_stored, (KEYS / 2) as u64, "{s:?}");

    // The unread references stay noted: a checkpoint (which collects the
    // value log) and a restart lose no live value.
    db.checkpoint().unwrap();
    drop(db);
    let db = open(&fs);
    db.evict_all().unwrap();
    assert_eq!(read_all(&db), got);
}

#[test]
fn a_snapshot_that_sees_the_old_values_keeps_them_read() {
    let fs = FaultFs::new();
    let db = open(&fs);
    write_round(&db, 0, |_| false);
    db.checkpoint().unwrap();
    db.evict_all().unwrap();
    let before = db.stats();
    let old = db.snapshot();
    write_round(&db, 1, |k| k % 2 == 1);
    db.collect_garbage();
    db.evict_all().unwrap();
    // The old snapshot holds the watermark below round 1: nothing is
    // dropped, every value is read (round 0's, and round 1's of the even
    // keys once flushed).
    let got = read_all(&db);
    let (reads, skipped) = vlog_reads(&db, &before);
    assert_eq!(skipped, 0);
    assert!(reads >= KEYS as u64, "{reads}");
    for (k, v) in got.iter().enumerate() {
        assert_eq!(
            old.get(format!("k{k:03}")).unwrap().as_deref(),
            Some(&value(k, 0)[..]),
            "k{k:03} at the old snapshot"
        );
        let want = (k % 2 == 0).then(|| value(k, 1));
        assert_eq!(v.as_deref(), want.as_deref());
    }
    // Released, the next collection drops what it held; evicted again,
    // the leaf reads only the live values back.
    drop(old);
    db.collect_garbage();
    db.evict_all().unwrap();
    let before = db.stats();
    assert_eq!(read_all(&db), got);
    assert_eq!(vlog_reads(&db, &before), ((KEYS / 2) as u64, 0));
}
