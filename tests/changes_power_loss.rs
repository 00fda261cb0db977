//! The change stream with `Durability::Buffered` across a power loss: it
//! gives out only durable commits, so a reader never acts on a commit that
//! a power loss takes back, and the position it stored resumes the stream
//! exactly.
//!
//! Before 2026-12-07 the stream gave out a buffered commit once it was
//! written, before its sync. After a power loss took that commit back,
//! recovery gave its timestamp to the next commit, and a reader resuming
//! from its stored position passed over that commit without a word.

mod common;

use std::time::Duration;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Options};
use common::{fault_opts, DIR};

/// A buffered log synced only by `Db::sync` (the timer's interval is an hour).
fn opts(fs: &FaultFs) -> Options {
    fault_opts(fs).durability(Durability::Buffered(Duration::from_secs(3600)))
}

fn put(db: &Db, k: &str, v: &str) -> u64 {
    let mut tx = db.begin();
    tx.put(k, v).unwrap();
    tx.commit().unwrap()
}

#[test]
fn a_stored_position_resumes_exactly_after_a_power_loss() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let start = db.snapshot().ts();
    let a = put(&db, "a", "1");
    db.sync().unwrap();
    let b = put(&db, "b", "2"); // written, not synced
    assert_eq!(db.snapshot().get("b").unwrap().as_deref(), Some(&b"2"[..]), "visible");

    let mut changes = db.changes_since(start).unwrap();
    assert_eq!(changes.next().unwrap().unwrap().ts, a);
    assert!(changes.next().is_none(), "commit {b} is not durable: not given out");
    assert!(changes.wait_next(Duration::from_millis(20)).is_none());
    let position = changes.position();
    assert_eq!(position, a);
    drop(changes);

    // The power fails at the next sync (the close's): b was never synced.
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
    let db = opts(&fs).open(DIR).unwrap();
    assert_eq!(db.snapshot().get("b").unwrap(), None, "the power loss took b back");
    let c = put(&db, "c", "3");
    assert!(c > position);
    db.sync().unwrap();
    let got: Vec<_> = db.changes_since(position).unwrap().map(|c| c.unwrap()).collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].ts, c);
    assert_eq!(got[0].writes, vec![("c".into(), Some("3".into()))]);
}

#[test]
fn a_buffered_change_is_given_out_once_synced() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let start = db.snapshot().ts();
    let a = put(&db, "a", "1");
    let mut changes = db.changes_since(start).unwrap();
    assert!(changes.wait_next(Duration::from_millis(20)).is_none(), "not synced yet");
    let waiter = std::thread::spawn(move || {
        // A liveness bound, not a measurement: the sync below ends the wait.
        changes.wait_next(Duration::from_secs(60)).map(|c| c.unwrap().ts)
    });
    std::thread::sleep(Duration::from_millis(20));
    db.sync().unwrap();
    assert_eq!(waiter.join().unwrap(), Some(a));

    // The background sync does it too.
    drop(db);
    let db = fault_opts(&fs)
        .durability(Durability::Buffered(Duration::from_millis(5)))
        .open(DIR)
        .unwrap();
    let b = put(&db, "b", "2");
    let mut changes = db.changes_since(a).unwrap();
    assert_eq!(changes.wait_next(Duration::from_secs(60)).unwrap().unwrap().ts, b);
}

/// This thread's voluntary context switches so far (each sleep is one).
#[cfg(target_os = "linux")]
fn sleeps() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("voluntary_ctxt_switches:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A reader waiting for a visible commit's sync sleeps until the sync
/// wakes it: it does not poll through the buffered interval (before
/// 2026-12-07 it woke every millisecond, 500 times in this wait).
#[cfg(target_os = "linux")]
#[test]
fn a_reader_waiting_for_a_sync_sleeps_until_it() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let start = db.snapshot().ts();
    let a = put(&db, "a", "1");
    let mut changes = db.changes_since(start).unwrap();
    let (ready, waiting) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        ready.send(()).unwrap();
        let before = sleeps();
        let next = changes.wait_next(Duration::from_secs(60)).map(|c| c.unwrap().ts);
        (next, sleeps() - before)
    });
    waiting.recv().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    db.sync().unwrap();
    let (next, slept) = waiter.join().unwrap();
    assert_eq!(next, Some(a));
    assert!(
        slept < 20,
        "the reader woke {slept} times in 500 ms without a commit or sync"
    );
}
