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

/// Under serializable isolation a count is a read of the count: a
/// concurrent insert refuses the commit of a counting transaction that
/// writes (`ConflictReason::Count`, naming the last commit that changed
/// it); an update, or an insert and a delete that cancel out, do not.
/// Under snapshot isolation it commits, and a count that writes nothing
/// commits under either.
#[test]
fn a_serializable_count_reads_the_count() {
    use bwtx::{ConflictReason, Error};
    type Other = fn(&mut bwtx::Transaction) -> bwtx::Result<()>;
    let others: [(&str, Other, bool); 4] = [
        ("insert", |tx| tx.put("z", "2"), true),
        ("delete", |tx| tx.delete("a"), true),
        ("update", |tx| tx.put("a", "2"), false),
        (
            "insert and delete",
            |tx| {
                tx.put("z", "2")?;
                tx.delete("a")
            },
            false,
        ),
    ];
    for (level, serializable) in [
        (bwtx::Isolation::Serializable, true),
        (bwtx::Isolation::Snapshot, false),
    ] {
        for (name, other, changes) in others {
            let db = Db::in_memory();
            db.transaction(|tx| {
                tx.put("a", "1")?;
                tx.put("k", "1")
            })
            .unwrap();
            let mut t1 = db.begin_with(level);
            assert_eq!(t1.len().unwrap(), 2);
            let mut t = db.begin();
            other(&mut t).unwrap();
            let winner = t.commit().unwrap();
            // A later commit that leaves the count as it is.
            db.transaction(|tx| tx.put("k", "2")).unwrap();
            t1.put("k2", "1").unwrap();
            match t1.commit() {
                Err(Error::Conflict {
                    key, winner: w, reason, ..
                }) if serializable && changes => {
                    assert!(key.is_empty(), "{name}");
                    assert_eq!(w, winner, "{name}: the last commit that changed the count");
                    let now = if name == "insert" { 3 } else { 1 };
                    assert_eq!(*reason, ConflictReason::Count { counted: 2, now }, "{name}");
                }
                Ok(_) if !(serializable && changes) => {}
                other => panic!("{level:?} {name}: {other:?}"),
            }
        }
        // A count that writes nothing commits whatever came after it.
        let db = Db::in_memory();
        let t1 = db.begin_with(level);
        assert_eq!(t1.len().unwrap(), 0);
        db.transaction(|tx| tx.put("z", "1")).unwrap();
        t1.commit().unwrap();
    }
}

/// A serializable count of a named keyspace (`len_in`) reads that
/// keyspace's count only: inserts into another keyspace, or the default
/// one, refuse nothing; an insert into it does, naming its commit.
#[test]
fn a_serializable_count_of_a_keyspace_reads_its_count_only() {
    use bwtx::{ConflictReason, Error};
    let db = Db::in_memory();
    let (a, b) = (db.keyspace("a").unwrap(), db.keyspace("b").unwrap());
    db.transaction(|tx| tx.put_in(&a, "k", "1")).unwrap();
    let mut t1 = db.begin_with(bwtx::Isolation::Serializable);
    assert_eq!(t1.len_in(&a).unwrap(), 1);
    db.transaction(|tx| {
        tx.put_in(&b, "x", "1")?;
        tx.put("y", "1")?;
        tx.put_in(&a, "k", "2")
    })
    .unwrap();
    t1.put_in(&b, "counted", "1").unwrap();
    t1.commit().unwrap();

    let mut t2 = db.begin_with(bwtx::Isolation::Serializable);
    assert_eq!(t2.len_in(&a).unwrap(), 1);
    let mut t = db.begin();
    t.put_in(&a, "new", "1").unwrap();
    let winner = t.commit().unwrap();
    t2.put_in(&b, "counted", "2").unwrap();
    match t2.commit() {
        Err(Error::Conflict { winner: w, reason, .. }) => {
            assert_eq!(w, winner);
            assert_eq!(*reason, ConflictReason::Count { counted: 1, now: 2 });
        }
        other => panic!("{other:?}"),
    }
}

/// A serializable count rests on whether the keys the transaction wrote
/// were live: a rollback to a savepoint that takes such a key out of the
/// write set leaves it read. Here T deletes `x`, counts 1, rolls the
/// delete back and writes `y`; U reads `y` (absent), deletes `x` and
/// inserts `w` (the count stays 2) and commits first. T must be refused on
/// `x` (`Read`): U read before T's write, and T's count relied on `x` live
/// before U's delete, a cycle. (Found by review: with only the count
/// checked, T committed.)
#[test]
fn a_count_after_a_rolled_back_write_reads_that_key() {
    use bwtx::{ConflictReason, Error, Isolation};
    for keyspace in [false, true] {
        let db = Db::in_memory();
        let ks = db.keyspace(if keyspace { "k" } else { "default" }).unwrap();
        db.transaction(|tx| {
            tx.put_in(&ks, "a", "1")?;
            tx.put_in(&ks, "x", "1")
        })
        .unwrap();
        let mut t = db.begin_with(Isolation::Serializable);
        let sp = t.savepoint();
        t.delete_in(&ks, "x").unwrap();
        assert_eq!(t.len_in(&ks).unwrap(), 1);
        t.rollback_to(&sp).unwrap();
        t.put_in(&ks, "y", "1").unwrap();

        let mut u = db.begin_with(Isolation::Serializable);
        assert_eq!(u.get_in(&ks, "y").unwrap(), None);
        u.delete_in(&ks, "x").unwrap();
        u.put_in(&ks, "w", "1").unwrap();
        let winner = u.commit().unwrap();

        match t.commit() {
            Err(Error::Conflict {
                key, winner: w, reason, ..
            }) => {
                assert_eq!(&key[..], b"x", "keyspace {keyspace}");
                assert_eq!(w, winner);
                assert_eq!(*reason, ConflictReason::Read);
            }
            other => panic!("keyspace {keyspace}: {other:?}"),
        }
    }
}
