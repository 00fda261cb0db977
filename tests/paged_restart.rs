//! Restart from the page store (`design/storage.md` §6-§7): a clean close
//! writes a location table, and the next open replays nothing and reads no
//! page before the first access; a checkpoint after a few updates writes
//! little; a version-1 checkpoint still opens and the next checkpoint is a
//! table; a damaged table or page image is `Error::Corruption` naming the
//! file; a failed sync during a checkpoint loses nothing acknowledged.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use bwtx::fs::FaultFs;
use bwtx::{Durability, Error, Options};
use common::paged::{key, load, value};
use common::{dump, fault_opts, DIR};

fn paged(fs: &FaultFs, cache: u64) -> Options {
    fault_opts(fs).durability(Durability::Sync).cache_size(cache)
}

/// The newest checkpoint file's name and format version.
fn newest_checkpoint(fs: &FaultFs) -> (String, u32) {
    use bwtx::fs::Fs;
    let name = fs
        .list(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("ckpt-") && n.ends_with(".ckpt"))
        .max()
        .expect("a checkpoint file");
    let bytes = fs.contents(&Path::new(DIR).join(&name)).unwrap();
    (name, u32::from_le_bytes(bytes[8..12].try_into().unwrap()))
}

#[test]
fn reopen_after_a_clean_close_replays_nothing_and_reads_no_page() {
    let fs = FaultFs::new();
    let mut model = BTreeMap::new();
    let db = paged(&fs, 64 << 10).open(DIR).unwrap();
    load(&db, 0..3_000, 0, &mut model);
    load(&db, 0..500, 1, &mut model);
    drop(db);
    assert_eq!(newest_checkpoint(&fs).1, 2, "a clean close writes a location table");
    let reads = fs.reads();
    let db = paged(&fs, 64 << 10).open(DIR).unwrap();
    // A read faults its leaf in (the evictor's pressure flag would
    // otherwise choose a read-through once the inner pages fill the cache).
    db.force_read_through(Some(false));
    let s = db.stats();
    assert_eq!((s.replayed, s.cache_misses), (0, 0), "{s:?}");
    // The open read the table and the log's headers, no page segment.
    let opened = fs.reads() - reads;
    let got = db.snapshot().get(key(1234)).unwrap();
    assert_eq!(got.as_deref(), Some(value(1234, 0).as_bytes()));
    assert_eq!(db.stats().cache_misses, 1, "the first get faults one leaf in");
    assert!(fs.reads() > reads + opened, "the first get read a page");
    assert_eq!(dump(&db).1, model);

    // After a crash (the machine dies at the next sync: the close's
    // checkpoint fails), the log after the table is replayed.
    load(&db, 100..300, 2, &mut model);
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
    let db = paged(&fs, 64 << 10).open(DIR).unwrap();
    assert_eq!(db.stats().replayed, 2, "{:?}", db.stats());
    assert_eq!(dump(&db).1, model);
}

#[test]
fn a_checkpoint_after_few_updates_writes_little() {
    let fs = FaultFs::new();
    let mut model = BTreeMap::new();
    // Default pages, segments of 1 MiB, no eviction.
    let db = fault_opts(&fs)
        .tree_config(bwtx::tree::Config::default())
        .durability(Durability::Sync)
        .segment_bytes(1 << 20)
        .cache_size(1 << 30)
        .open(DIR)
        .unwrap();
    let n = 20_000;
    load(&db, 0..n, 0, &mut model);
    let data: usize = model.iter().map(|(k, v)| k.len() + v.len()).sum();
    db.checkpoint().unwrap();
    let first = db.stats().checkpoint_bytes;
    assert!(
        first as usize >= data / 2,
        "the first checkpoint writes every leaf: {first} of {data}"
    );
    // 1% of the keys, one key range: a few leaves change.
    load(&db, 5_000..5_000 + n / 100, 1, &mut model);
    db.checkpoint().unwrap();
    let s = db.stats();
    let second = s.checkpoint_bytes - first;
    eprintln!("data {data} bytes; first checkpoint {first}, after 1% updates {second}");
    assert!(
        second as usize <= data / 20,
        "a checkpoint after 1% updates wrote {second} bytes of {data}: {s:?}"
    );
    // Page segments nothing references any more are deleted: rewrite
    // everything twice, checkpointing each time.
    for round in 2..4 {
        load(&db, 0..n, round, &mut model);
        db.checkpoint().unwrap();
    }
    let s = db.stats();
    let live = (s.checkpoint_bytes - first) / 2;
    assert!(
        s.page_segments <= 2 + 2 * live.div_ceil(1 << 20),
        "old page segments deleted: {s:?}"
    );
    drop(db);
    let db = paged(&fs, 1 << 30).open(DIR).unwrap();
    assert_eq!(dump(&db).1, model);
}

#[test]
fn a_version_1_checkpoint_opens_and_the_next_checkpoint_is_a_table() {
    let fs = FaultFs::new();
    let mut model = BTreeMap::new();
    let db = fault_opts(&fs).durability(Durability::Sync).open(DIR).unwrap();
    load(&db, 0..1_000, 0, &mut model);
    db.checkpoint().unwrap();
    load(&db, 0..100, 1, &mut model);
    drop(db);
    // A key-value image: version 4 since keyspaces (version 1 before; both read).
    assert_eq!(newest_checkpoint(&fs).1, 4);
    let db = paged(&fs, 16 << 10).open(DIR).unwrap();
    assert_eq!(db.stats().replayed, 1);
    assert_eq!(dump(&db).1, model);
    db.checkpoint().unwrap();
    assert_eq!(newest_checkpoint(&fs).1, 2);
    load(&db, 500..700, 2, &mut model);
    drop(db);
    // Without a cache size, the database keeps its page store.
    let db = fault_opts(&fs).durability(Durability::Sync).open(DIR).unwrap();
    assert_eq!((db.stats().replayed, db.stats().cache_misses), (0, 0));
    assert_eq!(dump(&db).1, model);
}

