//! A checkpoint whose sync fails, at any of its sync points (page and
//! value-log segments, the history file, the checkpoint file or location
//! table, the directory after each rename, the log's rotation, the
//! directory after the deletions), poisons the database: every later commit
//! is refused until a reopen, and a reopen after a power loss has every
//! acknowledged commit. A failed sync is never retried (`design/durability.md`
//! D5).
//!
//! (Before 2026-12-07 the syncs of the history file, the checkpoint file or
//! table and the directory poisoned nothing: the checkpoint returned its
//! error, commits went on, and the next checkpoint synced the directory
//! again.)

mod common;

use bwtx::fs::FaultFs;
use bwtx::{Durability, Options};
use common::{dump, fault_opts, DIR};

fn opts(fs: &FaultFs, paged: bool, d: Durability) -> Options {
    let o = fault_opts(fs).durability(d);
    if paged {
        o.cache_size(1 << 20).value_log_threshold(100)
    } else {
        o
    }
}

/// With a log or without one (where checkpoints are what saves commits:
/// before, a failed sync there poisoned the log, which commits without a
/// log did not look at, so they went on and were all lost), paged or not.
#[test]
fn every_failed_checkpoint_sync_poisons() {
    for d in [Durability::Sync, Durability::None] {
        for paged in [false, true] {
            let ctx = format!("{d:?}, paged {paged}");
            let mut points = 0;
            for k in 0..64u64 {
                let fs = FaultFs::new();
                let db = opts(&fs, paged, d).open(DIR).unwrap();
                for i in 0..40u32 {
                    db.transaction(|tx| tx.put(format!("k{i:02}"), [b'v'; 150])).unwrap();
                }
                // A first checkpoint, so that the second has files to delete.
                db.checkpoint().unwrap();
                let checkpointed = dump(&db).1;
                db.transaction(|tx| tx.put("k00", "new")).unwrap();
                let before = dump(&db).1;
                fs.fail_sync_at(fs.syncs() + k);
                if db.checkpoint().is_ok() {
                    assert!(k > 0, "{ctx}: the checkpoint synced nothing");
                    break;
                }
                points += 1;
                let after = db.transaction(|tx| tx.put("after", "x"));
                assert!(after.is_err(), "{ctx}: a commit after the checkpoint's sync {k} failed");
                assert!(
                    db.sync().is_err(),
                    "{ctx}: Db::sync after the checkpoint's sync {k} failed"
                );
                // What failed is kept, for `Db::poison_cause`.
                let cause = db.poison_cause();
                assert!(
                    cause.as_deref().is_some_and(|c| c.contains("injected fault")),
                    "{ctx}, sync {k}: poison_cause {cause:?}"
                );
                drop(db);
                fs.power_loss();
                let db = opts(&fs, paged, d).open(DIR).unwrap();
                assert_eq!(db.poison_cause(), None, "{ctx}: a reopened database takes writes");
                // Without a log only a checkpoint saves commits: the one
                // that failed may or may not have (its table's rename
                // may have reached the disk).
                let back = dump(&db).1;
                if d == Durability::None {
                    assert!(back == checkpointed || back == before, "{ctx}, sync {k}");
                } else {
                    assert_eq!(back, before, "{ctx}, sync {k}");
                }
                db.transaction(|tx| tx.put("again", "y")).unwrap();
            }
            assert!(points >= 3, "{ctx}: {points} sync points");
        }
    }
}

/// A sync that panics (a user's `Fs`) in the history file's or the
/// checkpoint file's write poisons as a failed one does: the panic goes on
/// to the caller, and every later commit and `Db::sync` is refused.
#[test]
fn a_panicking_checkpoint_sync_poisons() {
    for prefix in ["hist-", "ckpt-"] {
        for paged in [false, true] {
            let fs = FaultFs::new();
            let db = opts(&fs, paged, Durability::Sync).open(DIR).unwrap();
            db.transaction(|tx| tx.put("a", "1")).unwrap();
            fs.panic_next_sync(prefix);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.checkpoint()));
            assert!(r.is_err(), "{prefix} paged {paged}: no panic: {r:?}");
            assert!(db.sync().is_err(), "{prefix} paged {paged}: Db::sync after the panic");
            assert!(db.transaction(|tx| tx.put("b", "2")).is_err(), "{prefix} paged {paged}");
            let cause = db.poison_cause();
            assert!(
                cause.as_deref().is_some_and(|c| c.contains("panicked")),
                "{prefix} paged {paged}: {cause:?}"
            );
        }
    }
}
