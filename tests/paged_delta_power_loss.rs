//! Power loss at every sync point of a workload whose checkpoints and
//! evictions write delta flushes (`design/storage.md` §4), on [`FaultFs`]:
//! 500 keys in default pages, a checkpoint, then rounds of a few updates
//! and deletes, each ending with a checkpoint, with a cache that holds
//! everything (checkpoint flushes only) and with a small one (evictions
//! write delta flushes too).
//!
//! Each transaction writes a marker key `m/<id>`; after recovery the data
//! must be exactly what the transactions present wrote, they must be a
//! prefix of the commit order, and every acknowledged one must be there.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Error, Options};
use bwtx_kit::rng::SplitMix64;
use common::{dump, fault_opts, markers, DIR};

#[derive(Clone, Debug)]
enum Step {
    /// Puts (`Some(value)`) and deletes (`None`), with the marker `m/<id>`.
    Txn(usize, Vec<(String, Option<String>)>),
    Checkpoint,
}

fn script() -> Vec<Step> {
    let mut rng = SplitMix64::new(11);
    let mut s = Vec::new();
    let mut id = 0;
    let mut txn = |ops| {
        id += 1;
        Step::Txn(id - 1, ops)
    };
    let key = |i: u64| format!("k{i:03}");
    for c in 0..5 {
        s.push(txn((c * 100..c * 100 + 100)
            .map(|i| (key(i), Some(format!("{i:0>100}"))))
            .collect()));
    }
    s.push(Step::Checkpoint);
    for round in 1..=3 {
        for _ in 0..3 {
            let mut ops: Vec<_> = (0..3)
                .map(|_| {
                    let i = rng.below(500);
                    (key(i), Some(format!("r{round}-{i}")))
                })
                .collect();
            ops.push((key(rng.below(500)), None));
            s.push(txn(ops));
        }
        s.push(Step::Checkpoint);
    }
    s.push(txn(vec![(key(7), Some("last".into()))]));
    s
}

fn opts(fs: &FaultFs, cache: u64) -> Options {
    fault_opts(fs)
        .tree_config(bwtx::tree::Config::default())
        .durability(Durability::Sync)
        .segment_bytes(64 << 10)
        .cache_size(cache)
}

/// The state after the transactions `present`, in script order.
fn expected(script: &[Step], present: &BTreeSet<usize>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for step in script {
        if let Step::Txn(id, ops) = step {
            if present.contains(id) {
                m.insert(format!("m/{id}"), id.to_string());
                for (k, v) in ops {
                    match v {
                        Some(v) => m.insert(k.clone(), v.clone()),
                        None => m.remove(k),
                    };
                }
            }
        }
    }
    m
}

/// Run the script until the first error; the acknowledged ids.
fn run(db: &Db, script: &[Step]) -> (BTreeSet<usize>, Option<Error>) {
    let mut acked = BTreeSet::new();
    for step in script {
        let r = match step {
            Step::Txn(id, ops) => (|| {
                let mut tx = db.begin();
                tx.put(format!("m/{id}"), id.to_string())?;
                for (k, v) in ops {
                    match v {
                        Some(v) => tx.put(k, v)?,
                        None => tx.delete(k)?,
                    }
                }
                tx.commit()?;
                acked.insert(*id);
                Ok(())
            })(),
            Step::Checkpoint => db.checkpoint().map(|_| ()),
        };
        if let Err(e) = r {
            return (acked, Some(e));
        }
    }
    (acked, None)
}

fn power_loss_at_every_sync_point(cache: u64) {
    let script = script();
    let fs = FaultFs::new();
    let db = opts(&fs, cache).open(DIR).unwrap();
    let (acked, err) = run(&db, &script);
    assert!(err.is_none(), "{err:?}");
    let s = db.stats();
    assert!(s.delta_flushes > 0, "the checkpoints write delta flushes: {s:?}");
    let n = fs.syncs();
    drop(db);
    let db = opts(&fs, cache).open(DIR).unwrap();
    assert_eq!(dump(&db).1, expected(&script, &acked));
    drop(db);
    for k in 0..n + 2 {
        let fs = FaultFs::new();
        fs.crash_at_sync(k);
        let acked = match opts(&fs, cache).open(DIR) {
            Ok(db) => {
                let (acked, err) = run(&db, &script);
                if let Some(e) = err {
                    assert!(matches!(e, Error::Io(_) | Error::Poisoned), "crash at sync {k}: {e}");
                }
                acked
            }
            Err(e) => {
                assert!(matches!(e, Error::Io(_)), "crash at sync {k}: {e}");
                BTreeSet::new()
            }
        };
        fs.power_loss();
        let ctx = format!("cache {cache}, crash at sync {k} of {n}");
        let db = opts(&fs, cache)
            .open(DIR)
            .unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
        let (ts, state) = dump(&db);
        let present = markers(&state);
        assert!(
            acked.is_subset(&present),
            "{ctx}: acknowledged {acked:?}, present {present:?}"
        );
        assert_eq!(
            state,
            expected(&script, &present),
            "{ctx}: not exactly what {present:?} wrote"
        );
        assert_eq!(
            present.len() as u64,
            ts,
            "{ctx}: {present:?} at ts {ts} is not a prefix"
        );
        // The recovered chains take more deltas and read back.
        let mut tx = db.begin();
        tx.put("k001", "after").unwrap();
        tx.commit().unwrap();
        db.checkpoint().unwrap();
        drop(db);
        let db = opts(&fs, cache).open(DIR).unwrap();
        let mut want = state;
        want.insert("k001".into(), "after".into());
        assert_eq!(dump(&db).1, want, "{ctx}: after one more checkpoint");
    }
}

#[test]
fn power_loss_at_every_sync_point_of_delta_checkpoints() {
    power_loss_at_every_sync_point(1 << 30);
}

#[test]
fn power_loss_at_every_sync_point_of_delta_evictions() {
    // About two default pages resident: commits evict, writing deltas.
    power_loss_at_every_sync_point(24 << 10);
}
