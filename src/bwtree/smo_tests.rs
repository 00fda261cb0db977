//! Tests of structure changes and blind writes meeting pages that cannot be
//! read, or that move, over the in-memory [`super::PageIo`] of
//! `test_pages`.

use bytes::Bytes;

use super::test_pages::{key, neighbours, paged_tree, post_merge, MemPages};
use super::Tree;
use crate::sync::{lock, Arc, AtomicBool, Ordering};

/// A merge whose absorber cannot be read: the right leaf `R` is frozen
/// (resident), its left neighbour `L` evicted and its reads failing, so
/// the merge cannot finish. A walk over every leaf (a checkpoint's
/// listing here; GC's sweep and validation's walk descend the same way)
/// meets `R`, tries to help the merge a few times, and returns the error.
/// Before, it dropped the error and started its descent again, forever.
#[test]
fn a_walk_meeting_a_merge_it_cannot_finish_returns_the_error() {
    let io = Arc::new(MemPages::default());
    let tree = paged_tree(&io, 40);
    let (l_pid, r_pid, parent, merge) = neighbours(&tree);
    tree.evict(&[l_pid], false).unwrap();
    io.fail_reads.store(true, Ordering::Relaxed);
    let merge = post_merge(&tree, parent, merge);
    let guard = crossbeam_epoch::pin();
    assert!(tree.complete_merge(&merge, &guard).is_err(), "L's fault-in fails");
    assert!(tree.table.load(r_pid, &guard).unwrap().is_frozen(), "R is frozen");
    drop(guard);

    let tree = Arc::new(tree);
    let (tx, rx) = std::sync::mpsc::channel();
    let walker = tree.clone();
    std::thread::spawn(move || {
        let _ = tx.send(walker.list_leaves(u64::MAX).map(|_| ()));
    });
    // A liveness bound, not a measurement: before, the walk never ended.
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(r) => assert!(r.is_err(), "the walk reports the unreadable absorber"),
        Err(_) => panic!("the walk spun on the merge it could not finish"),
    }
    // Reads work again: the merge finishes and every key reads back.
    io.fail_reads.store(false, Ordering::Relaxed);
    tree.list_leaves(u64::MAX).unwrap();
    for i in 0..40u64 {
        assert_eq!(
            tree.get(key(i), u64::MAX).unwrap().as_deref(),
            Some(format!("v{i}").as_bytes())
        );
    }
}

