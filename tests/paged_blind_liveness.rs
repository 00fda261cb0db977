//! Blind writes over stubs that keep no key set (`design/storage.md` §5.5):
//! a leaf restored from a location table has no key fingerprints and does
//! not know its newest timestamp; the first blind write over one reads
//! both from the on-disk chain (no fault-in) and the stub keeps them. The
//! live-key count must stay exact for every kind of write (overwrite, a
//! write over a tombstone, an insert, a delete); a damaged or unreadable
//! image is an error for the commit, never a wrong count.
//!
//! One leaf (the default tree configuration, ten keys), so each test knows
//! which write reads the set.

mod common;

use std::path::Path;

use bwtx::fs::{FaultFs, Fs};
use bwtx::{Db, Error, Stats};
use common::blind::{all, key, open, put};
use common::DIR;

/// Keys 0..10 live, then key 2 deleted (its tombstone is its newest
/// version), and a clean close: the reopened database's leaves are stubs
/// restored from the location table, without key sets.
fn keyless(fs: &FaultFs) -> Db {
    let db = open(fs);
    for k in 0..10 {
        put(&db, k, Some(k)).unwrap();
    }
    put(&db, 2, None).unwrap();
    drop(db);
    let db = open(fs);
    let s = db.stats();
    assert_eq!((s.cache_misses, s.live_keys), (0, 9));
    db
}

/// One blind write of `k`: `live` keys after it, no fault-in, `reads`
/// key sets read.
fn blind(db: &Db, k: u8, v: Option<u8>, live: u64, reads: u64) {
    let before = db.stats();
    put(db, k, v).unwrap();
    let after = db.stats();
    let moved = |f: fn(&Stats) -> u64| f(&after) - f(&before);
    assert_eq!(
        (
            moved(|s| s.blind_writes),
            moved(|s| s.key_set_reads),
            moved(|s| s.cache_misses)
        ),
        (1, reads, 0),
        "write of key {k} {v:?}"
    );
    assert_eq!(after.live_keys, live, "write of key {k} {v:?}");
}

#[test]
fn blind_writes_over_keyless_stubs_keep_counts_exact() {
    let fs = FaultFs::new();
    let db = keyless(&fs);
    let keyless = db.stats().stub_bytes;
    blind(&db, 1, Some(11), 9, 1); // live over live; the set is read
    assert!(
        db.stats().stub_bytes >= keyless + 10 * 8,
        "the stub keeps the set it read"
    );
    blind(&db, 2, Some(12), 10, 0); // live over a tombstone
    blind(&db, 20, Some(20), 11, 0); // live over nothing
    blind(&db, 3, None, 10, 0); // a tombstone over live
    blind(&db, 21, None, 10, 0); // a tombstone over nothing
    let snap = db.snapshot();
    assert_eq!(snap.len(), 10);
    assert_eq!(snap.get(key(2)).unwrap().as_deref(), Some(&[12u8][..]));
    assert_eq!(snap.get(key(3)).unwrap(), None);
    drop(snap);
    // Another clean close and restart: the first blind write reads the set
    // again (before sets were read, a restored stub was faulted in by every
    // write, its `max_ts` unknown).
    drop(db);
    let db = open(&fs);
    assert_eq!(db.stats().live_keys, 10);
    blind(&db, 4, None, 9, 1);
    blind(&db, 3, Some(13), 10, 0);
    // The read taught the page store the restored chain: evicting the
    // blind chain appends its deltas to it as a delta flush, with no
    // fault-in to write the leaf whole.
    let before = db.stats();
    assert!(db.evict_all().unwrap() > 0);
    let after = db.stats();
    assert_eq!(
        (after.cache_misses, after.delta_flushes),
        (before.cache_misses, before.delta_flushes + 1),
        "{after:?}"
    );
    blind(&db, 5, Some(15), 10, 0);
    let want: Vec<(Vec<u8>, Vec<u8>)> = [
        (0, 0),
        (1, 11),
        (2, 12),
        (3, 13),
        (5, 15),
        (6, 6),
        (7, 7),
        (8, 8),
        (9, 9),
        (20, 20),
    ]
    .into_iter()
    .map(|(k, v)| (key(k), vec![v]))
    .collect();
    assert_eq!(all(&db), want);
    // And again after a restart that replays nothing.
    db.checkpoint().unwrap();
    drop(db);
    let db = open(&fs);
    assert_eq!(all(&db), want);
    assert_eq!(db.stats().live_keys, 10);
}

