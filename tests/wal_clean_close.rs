//! A clean close of a database without a page store (no cache size: each
//! checkpoint is a key-value image) writes an image when the log the next
//! open would replay is at least 4 MiB and at least as large as the newest
//! image, so that the next open loads the image instead of replaying the
//! log; with a log smaller than either it writes none (the image would
//! cost more than the replay it saves). (Before: no image at close, and the next open
//! replayed everything since the last checkpoint: `bwtx bench --dir D
//! --durability sync --workload u --threads 8 --keys 100000 --duration 10`
//! left 75 MB of log, and the open took 2.2 s replaying 246,802 commits;
//! from an image 0.1 s.)

mod common;

use std::path::Path;

use bwtx::fs::{FaultFs, Fs};
use bwtx::{Db, Durability};
use common::{dump, fault_opts, DIR};

fn open(fs: &FaultFs) -> Db {
    fault_opts(fs).durability(Durability::Sync).open(DIR).unwrap()
}

/// The checkpoint images in the directory.
fn images(fs: &FaultFs) -> Vec<String> {
    let mut v: Vec<String> = fs
        .list(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("ckpt-") && n.ends_with(".ckpt"))
        .collect();
    v.sort();
    v
}

/// Keys `range` with 1 KiB values (about 1 KiB of log each).
fn put_keys(db: &Db, range: std::ops::Range<u32>) {
    for chunk in range.collect::<Vec<_>>().chunks(100) {
        db.transaction(|tx| {
            for i in chunk {
                tx.put(format!("key{i:06}"), [b'v'; 1024])?;
            }
            Ok(())
        })
        .unwrap();
    }
}

/// Close `db` (no image yet): the close writes one, and after a power loss
/// the reopen replays nothing and holds what `db` held.
fn closes_with_an_image(fs: &FaultFs, db: Db) {
    let before = dump(&db);
    drop(db);
    assert_eq!(images(fs).len(), 1, "the close wrote an image");
    fs.power_loss();
    let db = open(fs);
    assert_eq!(db.stats().replayed, 0, "nothing to replay after a clean close");
    assert_eq!(dump(&db), before);
}

#[test]
fn a_clean_close_writes_an_image_when_the_log_outweighs_it() {
    let fs = FaultFs::new();
    let db = open(&fs);
    // 3 MiB of log: too little to be worth an image.
    put_keys(&db, 0..3_000);
    let before = dump(&db);
    drop(db);
    assert!(images(&fs).is_empty(), "an image for a log under 4 MiB");
    let db = open(&fs);
    assert_eq!(db.stats().replayed, 30);
    assert_eq!(dump(&db), before);
    // Overwrites: 6 MiB of log, more than the image will hold.
    put_keys(&db, 0..3_000);
    assert!(images(&fs).is_empty());
    closes_with_an_image(&fs, db);
}

#[test]
fn a_clean_close_replays_a_log_smaller_than_the_image() {
    let fs = FaultFs::new();
    let db = open(&fs);
    put_keys(&db, 0..6_000);
    db.checkpoint().unwrap();
    let first = images(&fs);
    assert_eq!(first.len(), 1);
    // 5 MiB of log, less than the image's 6,000 values of 1 KiB.
    put_keys(&db, 0..5_000);
    for i in 0..3u32 {
        db.transaction(|tx| tx.put(format!("small{i}"), "x")).unwrap();
    }
    let before = dump(&db);
    drop(db);

    assert_eq!(images(&fs), first, "no image for a log smaller than the last");
    fs.power_loss();
    let db = open(&fs);
    assert_eq!(db.stats().replayed, 53);
    assert_eq!(dump(&db), before);

    // The 5 MiB that open found in the log, and 2 MiB more: more than the
    // image, so this close writes one.
    put_keys(&db, 0..2_000);
    let before = dump(&db);
    drop(db);
    assert_eq!(images(&fs).len(), 1, "the new image replaced the old");
    assert_ne!(images(&fs), first);
    let db = open(&fs);
    assert_eq!(db.stats().replayed, 0);
    assert_eq!(dump(&db), before);
}

/// With `Options::change_retention` the log segments a checkpoint covers
/// stay for the change stream: they are not replayed, so a close after an
/// open without writes writes no image again.
#[test]
fn segments_kept_for_the_change_stream_do_not_count_as_replay() {
    let fs = FaultFs::new();
    let opts = || {
        fault_opts(&fs)
            .durability(Durability::Sync)
            .change_retention(std::time::Duration::from_secs(3600))
    };
    let db = opts().open(DIR).unwrap();
    put_keys(&db, 0..3_000);
    put_keys(&db, 0..3_000);
    drop(db);
    let first = images(&fs);
    assert_eq!(first.len(), 1, "the close wrote an image");

    let writes = fs.writes();
    let db = opts().open(DIR).unwrap();
    assert_eq!(db.stats().replayed, 0);
    drop(db);
    // An image (at the same timestamp, so under the same name) would be
    // rewritten in 1 MiB writes: 3 MiB of values.
    let wrote = fs.writes() - writes;
    assert!(
        wrote < 3,
        "an image rewritten for a log kept, not replayed: {wrote} writes"
    );
    assert_eq!(images(&fs), first);
}

/// With `Options::history_retention` the next open starts from the oldest
/// image the retention keeps, not the newest: an image at close would
/// not shorten its replay, and none is written.
#[test]
fn no_image_at_close_with_history_retention() {
    let fs = FaultFs::new();
    let db = fault_opts(&fs)
        .durability(Durability::Sync)
        .history_retention(std::time::Duration::from_secs(3600))
        .open(DIR)
        .unwrap();
    put_keys(&db, 0..3_000);
    put_keys(&db, 0..3_000);
    drop(db);
    assert!(images(&fs).is_empty());
}

/// A checkpoint that failed (here its image's write) covers nothing: its
/// log still counts as what the next open replays, so the clean close
/// writes the image. (Before: the failed checkpoint's start reset the
/// count, and the close left 6 MiB of log to replay.)
#[test]
fn a_failed_checkpoint_leaves_its_log_counted_at_close() {
    let fs = FaultFs::new();
    let db = open(&fs);
    put_keys(&db, 0..3_000);
    put_keys(&db, 0..3_000);
    fs.fail_next_write("ckpt-");
    assert!(db.checkpoint().is_err(), "the image's write failed");
    assert!(images(&fs).is_empty());
    // Not poisoned: a failed write of a checkpoint file loses nothing.
    db.transaction(|tx| tx.put("after", "x")).unwrap();
    closes_with_an_image(&fs, db);
}
