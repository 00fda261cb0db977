//! A leaf whose on-disk chain holds versions its page had dropped (a base
//! image and a delta flush of newer versions of some keys, whose older ones
//! GC had dropped before the eviction) loses them again at fault-in
//! (`collect_base`), which rebuilds the page. The page is then left dirty,
//! so its next eviction writes it whole without them, and later fault-ins
//! read that compact image (with the page left clean, every fault-in of the
//! same chain merged and rebuilt it again, and nothing was ever written).

mod common;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability};
use common::{fault_opts, DIR};

fn key(i: usize) -> String {
    format!("key{i:05}")
}

/// Leaves of the default size (a few updated keys make a delta flush well
/// under a quarter of the image); a log synced per commit, so that every
/// version may be written (W1).
fn open(fs: &FaultFs) -> Db {
    fault_opts(fs)
        .tree_config(bwtx::tree::Config::default())
        .durability(Durability::Sync)
        .cache_size(1 << 20)
        .open(DIR)
        .unwrap()
}

fn put_all(db: &Db, keys: impl Iterator<Item = usize>, round: usize) {
    for chunk in keys.collect::<Vec<_>>().chunks(100) {
        let mut tx = db.begin();
        for &i in chunk {
            tx.put(key(i), format!("v{round}-{i}")).unwrap();
        }
        tx.commit().unwrap();
    }
}

fn read_all(db: &Db, n: usize, updated: impl Fn(usize) -> bool) {
    let snap = db.snapshot();
    for i in 0..n {
        let round = usize::from(updated(i));
        let want = format!("v{round}-{i}");
        assert_eq!(snap.get(key(i)).unwrap().as_deref(), Some(want.as_bytes()), "{i}");
    }
}

#[test]
fn a_fault_in_that_drops_versions_leaves_the_page_to_be_written_compact() {
    const N: usize = 3000;
    let updated = |i: usize| i.is_multiple_of(50);
    let fs = FaultFs::new();
    let db = open(&fs);
    put_all(&db, 0..N, 0);
    db.evict_all().unwrap();
    // A few keys per leaf updated, their old versions collected while the
    // leaves are resident; the eviction then writes delta flushes.
    put_all(&db, (0..N).filter(|&i| updated(i)), 1);
    db.collect_garbage();
    let s0 = db.stats();
    db.evict_all().unwrap();
    let s1 = db.stats();
    assert!(s1.delta_flushes > s0.delta_flushes, "delta flushes written: {s1:?}");

    // Each leaf with a delta flush merges its chain and drops the old
    // versions again: it is written whole at its next eviction.
    read_all(&db, N, updated);
    db.evict_all().unwrap();
    let s2 = db.stats();
    assert!(s2.cache_misses > s1.cache_misses);
    assert!(
        s2.pages_written > s1.pages_written,
        "the rebuilt leaves are written again: {} -> {}",
        s1.pages_written,
        s2.pages_written
    );

    // Their images are compact now: read again, nothing is dropped and
    // nothing written.
    read_all(&db, N, updated);
    db.evict_all().unwrap();
    let s3 = db.stats();
    assert!(s3.cache_misses > s2.cache_misses);
    assert_eq!(s3.pages_written, s2.pages_written, "clean evictions only");

    // And the data survives a reopen.
    drop(db);
    let db = open(&fs);
    read_all(&db, N, updated);
}
