//! Models of the cleaner's relocation CAS (`Tree::relocate`,
//! `design/storage.md` §9 step 3): the cleaner copies a page's published
//! image to the head of the page store, then swaps the new address in by a
//! CAS on the head it built from. A write that lands on the page between
//! the two (a version delta over an evicted leaf's stub, or over a clean
//! resident base) makes the CAS lose, and the relocation is skipped; a
//! relocation that wins first is built on by the write. In every
//! interleaving the write lands and survives the page's next eviction and
//! fault-in, and the other key reads its value.
//! (Seeded bug, checked by hand: `Tree::relocate` CASing against the head
//! it loads again just before the CAS, instead of the one it built from,
//! drops the racing write's delta: both models fail on the read of "k"
//! right after the race. The blind-write model finds it at a preemption
//! bound of 2; the clean leaf's only at 3, where it runs 30,467 executions
//! in about a minute, so that model runs at 3 whatever
//! `LOOM_MAX_PREEMPTIONS` says. The same bug is caught with real threads
//! by `tests/paged_clean.rs`'s `relocations_racing_writers_lose_no_update`,
//! four runs of five.)
#![cfg(loom)]

mod common;

use bwtx::Db;
use common::*;

/// A paged database holding `j` and `k` (one leaf), evicted.
fn evicted_db() -> Db {
    let db = paged_db();
    let mut tx = db.begin();
    tx.put("j", "j0").unwrap();
    tx.put("k", "old").unwrap();
    tx.commit().unwrap();
    db.evict_all().unwrap();
    db
}

/// Commit `k` = `new` while the cleaner relocates every published image;
/// then check the write and `j`, evict every leaf and check both again
/// (read from the page store: a relocation that kept a stale image there
/// shows now).
fn race_relocation(db: Db) {
    let mut tx = db.begin();
    tx.put("k", "new").unwrap();
    let writer = spawn_big(move || {
        tx.commit().unwrap();
    });
    db.relocate_all().unwrap();
    writer.join().unwrap();
    for round in ["before", "after"] {
        let s = db.snapshot();
        assert_eq!(
            s.get("k").unwrap().as_deref(),
            Some(&b"new"[..]),
            "{round} the eviction"
        );
        assert_eq!(s.get("j").unwrap().as_deref(), Some(&b"j0"[..]), "{round} the eviction");
        drop(s);
        db.evict_all().unwrap();
    }
    assert_eq!(db.stats().live_keys, 2);
}

/// An evicted leaf: the write is a blind write, a version delta over the
/// stub (`bwtree::paging` P4); the relocation rebuilds those deltas over a
/// stub with the new address.
#[test]
fn relocation_never_loses_a_blind_write() {
    model("relocation_never_loses_a_blind_write", || {
        // Every thread on a 4 MiB stack: evictions, relocations and a
        // commit overflow a model thread's default one.
        spawn_big(|| {
            let db = evicted_db();
            race_relocation(db);
        })
        .join()
        .unwrap();
    });
}

/// A clean resident leaf (faulted in by a read): the write prepends a
/// delta to its base; the relocation replaces the base with the image read
/// back from the new address.
#[test]
fn relocation_never_loses_a_write_to_a_clean_leaf() {
    model_at_least("relocation_never_loses_a_write_to_a_clean_leaf", 3, || {
        spawn_big(|| {
            let db = evicted_db();
            db.force_read_through(Some(false));
            assert_eq!(db.snapshot().get("j").unwrap().as_deref(), Some(&b"j0"[..]));
            assert!(db.stats().cache_misses >= 1, "the read faulted the leaf in");
            assert!(db.relocate_all().unwrap() >= 1, "the leaf moves: clean and resident");
            race_relocation(db);
        })
        .join()
        .unwrap();
    });
}
