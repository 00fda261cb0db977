//! The change stream (`Db::changes_since`): every committed transaction
//! with writes, exactly once, in commit order, from any timestamp, across
//! log segments, checkpoints and restarts; retention boundaries; tailing
//! while four threads commit; damage is an error, never a wrong change.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bwtx::{Change, Db, Durability, Error, Options};

type Writes = Vec<(bytes::Bytes, Option<bytes::Bytes>)>;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bwtx-changes-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts() -> Options {
    Options::new()
        .durability(Durability::Buffered(Duration::from_millis(2)))
        .segment_bytes(2048)
        .checkpoint_bytes(0)
}

/// Commit `n` transactions of 1..4 writes (puts and deletes); the commits
/// with their writes in key order.
fn commit_some(db: &Db, n: usize, seed: u64) -> Vec<(u64, Writes)> {
    let mut rng = bwtx_kit::SplitMix64::new(seed);
    (0..n)
        .map(|i| {
            let mut tx = db.begin();
            let mut w = BTreeMap::new();
            for _ in 0..1 + rng.below(4) {
                let k = bytes::Bytes::from(format!("k{:02}", rng.below(40)));
                let v = (rng.below(4) != 0).then(|| bytes::Bytes::from(format!("v{seed}-{i}")));
                match &v {
                    Some(v) => tx.put(&k, v).unwrap(),
                    None => tx.delete(&k).unwrap(),
                }
                w.insert(k, v);
            }
            (tx.commit().unwrap(), w.into_iter().collect())
        })
        .collect()
}

fn read_all(db: &Db, after: u64) -> Vec<(u64, Writes)> {
    // The stream gives out durable commits: the buffered ones once synced.
    db.sync().unwrap();
    db.changes_since(after)
        .unwrap()
        .map(|c| c.map(|Change { ts, writes, .. }| (ts, writes)))
        .collect::<bwtx::Result<_>>()
        .unwrap()
}

