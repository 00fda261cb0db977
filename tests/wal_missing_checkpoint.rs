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

/// What a test hides.
#[derive(Clone, Copy, Debug)]
enum Lost {
    /// The newest checkpoint file.
    Checkpoint,
    /// The newest checkpoint file and every history file.
    CheckpointAndHistory,
    /// Every log segment (the checkpoint stays).
    Log,
    /// The newest checkpoint file, every history file and every log segment.
    All,
}

/// Move the files `lost` names away (each to `hidden-<name>`), durably.
fn hide(fs: &FaultFs, lost: Lost) -> Vec<(String, String)> {
    let mut names = Vec::new();
    if !matches!(lost, Lost::Log) {
        names.push(files_with_prefix(fs, "ckpt-").pop().expect("a checkpoint"));
    }
    if matches!(lost, Lost::CheckpointAndHistory | Lost::All) {
        names.extend(files_with_prefix(fs, "hist-"));
    }
    if matches!(lost, Lost::Log | Lost::All) {
        let log = files_with_prefix(fs, "wal-");
        assert!(!log.is_empty());
        names.extend(log);
    }
    let dir = Path::new(DIR);
    let hidden: Vec<_> = names
        .into_iter()
        .map(|name| {
            let moved = format!("hidden-{name}");
            fs.rename(&dir.join(&name), &dir.join(&moved)).unwrap();
            (name, moved)
        })
        .collect();
    fs.sync_dir(dir).unwrap();
    hidden
}

fn restore(fs: &FaultFs, hidden: &[(String, String)]) {
    let dir = Path::new(DIR);
    for (name, moved) in hidden {
        fs.rename(&dir.join(moved), &dir.join(name)).unwrap();
    }
    fs.sync_dir(dir).unwrap();
}

/// Commit, checkpoint (which deletes the log segments it covers), hide
/// `lost`: the open is corruption and deletes nothing; with the files
/// back, everything is there. `more`: commits after the checkpoint (the
/// log then begins above timestamp 1). The database is closed (dropped)
/// cleanly: with a page store its close checkpoints again, leaving one
/// empty log segment.
fn missing_files_are_corruption(opts: &dyn Fn() -> Options, fs: &FaultFs, more: u32, lost: Lost) {
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
    let hidden = hide(fs, lost);
    let files = files_with_prefix(fs, "");
    let case = format!("{lost:?}, {more} more");
    match opts().open(DIR) {
        Err(Error::Corruption { reason, .. }) => assert!(reason.contains("missing"), "{case}: {reason}"),
        Err(e) => panic!("{case}: another error: {e}"),
        Ok(db) => panic!("{case}: opened without its files: {} keys", dump(&db).1.len()),
    }
    let after = files_with_prefix(fs, "");
    assert!(
        files.iter().all(|f| after.contains(f)),
        "{case}: the failed open deleted files: {files:?} -> {after:?}"
    );
    restore(fs, &hidden);
    let db = opts().open(DIR).unwrap();
    assert_eq!(dump(&db), before, "{case}");
}

fn missing_checkpoint_is_corruption(opts: &dyn Fn() -> Options, fs: &FaultFs, more: u32) {
    missing_files_are_corruption(opts, fs, more, Lost::Checkpoint);
}

