//! The change stream (`Db::changes_since`) when the log fails or is
//! deleted under a reader: errors that say what happened, never a spin or
//! a false `Corruption`.
//!
//! - A commit whose log sync failed is visible but never logged: a reader
//!   waiting for the next change gets `Error::Poisoned` (before: `wait_next`
//!   spun on a core until its deadline, then returned `None`).
//! - A checkpoint that deletes the log segments after a reader's position
//!   (no `change_retention`) makes the reader's next change
//!   `Error::SnapshotTooOld` (before: `Error::Corruption`, "commits missing
//!   from the log", although nothing was damaged).
//! - A change whose value does not read back is an error each time it is
//!   read, never passed over.

mod common;

use std::time::Duration;

use bwtx::fs::FaultFs;
use bwtx::{Durability, Error};
use common::{fault_opts, DIR};

#[test]
fn a_reader_waiting_after_a_failed_log_sync_gets_poisoned() {
    let fs = FaultFs::new();
    let db = fault_opts(&fs).durability(Durability::Sync).open(DIR).unwrap();
    let mut tx = db.begin();
    tx.put("a", "1").unwrap();
    let first = tx.commit().unwrap();
    let mut changes = db.changes_since(0).unwrap();
    assert_eq!(changes.wait_next(Duration::from_secs(5)).unwrap().unwrap().ts, first);
    fs.fail_sync_at(fs.syncs());
    assert!(db.transaction(|tx| tx.put("b", "2")).is_err());
    // A liveness bound, not a measurement: before, the wait lasted all of it.
    match changes.wait_next(Duration::from_secs(60)) {
        Some(Err(Error::Poisoned)) => {}
        other => panic!("{:?}", other.map(|r| r.map(|c| c.ts))),
    }
}

#[test]
fn a_checkpoint_deleting_the_log_after_a_reader_is_snapshot_too_old() {
    let fs = FaultFs::new();
    let db = fault_opts(&fs)
        .durability(Durability::Sync)
        .segment_bytes(1 << 10)
        .open(DIR)
        .unwrap();
    for i in 0..5u32 {
        db.transaction(|tx| tx.put(format!("k{i}"), "v")).unwrap();
    }
    let mut changes = db.changes_since(2).unwrap();
    assert_eq!(changes.next().unwrap().unwrap().ts, 3);
    // Many segments more, then a checkpoint deletes them all.
    for i in 0..60u32 {
        db.transaction(|tx| tx.put(format!("m{i:02}"), [b'x'; 200])).unwrap();
    }
    db.checkpoint().unwrap();
    // What the reader's open segment still holds (deleted, read through
    // its open file) comes, in order; then the error.
    let mut last = 3;
    let err = loop {
        match changes.wait_next(Duration::from_secs(5)) {
            Some(Ok(c)) => {
                assert_eq!(c.ts, last + 1);
                last = c.ts;
            }
            Some(Err(e)) => break e,
            None => panic!("the stream ended at {last} without an error"),
        }
    };
    match err {
        Error::SnapshotTooOld { requested, oldest } => {
            assert_eq!(requested, last);
            assert!(oldest > last, "{oldest}");
        }
        e => panic!("{e}"),
    }
    // A new reader from there is refused alike.
    assert!(matches!(db.changes_since(3), Err(Error::SnapshotTooOld { .. })));
}

/// A change whose value (in the value log, referenced from its log record)
/// does not read back is an error, and reading on repeats it: the stream
/// never passes over a change it did not return (before: the next read
/// returned the change after it).
#[test]
fn a_change_whose_value_does_not_read_back_is_not_passed_over() {
    let fs = FaultFs::new();
    let db = fault_opts(&fs)
        .durability(Durability::Buffered(Duration::from_secs(3600)))
        .cache_size(1 << 20)
        .open(DIR)
        .unwrap();
    let big = vec![b'v'; 5_000];
    db.transaction(|tx| tx.put("big", &big)).unwrap();
    db.transaction(|tx| tx.put("small", "s")).unwrap();
    // Damage the value's bytes in the value log.
    let seg = common::files_with_prefix(&fs, "vlog-")
        .pop()
        .expect("a value-log segment");
    let path = std::path::Path::new(DIR).join(seg);
    let mut bytes = fs.contents(&path).unwrap();
    let at = bytes.iter().rposition(|&b| b == b'v').expect("the value");
    bytes[at] ^= 1;
    fs.set_contents(&path, bytes);
    db.sync().unwrap(); // the stream gives out durable commits
    let mut changes = db.changes_since(0).unwrap();
    for round in 0..3 {
        match changes.wait_next(Duration::from_secs(5)) {
            Some(Err(Error::Corruption { .. })) => {}
            other => panic!("round {round}: {:?}", other.map(|r| r.map(|c| c.ts))),
        }
        assert_eq!(changes.position(), 0);
    }
}

