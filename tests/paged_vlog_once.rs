//! Values written once (`design/storage.md` §10.1): with a page store and a
//! buffered log, a value above the value-log threshold goes to the value
//! log at commit, the log record references it, and every flush of its page
//! references the same record.
//!
//! - The value log gets each committed value once, the log only references.
//! - A power loss at every sync of a run keeps a prefix of the commits with
//!   every one synced (the log syncs the values its records reference first).
//! - A value missing at the value log's torn tail cuts the log there; one
//!   damaged before valid records is `Error::Corruption`, never a wrong value.
//! - The change stream reads the values back.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use bwtx::fs::FaultFs;
use bwtx::{Durability, Error, Options};
use common::{dump, fault_opts, DIR};

const VALUE: usize = 1_500;

/// A buffered log (synced by `Db::sync` only, in these tests): values go to
/// the value log at commit.
fn opts(fs: &FaultFs) -> Options {
    fault_opts(fs)
        .durability(Durability::Buffered(std::time::Duration::from_secs(3600)))
        .cache_size(1 << 30)
        .segment_bytes(64 << 10)
        .value_log_threshold(1 << 10)
}

/// A large value naming its key and round.
fn value(key: &str, round: usize) -> String {
    let mut v = format!("{key}@{round}-");
    v.extend(std::iter::repeat_n('v', VALUE - v.len()));
    v
}

/// The value-log segments holding a record.
fn vlog_files(fs: &FaultFs) -> Vec<String> {
    let mut v: Vec<String> = fs
        .list(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("vlog-") && fs.contents(&Path::new(DIR).join(n)).is_some_and(|c| c.len() > 32))
        .collect();
    v.sort();
    v
}

use bwtx::fs::Fs;

/// A crash with `db` open: every unsynced byte is lost.
fn lose_power(fs: &FaultFs, db: bwtx::Db) {
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
}

/// Cut 100 bytes off the first value-log segment holding records: into its
/// last value record.
fn cut_last_value(fs: &FaultFs) {
    let path = Path::new(DIR).join(&vlog_files(fs)[0]);
    let mut bytes = fs.contents(&path).unwrap();
    bytes.truncate(bytes.len() - 100);
    fs.set_contents(&path, bytes);
}

#[test]
fn each_value_is_written_once() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..40 {
        let k = format!("k{:02}", i % 13);
        let v = value(&k, i);
        db.transaction(|tx| tx.put(k.clone(), v.clone())).unwrap();
        model.insert(k, v);
    }
    // Payload bytes of a value record: ts, lengths, key, value.
    let record = (16 + 3 + VALUE) as u64;
    let s = db.stats();
    assert_eq!(s.value_log_bytes_written, 40 * record, "{s:?}");
    // The log holds references (a dozen bytes each), not the values.
    assert!(s.log_bytes_written < 40 * 100, "{s:?}");
    // Flushes reference the records already there.
    db.checkpoint().unwrap();
    db.evict_all().unwrap();
    db.checkpoint().unwrap();
    assert_eq!(db.stats().value_log_bytes_written, 40 * record);
    assert_eq!(dump(&db).1, model);
    drop(db);
    let db = opts(&fs).open(DIR).unwrap();
    assert_eq!(dump(&db).1, model);
    assert_eq!(db.stats().value_log_bytes_written, 0);
}

/// One run: 30 transactions, each a large value and a small marker, with
/// evictions, checkpoints and log syncs between them, until a step fails.
/// Returns the model after each commit (the first: none) and how many were
/// synced (by `Db::sync` or a checkpoint) when the run stopped.
fn run(fs: &FaultFs, crash: Option<u64>) -> (Vec<BTreeMap<String, String>>, usize) {
    let db = opts(fs).cache_size(8 << 10).open(DIR).unwrap();
    if let Some(n) = crash {
        fs.crash_at_sync(fs.syncs() + n);
    }
    let mut models = vec![BTreeMap::new()];
    let mut synced = 0;
    for i in 0..30 {
        let k = format!("k{:02}", i % 7);
        let v = value(&k, i);
        let r = db.transaction(|tx| {
            tx.put(k.clone(), v.clone())?;
            tx.put(format!("m{i:02}"), "x")
        });
        let mut next = models.last().unwrap().clone();
        next.insert(k, v);
        next.insert(format!("m{i:02}"), "x".to_string());
        models.push(next);
        if r.is_err() {
            return (models, synced);
        }
        let step = match i % 10 {
            2 | 6 => db.sync(),
            4 => db.evict_all().map(drop),
            9 => db.checkpoint().map(drop),
            _ => Ok(()),
        };
        if step.is_err() {
            return (models, synced);
        }
        if matches!(i % 10, 2 | 6 | 9) {
            synced = i + 1;
        }
    }
    drop(db);
    (models, synced)
}

