//! A panic in the page store's fsync (a file system whose sync panics, as
//! a user's `bwtx::fs::Fs` may) poisons the page store, as a failed fsync
//! does (`design/storage.md` §2.6): whether the sync took effect is
//! unknown. The checkpoint whose sync panicked sees the panic; later
//! commits and checkpoints are `Error::Poisoned`; a reopen after a power
//! loss keeps every commit acknowledged before it.
//!
//! (Before: the panic left the store's sync mutex std-poisoned and the
//! store itself unpoisoned, so commits went on: this test failed at the
//! commit after the panic.)

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use bwtx::fs::FaultFs;
use bwtx::{Durability, Error};
use common::{fault_opts, DIR};

#[test]
fn a_panicking_page_sync_poisons_the_page_store() {
    let fs = FaultFs::new();
    let opts = || fault_opts(&fs).durability(Durability::Sync).cache_size(1 << 20);
    let db = opts().open(DIR).unwrap();
    db.transaction(|tx| tx.put("before", "1")).unwrap();

    fs.panic_next_sync("pages-");
    // The checkpoint flushes the dirty leaf and syncs the page segment.
    let r = catch_unwind(AssertUnwindSafe(|| db.checkpoint()));
    assert!(r.is_err(), "the checkpoint saw no panic: {r:?}");

    let after = db.transaction(|tx| tx.put("after", "2"));
    assert!(
        matches!(after, Err(Error::Poisoned)),
        "a commit after the panic: {after:?}"
    );
    assert!(matches!(db.checkpoint(), Err(Error::Poisoned)));

    drop(db);
    fs.power_loss();
    let db = opts().open(DIR).unwrap();
    let snap = db.snapshot();
    assert_eq!(snap.get("before").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(snap.get("after").unwrap(), None);
    db.transaction(|tx| tx.put("again", "3")).unwrap();
}
