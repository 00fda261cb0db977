//! Reserved log space (`design/durability.md`, "Reserved space"): a log
//! segment's space is reserved ahead in 1 MiB steps, so a sync commit's
//! `fdatasync` changes no file size. The zeros past the last record are the
//! end of the log, on a real file system and through `FaultFs`: reopening
//! finds every commit and no torn tail, a segment closed with reserved space
//! reads whole, the change stream reads the current segment through it,
//! and after a power loss every synced commit is there.

use std::path::PathBuf;
use std::sync::Arc;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Options};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bwtx-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn segments(dir: &PathBuf) -> Vec<(String, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("wal-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

fn count(db: &Db, prefix: &str) -> usize {
    db.snapshot().prefix(prefix).count()
}

#[test]
fn reserved_space_is_the_end_of_the_log_across_reopens() {
    let dir = tmp("reserved");
    {
        let db = Db::open(&dir).unwrap();
        for i in 0..200 {
            db.transaction(|tx| tx.put(format!("a/{i:04}"), [7u8; 100])).unwrap();
        }
        // The change stream reads the current segment, reserved space and all.
        let changes: Vec<_> = db.changes_since(0).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(changes.len(), 200);
        #[cfg(target_os = "linux")]
        {
            let (_, len) = segments(&dir).pop().unwrap();
            assert!(len >= 1 << 20, "the current segment is reserved ahead: {len} bytes");
        }
    }
    // Reopened: every commit, no torn tail (the zeros are no damage); the
    // segment with reserved space is now a closed one.
    for round in 1..=2 {
        let db = Db::open(&dir).unwrap();
        assert_eq!(db.stats().torn_tails, 0, "round {round}");
        assert_eq!(count(&db, "a/"), 200);
        assert_eq!(count(&db, "b/"), (round - 1) * 50);
        for i in 0..50 {
            db.transaction(|tx| tx.put(format!("b/{round}/{i:04}"), [1u8; 10]))
                .unwrap();
        }
    }
    let db = Db::open(&dir).unwrap();
    assert_eq!((count(&db, "a/"), count(&db, "b/")), (200, 100));
    assert!(segments(&dir).len() >= 3, "{:?}", segments(&dir));
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn synced_commits_in_reserved_space_survive_a_power_loss() {
    let fs = FaultFs::new();
    let dir = PathBuf::from("/db");
    let open = || {
        Options::new()
            .file_system(Arc::new(fs.clone()))
            .durability(Durability::Sync)
            .segment_bytes(64 << 10)
            .open(&dir)
            .unwrap()
    };
    {
        let db = open();
        // Past several 64 KiB segments, each reserved ahead.
        for i in 0..2000 {
            db.transaction(|tx| tx.put(format!("k/{i:05}"), [3u8; 100])).unwrap();
        }
        std::mem::forget(db); // no close: the power goes
    }
    fs.power_loss();
    let db = open();
    assert_eq!(count(&db, "k/"), 2000, "every acknowledged commit");
    assert_eq!(db.stats().torn_tails, 0);
}