#[test]
fn a_power_loss_at_every_sync_keeps_every_synced_commit() {
    let fs = FaultFs::new();
    let before = fs.syncs();
    run(&fs, None);
    let total = fs.syncs() - before;
    assert!(total > 10, "{total}");
    for n in 0..total {
        let fs = FaultFs::new();
        let (models, synced) = run(&fs, Some(n));
        fs.power_loss();
        let db = opts(&fs).open(DIR).unwrap_or_else(|e| panic!("crash at sync {n}: {e}"));
        let got = dump(&db).1;
        let prefix = models.iter().position(|m| *m == got);
        assert!(
            prefix.is_some_and(|p| p >= synced),
            "crash at sync {n}: {synced} synced, recovered {} keys (a prefix of {prefix:?} commits)",
            got.len()
        );
    }
}

/// Three commits (two large values and a small one after them), every one
/// synced, then a crash: the files as a power loss leaves them.
fn three_commits(fs: &FaultFs) {
    let db = opts(fs).open(DIR).unwrap();
    db.transaction(|tx| tx.put("a", value("a", 0))).unwrap();
    db.transaction(|tx| tx.put("b", value("b", 0))).unwrap();
    db.transaction(|tx| tx.put("c", "small")).unwrap();
    db.sync().unwrap();
    // No clean close (it would write a table covering them).
    lose_power(fs, db);
}

#[test]
fn a_value_missing_at_the_value_logs_torn_tail_cuts_the_log_there() {
    let fs = FaultFs::new();
    three_commits(&fs);
    assert_eq!(vlog_files(&fs).len(), 1);
    // Into b's record, the segment's last: as if its write had not reached
    // the disk while the log's record referencing it had.
    cut_last_value(&fs);
    let db = opts(&fs).open(DIR).unwrap();
    let got = dump(&db).1;
    assert_eq!(got.get("a"), Some(&value("a", 0)));
    // b, and c after it in the log, are gone: the log's prefix.
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(db.stats().torn_tails, 1);
    // The database goes on, and keeps what it commits next.
    db.transaction(|tx| tx.put("d", value("d", 1))).unwrap();
    drop(db);
    let db = opts(&fs).open(DIR).unwrap();
    let got = dump(&db).1;
    assert_eq!(got.keys().collect::<Vec<_>>(), ["a", "d"]);
    assert_eq!(got["d"], value("d", 1));
}

#[test]
fn a_damaged_value_before_valid_records_is_corruption() {
    let fs = FaultFs::new();
    three_commits(&fs);
    let files = vlog_files(&fs);
    let path = Path::new(DIR).join(&files[0]);
    let mut bytes = fs.contents(&path).unwrap();
    // A byte inside a's value (the first record, b's follows it).
    bytes[32 + 40 + 100] ^= 0x10;
    fs.set_contents(&path, bytes);
    match opts(&fs).open(DIR) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
        Err(e) => panic!("expected corruption in {path:?}, got {e}"),
        Ok(db) => panic!("expected corruption, opened with {:?}", dump(&db).1.keys()),
    }
}

#[test]
fn a_value_gone_from_a_closed_segment_is_corruption() {
    // A value-log segment other than the newest was synced whole when the
    // next began: a value the log references can be missing there only by
    // damage, whatever follows it.
    let fs = FaultFs::new();
    let db = opts(&fs).segment_bytes(4 << 10).open(DIR).unwrap();
    for i in 0..8 {
        db.transaction(|tx| tx.put(format!("k{i}"), value("k", i))).unwrap();
    }
    db.sync().unwrap();
    lose_power(&fs, db);
    let files = vlog_files(&fs);
    assert!(files.len() > 1, "{files:?}");
    // Cut the oldest segment back to its header.
    let path = Path::new(DIR).join(&files[0]);
    let bytes = fs.contents(&path).unwrap();
    fs.set_contents(&path, bytes[..32].to_vec());
    match opts(&fs).segment_bytes(4 << 10).open(DIR) {
        Err(Error::Corruption { .. }) => {}
        Err(e) => panic!("expected corruption, got {e}"),
        Ok(db) => panic!("expected corruption, opened with {:?}", dump(&db).1.keys()),
    }
}

