//! Exact counts (`Snapshot::len`, `Transaction::len`): equal to a full
//! scan's count at every snapshot, through deletes of absent keys, repeated
//! writes of one key in a transaction, conflicts, GC, time travel,
//! concurrent deletes and re-inserts, checkpoints and restarts.

use std::collections::BTreeMap;
use std::time::Duration;

use bwtx::{Db, Durability, Options, Snapshot};
use bwtx_kit::SplitMix64;

fn scan_count(s: &Snapshot) -> u64 {
    let mut n = 0;
    for kv in s.range::<&[u8], _>(..) {
        kv.unwrap();
        n += 1;
    }
    n
}

fn key(i: u64) -> String {
    format!("k{i:03}")
}

/// Random transactions against a `BTreeMap` model: every snapshot's `len`
/// equals the model's size at its timestamp and its own scan; a
/// transaction's `len` counts its writes; time travel counts too.
#[test]
fn counts_match_the_model() {
    let db = Options::new()
        .history_retention(Duration::from_secs(3600))
        .gc_interval(None)
        .in_memory()
        .unwrap();
    let mut rng = SplitMix64::new(11);
    let mut model: BTreeMap<String, String> = BTreeMap::new();
    let mut sizes = vec![(db.snapshot().ts(), 0u64)];
    let mut held: Vec<(Snapshot, u64)> = Vec::new();
    for i in 0..800 {
        let mut tx = db.begin();
        let mut view = model.clone();
        let mut written = Vec::new();
        for _ in 0..1 + rng.below(5) {
            // Few keys: repeated writes of a key in one transaction, deletes
            // of absent keys, re-inserts.
            let k = key(rng.below(50));
            written.push(k.clone());
            if rng.below(3) == 0 {
                tx.delete(&k).unwrap();
                view.remove(&k);
            } else {
                tx.put(&k, format!("v{i}")).unwrap();
                view.insert(k, format!("v{i}"));
            }
        }
        assert_eq!(tx.len().unwrap(), view.len() as u64, "transaction {i}");
        // Now and then a concurrent writer of one of the keys: a conflict
        // must count nothing.
        if rng.below(10) == 0 {
            if let Some(k) = written.first().cloned() {
                let mut other = db.begin();
                other.put(&k, "other").unwrap();
                let ts = other.commit().unwrap();
                model.insert(k, "other".into());
                sizes.push((ts, model.len() as u64));
                if tx.commit().is_ok() {
                    panic!("expected a conflict");
                }
                continue;
            }
        }
        let ts = tx.commit().unwrap();
        model = view;
        sizes.push((ts, model.len() as u64));
        if rng.below(25) == 0 {
            let s = db.snapshot();
            held.push((s, model.len() as u64));
        }
        if i % 97 == 0 {
            db.collect_garbage();
        }
    }
    for (s, n) in &held {
        assert_eq!(s.len(), *n, "held snapshot at {}", s.ts());
        assert_eq!(scan_count(s), *n);
    }
    for (ts, n) in sizes {
        let s = db.snapshot_at(ts).unwrap();
        assert_eq!(s.len(), n, "time travel to {ts}");
        assert_eq!(s.is_empty(), n == 0);
    }
    assert_eq!(db.stats().live_keys, model.len() as u64);
}

/// Four threads delete and re-insert overlapping keys while a reader checks
/// that every snapshot's `len` equals its own scan.
#[test]
fn concurrent_deletes_and_reinserts() {
    let db = Options::new().in_memory().unwrap();
    db.transaction(|tx| (0..200).try_for_each(|i| tx.put(key(i), "x")))
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut rng = SplitMix64::new(t);
                for _ in 0..2000 {
                    let _ = db.transaction(|tx| {
                        for _ in 0..3 {
                            let k = key(rng.below(200));
                            if rng.below(2) == 0 {
                                tx.delete(&k)?;
                            } else {
                                tx.put(&k, "y")?;
                            }
                        }
                        Ok(())
                    });
                }
            })
        })
        .collect();
    let reader = {
        let db = db.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut checked = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || checked < 10 {
                let s = db.snapshot();
                assert_eq!(s.len(), scan_count(&s), "snapshot at {}", s.ts());
                checked += 1;
            }
            checked
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() >= 10);
    let s = db.snapshot();
    assert_eq!(s.len(), scan_count(&s));
}

/// Counts survive checkpoints and restarts (recovery counts what it
/// replays).
#[test]
fn counts_survive_restart() {
    survive_restart(None);
}

/// The same on a paged database: its checkpoints are location tables,
/// which carry the count, and recovery adds the replayed log's effect.
#[test]
fn counts_survive_restart_paged() {
    survive_restart(Some(16 << 10));
}

fn survive_restart(cache: Option<u64>) {
    let dir = std::env::temp_dir().join(format!("bwtx-counts-{}-{cache:?}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = || {
        let o = Options::new()
            .tree_config(bwtx::tree::Config::tiny())
            .durability(Durability::Buffered(Duration::from_millis(5)));
        match cache {
            Some(c) => o.cache_size(c),
            None => o,
        }
    };
    let mut rng = SplitMix64::new(3);
    let mut run = |db: &Db| {
        for _ in 0..100 {
            let mut tx = db.begin();
            for _ in 0..3 {
                let k = key(rng.below(80));
                if rng.below(3) == 0 {
                    tx.delete(&k).unwrap();
                } else {
                    tx.put(&k, "v").unwrap();
                }
            }
            tx.commit().unwrap();
        }
    };
    for round in 0..4 {
        let db = opts().open(&dir).unwrap();
        let s = db.snapshot();
        assert_eq!(s.len(), scan_count(&s), "after reopen {round}");
        drop(s);
        run(&db);
        if round % 2 == 0 {
            db.checkpoint().unwrap();
        }
        run(&db);
        let s = db.snapshot();
        assert_eq!(s.len(), scan_count(&s), "round {round}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Under serializable isolation a count is a read of every key: a
/// concurrent insert, or update, refuses the commit of a counting
/// transaction that writes; under snapshot isolation it commits, and a
/// count that writes nothing commits under either.
#[test]
fn a_serializable_count_reads_everything() {
    for (level, refused) in [
        (bwtx::Isolation::Serializable, true),
        (bwtx::Isolation::Snapshot, false),
    ] {
        // An insert, and an update that changes no count, both refuse it.
        for other in ["z", "a"] {
            let db = Db::in_memory();
            db.transaction(|tx| tx.put("a", "1")).unwrap();
            let mut t1 = db.begin_with(level);
            assert_eq!(t1.len().unwrap(), 1);
            db.transaction(|tx| tx.put(other, "2")).unwrap();
            t1.put("count", "1").unwrap();
            let err = t1.commit().err();
            assert_eq!(err.is_some(), refused, "{level:?} {other}");
            assert!(err.is_none_or(|e| e.is_conflict()), "{level:?} {other}");
        }
        // A count that writes nothing commits whatever came after it.
        let db = Db::in_memory();
        let t1 = db.begin_with(level);
        assert_eq!(t1.len().unwrap(), 0);
        db.transaction(|tx| tx.put("z", "1")).unwrap();
        t1.commit().unwrap();
    }
}
