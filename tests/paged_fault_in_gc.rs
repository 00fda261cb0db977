//! A fault-in collects at the tree's GC watermark (`design/storage.md` §5,
//! fault-in): versions GC passed while their leaf was evicted are dropped
//! as the leaf comes back, counted once (`versions_stored` exact with no
//! consolidation in between), the page is evicted again as it is (no
//! consolidation, no write),
//! and a tombstone dropped there resurrects nothing through the page's
//! older on-disk parts (the page comes back dirty, DF1), across evictions,
//! checkpoints and a restart.

mod common;

use std::collections::BTreeMap;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Options};
use common::{dump, fault_opts, DIR};

const KEYS: usize = 60;

fn opts(fs: &FaultFs) -> Options {
    fault_opts(fs)
        .durability(Durability::Sync)
        .cache_size(16 << 10)
        .segment_bytes(64 << 10)
}

fn key(k: usize) -> String {
    format!("k{k:03}")
}

fn put(db: &Db, k: usize, v: &str) {
    let mut tx = db.begin();
    tx.put(key(k), v).unwrap();
    tx.commit().unwrap();
}

/// Every key written, then (while a snapshot holds the old versions)
/// rewritten three times or, for every third key if `deletes`, deleted; every leaf
/// evicted with the snapshot still held, so their images and stubs keep
/// the old versions; then the snapshot is released and the watermark
/// raised with no leaf resident. Returns the model.
fn evicted_with_garbage(db: &Db, deletes: bool) -> BTreeMap<String, String> {
    db.force_read_through(Some(false));
    let mut model = BTreeMap::new();
    for k in 0..KEYS {
        put(db, k, &format!("v0-{k}"));
    }
    // Flushed as base images first, so that the later versions (the
    // tombstones among them) go to delta flushes on top of them.
    db.checkpoint().unwrap();
    let snap = db.snapshot();
    for round in 1..4 {
        for k in 0..KEYS {
            if deletes && k % 3 == 0 {
                if round == 1 {
                    let mut tx = db.begin();
                    tx.delete(key(k)).unwrap();
                    tx.commit().unwrap();
                }
            } else {
                let v = format!("v{round}-{k}");
                put(db, k, &v);
                model.insert(key(k), v);
            }
        }
        db.checkpoint().unwrap();
    }
    db.collect_garbage();
    db.evict_all().unwrap();
    assert_eq!(snap.get(key(3)).unwrap().as_deref(), Some(&b"v0-3"[..]));
    db.evict_all().unwrap();
    drop(snap);
    // Raises the watermark; evicted leaves are not swept.
    db.collect_garbage();
    model
}

#[test]
fn a_fault_in_drops_what_gc_passed_and_counts_it_once() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let model = evicted_with_garbage(&db, true);
    let before = db.stats();
    assert!(before.versions_stored > model.len() as u64, "{before:?}");
    // Fault every leaf in (the dump reads every key): no consolidation
    // runs, yet only the live versions remain, each counted once.
    assert_eq!(dump(&db).1, model);
    let s = db.stats();
    assert!(s.cache_misses > before.cache_misses, "{s:?}");
    assert_eq!(s.consolidations, before.consolidations, "{s:?}");
    assert_eq!(s.versions_stored, model.len() as u64, "{s:?}");
    // GC finds nothing left to drop, and the count stays exact.
    db.collect_garbage();
    assert_eq!(db.stats().versions_stored, model.len() as u64);
    // Evicted, checkpointed, faulted in, restarted: nothing comes back.
    for _ in 0..2 {
        db.evict_all().unwrap();
        db.checkpoint().unwrap();
        assert_eq!(dump(&db).1, model);
        put(&db, 1, "v9-1");
        put(&db, 1, &model[&key(1)]);
    }
    drop(db);
    let db = opts(&fs).open(DIR).unwrap();
    db.force_read_through(Some(false));
    assert_eq!(dump(&db).1, model);
    db.evict_all().unwrap();
    assert_eq!(dump(&db).1, model);
}

#[test]
fn a_leaf_that_only_lost_garbage_is_evicted_again_as_it_is() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let model = evicted_with_garbage(&db, false);
    // Every leaf comes back built at the current watermark, clean: its
    // next eviction neither consolidates nor writes it (collected at the
    // stub's watermark, it would be consolidated first, with nothing new
    // to write).
    let before = db.stats();
    assert_eq!(dump(&db).1, model);
    db.evict_all().unwrap();
    let s = db.stats();
    // No write but a read-worn chain's (P8, `design/storage.md` §5.7): the
    // background evictor of this tiny cache may put a leaf out during the
    // dump, and its second fault-in reads its two-part chain again.
    assert_eq!(
        s.pages_written - s.chains_rewritten,
        before.pages_written - before.chains_rewritten,
        "{s:?}"
    );
    assert_eq!(s.consolidations, before.consolidations, "{s:?}");
    assert!(s.clean_evictions > 0, "{s:?}");
    assert_eq!(s.versions_stored, model.len() as u64, "{s:?}");
}

/// With deletes: the leaves that dropped a tombstone come back dirty
/// (DF1) and are written by the eviction that follows; after that every
/// leaf comes back clean and leaves without a write.
#[test]
fn a_leaf_that_dropped_a_tombstone_is_written_once() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let model = evicted_with_garbage(&db, true);
    let written = db.stats().pages_written;
    assert_eq!(dump(&db).1, model);
    db.evict_all().unwrap();
    let once = db.stats().pages_written;
    assert!(once > written);
    assert_eq!(dump(&db).1, model);
    db.evict_all().unwrap();
    let s = db.stats();
    assert_eq!(s.pages_written, once, "{s:?}");
}
