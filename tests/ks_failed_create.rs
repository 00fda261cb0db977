//! A keyspace creation whose catalog commit fails in the log: the commit is
//! published anyway (as every commit whose log write fails is, so later
//! commits do not wait on it) and the database is poisoned. Asking for the
//! keyspace again, or for it in a snapshot, says `Poisoned` (reopen), not
//! `KeyspaceNotFound` for a name `Db::keyspaces` lists; after the reopen,
//! recovery decides, and the keyspace works or is absent, whole. A drop
//! whose catalog commit fails is published as well: the keyspace is gone
//! from every snapshot after it.

mod common;

use bwtx::fs::FaultFs;
use bwtx::{Durability, Error};
use common::{fault_opts, DIR};

#[test]
fn a_failed_creation_is_poisoned_not_missing() {
    let fs = FaultFs::new();
    let opts = || fault_opts(&fs).durability(Durability::Sync);
    let db = opts().open(DIR).unwrap();
    db.transaction(|tx| tx.put("k", "v")).unwrap();
    fs.fail_next_write("wal-");
    assert!(
        matches!(db.keyspace("a"), Err(Error::Io { .. })),
        "the log write failed"
    );
    assert!(db.keyspaces().unwrap().iter().any(|n| n == "a"), "published anyway");
    match db.keyspace("a") {
        Err(Error::Poisoned) => {}
        other => panic!("expected Poisoned, got {:?}", other.map(|_| ())),
    }
    match db.snapshot().keyspace("a") {
        Err(Error::Poisoned) => {}
        other => panic!("expected Poisoned, got {:?}", other.map(|_| ())),
    }
    // Reads of what was there before go on.
    assert_eq!(db.snapshot().get("k").unwrap().as_deref(), Some(&b"v"[..]));
    drop(db);

    // Reopened: the failed record is not in the log, so there is no "a"
    // until it is created again, and then it works.
    let db = opts().open(DIR).unwrap();
    assert!(!db.keyspaces().unwrap().iter().any(|n| n == "a"));
    let a = db.keyspace("a").unwrap();
    db.transaction(|tx| tx.put_in(&a, "x", "1")).unwrap();
    assert_eq!(db.snapshot().get_in(&a, "x").unwrap().as_deref(), Some(&b"1"[..]));
}

/// A drop whose catalog commit fails in the log: published anyway, so the
/// keyspace is gone from `Db::keyspaces` and from every snapshot taken
/// after it alike (before 2026-12-08 a snapshot's fast path, which trusts
/// the keyspace's gate, still read it).
#[test]
fn a_failed_drop_is_gone_from_snapshots_too() {
    let fs = FaultFs::new();
    let opts = || fault_opts(&fs).durability(Durability::Sync);
    let db = opts().open(DIR).unwrap();
    let x = db.keyspace("x").unwrap();
    db.transaction(|tx| tx.put_in(&x, "k", "v")).unwrap();
    let before = db.snapshot();
    fs.fail_next_write("wal-");
    assert!(
        matches!(db.drop_keyspace("x"), Err(Error::Io { .. })),
        "the log write failed"
    );
    assert!(!db.keyspaces().unwrap().iter().any(|n| n == "x"), "published anyway");
    match db.snapshot().get_in(&x, "k") {
        Err(Error::KeyspaceNotFound { .. } | Error::Poisoned) => {}
        other => panic!("expected KeyspaceNotFound, got {other:?}"),
    }
    // A snapshot from before the drop still reads it.
    assert_eq!(before.get_in(&x, "k").unwrap().as_deref(), Some(&b"v"[..]));
}
