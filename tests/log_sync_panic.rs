//! A panic in the log's fsync (a file system whose sync panics, as a
//! user's `bwtx::fs::Fs` may) poisons the database, as a failed fsync
//! does: whether the sync took effect is unknown, so nothing after it may
//! claim to be durable. The committer whose sync panicked sees the panic;
//! every later commit and `Db::sync` is `Error::Poisoned`, and a reopen
//! after a power loss keeps every commit acknowledged before it.
//!
//! (Before: the panic left the log's sync mutex poisoned, so a sync-mode
//! commit failed with `Poisoned` while `Db::sync`, which ignores a mutex's
//! poisoning, went on syncing and returned `Ok`: this test failed at its
//! `db.sync()`.)

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use bwtx::fs::FaultFs;
use bwtx::{Durability, Error};
use common::{fault_opts, DIR};

/// Commit "before", make the log's next sync panic under a sync-mode
/// commit, and check that the database refuses everything after it, then
/// reopens after a power loss with "before" and writable.
fn a_panic_in_the_log_sync_poisons(fs: &FaultFs) {
    let db = fault_opts(fs).durability(Durability::Sync).open(DIR).unwrap();
    db.transaction(|tx| tx.put("before", "1")).unwrap();

    fs.panic_next_sync("wal-");
    // A sync-mode commit leads its own sync: the panic reaches it.
    let r = catch_unwind(AssertUnwindSafe(|| db.transaction(|tx| tx.put("during", "2"))));
    assert!(r.is_err(), "the committer saw no panic: {r:?}");

    assert!(matches!(db.sync(), Err(Error::Poisoned)), "{:?}", db.sync());
    let after = db.transaction(|tx| tx.put("after", "3"));
    assert!(after.is_err(), "a commit after the panic: {after:?}");
    assert!(db.checkpoint().is_err(), "a checkpoint after the panic");

    drop(db);
    fs.power_loss();
    let db = fault_opts(fs).durability(Durability::Sync).open(DIR).unwrap();
    let snap = db.snapshot();
    assert_eq!(snap.get("before").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(snap.get("after").unwrap(), None);
    // Writable again after the reopen.
    db.transaction(|tx| tx.put("again", "4")).unwrap();
    assert_eq!(db.snapshot().get("again").unwrap().as_deref(), Some(&b"4"[..]));
}

#[test]
fn a_panicking_log_sync_poisons_the_database() {
    a_panic_in_the_log_sync_poisons(&FaultFs::new());
}

/// The same on a file system without second handles for syncs, where the
/// log syncs through the segment's own file under the writers' mutex.
#[test]
fn a_panicking_log_sync_without_sync_handles_poisons_the_database() {
    let fs = FaultFs::new();
    fs.without_sync_handles();
    a_panic_in_the_log_sync_poisons(&fs);
}

/// A panic in the syncs that create the next log segment (its header, its
/// directory entry) at a rotation poisons as well. (Before: those syncs ran
/// outside the poison guard, so `Db::sync` went on with `Ok` and the next
/// rotation synced the file again.)
#[test]
fn a_panicking_sync_of_a_new_log_segment_poisons_the_database() {
    let fs = FaultFs::new();
    let db = fault_opts(&fs).durability(Durability::Sync).open(DIR).unwrap();
    db.transaction(|tx| tx.put("before", "1")).unwrap();
    // The checkpoint closes segment 0 and creates segment 1.
    fs.panic_next_sync("wal-0000000001");
    let r = catch_unwind(AssertUnwindSafe(|| db.checkpoint()));
    assert!(r.is_err(), "the checkpoint saw no panic: {r:?}");
    assert!(matches!(db.sync(), Err(Error::Poisoned)), "{:?}", db.sync());
    assert!(db.transaction(|tx| tx.put("after", "3")).is_err());
    drop(db);
    fs.power_loss();
    let db = fault_opts(&fs).durability(Durability::Sync).open(DIR).unwrap();
    assert_eq!(db.snapshot().get("before").unwrap().as_deref(), Some(&b"1"[..]));
}
