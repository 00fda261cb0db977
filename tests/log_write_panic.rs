//! A panic in the log's write (a file system whose write panics, as a
//! user's `bwtx::fs::Fs` may) poisons the database: the records the
//! writer had taken from the pending buffer are lost, so no later record
//! may be written after the gap. The committer whose write panicked sees
//! the panic; later commits and `Db::sync` are `Error::Poisoned`; a
//! reopen (after a clean drop, or a power loss) opens, with every commit
//! acknowledged before.
//!
//! (Before: the log stayed unpoisoned; `Db::sync` and later commits wrote
//! their records after the gap, and the reopen failed with
//! `Error::Corruption`, "commits missing".)

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use bwtx::fs::FaultFs;
use bwtx::{Durability, Error};
use common::{fault_opts, DIR};

#[test]
fn a_panicking_log_write_poisons_the_database() {
    let fs = FaultFs::new();
    let opts = || fault_opts(&fs).durability(Durability::Buffered(Duration::from_secs(3600)));
    let db = opts().open(DIR).unwrap();
    db.transaction(|tx| tx.put("before", "1")).unwrap();

    fs.panic_next_write("wal-");
    // A buffered commit writes its own record: the panic reaches it.
    let r = catch_unwind(AssertUnwindSafe(|| db.transaction(|tx| tx.put("during", "2"))));
    assert!(r.is_err(), "the committer saw no panic: {r:?}");

    // The sync first: it takes the writers' mutex without minding that a
    // panic poisoned it.
    assert!(matches!(db.sync(), Err(Error::Poisoned)), "{:?}", db.sync());
    let after = db.transaction(|tx| tx.put("after", "3"));
    assert!(
        matches!(after, Err(Error::Poisoned)),
        "a commit after the panic: {after:?}"
    );

    drop(db);
    let db = opts().open(DIR).expect("the log has no gap");
    let snap = db.snapshot();
    assert_eq!(snap.get("before").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(snap.get("during").unwrap(), None);
    assert_eq!(snap.get("after").unwrap(), None);
    db.transaction(|tx| tx.put("again", "4")).unwrap();
    drop(db);
    fs.power_loss();
    let db = opts().open(DIR).unwrap();
    assert_eq!(db.snapshot().get("before").unwrap().as_deref(), Some(&b"1"[..]));
}
