//! Model of a keyspace's drop racing a commit into it and a snapshot read
//! of it (`design/keyspaces.md`, K3 and K4): whatever the interleaving, a
//! commit into the keyspace either lands below the drop's timestamp or
//! fails with `KeyspaceNotFound` (nothing after the drop), and a snapshot
//! reads the keyspace exactly when its timestamp is below the drop's (the
//! gate's `try_read` fast path included).
//!
//! (Seeded bugs, checked by hand at the preemption bound of 2: with
//! `Engine::drop_keyspace` taking the gate exclusive only after its
//! catalog commit instead of before it, a commit that took the gate shared
//! meanwhile gets a timestamp above the drop's: the model fails, "commit 3
//! into a keyspace dropped at 3" (at bound 1 too). With
//! `Engine::ks_visible`'s fast path taking a gate it can share for "not
//! dropped" without reading its flag, a snapshot after the drop reads the
//! keyspace: "a snapshot at 2 after the drop at 2 read the keyspace:
//! Ok(false)", at bound 0 too. Unseeded: 1,068 executions in 0.2 s.)
#![cfg(loom)]

mod common;

use bwtx::Error;
use common::*;
use loom::thread;

#[test]
fn drop_vs_commit_and_read() {
    model("drop_vs_commit_and_read", || {
        let db = db();
        let ks = db.keyspace("a").unwrap();
        let (d, k2) = (db.clone(), ks.clone());
        let w = thread::spawn(move || {
            let mut tx = d.begin();
            let committed = match tx.put_in(&k2, "k", "v") {
                Ok(()) => tx.commit(),
                Err(e) => Err(e),
            };
            let s = d.snapshot();
            (committed, s.ts(), s.get_in(&k2, "k").map(|v| v.is_some()))
        });
        db.drop_keyspace("a").unwrap();
        // Nothing else commits: this is the drop's timestamp.
        let dropped = db.snapshot().ts();
        let (committed, read_ts, read) = w.join().unwrap();
        match committed {
            Ok(c) => {
                seen("ks_committed", 1);
                assert!(c < dropped, "commit {c} into a keyspace dropped at {dropped}");
            }
            Err(Error::KeyspaceNotFound { .. }) => seen("ks_committed", 0),
            Err(e) => panic!("unexpected error {e}"),
        }
        if read_ts < dropped {
            seen("ks_read_before_drop", 1);
            assert!(
                read.is_ok(),
                "a snapshot at {read_ts} before the drop at {dropped}: {read:?}"
            );
        } else {
            seen("ks_read_before_drop", 0);
            assert!(
                matches!(read, Err(Error::KeyspaceNotFound { .. })),
                "a snapshot at {read_ts} after the drop at {dropped} read the keyspace: {read:?}"
            );
        }
    });
    assert_eq!(seen_range("ks_committed"), (0, 1));
    assert_eq!(seen_range("ks_read_before_drop"), (0, 1));
}
