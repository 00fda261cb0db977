//! The flush policy's write cost (`design/storage.md` §4, §12): single-key
//! updates to distinct evicted leaves, one per leaf and round, each round
//! followed by an eviction of everything, write delta flushes only (no
//! whole image while the chain's deltas stay under their share of the base
//! image), and the size-tiered rebase at the part limit rewrites each
//! version a few times, not at every rebase. Counted with `Stats`, not
//! timed.

mod common;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Options};
use common::{fault_opts, DIR};

/// Leaves updated per round, and the keys between two of them (more than a
/// leaf holds, so each update lands on another leaf).
const LEAVES: u64 = 32;
const STRIDE: u64 = 200;

fn key(i: u64) -> String {
    format!("key{i:06}")
}

/// Paged leaves (the default `paged_leaf_max`), a cache larger than the
/// data (only `evict_all` evicts), synced commits (every flush may write
/// every version).
fn opts(fs: &FaultFs) -> Options {
    fault_opts(fs)
        .tree_config(bwtx::tree::Config::default())
        .durability(Durability::Sync)
        .segment_bytes(1 << 20)
        .cache_size(1 << 30)
}

/// (whole image record bytes, delta flush record bytes, whole images,
/// delta flushes) so far.
fn written(db: &Db) -> (u64, u64, u64, u64) {
    let s = db.stats();
    (
        s.page_image_bytes,
        s.page_delta_bytes,
        s.pages_written - s.delta_flushes,
        s.delta_flushes,
    )
}

#[test]
fn single_updates_to_evicted_leaves_write_deltas_not_images() {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let n = LEAVES * STRIDE;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut tx = db.begin();
        for &i in chunk {
            tx.put(key(i), vec![b'v'; 100]).unwrap();
        }
        tx.commit().unwrap();
    }
    db.checkpoint().unwrap();
    db.evict_all().unwrap();
    let start = written(&db);
    let rounds = 12;
    let mut one_round = 0;
    for round in 1..=rounds {
        // One new key of each leaf's range (distinct keys: no version
        // replaces another, so every delta flush keeps all it merged).
        for leaf in 0..LEAVES {
            let mut tx = db.begin();
            tx.put(key(leaf * STRIDE + round), vec![b'u'; 100]).unwrap();
            tx.commit().unwrap();
        }
        db.evict_all().unwrap();
        let now = written(&db);
        if round == 1 {
            one_round = now.1 - start.1;
        }
        eprintln!("round {round}: {now:?}");
    }
    let end = written(&db);
    let (images, deltas) = (end.2 - start.2, end.3 - start.3);
    let delta_bytes = end.1 - start.1;
    eprintln!(
        "{images} whole images, {deltas} delta flushes, {delta_bytes} delta bytes ({:.2} x one version each)",
        delta_bytes as f64 / (one_round * rounds) as f64
    );
    // Every flush is a delta flush: 12 single-version deltas stay under
    // half of these leaves' images (about 4.5 KB: a sequential load leaves
    // them about half full); under the old limits (four parts, a quarter
    // share) 25 of the 384 flushes were whole images.
    assert_eq!(images, 0, "{end:?}");
    assert_eq!(deltas, LEAVES * rounds, "{end:?}");
    // Rebasing everything above the base image at each fourth part
    // rewrote every version at each rebase (1.91 x the single versions'
    // bytes over these rounds, with the half share); the size-tiered
    // rebase at eight parts writes 1.23 x.
    assert!(
        delta_bytes <= one_round * rounds * 8 / 5,
        "{delta_bytes} delta bytes for {rounds} rounds of {one_round}"
    );
    // And every leaf reads back what was written.
    let snap = db.snapshot();
    for leaf in 0..LEAVES {
        for round in 1..=rounds {
            assert_eq!(
                snap.get(key(leaf * STRIDE + round)).unwrap().as_deref(),
                Some(&[b'u'; 100][..])
            );
        }
        assert_eq!(snap.get(key(leaf * STRIDE)).unwrap().as_deref(), Some(&[b'v'; 100][..]));
    }
}
