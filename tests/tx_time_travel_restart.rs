//! Retention across restart and checkpoints (issue 13): with
//! `Options::history_retention`, every version within the window stays
//! readable through `Db::snapshot_at` after a clean close, a power loss
//! (`bwtx::fs::FaultFs`), and a power loss in the middle of a checkpoint,
//! with any number of checkpoints before; below the window it is
//! `SnapshotTooOld`, never a wrong answer. The same for a paged database
//! (`Options::cache_size`), whose location table serves the history its
//! page images hold.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Error, Options};
use bwtx_kit::SplitMix64;

const DIR: &str = "/db";
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// A past state: its commit timestamp, when it stopped being the newest
/// (`None`: it still is) and the model's contents.
struct State {
    ts: u64,
    until: Option<Instant>,
    model: Model,
}

fn opts(fs: &FaultFs, paged: bool, retention: Duration) -> Options {
    let o = common::fault_opts(fs)
        .durability(Durability::Sync)
        .segment_bytes(2048)
        .history_retention(retention);
    if paged {
        o.cache_size(1)
    } else {
        o
    }
}

fn all(s: &bwtx::Snapshot) -> Model {
    s.range::<&[u8], _>(..)
        .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<bwtx::Result<_>>()
        .unwrap()
}

/// `n` random commits (puts and deletes over 30 keys), a checkpoint every
/// `every` commits and a GC sweep every 7th, sleeping `pause` after each.
fn history(db: &Db, rng: &mut SplitMix64, states: &mut Vec<State>, n: usize, every: usize, pause: Duration) {
    let mut model = states.last().map_or_else(Model::new, |s| s.model.clone());
    for i in 0..n {
        let mut tx = db.begin();
        for _ in 0..1 + rng.below(3) {
            let k = format!("k{:02}", rng.below(30)).into_bytes();
            if rng.below(5) == 0 {
                tx.delete(&k).unwrap();
                model.remove(&k);
            } else {
                let v = format!("v{}-{}", states.len(), rng.below(1000)).into_bytes();
                tx.put(&k, &v).unwrap();
                model.insert(k, v);
            }
        }
        let ts = tx.commit().unwrap();
        let now = Instant::now();
        if let Some(last) = states.last_mut() {
            last.until = Some(now);
        }
        states.push(State {
            ts,
            until: None,
            model: model.clone(),
        });
        if i % every == every - 1 {
            db.checkpoint().unwrap();
        }
        if i % 7 == 6 {
            db.collect_garbage();
        }
        std::thread::sleep(pause);
    }
}

/// Every state newest at some moment within `retention` of now reads back
/// exactly (contents and count); every state below the oldest readable
/// timestamp is refused. Returns the oldest readable timestamp.
fn check(db: &Db, states: &[State], retention: Duration, what: &str) -> u64 {
    let start = Instant::now().checked_sub(retention);
    let oldest = db.stats().oldest_readable_ts;
    for s in states {
        let within = match (s.until, start) {
            (Some(until), Some(start)) => until >= start,
            _ => true,
        };
        if within {
            assert!(
                oldest <= s.ts,
                "{what}: ts {} is within the window, oldest {oldest}",
                s.ts
            );
        }
        match db.snapshot_at(s.ts) {
            Ok(snap) => {
                assert!(s.ts >= oldest, "{what}");
                assert_eq!(all(&snap), s.model, "{what}: as of ts {}", s.ts);
                assert_eq!(snap.len(), s.model.len() as u64, "{what}: count as of ts {}", s.ts);
            }
            Err(Error::SnapshotTooOld { requested, oldest: o }) => {
                assert!(s.ts < oldest && requested == s.ts && o == oldest, "{what}: ts {}", s.ts);
            }
            Err(e) => panic!("{what}: ts {}: {e}", s.ts),
        }
    }
    oldest
}

fn start_state() -> Vec<State> {
    vec![State {
        ts: 0,
        until: None,
        model: Model::new(),
    }]
}

/// A long window keeps every commit: after a clean close, and after a
/// power loss (the paged database then restarts from its last table and
/// replays the log after it, not from its close-time table). The first run
/// writes no checkpoint (so no history file: nothing says when its commits
/// were made, and they are kept for a whole window after the restart).
fn every_commit_survives(paged: bool) {
    let hour = Duration::from_secs(3600);
    for crash in [false, true] {
        let fs = FaultFs::new();
        let mut rng = SplitMix64::new(11 + u64::from(paged) + 2 * u64::from(crash));
        let mut states = start_state();
        for round in 0..3 {
            let db = opts(&fs, paged, hour).open(DIR).unwrap();
            let what = format!("paged {paged}, crash {crash}, round {round}");
            check(&db, &states, hour, &what);
            let every = if round == 0 { 1000 } else { 20 };
            history(&db, &mut rng, &mut states, 90, every, Duration::ZERO);
            assert!(round == 0 || db.stats().checkpoints >= 4);
            check(&db, &states, hour, &what);
            if crash {
                fs.crash_at_sync(fs.syncs());
            }
            drop(db);
            if crash {
                fs.power_loss();
            }
        }
        let db = opts(&fs, paged, hour).open(DIR).unwrap();
        assert_eq!(check(&db, &states, hour, "at the end"), 0);
        assert_eq!(db.snapshot().ts(), states.last().unwrap().ts);
    }
}

#[test]
fn every_commit_survives_restarts() {
    every_commit_survives(false);
}

#[test]
fn every_commit_survives_restarts_paged() {
    every_commit_survives(true);
}