#[test]
fn the_change_stream_reads_values_placed_at_commit() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let start = db.snapshot().ts();
    db.transaction(|tx| {
        tx.put("big", value("big", 0))?;
        tx.put("small", "s")
    })
    .unwrap();
    db.transaction(|tx| tx.delete("big")).unwrap();
    db.sync().unwrap(); // the stream gives out durable commits
    let changes: Vec<_> = db.changes_since(start).unwrap().map(|c| c.unwrap()).collect();
    assert_eq!(changes.len(), 2);
    assert_eq!(
        changes[0].writes,
        vec![
            ("big".into(), Some(value("big", 0).into())),
            ("small".into(), Some("s".into()))
        ]
    );
    assert_eq!(changes[1].writes, vec![("big".into(), None)]);
}

#[test]
fn an_open_cut_short_at_any_sync_still_finds_the_torn_tail() {
    // The torn value as in the test above; then an open that loses power
    // at its n-th sync (it may have started its own value-log segment, not
    // yet cut the log): the next open still takes the dangling reference
    // for the torn tail.
    let torn = || {
        let fs = FaultFs::new();
        three_commits(&fs);
        cut_last_value(&fs);
        fs
    };
    let fs = torn();
    let before = fs.syncs();
    drop(opts(&fs).open(DIR).unwrap());
    let total = fs.syncs() - before;
    for n in 0..total {
        let fs = torn();
        fs.crash_at_sync(fs.syncs() + n);
        if let Ok(db) = opts(&fs).open(DIR) {
            drop(db);
        }
        fs.power_loss();
        let db = opts(&fs).open(DIR).unwrap_or_else(|e| panic!("crash at sync {n}: {e}"));
        assert_eq!(dump(&db).1.keys().collect::<Vec<_>>(), ["a"], "crash at sync {n}");
    }
}

#[test]
fn a_crashed_directory_reopens_without_a_cache_size() {
    // No table yet (a crash before the first checkpoint): the log
    // references the value log all the same.
    let fs = FaultFs::new();
    three_commits(&fs);
    let db = fault_opts(&fs).open(DIR).unwrap();
    let got = dump(&db).1;
    assert_eq!(got.len(), 3);
    assert_eq!(got["b"], value("b", 0));
}

#[test]
fn the_change_stream_reads_values_of_checkpointed_commits_after_a_reopen() {
    // Commits at or below the table are not replayed, but the change
    // stream's retention keeps them: the segments their values are in stay,
    // even once no page references them.
    let fs = FaultFs::new();
    let o = || {
        opts(&fs)
            .segment_bytes(4 << 10)
            .change_retention(std::time::Duration::from_secs(3600))
    };
    let db = o().open(DIR).unwrap();
    let start = db.snapshot().ts();
    for i in 0..6 {
        db.transaction(|tx| tx.put("k", value("k", i))).unwrap();
    }
    db.checkpoint().unwrap();
    drop(db);
    let db = o().open(DIR).unwrap();
    // Every page read once: the references of the images of the run before
    // are known, so collection may delete what none references.
    dump(&db);
    for i in 6..12 {
        db.transaction(|tx| tx.put("k", value("k", i))).unwrap();
    }
    db.checkpoint().unwrap();
    db.evict_all().unwrap();
    db.checkpoint().unwrap();
    let changes: Vec<_> = db.changes_since(start).unwrap().map(|c| c.unwrap()).collect();
    assert_eq!(changes.len(), 12);
    for (i, c) in changes.iter().enumerate() {
        assert_eq!(c.writes, vec![("k".into(), Some(value("k", i).into()))], "change {i}");
    }
}

#[test]
fn values_replayed_after_a_kill_survive_a_later_power_loss() {
    // A buffered run's commits reach the file system but no sync (a kill,
    // not a power loss); the next run replays them and writes a table that
    // references their values: those must be durable from then on.
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    for i in 0..5 {
        db.transaction(|tx| tx.put(format!("k{i}"), value("k", i))).unwrap();
    }
    // A kill: nothing more is synced, what was written stays in the cache.
    // (A failed sync would not do: the device then loses its pages, and
    // the reopen reads past the cache.)
    fs.kill();
    drop(db);
    fs.restart();
    let db = opts(&fs).open(DIR).unwrap();
    assert_eq!(dump(&db).1.len(), 5);
    db.checkpoint().unwrap();
    drop(db);
    fs.power_loss();
    let db = opts(&fs).open(DIR).unwrap();
    let got = dump(&db).1;
    assert_eq!(got.len(), 5);
    for i in 0..5 {
        assert_eq!(got[&format!("k{i}")], value("k", i));
    }
}