/// From every starting timestamp, the stream is exactly the suffix of the
/// commits after it, across many log segments; the position resumes.
#[test]
fn every_suffix_from_every_timestamp() {
    let dir = tmp("suffix");
    // Sync: segments rotate at syncs, so every commit's sync lets them roll.
    let db = opts().durability(Durability::Sync).open(&dir).unwrap();
    let start = db.snapshot().ts();
    let commits = commit_some(&db, 250, 1);
    assert!(
        db.stats().log_segments > 3,
        "the test wants several segments: {:?}",
        db.stats()
    );
    for (i, &(ts, _)) in commits.iter().enumerate() {
        assert_eq!(read_all(&db, ts), commits[i + 1..], "after {ts}");
    }
    assert_eq!(read_all(&db, start), commits);
    // Resume in steps from the position.
    let mut pos = start;
    let mut seen = Vec::new();
    while seen.len() < commits.len() {
        let mut ch = db.changes_since(pos).unwrap();
        for _ in 0..7 {
            match ch.next() {
                Some(c) => seen.push(c.unwrap().ts),
                None => break,
            }
        }
        pos = ch.position();
    }
    assert_eq!(seen, commits.iter().map(|c| c.0).collect::<Vec<_>>());
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// With a change retention, checkpoints keep the log: the whole history
/// streams after checkpoints and a restart. Without one, a checkpoint
/// deletes what it covers: an older start is `SnapshotTooOld`, naming the
/// oldest start that works.
#[test]
fn retention_across_checkpoints_and_restart() {
    let dir = tmp("retain");
    let keep = || opts().change_retention(Duration::from_secs(3600));
    let (start, mut commits) = {
        let db = keep().open(&dir).unwrap();
        let start = db.snapshot().ts();
        let mut c = commit_some(&db, 60, 2);
        db.checkpoint().unwrap();
        c.extend(commit_some(&db, 60, 3));
        db.checkpoint().unwrap();
        assert_eq!(read_all(&db, start), c);
        (start, c)
    };
    {
        let db = keep().open(&dir).unwrap();
        assert_eq!(read_all(&db, start), commits);
        commits.extend(commit_some(&db, 20, 4));
        assert_eq!(read_all(&db, start), commits);
    }
    // Reopened without retention: the next checkpoint deletes the log it covers.
    let db = opts().open(&dir).unwrap();
    let c = db.checkpoint().unwrap();
    match db.changes_since(start) {
        Err(Error::SnapshotTooOld { requested, oldest }) => {
            assert_eq!(requested, start);
            assert!(oldest > start && oldest <= c, "oldest {oldest}, checkpoint {c}");
            let from = commits.iter().position(|x| x.0 > oldest).unwrap_or(commits.len());
            assert_eq!(read_all(&db, oldest), commits[from..]);
        }
        other => panic!("expected SnapshotTooOld, got {other:?}"),
    }
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A short retention window: kept inside it, deleted by a checkpoint once
/// it has passed, and not before.
#[test]
fn retention_window_boundary() {
    let dir = tmp("window");
    // A window long enough that the commits and the checkpoint below end
    // inside it even on a loaded machine.
    let window = Duration::from_secs(2);
    let db = opts().change_retention(window).open(&dir).unwrap();
    let start = db.snapshot().ts();
    let before_first = std::time::Instant::now();
    let first = commit_some(&db, 30, 5);
    db.checkpoint().unwrap();
    assert_eq!(read_all(&db, start), first, "inside the window");
    let mut refused = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        commit_some(&db, 3, 6);
        db.collect_garbage(); // samples the clock
        db.checkpoint().unwrap();
        if matches!(db.changes_since(start), Err(Error::SnapshotTooOld { .. })) {
            // Only a clock sample at least a window old that had seen the
            // first commit lets a checkpoint delete it.
            assert!(
                before_first.elapsed() >= window,
                "the first commits went {:?} after they were made, inside the window",
                before_first.elapsed()
            );
            refused = true;
            break;
        }
    }
    assert!(refused, "the window passed but the old log was kept");
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A consumer tails the stream with `wait_next` while four threads commit:
/// it sees every commit exactly once, in order, with its writes.
#[test]
fn tailing_while_four_threads_commit() {
    let dir = tmp("tail");
    let db = opts().open(&dir).unwrap();
    let start = db.snapshot().ts();
    let total = 4 * 100;
    let consumer = {
        let mut ch = db.changes_since(start).unwrap();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < total {
                match ch.wait_next(Duration::from_secs(20)) {
                    Some(c) => {
                        let c = c.unwrap();
                        got.push((c.ts, c.writes));
                    }
                    None => panic!("no change within 20 s after {} of {total}", got.len()),
                }
            }
            assert!(ch.wait_next(Duration::from_millis(50)).is_none());
            got
        })
    };
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                (0..100)
                    .map(|i| {
                        let k = bytes::Bytes::from(format!("t{t}-{i:03}"));
                        let v = bytes::Bytes::from(format!("{t}:{i}"));
                        let mut tx = db.begin();
                        tx.put(&k, &v).unwrap();
                        (tx.commit().unwrap(), vec![(k, Some(v))])
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut want: Vec<(u64, Writes)> = producers.into_iter().flat_map(|p| p.join().unwrap()).collect();
    want.sort_by_key(|c| c.0);
    assert_eq!(consumer.join().unwrap(), want);
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A flipped byte in a retained segment is `Corruption` naming the segment,
/// never a wrong change: every change before it is returned intact.
#[test]
fn damage_is_an_error_never_a_wrong_change() {
    let dir = tmp("damage");
    let (start, commits) = {
        let db = opts().change_retention(Duration::from_secs(3600)).open(&dir).unwrap();
        let start = db.snapshot().ts();
        // Two segments: a segment rotates at a sync once past
        // `segment_bytes`.
        let mut commits = commit_some(&db, 60, 7);
        let mut seed = 8;
        while {
            db.sync().unwrap();
            db.stats().log_segments < 2
        } {
            commits.extend(commit_some(&db, 20, seed));
            seed += 1;
        }
        commits.extend(commit_some(&db, 20, seed));
        (start, commits)
    };
    let mut segs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log") && std::fs::metadata(p).unwrap().len() > 200)
        .collect();
    segs.sort();
    // The victim is not the newest segment, whose damaged last record would
    // read as a torn tail.
    assert!(segs.len() >= 2, "the test wants several segments: {segs:?}");
    let victim = &segs[0];
    let mut b = std::fs::read(victim).unwrap();
    // Inside the last record: the segment's space is reserved ahead, and
    // zeros past its records are not data (a flip there reads as the end).
    let end = b.iter().rposition(|&x| x != 0).expect("records") + 1;
    let at = end - 10;
    b[at] ^= 0x40;
    std::fs::write(victim, &b).unwrap();
    // Recovery finds it first (the log is replayed at open).
    match opts().open(&dir) {
        Err(Error::Corruption { file, .. }) => assert_eq!(&file, victim),
        Ok(db) => {
            // (Only if the segment was covered by a checkpoint and not read.)
            let got: Vec<_> = db.changes_since(start).unwrap().collect();
            let bad = got.iter().position(|c| c.is_err()).expect("damage went unnoticed");
            for (c, want) in got[..bad].iter().zip(&commits) {
                assert_eq!(c.as_ref().unwrap().ts, want.0);
            }
        }
        Err(e) => panic!("unexpected error {e}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Misuse is an error, not a panic.
#[test]
fn misuse_is_an_error() {
    let db = Db::in_memory();
    assert!(matches!(db.changes_since(0), Err(Error::InvalidArgument(_))));
    let dir = tmp("misuse");
    let db = opts().open(&dir).unwrap();
    let now = db.snapshot().ts();
    assert!(matches!(db.changes_since(now + 1), Err(Error::InvalidArgument(_))));
    assert_eq!(db.changes_since(now).unwrap().count(), 0);
    drop(db);
    let db = opts().durability(Durability::None).open(&dir).unwrap();
    assert!(matches!(db.changes_since(0), Err(Error::InvalidArgument(_))));
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}
