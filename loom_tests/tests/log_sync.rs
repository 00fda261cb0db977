//! Model of the log's sync without the writers' mutex
//! (`crate::wal::writer`, `design/durability.md` D8 and D9): a buffered
//! commit whose value goes to the value log at commit races a `Db::sync`
//! that writes the pending records, releases the mutex, syncs the value log
//! (the hook) and then the log. In every interleaving, after a power loss
//! the durable log holds the commit's record only if the durable value log
//! holds its value: the sync may not carry a record whose value was placed
//! after its hook ran.
//! The commit also waits as a follower while the sync holds the writers'
//! mutex, so the model checks the wake-ups too: loom never times a
//! condvar wait out, so a wake-up lost between a follower's failed attempt
//! and its sleep (which the 1 ms timeout used to cover) is a deadlock here.
//! (Seeded bugs, checked by hand, at the preemption bound of 2: with
//! `write_pending` writing records that reference values while `syncing`
//! is set, the model fails: the log's fsync makes "big"'s record durable,
//! its value not; with a follower sleeping without comparing the leaders'
//! wake-up count, loom reports a deadlock. 1,083 executions in 1.9 s.)
#![cfg(loom)]

mod common;

use std::path::Path;
use std::time::Duration;

use bwtx::fs::{FaultFs, Fs};
use bwtx::Durability;
use common::*;

/// The durable bytes of every file named `prefix*` in `/db`, after a power
/// loss (so only what was synced is left).
fn files(fs: &FaultFs, prefix: &str) -> Vec<u8> {
    let dir = Path::new("/db");
    let mut all = Vec::new();
    for name in fs.list(dir).unwrap() {
        if name.starts_with(prefix) {
            all.extend(fs.contents(&dir.join(&name)).unwrap_or_default());
        }
    }
    all
}

#[test]
fn a_sync_never_carries_a_record_before_its_value() {
    model_bounded("a_sync_never_carries_a_record_before_its_value", 2, || {
        spawn_big(|| {
            let fs = FaultFs::new();
            let db = on_fault_fs(&fs, config(8, 8, 2), Durability::Buffered(Duration::from_secs(3600)))
                .cache_size(1 << 30)
                .open("/db")
                .expect("valid options");
            // Something pending for the sync to write and sync.
            db.transaction(|tx| tx.put("small", "s")).unwrap();
            let value = vec![7u8; 2000];
            let w = db.clone();
            let v = value.clone();
            let writer = spawn_big(move || {
                w.transaction(|tx| tx.put("big", &v)).unwrap();
            });
            db.sync().unwrap();
            writer.join().unwrap();
            fs.power_loss();
            let (log, vlog) = (files(&fs, "wal-"), files(&fs, "vlog-"));
            assert!(contains(&log, b"small"), "synced before the sync returned");
            if contains(&log, b"big") {
                assert!(
                    contains(&vlog, &value),
                    "a durable record references a value not synced"
                );
            }
        })
        .join()
        .unwrap();
    });
}

/// Model of the group commit in `Durability::Sync`, the default (`Wal::wait`,
/// `try_sync`, `sync_led`; `design/durability.md` §4): two committers race,
/// each leading a sync or following one (sleeping on the leaders'
/// wake-ups). In every interleaving both return, and the durable log holds
/// both records: an acknowledged commit survives a power loss. Loom never
/// times a condvar wait out, so a lost wake-up is a deadlock here.
/// (Seeded bugs, checked by hand at the preemption bound of 2: with
/// `sync_led` raising the durable timestamp to the last appended commit
/// instead of the written end it synced, the model fails: a follower whose
/// record was appended after the leader wrote returns with its record not
/// durable; with `try_sync` not waking the followers, loom reports a
/// deadlock. 29,045 executions in 12 s. Writing the model found a spin
/// loom could not bound: `Wal::wait` yielded with `std::thread::yield_now`,
/// now `sync::yield_now`.)
#[test]
fn sync_commits_are_durable_when_acknowledged() {
    model_bounded("sync_commits_are_durable_when_acknowledged", 2, || {
        spawn_big(|| {
            let fs = FaultFs::new();
            let db = on_fault_fs(&fs, config(8, 8, 2), Durability::Sync)
                .open("/db")
                .expect("valid options");
            let w = db.clone();
            let other = spawn_big(move || {
                w.transaction(|tx| tx.put("key-from-a", "1")).unwrap();
            });
            db.transaction(|tx| tx.put("key-from-b", "2")).unwrap();
            other.join().unwrap();
            // Both acknowledged: both synced, whatever the power does now.
            fs.power_loss();
            let log = files(&fs, "wal-");
            assert!(contains(&log, b"key-from-a"), "an acknowledged commit is not durable");
            assert!(contains(&log, b"key-from-b"), "an acknowledged commit is not durable");
        })
        .join()
        .unwrap();
    });
}
