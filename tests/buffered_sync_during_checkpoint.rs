//! A buffered log is synced at its interval even while a checkpoint is in
//! progress (`src/engine/workers.rs`): the sync has its own thread. When the
//! log thread also synced the log, a checkpoint (4-10 s at 20M keys and a
//! 256 MiB cache) held back the syncs of every commit made meanwhile, past
//! `Durability::Buffered`'s promise that a power loss loses at most the
//! commits of the last interval.

mod common;

use std::time::Duration;

use bwtx::fs::FaultFs;
use bwtx::Durability;
use common::held::{wait_for, Release};
use common::{fault_opts, DIR};

#[test]
fn the_log_is_synced_while_the_log_thread_checkpoints() {
    let fs = FaultFs::new();
    let db = fault_opts(&fs)
        .durability(Durability::Buffered(Duration::from_millis(2)))
        .checkpoint_bytes(16 << 10)
        .cache_size(1 << 20)
        .segment_bytes(1 << 20)
        .open(DIR)
        .unwrap();
    // An automatic checkpoint once 16 KiB of log are written; it writes
    // the dirty leaves, then waits at the page segment's sync. (Released
    // before `db` drops, on a failure too: its close joins the log thread.)
    fs.hold_syncs("pages-");
    let _release = Release(fs.clone());
    for i in 0..200u32 {
        db.transaction(|tx| tx.put(format!("key{i:05}"), vec![1u8; 100]))
            .unwrap();
    }
    wait_for("the automatic checkpoint's page sync", || fs.held_syncs() >= 1);
    // A commit meanwhile, written to the log, not yet synced; then its
    // sync: the change stream gives out only durable commits.
    let before = db.snapshot().ts();
    db.transaction(|tx| tx.put("during", "the checkpoint")).unwrap();
    let mut changes = db.changes_since(before).unwrap();
    let synced = changes.wait_next(Duration::from_secs(60)).map(|c| c.unwrap().ts);
    assert_eq!(synced, Some(before + 1), "the log sync during the checkpoint");
    assert!(fs.held_syncs() >= 1, "the checkpoint still waits");
    // The power fails now: the held page sync fails, the checkpoint with it.
    fs.crash_at_sync(fs.syncs());
    fs.release_syncs();
    drop(db);
    fs.power_loss();
    let db = fault_opts(&fs).cache_size(1 << 20).open(DIR).unwrap();
    assert_eq!(
        db.snapshot().get("during").unwrap().as_deref(),
        Some(&b"the checkpoint"[..]),
        "the commit made during the checkpoint was synced"
    );
}
