//! A checkpoint file that goes missing (deleted by hand, lost by the file
//! system) after the checkpoint deleted the log it covered: the open is
//! `Error::Corruption`, never an empty (or partial) database, and it
//! deletes nothing, so that putting the file back recovers everything.
//!
//! (Before: with nothing logged since the checkpoint, the open found no
//! checkpoint and an empty log, and opened an empty database; with a page
//! store it then deleted every page and value-log segment as unpublished.)

mod common;

use std::path::Path;

use bwtx::fs::{FaultFs, Fs};
use bwtx::{Durability, Error, Options};
use common::{dump, fault_opts, files_with_prefix, DIR};

/// Move the newest checkpoint file away (to `moved`), durably.
fn hide_checkpoint(fs: &FaultFs) -> (String, String) {
    let name = files_with_prefix(fs, "ckpt-").pop().expect("a checkpoint");
    let moved = format!("hidden-{name}");
    let dir = Path::new(DIR);
    fs.rename(&dir.join(&name), &dir.join(&moved)).unwrap();
    fs.sync_dir(dir).unwrap();
    (name, moved)
}

fn restore(fs: &FaultFs, (name, moved): &(String, String)) {
    let dir = Path::new(DIR);
    fs.rename(&dir.join(moved), &dir.join(name)).unwrap();
    fs.sync_dir(dir).unwrap();
}

/// Commit, checkpoint (which deletes the log segments it covers), hide the
/// checkpoint file: the open is corruption and deletes nothing; with the
/// file back, everything is there. `more`: commits after the checkpoint
/// (the log then begins above timestamp 1).
fn missing_checkpoint_is_corruption(opts: &dyn Fn() -> Options, fs: &FaultFs, more: u32) {
    let db = opts().open(DIR).unwrap();
    for i in 0..60u32 {
        db.transaction(|tx| tx.put(format!("key{i:03}"), [b'v'; 200])).unwrap();
    }
    db.checkpoint().unwrap();
    for i in 0..more {
        db.transaction(|tx| tx.put(format!("more{i}"), "m")).unwrap();
    }
    let before = dump(&db);
    drop(db);
    let hidden = hide_checkpoint(fs);
    let files = files_with_prefix(fs, "");
    match opts().open(DIR) {
        Err(Error::Corruption { reason, .. }) => assert!(reason.contains("missing"), "{reason}"),
        Err(e) => panic!("another error: {e}"),
        Ok(db) => panic!("opened without its checkpoint: {} keys", dump(&db).1.len()),
    }
    let after = files_with_prefix(fs, "");
    assert!(
        files.iter().all(|f| after.contains(f)),
        "the failed open deleted files: {files:?} -> {after:?}"
    );
    restore(fs, &hidden);
    let db = opts().open(DIR).unwrap();
    assert_eq!(dump(&db), before);
}

#[test]
fn without_a_page_store() {
    for more in [0, 3] {
        let fs = FaultFs::new();
        // No clean-close image: the checkpoint above is the newest.
        let opts = || fault_opts(&fs).durability(Durability::Sync).segment_bytes(1 << 10);
        missing_checkpoint_is_corruption(&opts, &fs, more);
    }
}

#[test]
fn with_a_page_store() {
    for more in [0, 3] {
        let fs = FaultFs::new();
        let opts = || {
            fault_opts(&fs)
                .durability(Durability::Sync)
                .segment_bytes(4 << 10)
                .cache_size(64 << 10)
        };
        missing_checkpoint_is_corruption(&opts, &fs, more);
    }
}

/// An earlier build numbered on past a torn segment 0 (a crash while
/// creating it), so its log may begin at segment 1 with commit 1 and no
/// checkpoint: that is a whole log, and it opens.
#[test]
fn a_log_that_begins_at_segment_1_and_commit_1_opens() {
    let fs = FaultFs::new();
    let opts = || fault_opts(&fs).durability(Durability::Sync);
    let db = opts().open(DIR).unwrap();
    for i in 0..10u32 {
        db.transaction(|tx| tx.put(format!("key{i}"), "v")).unwrap();
    }
    let before = dump(&db);
    drop(db);
    assert!(files_with_prefix(&fs, "ckpt-").is_empty() && files_with_prefix(&fs, "hist-").is_empty());
    let dir = Path::new(DIR);
    for name in files_with_prefix(&fs, "wal-").into_iter().rev() {
        let seq: u64 = name
            .trim_start_matches("wal-")
            .trim_end_matches(".log")
            .parse()
            .unwrap();
        fs.rename(&dir.join(&name), &dir.join(format!("wal-{:010}.log", seq + 1)))
            .unwrap();
    }
    fs.sync_dir(dir).unwrap();
    let db = opts().open(DIR).unwrap();
    assert_eq!(dump(&db), before);
}