/// A reader caught up with a buffered log when a sync fails (no commit
/// comes after it: each is refused before its timestamp) gets
/// `Poisoned`. Before, it checked the log only when a commit was visible
/// and not logged, so it waited out every timeout with `None`, forever.
#[test]
fn a_caught_up_reader_gets_poisoned_after_a_failed_background_sync() {
    let fs = FaultFs::new();
    let db = fault_opts(&fs)
        .durability(Durability::Buffered(Duration::from_secs(3600)))
        .open(DIR)
        .unwrap();
    let mut tx = db.begin();
    tx.put("a", "1").unwrap();
    let first = tx.commit().unwrap();
    db.sync().unwrap(); // the stream gives out durable commits
    let mut changes = db.changes_since(0).unwrap();
    assert_eq!(changes.wait_next(Duration::from_secs(5)).unwrap().unwrap().ts, first);
    assert!(changes.wait_next(Duration::from_millis(10)).is_none(), "caught up");
    // Written, not synced: the failing sync below has something to sync.
    db.transaction(|tx| tx.put("w", "0")).unwrap();
    assert!(changes.wait_next(Duration::from_millis(10)).is_none(), "not durable");
    fs.fail_sync_at(fs.syncs());
    assert!(db.sync().is_err());
    assert!(db.transaction(|tx| tx.put("b", "2")).is_err(), "refused");
    // A liveness bound, not a measurement: before, the wait lasted all of it.
    match changes.wait_next(Duration::from_secs(60)) {
        Some(Err(Error::Poisoned)) => {}
        other => panic!("{:?}", other.map(|r| r.map(|c| c.ts))),
    }
}

/// Runs with a log, then one without (`Durability::None`) that
/// checkpoints, then one with a log again: the change stream cannot reach
/// back past the run without a log (its commits are not in the log), and
/// says so with `SnapshotTooOld` naming where it can start. Before, the
/// log's oldest record (kept by `change_retention`) was taken for the
/// stream's reach, and reading on from it met the missing commits as
/// damage: `Corruption`.
#[test]
fn a_run_without_a_log_bounds_the_change_stream() {
    let fs = FaultFs::new();
    let opts = |d: Durability| {
        fault_opts(&fs)
            .durability(d)
            .change_retention(Duration::from_secs(3600))
    };
    let put = |db: &bwtx::Db, k: String| {
        let mut tx = db.begin();
        tx.put(k, "v").unwrap();
        tx.commit().unwrap()
    };
    let db = opts(Durability::Sync).open(DIR).unwrap();
    for i in 0..10 {
        put(&db, format!("a{i}"));
    }
    drop(db);
    let db = opts(Durability::None).open(DIR).unwrap();
    let mut last = 0;
    for i in 0..10 {
        last = put(&db, format!("b{i}"));
    }
    db.checkpoint().unwrap();
    drop(db);
    let db = opts(Durability::Sync).open(DIR).unwrap();
    for since in [0, 5] {
        match db.changes_since(since).map(|mut c| c.next()) {
            Err(Error::SnapshotTooOld { oldest, .. }) => assert_eq!(oldest, last),
            other => panic!("since {since}: {:?}", other.map(|c| c.map(|r| r.map(|c| c.ts)))),
        }
    }
    // From the checkpoint on, the stream works.
    let next = put(&db, "c".to_string());
    let mut changes = db.changes_since(last).unwrap();
    assert_eq!(changes.next().unwrap().unwrap().ts, next);
}

/// The same runs with `history_retention` too, and commits logged after
/// the run without a log: the reopen starts from the checkpoint that run
/// wrote, not from the empty database (whose log has a gap). Before, the
/// log's oldest record made recovery start from nothing, and it met the gap
/// as `Corruption`: the database did not open.
#[test]
fn a_run_without_a_log_and_history_retention_reopens() {
    let fs = FaultFs::new();
    let opts = |d: Durability| {
        fault_opts(&fs)
            .durability(d)
            .change_retention(Duration::from_secs(3600))
            .history_retention(Duration::from_secs(3600))
    };
    let put = |db: &bwtx::Db, k: String| db.transaction(|tx| tx.put(k.as_str(), "v")).unwrap();
    let db = opts(Durability::Sync).open(DIR).unwrap();
    (0..10).for_each(|i| put(&db, format!("a{i}")));
    drop(db);
    let db = opts(Durability::None).open(DIR).unwrap();
    (0..10).for_each(|i| put(&db, format!("b{i}")));
    db.checkpoint().unwrap();
    drop(db);
    let db = opts(Durability::Sync).open(DIR).unwrap();
    (0..10).for_each(|i| put(&db, format!("c{i}")));
    let before = common::dump(&db).1;
    drop(db);
    let db = opts(Durability::Sync).open(DIR).unwrap();
    assert_eq!(common::dump(&db).1, before);
    assert_eq!(before.len(), 30);
}