#[test]
fn a_synced_log_keeps_values_in_its_records() {
    // With `Durability::Sync` a second fsync per group (the value log's)
    // cost more than the bytes it saves: the record holds the value, and
    // the value log gets it at its page's flush.
    let fs = FaultFs::new();
    let db = opts(&fs).durability(Durability::Sync).open(DIR).unwrap();
    for i in 0..10 {
        db.transaction(|tx| tx.put(format!("k{i}"), value("k", i))).unwrap();
    }
    let s = db.stats();
    assert_eq!(s.value_log_bytes_written, 0, "{s:?}");
    assert!(s.log_bytes_written > 10 * VALUE as u64, "{s:?}");
    db.checkpoint().unwrap();
    assert_eq!(db.stats().value_log_bytes_written, 10 * (16 + 2 + VALUE) as u64);
}

#[test]
fn a_crashed_runs_value_segments_stay_while_its_log_references_them() {
    // A run whose commits were synced, then lost power: the log references
    // their values, so its value-log segments stay at the next open, and
    // the values are read from them, not written again. A run whose log was
    // not synced: nothing surviving references its values, they go.
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    for i in 0..3 {
        db.transaction(|tx| tx.put(format!("zz{i}"), value("zz", i))).unwrap();
    }
    db.sync().unwrap();
    lose_power(&fs, db);
    let crashed = vlog_files(&fs);
    assert!(!crashed.is_empty());
    let db = opts(&fs).open(DIR).unwrap();
    db.checkpoint().unwrap();
    assert_eq!(db.stats().value_log_bytes_written, 0, "{:?}", db.stats());
    for i in 0..3 {
        assert_eq!(
            db.snapshot().get(format!("zz{i}")).unwrap().as_deref(),
            Some(value("zz", i).as_bytes())
        );
    }
    drop(db);
    let now = vlog_files(&fs);
    assert!(crashed.iter().all(|n| now.contains(n)), "{crashed:?} {now:?}");
    // Unsynced: the values were written (a full 64 KiB segment is synced
    // when the next begins), but no record survives to reference them.
    let pre = vlog_files(&fs);
    let db = opts(&fs).open(DIR).unwrap();
    for i in 0..60 {
        db.transaction(|tx| tx.put(format!("lost{i}"), value("lost", i)))
            .unwrap();
    }
    lose_power(&fs, db);
    let lost: Vec<String> = vlog_files(&fs).into_iter().filter(|n| !pre.contains(n)).collect();
    assert!(!lost.is_empty(), "a full segment was synced");
    let db = opts(&fs).open(DIR).unwrap();
    assert_eq!(db.snapshot().get("lost0").unwrap(), None);
    drop(db);
    let now = vlog_files(&fs);
    assert!(lost.iter().all(|n| !now.contains(n)), "{lost:?} {now:?}");
}

#[test]
fn a_commit_cut_at_the_torn_tail_leaves_no_value_behind() {
    // One commit with two large values; the second is lost at the value
    // log's torn tail, the first read back: the commit is cut whole, and a
    // new commit reusing its timestamp (here on a synced log, whose records
    // hold their values) must not be taken for it at its page's flush.
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    db.transaction(|tx| {
        tx.put("k1", value("k1", 0))?;
        tx.put("k2", value("k2", 0))
    })
    .unwrap();
    db.sync().unwrap();
    lose_power(&fs, db);
    cut_last_value(&fs);
    let db = opts(&fs).durability(Durability::Sync).open(DIR).unwrap();
    assert!(dump(&db).1.is_empty());
    let mut new = value("k1", 1);
    new.replace_range(..6, "fresh!");
    db.transaction(|tx| tx.put("k1", new.clone())).unwrap();
    db.checkpoint().unwrap();
    db.evict_all().unwrap();
    assert_eq!(db.snapshot().get("k1").unwrap().as_deref(), Some(new.as_bytes()));
    drop(db);
    let db = opts(&fs).durability(Durability::Sync).open(DIR).unwrap();
    assert_eq!(db.snapshot().get("k1").unwrap().as_deref(), Some(new.as_bytes()));
}