/// Flip one bit of `name` at `offset`.
fn flip(fs: &FaultFs, name: &str, offset: usize) {
    let path = Path::new(DIR).join(name);
    let mut b = fs.contents(&path).unwrap();
    b[offset] ^= 0x10;
    fs.set_contents(&path, b);
}

#[test]
fn a_damaged_table_or_page_image_is_corruption() {
    let fs = FaultFs::new();
    let mut model = BTreeMap::new();
    // 4 KiB page segments: the damaged one is closed (an open checks only
    // the newest segment's records; damage there fails the open).
    let paged = |fs: &FaultFs, cache| paged(fs, cache).segment_bytes(4 << 10);
    let db = paged(&fs, 16 << 10).open(DIR).unwrap();
    load(&db, 0..2_000, 0, &mut model);
    drop(db);
    let (name, _) = newest_checkpoint(&fs);
    let table = fs.contents(&Path::new(DIR).join(&name)).unwrap();
    let files = fs.clone();
    // Every tenth byte of the table.
    for offset in (0..table.len()).step_by(10) {
        let fs = files.clone();
        flip(&fs, &name, offset);
        match paged(&fs, 16 << 10).open(DIR) {
            Err(Error::Corruption { file, .. }) => assert!(file.ends_with(&name), "{file:?}"),
            other => panic!("a flipped bit at {offset} of the table: {:?}", other.map(|_| ())),
        }
        flip(&fs, &name, offset);
    }
    // A page image: its leaf's keys fail with the segment's name, the
    // others still read. Which segments still hold live images depends on
    // the background evictor's timing, so damage each closed segment in
    // turn until one's damage is met (and undo the flips that were not).
    use bwtx::fs::Fs;
    let mut segs: Vec<String> = fs
        .list(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("pages-"))
        .collect();
    segs.sort();
    segs.pop(); // the newest: damage there fails the open
    let mut hit = None;
    for seg in segs {
        flip(&fs, &seg, 32 + 40 + 100);
        let db = paged(&fs, 16 << 10).open(DIR).unwrap();
        let snap = db.snapshot();
        let (mut bad, mut good) = (0, 0);
        for (k, v) in &model {
            match snap.get(k) {
                Ok(got) => {
                    assert_eq!(got.as_deref(), Some(v.as_bytes()), "never a wrong value");
                    good += 1;
                }
                Err(Error::Corruption { file, .. }) => {
                    assert!(file.ends_with(&seg), "{file:?}");
                    bad += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        drop(snap);
        drop(db);
        if bad > 0 {
            assert!(good > 0, "bad {bad}, good {good}");
            hit = Some(seg);
            break;
        }
        flip(&fs, &seg, 32 + 40 + 100);
    }
    let seg = hit.expect("a damaged live page image is met as corruption");

    // A segment cut in the middle of an image, below leaves the table
    // lists: corruption naming it, found by the open (which checks every
    // listed address against the segments; before, by the reads of those
    // leaves).
    let path = Path::new(DIR).join(&seg);
    let mut b = fs.contents(&path).unwrap();
    b.truncate(b.len() / 2 + 3);
    fs.set_contents(&path, b);
    match paged(&fs, 16 << 10).open(DIR) {
        Err(Error::Corruption { file, .. }) => assert!(file.ends_with(&seg), "{file:?}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a torn image is corruption"),
    }
}

#[test]
fn a_failed_sync_during_a_checkpoint_loses_nothing_acknowledged() {
    // Count the checkpoint's syncs on a clean run.
    let run = |fail_at: Option<u64>| {
        let fs = FaultFs::new();
        let mut model = BTreeMap::new();
        let db = paged(&fs, 16 << 10).open(DIR).unwrap();
        load(&db, 0..1_500, 0, &mut model);
        db.checkpoint().unwrap();
        load(&db, 200..400, 1, &mut model);
        let before = fs.syncs();
        if let Some(k) = fail_at {
            fs.fail_sync_at(before + k);
        }
        let r = db.checkpoint();
        let syncs = fs.syncs() - before;
        if r.is_err() {
            // A failed page write or sync poisons (no more commits); a
            // failed table write only fails the checkpoint.
            let mut tx = db.begin();
            tx.put("after", "x").unwrap();
            match tx.commit() {
                Ok(_) => {
                    model.insert("after".into(), "x".into());
                }
                Err(e) => assert!(matches!(e, Error::Poisoned | Error::Io(_)), "{e}"),
            }
        }
        drop(db);
        fs.power_loss();
        let db = paged(&fs, 16 << 10).open(DIR).unwrap();
        assert_eq!(dump(&db).1, model, "fail at {fail_at:?}: {r:?}");
        (syncs, r.is_err())
    };
    let (n, failed) = run(None);
    assert!(!failed && n >= 3, "{n} syncs");
    let mut failures = 0;
    for k in 0..n {
        failures += usize::from(run(Some(k)).1);
    }
    assert!(failures > 0, "no injected sync failure reached the checkpoint");
}
