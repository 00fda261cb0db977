//! Durable databases: commits survive reopening, checkpoints cover the log,
//! the directory lock, a torn tail, poisoning after a failed sync.

use std::path::PathBuf;
use std::sync::Arc;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Error, Options};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bwtx-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn get(db: &Db, k: &str) -> Option<String> {
    db.snapshot()
        .get(k)
        .unwrap()
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

#[test]
fn commits_survive_reopen_and_checkpoint() {
    let dir = tmp("reopen");
    {
        let db = Db::open(&dir).unwrap();
        for i in 0..100 {
            db.transaction(|tx| tx.put(format!("k{i:03}"), format!("v{i}")))
                .unwrap();
        }
        db.transaction(|tx| tx.delete("k050")).unwrap();
        assert_eq!(db.stats().log_records, 101);
        assert!(db.stats().log_syncs >= 1);
    }
    {
        let db = Db::open(&dir).unwrap();
        assert_eq!(db.stats().replayed, 101);
        assert_eq!(get(&db, "k007").as_deref(), Some("v7"));
        assert_eq!(get(&db, "k050"), None);
        assert_eq!(db.snapshot().ts(), 101);
        let ts = db.checkpoint().unwrap();
        assert_eq!(ts, 101);
        db.transaction(|tx| tx.put("after", "ckpt")).unwrap();
    }
    let db = Db::open(&dir).unwrap();
    assert_eq!(
        db.stats().replayed,
        1,
        "only the commit after the checkpoint is replayed"
    );
    assert_eq!(db.snapshot().prefix("k").count(), 99);
    assert_eq!(get(&db, "after").as_deref(), Some("ckpt"));
    assert_eq!(db.begin().commit().unwrap(), 102);
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn second_opener_is_refused() {
    let dir = tmp("lock");
    let db = Db::open(&dir).unwrap();
    assert!(matches!(Db::open(&dir), Err(Error::Locked { .. })));
    drop(db);
    Db::open(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn torn_tail_is_truncated_and_counted() {
    let dir = tmp("torn");
    {
        let db = Db::open(&dir).unwrap();
        for i in 0..10 {
            db.transaction(|tx| tx.put(format!("k{i}"), "v")).unwrap();
        }
    }
    let seg = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    if b.len() <= 16 {
        // The last segment may be the fresh empty one: tear the one before.
        panic!("expected records in {}", seg.display());
    }
    // Past the records, the segment's reserved space (zeros): cut the last
    // record itself (it ends with the value "v", not a zero).
    while b.last() == Some(&0) {
        b.pop();
    }
    // A clean close ends the segment with a mark of its last sync
    // (`design/durability.md` §1.1): a frame whose payload is a zero byte
    // and a varint. Drop it, so that the cut falls in the last record.
    let mark = (b.len() - 16..b.len() - 9)
        .find(|&p| u32::from_le_bytes(b[p..p + 4].try_into().unwrap()) as usize == b.len() - p - 8 && b[p + 8] == 0);
    b.truncate(mark.expect("the close's mark ends the segment"));
    b.truncate(b.len() - 3);
    std::fs::write(&seg, &b).unwrap();
    let db = Db::open(&dir).unwrap();
    assert_eq!(db.stats().torn_tails, 1);
    assert_eq!(db.snapshot().prefix("k").count(), 9);
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn failed_sync_poisons_and_keeps_acknowledged_commits() {
    let fs = FaultFs::new();
    let dir = PathBuf::from("/db");
    let open = |fs: &FaultFs| {
        Options::new()
            .file_system(Arc::new(fs.clone()))
            .gc_interval(None)
            .open(&dir)
    };
    let db = open(&fs).unwrap();
    db.transaction(|tx| tx.put("a", "1")).unwrap();
    fs.fail_sync_at(fs.syncs());
    let err = db.transaction(|tx| tx.put("b", "2")).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
    assert!(matches!(db.transaction(|tx| tx.put("c", "3")), Err(Error::Poisoned)));
    drop(db);
    fs.power_loss();
    let db = open(&fs).unwrap();
    assert_eq!(get(&db, "a").as_deref(), Some("1"));
    assert_eq!(get(&db, "c"), None);
    let _ = Durability::Sync;
}

/// Dropping the last handle closes the database at once, even while its
/// background threads (GC sweep, buffered syncs, automatic checkpoints) are
/// busy: reopening right away never finds the directory locked.
#[test]
fn drop_then_reopen_at_once() {
    let dir = tmp("drop-reopen");
    for round in 0..30u64 {
        let db = Options::new()
            .durability(Durability::Buffered(std::time::Duration::from_millis(1)))
            .gc_interval(Some(std::time::Duration::from_millis(1)))
            .checkpoint_bytes(256)
            .open(&dir)
            .unwrap();
        for i in 0..20 {
            db.transaction(|tx| tx.put(format!("k{i}"), round.to_string())).unwrap();
        }
        let clone = db.clone();
        drop(db);
        assert_eq!(get(&clone, "k0"), Some(round.to_string()));
        drop(clone);
    }
    let db = Db::open(&dir).unwrap();
    assert_eq!(get(&db, "k19").as_deref(), Some("29"));
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A crash while a segment was being created leaves it shorter than its
/// header: recovery counts it as a torn tail and removes it, and the next
/// recovery (when it would no longer be the last segment) is clean.
#[test]
fn headerless_last_segment_is_removed() {
    let fs = FaultFs::new();
    let dir = PathBuf::from("/db");
    let open = || {
        Options::new()
            .file_system(Arc::new(fs.clone()))
            .gc_interval(None)
            .open(&dir)
    };
    {
        let db = open().unwrap();
        db.transaction(|tx| tx.put("a", "1")).unwrap();
    }
    // Simulate the crash: the next segment with half a header.
    let next = bwtx::fs::Fs::list(&fs, &dir)
        .unwrap()
        .iter()
        .filter_map(|n| n.strip_prefix("wal-")?.strip_suffix(".log")?.parse::<u64>().ok())
        .max()
        .unwrap()
        + 1;
    let seg = dir.join(format!("wal-{next:010}.log"));
    let mut f = bwtx::fs::Fs::create(&fs, &seg).unwrap();
    f.write_all(b"BWTXWAL").unwrap();
    f.sync().unwrap();
    bwtx::fs::Fs::sync_dir(&fs, &dir).unwrap();
    for round in 0..3 {
        let db = open().unwrap();
        assert_eq!(db.stats().torn_tails, u64::from(round == 0));
        assert_eq!(get(&db, "a").as_deref(), Some("1"));
    }
}