/// A power loss at each sync of a checkpoint (history file, image or
/// table, deletions): the window is still whole after recovery.
fn crash_in_checkpoint(paged: bool) {
    let hour = Duration::from_secs(3600);
    let mut hit = 0;
    for k in 0..12 {
        let fs = FaultFs::new();
        let mut rng = SplitMix64::new(100 + k);
        let mut states = start_state();
        let db = opts(&fs, paged, hour).open(DIR).unwrap();
        history(&db, &mut rng, &mut states, 50, 15, Duration::ZERO);
        fs.crash_at_sync(fs.syncs() + k);
        hit += u64::from(db.checkpoint().is_err());
        drop(db);
        fs.power_loss();
        let db = opts(&fs, paged, hour).open(DIR).unwrap();
        assert_eq!(
            check(&db, &states, hour, &format!("paged {paged}, crash at sync {k}")),
            0
        );
    }
    assert!(hit >= 4, "only {hit} crashes inside the checkpoint");
}

#[test]
fn crash_in_checkpoint_keeps_the_window() {
    crash_in_checkpoint(false);
}

#[test]
fn crash_in_checkpoint_keeps_the_window_paged() {
    crash_in_checkpoint(true);
}

/// A short window over a longer history with many checkpoints: after a
/// restart, what was newest within the window reads back, and the oldest
/// commits are refused (the checkpoints and log before the window were
/// deleted, or the page images dropped them).
fn short_window(paged: bool) {
    let window = Duration::from_millis(600);
    for crash in [false, true] {
        let fs = FaultFs::new();
        let mut rng = SplitMix64::new(7 + u64::from(paged));
        let mut states = start_state();
        let db = opts(&fs, paged, window).open(DIR).unwrap();
        history(&db, &mut rng, &mut states, 80, 8, Duration::from_millis(25));
        check(&db, &states, window, "before the restart");
        // Ten checkpoints, at most six kept (`design/durability.md` §5).
        let files = bwtx::fs::Fs::list(&fs, std::path::Path::new(DIR)).unwrap();
        let images = files.iter().filter(|n| n.ends_with(".ckpt")).count();
        assert!((1..=6).contains(&images), "{files:?}");
        if crash {
            fs.crash_at_sync(fs.syncs());
        }
        drop(db);
        if crash {
            fs.power_loss();
        }
        let db = opts(&fs, paged, window).open(DIR).unwrap();
        let what = format!("paged {paged}, crash {crash}");
        let oldest = check(&db, &states, window, &what);
        assert!(oldest > states[10].ts, "{what}: history from {oldest} kept");
        assert!(db.snapshot_at(states[0].ts).is_err());
    }
}

#[test]
fn short_window_across_restart() {
    short_window(false);
}

#[test]
fn short_window_across_restart_paged() {
    short_window(true);
}

/// The log a version-1 database keeps for its history also serves the
/// change stream (the longer retention wins), and a damaged history file
/// is corruption, named, never a silently shorter window.
#[test]
fn history_keeps_the_log_and_damage_is_corruption() {
    let hour = Duration::from_secs(3600);
    let fs = FaultFs::new();
    let mut rng = SplitMix64::new(5);
    let mut states = start_state();
    {
        let db = opts(&fs, false, hour).open(DIR).unwrap();
        history(&db, &mut rng, &mut states, 60, 10, Duration::ZERO);
        let changes = db.changes_since(0).unwrap().count();
        assert_eq!(changes, 60, "no change_retention, but the history's log");
    }
    let dir = std::path::Path::new(DIR);
    let hist = (0..=states.last().unwrap().ts)
        .map(|ts| dir.join(format!("hist-{ts:020}.hist")))
        .rfind(|p| fs.contents(p).is_some())
        .expect("a history file");
    let good = fs.contents(&hist).unwrap();
    let mut bad = good.clone();
    bad[20] ^= 1;
    fs.set_contents(&hist, bad);
    match opts(&fs, false, hour).open(DIR) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, hist),
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
    fs.set_contents(&hist, good);
    let db = opts(&fs, false, hour).open(DIR).unwrap();
    assert_eq!(check(&db, &states, hour, "after the repair"), 0);
}

/// A named keyspace's count at a snapshot from before a reopen: its count
/// history is not kept across the reopen (the default keyspace's is), so
/// `len_in` there is `SnapshotTooOld`, never the count of a later time
/// (before: 3 keys at the time of the first put). Its data reads back, and
/// counts from the reopen on are exact.
#[test]
fn a_named_keyspace_count_before_a_reopen_is_too_old_not_wrong() {
    for paged in [false, true] {
        let fs = FaultFs::new();
        let o = || opts(&fs, paged, Duration::from_secs(3600));
        let db = o().open(DIR).unwrap();
        let ks = db.keyspace("k").unwrap();
        let mut stamps = Vec::new();
        for i in 0..3u32 {
            let mut tx = db.begin();
            tx.put_in(&ks, format!("key{i}"), "v").unwrap();
            stamps.push(tx.commit().unwrap());
        }
        assert_eq!(db.snapshot_at(stamps[0]).unwrap().len_in(&ks).unwrap(), 1);
        drop((ks, db));
        let db = o().open(DIR).unwrap();
        let ks = db.keyspace("k").unwrap();
        let old = db.snapshot_at(stamps[0]).unwrap();
        assert_eq!(old.get_in(&ks, "key0").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(old.get_in(&ks, "key1").unwrap(), None);
        match old.len_in(&ks) {
            Err(Error::SnapshotTooOld { requested, .. }) => assert_eq!(requested, stamps[0]),
            other => panic!("paged {paged}: {other:?}"),
        }
        assert_eq!(db.snapshot().len_in(&ks).unwrap(), 3);
        let mut tx = db.begin();
        tx.put_in(&ks, "key3", "v").unwrap();
        tx.commit().unwrap();
        assert_eq!(db.snapshot().len_in(&ks).unwrap(), 4);
    }
}
