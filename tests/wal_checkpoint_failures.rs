//! Checkpoints that fail part-way, on [`FaultFs`], without a page store
//! (each checkpoint an image; `design/durability.md` §5): the database
//! stays open (no sync failed), and what the failed checkpoint left undone
//! is done by the next one, with no file left behind.

mod common;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Error, Options};
use common::{dump, fault_opts, files_with_prefix, DIR};

fn opts(fs: &FaultFs) -> Options {
    fault_opts(fs).durability(Durability::Sync).segment_bytes(1 << 10)
}

/// `n` commits of one 200-byte value each: several log segments.
fn commits(db: &Db, from: u32, n: u32) {
    for i in from..from + n {
        db.transaction(|tx| tx.put(format!("key{i:04}"), [b'v'; 200])).unwrap();
    }
}

/// The removal of covered log segments fails: the checkpoint's image is
/// durable, but the checkpoint reports the error. The next checkpoint
/// deletes those segments. (Before: they were forgotten when the removal
/// failed and stayed on disk for good; with `history_retention`, a
/// segment left behind older than later deletions made a gap in the log.)
#[test]
fn log_segments_a_failed_checkpoint_could_not_remove_go_with_the_next() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    commits(&db, 0, 40);
    let segments = files_with_prefix(&fs, "wal-");
    assert!(segments.len() > 5, "{segments:?}");
    // The first covered segment goes, the second is refused: it and every
    // later one stay, so the log on disk has no gap.
    fs.fail_removes(&segments[1]);
    let e = db.checkpoint().expect_err("the refused removal");
    assert!(matches!(e, Error::Io(_)), "{e}");
    assert_eq!(files_with_prefix(&fs, "ckpt-").len(), 1, "the image is in place");
    let now = files_with_prefix(&fs, "wal-");
    assert!(!now.contains(&segments[0]));
    assert!(segments[1..].iter().all(|f| now.contains(f)), "{segments:?} {now:?}");
    fs.allow_removes();
    // No commit in between: the checkpoint is due, since the last one did
    // not finish.
    db.checkpoint().unwrap();
    assert_eq!(
        files_with_prefix(&fs, "wal-").len(),
        1,
        "only the current segment: {:?}",
        files_with_prefix(&fs, "wal-")
    );
    let before = dump(&db);
    drop(db);
    fs.power_loss();
    let db = opts(&fs).open(DIR).unwrap();
    assert_eq!(dump(&db), before);
    assert_eq!(db.stats().replayed, 0);
}

/// A checkpoint whose image or history file's write fails leaves no
/// temporary file behind (each retry against a full disk would add one,
/// until open).
#[test]
fn a_failed_write_of_a_checkpoint_file_leaves_no_temporary_file() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    commits(&db, 0, 10);
    let tmp_files = || -> Vec<String> {
        files_with_prefix(&fs, "")
            .into_iter()
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    };
    // The image's write fails, then (another checkpoint) the history
    // file's.
    for prefix in ["ckpt-", "hist-"] {
        fs.fail_next_write(prefix);
        assert!(db.checkpoint().is_err(), "{prefix}");
        assert!(tmp_files().is_empty(), "{prefix}: {:?}", tmp_files());
        assert!(files_with_prefix(&fs, "ckpt-").is_empty());
    }
    // Not poisoned; the next checkpoint succeeds.
    commits(&db, 10, 1);
    db.checkpoint().unwrap();
    assert_eq!(files_with_prefix(&fs, "ckpt-").len(), 1);
}