/// Every kind of loss, with and without a page store. Before, losing
/// the history files with the checkpoint opened an empty database (and,
/// with a page store, deleted every page and value-log segment), and losing
/// the log opened the database as of its checkpoint.
#[test]
fn lost_checkpoint_history_or_log() {
    for paged in [false, true] {
        // Without a page store, losing every file leaves nothing to show
        // that a database was there: the directory is a new one's.
        let all = [Lost::CheckpointAndHistory, Lost::Log, Lost::All];
        for &lost in &all[..if paged { 3 } else { 2 }] {
            for more in [0, 3] {
                let fs = FaultFs::new();
                let opts = || {
                    let o = fault_opts(&fs).durability(Durability::Sync).segment_bytes(4 << 10);
                    if paged {
                        o.cache_size(64 << 10)
                    } else {
                        o
                    }
                };
                missing_files_are_corruption(&opts, &fs, more, lost);
            }
        }
    }
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

/// Without a log (`Durability::None`) the log's segments hold no record,
/// yet the first checkpoint closes segment 0 and deletes it, so that a lost
/// checkpoint file shows. Before, the segment never rotated: the open
/// found segment 0 without a commit and no checkpoint, opened an empty
/// database and deleted the page segments as unpublished.
#[test]
fn without_a_log() {
    /// Options of a database without a log, paged or not.
    fn none_opts(fs: &FaultFs, paged: bool) -> Options {
        let o = fault_opts(fs).durability(Durability::None);
        if paged {
            o.cache_size(64 << 10)
        } else {
            o
        }
    }
    for paged in [false, true] {
        let fs = FaultFs::new();
        let opts = || none_opts(&fs, paged);
        for lost in [Lost::Checkpoint, Lost::CheckpointAndHistory] {
            let fs2 = FaultFs::new();
            missing_files_are_corruption(&|| none_opts(&fs2, paged), &fs2, 0, lost);
        }
        // A database never checkpointed still opens (empty: nothing was
        // durable), and one checkpointed reopens whole.
        drop(opts().open(DIR).unwrap());
        let db = opts().open(DIR).unwrap();
        db.transaction(|tx| tx.put("k", "v")).unwrap();
        db.checkpoint().unwrap();
        drop(db);
        let db = opts().open(DIR).unwrap();
        assert_eq!(db.snapshot().get("k").unwrap().as_deref(), Some(&b"v"[..]));
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

/// A log segment lost from before newer segments that hold no commit
/// (every open starts one): `Corruption`, deleting nothing, and with the
/// file back everything is there. Before, the open succeeded without the
/// lost commits (nothing after them failed the timestamps' gap check), and
/// new commits took their timestamps.
#[test]
fn a_segment_lost_before_segments_without_commits_is_corruption() {
    let fs = FaultFs::new();
    let opts = || fault_opts(&fs).durability(Durability::Sync);
    let db = opts().open(DIR).unwrap();
    for i in 0..5u32 {
        db.transaction(|tx| tx.put(format!("key{i}"), "v")).unwrap();
    }
    db.checkpoint().unwrap();
    for i in 5..10u32 {
        db.transaction(|tx| tx.put(format!("key{i}"), "v")).unwrap();
    }
    let before = dump(&db);
    drop(db);
    // Opened and closed again: a segment with no commit after them.
    drop(opts().open(DIR).unwrap());
    let logs = files_with_prefix(&fs, "wal-");
    assert!(logs.len() >= 2, "{logs:?}");
    let dir = Path::new(DIR);
    // The oldest segment holds the commits after the checkpoint.
    let lost = logs[0].clone();
    let moved = format!("hidden-{lost}");
    fs.rename(&dir.join(&lost), &dir.join(&moved)).unwrap();
    fs.sync_dir(dir).unwrap();
    let files = files_with_prefix(&fs, "");
    match opts().open(DIR) {
        Err(Error::Corruption { reason, .. }) => assert!(reason.contains("missing"), "{reason}"),
        Err(e) => panic!("another error: {e}"),
        Ok(db) => panic!("opened without {lost}: {} keys", dump(&db).1.len()),
    }
    assert_eq!(files_with_prefix(&fs, ""), files, "the failed open changed files");
    restore(&fs, &[(lost, moved)]);
    let db = opts().open(DIR).unwrap();
    assert_eq!(dump(&db).1, before.1);
}

/// Checkpoints delete only a prefix of the log: with the change stream's
/// retention keeping an older segment, a newer segment with no commit
/// (an open's) is not deleted before it, so no hole opens in the numbers.
/// Before, the checkpoint deleted every covered segment, the empty one
/// after the kept one too. (Recovery does not refuse holes: earlier builds
/// left them, and a power loss may keep some of a checkpoint's unlinks.)
#[test]
fn checkpoints_leave_no_hole_in_the_log() {
    let fs = FaultFs::new();
    let opts = || {
        fault_opts(&fs)
            .durability(Durability::Sync)
            .change_retention(std::time::Duration::from_secs(3600))
    };
    let db = opts().open(DIR).unwrap();
    for i in 0..5u32 {
        db.transaction(|tx| tx.put(format!("k{i}"), "v")).unwrap();
    }
    drop(db);
    // Two opens: the first one's segment, empty, is closed by the second.
    drop(opts().open(DIR).unwrap());
    let db = opts().open(DIR).unwrap();
    let before = files_with_prefix(&fs, "wal-");
    assert!(before.len() >= 3, "{before:?}");
    // Retention keeps the segment with the commits; the empty one after
    // it must stay too.
    db.checkpoint().unwrap();
    let after = files_with_prefix(&fs, "wal-");
    let numbers: Vec<u64> = after
        .iter()
        .map(|n| n.trim_start_matches("wal-").trim_end_matches(".log").parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "a hole: {after:?}");
    drop(db);
    let db = opts().open(DIR).unwrap();
    assert_eq!(dump(&db).1.len(), 5);
}
