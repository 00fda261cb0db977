//! Model 5: epoch reclamation never frees what a pinned reader still uses.
//! A reader looks keys up and scans while a writer replaces the chain the
//! reader is on (consolidation, or a split) and then drives the collector
//! (`flush`: push its garbage bag, try to advance the epoch, run expired
//! bags), so the retired chain is freed as early as the epoch allows. The
//! allocator poisons freed memory (see `common`): a node freed under a pinned
//! reader would make it read poison. Values handed out are zero-copy slices
//! of page buffers and must stay intact after their page is freed.
//!
//! (Seeded bug, checked by hand at the preemption bound of 2: with
//! `retire_chain` (`chain/mem.rs`) destroying a replaced chain at once
//! instead of deferring it through the epoch, both models fail:
//! `reader_survives_consolidation_and_reclamation` with "k1 missed" (the
//! lookup read a freed, poisoned chain) and
//! `scan_survives_split_and_reclamation` on its scan, whose keys are poison
//! bytes. Neither fails at bound 0. Unseeded: 364,397 and 349,624
//! executions, in 76 s to 114 s each.)
#![cfg(loom)]

mod common;

use bwtx::tree::Tree;
use common::*;
use loom::sync::Arc;
use loom::thread;

/// Push garbage and advance the epoch as far as the pinned threads allow.
fn reclaim() {
    for _ in 0..3 {
        crossbeam_epoch::pin().flush();
    }
}

fn pairs<B: AsRef<[u8]>>(scan: &[(B, B)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    scan.iter()
        .map(|(k, v)| (k.as_ref().to_vec(), v.as_ref().to_vec()))
        .collect()
}

/// The reader gets an inline value (a slice of the page's value blob), a
/// large one (a shared buffer) and a scan, while the writer consolidates
/// their page away and frees it.
#[test]
fn reader_survives_consolidation_and_reclamation() {
    model("reader_survives_consolidation_and_reclamation", || {
        let t = Arc::new(tree(config(2, 8, 2)));
        t.put(key(1), 1, val(1, 1)).unwrap();
        t.put(key(2), 1, big_val(2, 1)).unwrap(); // chain of 2: consolidated
        assert_eq!(t.stats().consolidations, 1);

        let t1 = t.clone();
        let r = thread::spawn(move || {
            let a = t1.get(key(1), 5).unwrap().expect("k1 missed");
            assert_eq!(&a[..], &val(1, 1)[..]);
            let b = t1.get(key(2), 5).unwrap().expect("k2 missed");
            assert_eq!(&b[..], &big_val(2, 1)[..]);
            let scan: Vec<_> = t1.range::<&[u8], _>(.., 5).map(|kv| kv.unwrap()).collect();
            (a, b, scan)
        });
        t.put(key(3), 6, val(3, 6)).unwrap();
        t.put(key(1), 7, val(1, 7)).unwrap(); // chain of 2: consolidated, old chain retired
        reclaim();
        let (a, b, scan) = r.join().unwrap();
        reclaim();

        assert_eq!(t.stats().consolidations, 2);
        // What the reader holds is intact after its page is gone.
        assert_eq!(&a[..], &val(1, 1)[..]);
        assert_eq!(&b[..], &big_val(2, 1)[..]);
        assert_eq!(pairs(&scan), vec![(key(1), val(1, 1)), (key(2), big_val(2, 1))]);
        expect_scan(&t, 9, &[(1, val(1, 7)), (2, big_val(2, 1)), (3, val(3, 6))]);
    });
}

/// The reader scans (forwards) while the writer splits the page it scans and
/// frees the pre-split chain: no key lost, none repeated, values intact.
#[test]
fn scan_survives_split_and_reclamation() {
    model("scan_survives_split_and_reclamation", || {
        let t: Arc<Tree> = Arc::new(tree(config(1, 4, 2)));
        for i in 1..=4 {
            t.put(key(i), 1, val(i, 1)).unwrap();
        }
        let t1 = t.clone();
        let r = thread::spawn(move || {
            let scan: Vec<_> = t1.range::<&[u8], _>(.., 1).map(|kv| kv.unwrap()).collect();
            let back: Vec<_> = t1.range::<&[u8], _>(.., 1).rev().map(|kv| kv.unwrap()).collect();
            (scan, back)
        });
        t.put(key(5), 2, val(5, 2)).unwrap(); // splits the root leaf
        reclaim();
        let (scan, mut back) = r.join().unwrap();
        reclaim();

        assert_eq!(t.stats().splits, 1);
        let want: Vec<(Vec<u8>, Vec<u8>)> = (1..=4).map(|i| (key(i), val(i, 1))).collect();
        assert_eq!(pairs(&scan), want);
        back.reverse();
        assert_eq!(pairs(&back), want);
    });
}
