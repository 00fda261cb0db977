//! Read-worn chains (P8 in `bwtree::paging`, `design/storage.md` §5.7): a
//! clean leaf whose on-disk chain has several parts, and whose reads have
//! read enough records beyond the first, is written whole when it is
//! evicted; later reads of it read one record.
//!
//! - Counted: a leaf written, then updated (a delta flush: a chain of two
//!   parts), is read through and faulted in; its clean eviction writes it
//!   whole (`chains_rewritten`, `pages_written`). A second round of reads
//!   and a clean eviction write nothing: the new chain is one part.
//! - Not before its reads: a chain of two parts faulted in once and
//!   evicted clean is left as it is.
//! - The rewritten image is the page: every key reads its value, after a
//!   checkpoint and a reopen too, and a snapshot taken before the update
//!   still reads the old value of the updated key while it lives.

mod common;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability};
use common::{fault_opts, DIR};

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

fn value(v: u8) -> Vec<u8> {
    vec![v; 50]
}

/// A database whose evictor never runs (the cache is far larger than the
/// data), with leaves large enough to hold the ten keys in one.
fn open(fs: &FaultFs) -> Db {
    fault_opts(fs)
        .durability(Durability::Sync)
        .tree_config(bwtx::tree::Config::default())
        .cache_size(1 << 30)
        .open(DIR)
        .unwrap()
}

/// Ten keys in one leaf, evicted whole; then key 3 updated and the leaf
/// evicted again: a delta flush over the image (two parts).
fn two_part_chain(db: &Db) {
    let mut tx = db.begin();
    for k in 0..10u8 {
        tx.put(key(k), value(k)).unwrap();
    }
    tx.commit().unwrap();
    assert!(db.evict_all().unwrap() >= 1);
    let before = db.stats();
    put(db, 3, value(103));
    assert!(db.evict_all().unwrap() >= 1);
    let s = db.stats();
    assert_eq!(
        s.delta_flushes - before.delta_flushes,
        1,
        "the update is written as a delta flush on the image"
    );
}

fn get(db: &Db, k: u8) -> Option<Vec<u8>> {
    db.snapshot().get(key(k)).unwrap().map(|v| v.to_vec())
}

/// Point reads of the evicted leaf until one faults it in: `throughs`
/// read-throughs first (`design/storage.md` §5.4: 31 for a one-part chain,
/// 6 for a chain of several parts, whose reads cost a record each).
fn read_until_admitted(db: &Db, throughs: u64) {
    let before = db.stats();
    for n in 0..=throughs {
        let k = (n % 10) as u8;
        assert_eq!(get(db, k).as_deref(), Some(&expected(k)[..]));
    }
    let s = db.stats();
    assert_eq!(s.read_throughs - before.read_throughs, throughs, "reads through");
    assert_eq!(
        s.cache_misses - before.cache_misses,
        1,
        "the last read faulted the leaf in"
    );
}

fn put(db: &Db, k: u8, v: Vec<u8>) {
    let mut tx = db.begin();
    tx.put(key(k), v).unwrap();
    tx.commit().unwrap();
}

fn expected(k: u8) -> Vec<u8> {
    if k == 3 {
        value(103)
    } else {
        value(k)
    }
}

#[test]
fn a_read_worn_chain_is_written_whole_once() {
    let fs = FaultFs::new();
    let db = open(&fs);
    two_part_chain(&db);

    // Reads through the two-part chain until the leaf comes in (six, then
    // a fault-in, `design/storage.md` §5.4): an extra record read each,
    // more than one per 512 bytes of a chain of about 700.
    db.force_read_through(Some(true));
    read_until_admitted(&db, 6);
    let before = db.stats();
    assert!(db.evict_all().unwrap() >= 1);
    let s = db.stats();
    assert_eq!(
        s.chains_rewritten - before.chains_rewritten,
        1,
        "the clean leaf is written whole"
    );
    assert_eq!(s.pages_written - before.pages_written, 1);
    assert_eq!(s.clean_evictions, before.clean_evictions, "not evicted as it was");

    // The new chain is one part: reading it wears nothing, and the next
    // clean eviction writes nothing (and a one-part chain comes in after
    // 31 read-throughs).
    read_until_admitted(&db, 31);
    let before = db.stats();
    assert!(db.evict_all().unwrap() >= 1);
    let s = db.stats();
    assert_eq!(s.chains_rewritten, before.chains_rewritten);
    assert_eq!(
        s.pages_written, before.pages_written,
        "a one-part chain is not rewritten"
    );
    assert!(s.clean_evictions > before.clean_evictions);

    // The image is the page, after a checkpoint and a reopen too.
    db.checkpoint().unwrap();
    drop(db);
    let db = open(&fs);
    for k in 0..10u8 {
        assert_eq!(get(&db, k).as_deref(), Some(&expected(k)[..]), "key {k}");
    }
}

#[test]
fn one_fault_in_alone_does_not_rewrite() {
    let fs = FaultFs::new();
    let db = open(&fs);
    two_part_chain(&db);
    db.force_read_through(Some(false));
    assert_eq!(get(&db, 3).as_deref(), Some(&value(103)[..]));
    let before = db.stats();
    assert!(db.evict_all().unwrap() >= 1);
    let s = db.stats();
    assert_eq!(
        s.chains_rewritten, before.chains_rewritten,
        "one extra record read is not enough"
    );
    assert_eq!(s.pages_written, before.pages_written);
    assert!(s.clean_evictions > before.clean_evictions);
}

#[test]
fn a_rewrite_keeps_the_versions_a_snapshot_reads() {
    let fs = FaultFs::new();
    let db = open(&fs);
    let mut tx = db.begin();
    for k in 0..10u8 {
        tx.put(key(k), value(k)).unwrap();
    }
    tx.commit().unwrap();
    assert!(db.evict_all().unwrap() >= 1);
    let old = db.snapshot();
    put(&db, 3, value(103));
    assert!(db.evict_all().unwrap() >= 1);
    db.force_read_through(Some(true));
    read_until_admitted(&db, 6);
    let before = db.stats();
    assert!(db.evict_all().unwrap() >= 1);
    assert_eq!(db.stats().chains_rewritten - before.chains_rewritten, 1);
    // The old snapshot reads the old value through the rewritten image.
    assert_eq!(old.get(key(3)).unwrap().as_deref(), Some(&value(3)[..]));
    assert_eq!(get(&db, 3).as_deref(), Some(&value(103)[..]));
}