/// A writer whose snapshot is older than a blind write's version of its
/// key, evicted since, still loses (first committer wins): the new stub
/// knows its `max_ts`, so the leaf is faulted in and the commit conflicts.
#[test]
fn a_stale_writer_after_a_restart_conflicts() {
    let fs = FaultFs::new();
    let db = keyless(&fs);
    let mut stale = db.begin();
    blind(&db, 5, Some(50), 9, 1);
    db.evict_all().unwrap();
    let before = db.stats();
    stale.put(key(5), [55]).unwrap();
    assert!(matches!(stale.commit(), Err(Error::Conflict { .. })));
    let after = db.stats();
    assert_eq!(after.key_set_reads, before.key_set_reads);
    assert_eq!(after.cache_misses, before.cache_misses + 1);
    assert_eq!(after.live_keys, 9);
}

/// Every page segment of the database, with its contents.
fn page_segments(fs: &FaultFs) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for name in fs.list(Path::new(DIR)).unwrap() {
        let path = Path::new(DIR).join(&name);
        if name.starts_with("pages-") {
            out.push((path.clone(), fs.contents(&path).unwrap()));
        }
    }
    out
}

/// A liveness read of a damaged image fails the commit with
/// `Error::Corruption` naming the segment (no wrong count, no panic), and
/// one that fails to read fails it with the I/O error; the database still
/// commits once the page reads again.
#[test]
fn a_damaged_or_unreadable_image_fails_the_blind_write() {
    let fs = FaultFs::new();
    let db = keyless(&fs);
    let segments = page_segments(&fs);
    // Flip a bit in the middle of every record of every page segment's
    // data (after the 32-byte segment header): whichever image the write
    // reads is damaged.
    for (path, data) in &segments {
        let mut bad = data.clone();
        for at in (40..bad.len()).step_by(64) {
            bad[at] ^= 0x10;
        }
        fs.set_contents(path, bad);
    }
    let before = db.stats();
    match put(&db, 6, Some(66)) {
        Err(Error::Corruption { file, .. }) => {
            assert!(file.to_string_lossy().contains("pages-"), "{file:?}")
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert_eq!(db.stats().live_keys, before.live_keys);
    for (path, data) in segments {
        fs.set_contents(&path, data);
    }
    fs.fail_read_at(fs.reads());
    assert!(matches!(put(&db, 6, Some(66)), Err(Error::Io(_))));
    blind(&db, 6, Some(66), 9, 1);
    assert_eq!(db.snapshot().get(key(6)).unwrap().as_deref(), Some(&[66u8][..]));
}

/// Key sets dropped (`Db::drop_key_sets`, as the evictor's aging passes
/// drop those of leaves no write used for three, KS1 in
/// `bwtree::paging`): the next blind write reads the set back from the
/// page store, and the live-key count stays exact for every kind of write.
#[test]
fn blind_writes_after_a_dropped_key_set_keep_counts_exact() {
    let fs = FaultFs::new();
    let db = open(&fs);
    for k in 0..10 {
        put(&db, k, Some(k)).unwrap();
    }
    put(&db, 2, None).unwrap();
    // Evicted dirty: the cold stub keeps the key set, and a blind write
    // reads nothing.
    db.evict_all().unwrap();
    blind(&db, 1, Some(11), 9, 0);
    db.evict_all().unwrap();
    let stubs = db.stats().stub_bytes;
    // The leaf's set, and any other tree's evicted with it (the catalog's;
    // the stats count the default tree's, as for its other page counters).
    assert!(db.drop_key_sets() >= 1);
    assert_eq!(db.stats().key_sets_dropped, 1);
    assert!(db.stats().stub_bytes + 10 * 8 <= stubs, "the set's bytes are freed");
    assert_eq!(db.drop_key_sets(), 0, "nothing left to drop");
    blind(&db, 2, Some(12), 10, 1); // live over a tombstone; the set is read
    blind(&db, 20, Some(20), 11, 0); // live over nothing
    db.evict_all().unwrap();
    assert_eq!(db.drop_key_sets(), 1);
    blind(&db, 3, None, 10, 1); // a tombstone over live
    db.evict_all().unwrap();
    assert_eq!(db.drop_key_sets(), 1);
    blind(&db, 21, None, 10, 1); // a tombstone over nothing
    blind(&db, 4, Some(14), 10, 0); // live over live
    let snap = db.snapshot();
    assert_eq!(snap.len(), 10);
    assert_eq!(snap.get(key(2)).unwrap().as_deref(), Some(&[12u8][..]));
    assert_eq!(snap.get(key(3)).unwrap(), None);
    drop(snap);
    drop(db);
    let db = open(&fs);
    assert_eq!(db.stats().live_keys, 10);
}

/// KS1 through a checkpoint: a blind write over a leaf whose key set has
/// aged, flushed by a checkpoint (its deltas appended to the leaf's chain,
/// the stub packed again with its set), gives the set its three aging
/// passes again: a pass later a blind write still reads nothing. Without
/// the renewal the set's count is the 0 it was dropped at, and that one
/// pass drops it. One pass, not three: the evictor's own pass (every 2 s)
/// may land between the checkpoint and the write, and up to two of them
/// still leave the set in place.
#[test]
fn a_checkpoint_renews_a_flushed_key_sets_age() {
    let fs = FaultFs::new();
    let db = open(&fs);
    for k in 0..10 {
        put(&db, k, Some(k)).unwrap();
    }
    db.evict_all().unwrap();
    for _ in 0..3 {
        db.age_key_sets();
    }
    put(&db, 1, Some(11)).unwrap();
    let before = db.stats();
    db.checkpoint().unwrap();
    let after = db.stats();
    assert_eq!(after.delta_flushes, before.delta_flushes + 1, "{after:?}");
    assert_eq!(after.cache_misses, before.cache_misses, "no fault-in");
    db.age_key_sets();
    blind(&db, 2, Some(12), 10, 0);
    let snap = db.snapshot();
    assert_eq!(snap.get(key(1)).unwrap().as_deref(), Some(&[11u8][..]));
    assert_eq!(snap.get(key(2)).unwrap().as_deref(), Some(&[12u8][..]));
}

/// A large transaction into one evicted leaf: the first `2 x leaf_chain`
/// (16) of its writes go blind, then `prepare` faults the leaf in, so that
/// the install consolidates and splits it as it goes. Before, every write
/// went blind: a chain of one delta per write over the stub that no commit
/// could consolidate, walked by every later install (a 300,000-write
/// transaction took over 12 minutes). The writes validated after the
/// fault-in mix overwrites, a delete, an insert over a tombstone and a
/// key another commit wrote after the snapshot: first committer wins
/// there, and counts and contents stay exact.
#[test]
fn a_large_transaction_faults_its_leaf_in_after_a_blind_run() {
    let fs = FaultFs::new();
    let db = open(&fs);
    // Keys 0..10 and 240..250 in one leaf, 2 and 245 deleted, then a
    // clean close: the reopened leaf is a stub without a key set.
    for k in (0..10).chain(240..250) {
        put(&db, k, Some(k)).unwrap();
    }
    put(&db, 2, None).unwrap();
    put(&db, 245, None).unwrap();
    drop(db);
    let db = open(&fs);
    assert_eq!((db.stats().cache_misses, db.stats().live_keys), (0, 18));
    // 200 new keys (all before key 240 in key order, so validated first),
    // then 240..250: overwrites, 241 deleted, 245 written over its
    // tombstone, 248 written by another commit after this snapshot.
    let big = |tx: &mut bwtx::Transaction, with_248: bool| {
        for i in 30..230u32 {
            tx.put(format!("key{i:03}"), i.to_be_bytes()).unwrap();
        }
        for k in 240..250u8 {
            match k {
                241 => tx.delete(key(k)).unwrap(),
                248 if !with_248 => {}
                _ => tx.put(key(k), [k, k]).unwrap(),
            }
        }
    };
    let before = db.stats();
    let mut tx = db.begin();
    big(&mut tx, true);
    put(&db, 248, Some(1)).unwrap();
    let winner = db.snapshot().ts();
    match tx.commit() {
        Err(Error::Conflict { key: k, winner: w, .. }) => {
            assert_eq!((&k[..], w), (&key(248)[..], winner));
        }
        other => panic!("expected a conflict on key 248, got {other:?}"),
    }
    let after = db.stats();
    // The other commit's write of 248 went blind too (one).
    assert_eq!(after.blind_writes - before.blind_writes, 16 + 1, "{after:?}");
    assert!(
        after.cache_misses > before.cache_misses,
        "the leaf was faulted in: {after:?}"
    );
    assert_eq!(after.live_keys, 18);
    let mut tx = db.begin();
    big(&mut tx, false);
    tx.commit().unwrap();
    let check = |db: &Db| {
        assert_eq!(db.stats().live_keys, 18 + 200 - 1 + 1);
        let kvs = all(db);
        assert_eq!(kvs.len(), 218);
        assert!(kvs.contains(&(b"key229".to_vec(), 229u32.to_be_bytes().to_vec())));
        assert!(kvs.contains(&(key(245), vec![245, 245])));
        assert!(kvs.contains(&(key(248), vec![1])));
        assert!(kvs.contains(&(key(240), vec![240, 240])));
        assert!(!kvs.iter().any(|(k, _)| k == &key(241)));
    };
    check(&db);
    drop(db);
    let db = open(&fs);
    check(&db);
}
