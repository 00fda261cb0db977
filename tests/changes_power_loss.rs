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

/// A stream started at a visible commit not yet synced syncs it first: the
/// position a reader stores names a commit a power loss cannot take back.
/// (Before 2026-12-08 the stream started there unsynced; after a power
/// loss the position named a timestamp that recovery gave to the next
/// commit, which the resumed stream then passed over.)
#[test]
fn a_stream_started_at_an_unsynced_commit_makes_it_durable() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let a = put(&db, "a", "1"); // written, not synced
    let changes = db.changes_since(a).unwrap();
    let position = changes.position();
    assert_eq!(position, a);
    drop(changes);
    // The power fails at the next sync (the close's).
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
    let db = opts(&fs).open(DIR).unwrap();
    assert_eq!(
        db.snapshot().get("a").unwrap().as_deref(),
        Some(&b"1"[..]),
        "synced at the start"
    );
    let b = put(&db, "b", "2");
    db.sync().unwrap();
    let got: Vec<_> = db.changes_since(position).unwrap().map(|c| c.unwrap().ts).collect();
    assert_eq!(got, [b]);
}

/// Once the last `Db` handle is gone, a buffered commit is synced without
/// the sync thread: what was written then at once, and each later commit of
/// a transaction still open at its commit. A change reader waiting for them
/// gets them, and a power loss while a snapshot still holds the engine
/// open loses neither. (Before 2026-12-08 both waited for the engine to
/// close, which the waiting reader itself put off: it waited forever.)
#[test]
fn buffered_commits_after_the_last_db_handle_are_synced() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let start = db.snapshot().ts();
    let mut late = db.begin();
    late.put("late", "1").unwrap();
    let keep = db.snapshot();
    let a = put(&db, "a", "1"); // written, not synced
    let mut changes = db.changes_since(start).unwrap();
    let reader = std::thread::spawn(move || {
        // A liveness bound, not a measurement.
        let mut got = Vec::new();
        while got.len() < 2 {
            match changes.wait_next(Duration::from_secs(20)) {
                Some(c) => got.push(c.unwrap().ts),
                None => break,
            }
        }
        got
    });
    drop(db);
    let late = late.commit().unwrap();
    assert_eq!(reader.join().unwrap(), [a, late]);
    // The power fails at the next sync (the close's, when `keep` goes).
    fs.crash_at_sync(fs.syncs());
    drop(keep);
    fs.power_loss();
    let db = opts(&fs).open(DIR).unwrap();
    let snap = db.snapshot();
    assert_eq!(snap.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(snap.get("late").unwrap().as_deref(), Some(&b"1"[..]));
}
