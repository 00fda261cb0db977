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

fn opts(fs: &FaultFs, paged: bool) -> Options {
    let o = fault_opts(fs).durability(Durability::Sync);
    if paged {
        o.cache_size(1 << 20).value_log_threshold(100)
    } else {
        o
    }
}

#[test]
fn every_failed_checkpoint_sync_poisons() {
    for paged in [false, true] {
        let mut points = 0;
        for k in 0..64u64 {
            let fs = FaultFs::new();
            let db = opts(&fs, paged).open(DIR).unwrap();
            for i in 0..40u32 {
                db.transaction(|tx| tx.put(format!("k{i:02}"), [b'v'; 150])).unwrap();
            }
            // A first checkpoint, so that the second has files to delete.
            db.checkpoint().unwrap();
            db.transaction(|tx| tx.put("k00", "new")).unwrap();
            let before = dump(&db).1;
            fs.fail_sync_at(fs.syncs() + k);
            if db.checkpoint().is_ok() {
                assert!(k > 0, "paged {paged}: the checkpoint synced nothing");
                break;
            }
            points += 1;
            let after = db.transaction(|tx| tx.put("after", "x"));
            assert!(
                after.is_err(),
                "paged {paged}: a commit after the checkpoint's sync {k} failed"
            );
            drop(db);
            fs.power_loss();
            let db = opts(&fs, paged).open(DIR).unwrap();
            assert_eq!(dump(&db).1, before, "paged {paged}, sync {k}");
            db.transaction(|tx| tx.put("again", "y")).unwrap();
        }
        assert!(points >= 3, "paged {paged}: {points} sync points");
    }
}
