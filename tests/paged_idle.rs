//! An idle database writes nothing: a checkpoint with nothing new to write
//! (the cleaner's, the automatic one, or `Db::checkpoint`) leaves the log as
//! it is. It used to close the current log segment first, so an idle paged
//! database, whose cleaner asked for a checkpoint every second, left one
//! empty log segment a second (with a file and a directory fsync each).

mod common;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability};
use common::{dump, fault_opts, DIR};

fn idle_checkpoints_add_no_segment(db: &Db, fs: &FaultFs) {
    db.transaction(|tx| tx.put("k", "v")).unwrap();
    db.checkpoint().unwrap();
    let segments = db.stats().log_segments;
    let syncs = fs.syncs();
    for _ in 0..20 {
        db.checkpoint().unwrap();
    }
    assert_eq!(db.stats().log_segments, segments, "{:?}", db.stats());
    assert_eq!(fs.syncs(), syncs, "idle checkpoints synced something");
    // The next commit and checkpoint work as before.
    db.transaction(|tx| tx.put("k", "w")).unwrap();
    db.checkpoint().unwrap();
    assert_eq!(dump(db).1["k"], "w");
}

#[test]
fn a_paged_database_idle_adds_no_log_segment() {
    let fs = FaultFs::new();
    let db = fault_opts(&fs)
        .durability(Durability::Sync)
        .cache_size(1 << 20)
        .open(DIR)
        .unwrap();
    idle_checkpoints_add_no_segment(&db, &fs);
}

#[test]
fn an_in_memory_image_database_idle_adds_no_log_segment() {
    let fs = FaultFs::new();
    let db = fault_opts(&fs).durability(Durability::Sync).open(DIR).unwrap();
    idle_checkpoints_add_no_segment(&db, &fs);
}
