//! A buffered log's commits are written while the log's fsync runs
//! (`design/durability.md` D9): the sync leader writes what is pending, then
//! syncs through the segment's second handle (`FsFile::syncer`) without the
//! writers' mutex. Before, the periodic sync held that mutex through the
//! fsync, and every buffered commit arriving meanwhile waited for it (with
//! 2 threads, `bwtx bench --dir D --durability buffered --workload u
//! --threads 2 --keys 500000`: p99.9 1.03 ms, 0.16-0.17 ms after).
//!
//! A record that references a value-log value is the exception: it is not
//! written while a sync is in flight, since that fsync could make it durable
//! before its value (D8).

mod common;

use std::path::Path;
use std::time::Duration;

use bwtx::fs::{FaultFs, Fs};
use bwtx::{Db, Durability};
use common::held::{wait_for, Release};
use common::{fault_opts, DIR};

/// Every log segment's bytes (written, synced or not).
fn log_bytes(fs: &FaultFs) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs
        .list(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("wal-"))
        .map(|n| {
            let bytes = fs.contents(&Path::new(DIR).join(&n)).unwrap_or_default();
            (n, bytes)
        })
        .collect();
    v.sort();
    v
}

/// Open `opts` with a log buffered for 2 ms, commit "first" and wait
/// until the sync thread's log sync of it is held; the guard releases it.
fn open_with_a_held_log_sync(fs: &FaultFs, opts: bwtx::Options) -> (Db, Release) {
    let db = opts
        .durability(Durability::Buffered(Duration::from_millis(2)))
        .open(DIR)
        .unwrap();
    let release = Release(fs.clone());
    fs.hold_syncs("wal-");
    db.transaction(|tx| tx.put("first", "1")).unwrap();
    wait_for("the sync thread's log sync", || fs.held_syncs() >= 1);
    (db, release)
}

/// A power loss, then the database opened again.
fn reopen_after_power_loss(fs: &FaultFs, db: Db) -> Db {
    // The power fails at the close's first sync: the close writes no
    // table and syncs nothing more.
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
    fault_opts(fs).open(DIR).unwrap()
}

#[test]
fn a_buffered_commit_is_written_while_the_log_syncs() {
    let fs = FaultFs::new();
    let (db, release) = open_with_a_held_log_sync(&fs, fault_opts(&fs));

    // A commit while that fsync is held: it returns (its record written),
    // the fsync still in flight. Before, it waited for the fsync's end.
    let during = {
        let db = db.clone();
        std::thread::spawn(move || db.transaction(|tx| tx.put("during", "2")))
    };
    wait_for("the commit during the held sync", || during.is_finished());
    assert!(fs.held_syncs() >= 1, "the log sync is still held");
    during.join().unwrap().unwrap();
    assert_eq!(db.snapshot().get("during").unwrap().as_deref(), Some(&b"2"[..]));

    drop(release);
    db.sync().unwrap();
    let db = reopen_after_power_loss(&fs, db);
    let snap = db.snapshot();
    assert_eq!(snap.get("first").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(snap.get("during").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn a_record_referencing_the_value_log_waits_for_the_sync_in_flight() {
    let fs = FaultFs::new();
    let (db, release) = open_with_a_held_log_sync(&fs, fault_opts(&fs).cache_size(1 << 20));
    let log_before = log_bytes(&fs);

    // A value over the threshold goes to the value log at commit, and the
    // record references it. The hook that synced the value log ran before
    // this value was appended, so the held fsync must not carry the record.
    let big = vec![7u8; 2000];
    let writer = {
        let (db, big) = (db.clone(), big.clone());
        std::thread::spawn(move || db.transaction(|tx| tx.put("big", &big)))
    };
    // (Not `Db::stats` to see the record appended: with a file system
    // without a second handle the sync holds the mutex that reads.) The
    // record is appended within microseconds; the loop looks for 100 ms.
    for _ in 0..100 {
        assert!(
            log_bytes(&fs) == log_before,
            "a record referencing a value was written during the sync"
        );
        assert!(!writer.is_finished(), "the commit returned with the sync held");
        std::thread::sleep(Duration::from_millis(1));
    }

    drop(release);
    writer.join().unwrap().unwrap();
    db.sync().unwrap();
    let db = reopen_after_power_loss(&fs, db);
    assert_eq!(db.snapshot().get("big").unwrap().as_deref(), Some(&big[..]));
}

/// A buffered writer's write that fails while the sync runs without the
/// writers' mutex poisons the log: the sync, once done, raises nothing and
/// closes no segment (a closed segment ending in the torn record would be
/// `Error::Corruption` at the next open; only the last may end torn).
#[test]
fn a_write_failing_during_a_sync_closes_no_segment() {
    let fs = FaultFs::new();
    let db = fault_opts(&fs)
        .durability(Durability::Buffered(Duration::from_millis(2)))
        // Every sync finds its segment full and closes it.
        .segment_bytes(1)
        .open(DIR)
        .unwrap();
    let release = Release(fs.clone());
    db.transaction(|tx| tx.put("before", "1")).unwrap();
    db.sync().unwrap();
    fs.hold_syncs("wal-");
    db.transaction(|tx| tx.put("first", "1")).unwrap();
    wait_for("the sync thread's log sync", || fs.held_syncs() >= 1);
    // The next write, this commit's record, is cut short.
    fs.short_write_at(fs.writes());
    let err = db.transaction(|tx| tx.put("torn", "2")).unwrap_err();
    assert!(err.to_string().contains("injected fault"), "{err}");
    assert!(
        db.transaction(|tx| tx.put("after", "3")).is_err(),
        "the log is poisoned"
    );
    drop(release);
    // The power fails at the close's first sync: the close writes no
    // table and syncs nothing more.
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
    let db = fault_opts(&fs).open(DIR).unwrap();
    let snap = db.snapshot();
    assert_eq!(snap.get("before").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(snap.get("torn").unwrap(), None);
    assert_eq!(snap.get("after").unwrap(), None);
}

/// A file system without a second handle for syncs (the trait's default)
/// syncs holding the writers' mutex, as before: values placed at commit,
/// log syncs, checkpoints and a power loss keep every synced commit.
#[test]
fn without_a_second_handle_syncs_hold_the_writers_off() {
    let fs = FaultFs::new();
    fs.without_sync_handles();
    let opts = || {
        fault_opts(&fs)
            .durability(Durability::Buffered(Duration::from_millis(2)))
            .cache_size(1 << 20)
            .segment_bytes(16 << 10)
    };
    let db = opts().open(DIR).unwrap();
    let value = |i: u32| vec![i as u8; if i.is_multiple_of(2) { 2000 } else { 20 }];
    for i in 0..60u32 {
        db.transaction(|tx| tx.put(format!("k{i:03}"), value(i))).unwrap();
        if (i + 1).is_multiple_of(20) {
            db.checkpoint().unwrap();
        }
    }
    db.sync().unwrap();
    let db = reopen_after_power_loss(&fs, db);
    let snap = db.snapshot();
    for i in 0..60u32 {
        assert_eq!(
            snap.get(format!("k{i:03}")).unwrap().as_deref(),
            Some(&value(i)[..]),
            "k{i:03}"
        );
    }
}