/// A blind write over a restored stub (no key set, `max_ts` unknown)
/// reads the leaf's key set; the cleaner moves the stub meanwhile, so the
/// set's CAS loses. The write then faults the leaf in while it validates,
/// never at its install, after its commit took a timestamp (G1: only a
/// merge may fault in there, where a failing read would stall the commit
/// gate). Before, validation went on over the old head, and the install
/// met the moved stub and faulted the leaf in.
#[test]
fn a_blind_write_whose_key_set_loses_its_cas_faults_in_before_the_install() {
    let io = Arc::new(MemPages::default());
    let tree = paged_tree(&io, 40);
    let (leaves, pid_high) = tree.list_leaves(u64::MAX).unwrap();
    let list: Vec<_> = leaves.iter().map(|l| (l.pid, l.addr, l.low.clone())).collect();
    let restored = Arc::new(Tree::restore(super::Config::tiny(), Box::new(io.clone()), &list, pid_high).unwrap());
    let k = Bytes::from(key(20));
    let target = leaves
        .iter()
        .rev()
        .find(|l| l.low.as_deref().is_none_or(|low| low <= &k[..]))
        .unwrap();
    let (pid, from) = (target.pid, target.addr);
    let moved = Arc::new(AtomicBool::new(false));
    let (weak, pages, flag) = (Arc::downgrade(&restored), io.clone(), moved.clone());
    *lock(&io.on_key_set) = Some(Box::new(move || {
        // The cleaner's copy of the stub's image, and its swap.
        let to = {
            let mut images = lock(&pages.images);
            let copy = images[from as usize].clone();
            images.push(copy);
            images.len() as u64 - 1
        };
        let tree = weak.upgrade().unwrap();
        flag.store(tree.relocate(pid, from, to).unwrap(), Ordering::Relaxed);
    }));
    let v = Some(Bytes::from_static(b"new"));
    let Ok(prepared) = restored.prepare([(&k, &v)], 1000) else {
        panic!("the write validates")
    };
    prepared.install(1001).consolidate();
    assert!(moved.load(Ordering::Relaxed), "the stub moved during the key-set read");
    let counters = &restored.paging.as_deref().unwrap().counters;
    assert_eq!(
        counters.install_faults.load(Ordering::Relaxed),
        0,
        "a fault-in at the install"
    );
    assert_eq!(restored.get(&k, u64::MAX).unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(restored.get(key(21), u64::MAX).unwrap().as_deref(), Some(&b"v21"[..]));
}

/// A root that split and has not grown yet (it has a high fence, and its
/// right half is reached only through its sibling link) consolidating to
/// one child must not shrink: the shrink unlinks it, and the right half
/// with it, which no descent reaches again (leaked until the tree drops).
/// Before, it shrank. Keys are loaded in descending order, so the root's
/// newest index entry is its second and its split keeps one child.
#[test]
fn a_split_root_with_one_child_does_not_shrink() {
    use super::consolidate::collect_inner;
    use super::tree::root_pid;
    use crossbeam_epoch as epoch;

    let cfg = super::Config {
        inner_max: 3,
        inner_min: 1,
        inner_chain: 100,
        ..super::Config::tiny()
    };
    let tree = Tree::with_config(cfg).unwrap();
    let mut n = 0u64;
    let root = loop {
        tree.put(key(1000 - n), n + 1, "v").unwrap();
        n += 1;
        let guard = epoch::pin();
        let root = root_pid(tree.root.load(Ordering::Acquire));
        let head = tree.table.load(root, &guard).unwrap();
        if !head.leaf && collect_inner(head).entries.len() == 4 {
            break root;
        }
        assert!(n < 200, "no root of four children");
    };
    let guard = epoch::pin();
    let head = tree.table.load(root, &guard).unwrap();
    tree.consolidate(root, head, &[], &guard);
    let split = tree.table.load(root, &guard).unwrap();
    assert!(split.has_high(), "the root split");
    assert_eq!(collect_inner(split).entries.len(), 1, "and kept one child");
    tree.consolidate(root, split, &[], &guard);
    drop(guard);
    assert_eq!(tree.stats().root_shrinks, 0, "a split root shrank");
    for i in 0..n {
        assert_eq!(
            tree.get(key(1000 - i), u64::MAX).unwrap().as_deref(),
            Some(&b"v"[..]),
            "key {i}"
        );
    }
    assert!(tree.stats().root_grows >= 2, "the split root grew: {:?}", tree.stats());
}

/// A merge helper that read the record's `done` before the unlinker set it
/// may find the right page's id freed and reused by a new page: it must
/// leave that page alone. Here the record names a live leaf `X` (the one
/// after `R`) as its right page, as a reused id would. Before, the helper
/// froze `X`, found `L` already "merged" (its high fence is the record's
/// `right_low`, its sibling another page), and unlinked `X`: a live leaf
/// gone from the tree.
#[test]
fn a_merge_helper_leaves_a_reused_page_id_alone() {
    let io = Arc::new(MemPages::default());
    let tree = paged_tree(&io, 40);
    let (_, r_pid, _, mut merge) = neighbours(&tree);
    let (leaves, _) = tree.list_leaves(u64::MAX).unwrap();
    let at = leaves.iter().position(|l| l.pid == r_pid).unwrap();
    let x = leaves.get(at + 1).expect("a leaf after R").pid;
    merge.right = x;
    let guard = crossbeam_epoch::pin();
    tree.complete_merge(&Arc::new(merge), &guard).unwrap();
    let head = tree.table.load(x, &guard).expect("X is still in the table");
    assert!(!head.is_frozen(), "X was frozen by a merge that is not its own");
    drop(guard);
    for i in 0..40u64 {
        assert_eq!(
            tree.get(key(i), u64::MAX).unwrap().as_deref(),
            Some(format!("v{i}").as_bytes()),
            "key {i}"
        );
    }
}
