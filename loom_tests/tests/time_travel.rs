//! A model of time travel against garbage collection (`design/mvcc.md`,
//! "Time travel"; `mvcc::registry`, `Registry::pin_at`): a snapshot pinned
//! at a past timestamp while a GC raises the watermark past it either fails
//! with `SnapshotTooOld` or reads exactly the version of its timestamp;
//! never a newer one, never nothing.
#![cfg(loom)]

mod common;

use bwtx::{Db, Error};
use common::*;
use loom::thread;

fn put(db: &Db, value: &str) -> u64 {
    let mut tx = db.begin();
    tx.put("k", value).unwrap();
    tx.commit().unwrap()
}

/// `k` has versions "old" (at `t_old`) and "new"; nothing holds "old". One
/// thread pins a snapshot at `t_old` and reads `k`; the other collects
/// garbage (proposal, slot scan, watermark, sweep dropping "old"). Either
/// the pin fails, or the GC's slot scan saw it and "old" survives. (Seeded
/// bug, checked by hand: `pin_at` loading the proposal before it claims its
/// slot lets the GC propose and scan between the two; the model fails: the
/// pinned snapshot's read finds the watermark above it, which only the read
/// check of `Tree::check_readable` turns into an error instead of "new".)
#[test]
fn pin_at_races_gc() {
    model("pin_at_races_gc", || {
        let db = db();
        let t_old = put(&db, "old");
        put(&db, "new");
        let d = db.clone();
        let reader = thread::spawn(move || match d.snapshot_at(t_old) {
            Ok(s) => Some(s.get("k").expect("a pinned snapshot reads").map(|b| b.to_vec())),
            Err(Error::SnapshotTooOld { requested, oldest }) => {
                assert_eq!(requested, t_old);
                assert!(oldest > t_old);
                None
            }
            Err(e) => panic!("unexpected error {e}"),
        });
        db.collect_garbage();
        if let Some(v) = reader.join().unwrap() {
            assert_eq!(v.as_deref(), Some(&b"old"[..]), "snapshot at {t_old}");
        }
    });
}
