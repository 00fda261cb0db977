//! Tests of the WAL rule (W1) at eviction and flush, of a checkpoint's
//! listing of leaves, and of a tree restored from that listing, over an
//! in-memory [`PageIo`] whose durable timestamp the test sets.

use bytes::Bytes;

use super::test_pages::{key, MemPages};
use super::Tree;
use crate::sync::{lock, Arc, Mutex, Ordering};

/// Tiny pages with paging over `io`; key `i` written at ts `i + 1` for
/// `i < n`, keys below `n / 2` once more at ts `n + i + 1`.
fn tree_with(io: &Arc<MemPages>, n: u64) -> Tree {
    let mut tree = Tree::with_config(super::Config::tiny()).unwrap();
    tree.set_page_io(Box::new(io.clone()));
    for i in 0..n {
        tree.put(key(i), i + 1, format!("v{i}")).unwrap();
    }
    for i in 0..n / 2 {
        tree.put(key(i), n + i + 1, format!("w{i}")).unwrap();
    }
    tree
}

#[test]
fn no_image_holds_a_version_above_the_durable_timestamp() {
    let io = Arc::new(MemPages::default());
    let n = 60;
    let tree = tree_with(&io, n);
    let newest = n + n / 2;
    for durable in [0, 10, n, n + 7, newest] {
        io.durable.store(durable, Ordering::Relaxed);
        tree.evict_all().unwrap();
        let written = io.max_ts();
        assert!(
            written.iter().all(|&t| t <= durable),
            "an image written with D = {durable} holds {written:?}"
        );
        // Every key reads back its value as of D (leaves holding newer
        // versions stayed resident; the others fault in).
        for i in (0..n).filter(|&i| i < durable) {
            let newer = i < n / 2 && n + i < durable;
            let want = if newer { format!("w{i}") } else { format!("v{i}") };
            assert_eq!(tree.get(key(i), durable).unwrap().as_deref(), Some(want.as_bytes()));
        }
    }
    let held = tree
        .paging
        .as_deref()
        .unwrap()
        .counters
        .held_by_wal
        .load(Ordering::Relaxed);
    assert!(held > 0, "some leaf was held back by W1");
    // Everything durable: every leaf goes.
    tree.evict_all().unwrap();
    assert!(tree.leaf_pids().is_empty(), "every leaf evicted once all is durable");
}

/// The value of key `i` in [`tree_with`]`(_, n)` as of `limit`.
fn value_at(n: u64, i: u64, limit: u64) -> String {
    if i < n / 2 && n + i < limit {
        format!("w{i}")
    } else {
        format!("v{i}")
    }
}

/// The images of `leaves` hold exactly the versions of [`tree_with`]`(_, n)`
/// at or below `limit`.
fn assert_lists_exactly(io: &MemPages, leaves: &[super::flush::ListedLeaf], n: u64, limit: u64) {
    let mut listed: Vec<(Bytes, u64)> = leaves.iter().flat_map(|l| io.versions(l.addr)).collect();
    listed.sort();
    let mut want: Vec<(Bytes, u64)> = (0..n)
        .map(|i| (Bytes::from(key(i)), i + 1))
        .chain((0..n / 2).map(|i| (Bytes::from(key(i)), n + i + 1)))
        .filter(|&(_, ts)| ts <= limit)
        .collect();
    want.sort();
    assert_eq!(listed, want, "the listed images hold exactly the versions <= {limit}");
}

/// A clean close's phase 1 (`flush_dirty` with `evict`): the dirty leaves
/// are written by evictions, not rebuilt in memory; those W1 holds back
/// (a version above the limit) are flushed as before; the listing then
/// holds exactly the versions at or below the limit, and restores them.
#[test]
fn a_closing_flush_evicts_the_dirty_leaves_and_lists_every_version() {
    let n = 80;
    for limit in [n + n / 2, n + 10] {
        let io = Arc::new(MemPages::default());
        let tree = tree_with(&io, n);
        io.durable.store(limit, Ordering::Relaxed);
        let resident = tree.leaf_pids().len();
        tree.flush_dirty(limit, true, &mut || {}).unwrap();
        let left = tree.leaf_pids().len();
        if limit == n + n / 2 {
            // (An eviction that merges an underfull leaf into its left
            // neighbour changes that neighbour's chain after its write, so
            // the neighbour stays, and is flushed instead.)
            assert!(left * 4 < resident, "{left} of {resident} leaves left resident");
        } else {
            assert!(
                left > 0 && left < resident,
                "{left} of {resident} leaves held back by W1"
            );
        }
        let (leaves, pid_high) = tree.list_leaves(limit).unwrap();
        assert_lists_exactly(&io, &leaves, n, limit);
        let list: Vec<_> = leaves.iter().map(|l| (l.pid, l.addr, l.low.clone())).collect();
        let restored = Tree::restore(super::Config::tiny(), Box::new(io.clone()), &list, pid_high).unwrap();
        for i in 0..n {
            let want = value_at(n, i, limit);
            assert_eq!(restored.get(key(i), limit).unwrap().as_deref(), Some(want.as_bytes()));
        }
    }
}

#[test]
fn a_listing_covers_every_version_at_or_below_its_limit_and_restores() {
    let io = Arc::new(MemPages::default());
    let n = 80;
    let tree = tree_with(&io, n);
    let limit = n + 10;
    io.durable.store(limit, Ordering::Relaxed);
    // Some leaves evicted (clean), the rest flushed by the listing.
    tree.evict(&tree.leaf_pids()[..3], false).unwrap();
    tree.flush_dirty(limit, false, &mut || {}).unwrap();
    let (leaves, pid_high) = tree.list_leaves(limit).unwrap();
    assert!(leaves.len() > 4 && leaves[0].low.is_none());
    assert_lists_exactly(&io, &leaves, n, limit);
    // Flushed whole: the leaves below the limit are clean now, evicted
    // without a write.
    let before = io.max_ts().len();
    io.durable.store(u64::MAX, Ordering::Relaxed);
    let clean = tree
        .paging
        .as_deref()
        .unwrap()
        .counters
        .clean_evictions
        .load(Ordering::Relaxed);
    tree.evict_all().unwrap();
    let after = tree
        .paging
        .as_deref()
        .unwrap()
        .counters
        .clean_evictions
        .load(Ordering::Relaxed);
    assert!(after > clean, "clean leaves evicted without a write");
    assert!(
        io.max_ts().len() - before < leaves.len(),
        "not every leaf was written again"
    );

    // Restore: no page read until a key is; every version <= limit is there.
    let list: Vec<_> = leaves.iter().map(|l| (l.pid, l.addr, l.low.clone())).collect();
    let reads = io.reads.load(Ordering::Relaxed);
    let restored = Tree::restore(super::Config::tiny(), Box::new(io.clone()), &list, pid_high).unwrap();
    assert_eq!(io.reads.load(Ordering::Relaxed), reads, "restoring reads no page");
    for i in 0..n {
        let want = value_at(n, i, limit);
        assert_eq!(
            restored.get(key(i), u64::MAX).unwrap().as_deref(),
            Some(want.as_bytes()),
            "{i}"
        );
    }
    let scanned = restored.range::<&[u8], _>(.., u64::MAX).count();
    assert_eq!(scanned as u64, n);
    // New pages get ids above the mark or from the free ones below it.
    for i in n..n + 200 {
        restored.put(key(i), limit + i, "x").unwrap();
    }
    assert_eq!(restored.range::<&[u8], _>(.., u64::MAX).count() as u64, n + 200);
}

/// While a checkpoint lists the leaves (its structure-modification gate
/// closed) leaves still split: a load in key order, which puts every new key
/// in the rightmost leaf, used to grow that one leaf for the whole listing,
/// rebuilding it whole at each consolidation (at 5M keys a transient of 80-90
/// MiB over a 64 MiB cache). A listing taken after those splits restores
/// every key.
#[test]
fn leaves_split_while_the_leaves_are_listed() {
    let io = Arc::new(MemPages::default());
    let tree = tree_with(&io, 8);
    io.durable.store(u64::MAX, Ordering::Relaxed);
    let paging = tree.paging.as_deref().unwrap();
    let before = tree.leaf_pids().len();
    paging.smo_gate.close();
    for i in 8..200 {
        tree.put(key(i), 100 + i, format!("v{i}")).unwrap();
    }
    let during = tree.leaf_pids().len();
    paging.smo_gate.open();
    // 200 keys in leaves of at most 4 (an oversize leaf splits at its next
    // consolidation, so allow a few keys over): at least 40 leaves.
    assert!(
        during >= 40,
        "leaves split while the gate was closed: {before} leaves before, {during} after"
    );
    // Merges still wait for the gate (`Tree::smo_pass`); a listing after the
    // splits is a partition that restores every key.
    let (leaves, pid_high) = tree.list_leaves(u64::MAX).unwrap();
    let list: Vec<_> = leaves.iter().map(|l| (l.pid, l.addr, l.low.clone())).collect();
    let restored = Tree::restore(super::Config::tiny(), Box::new(io.clone()), &list, pid_high).unwrap();
    assert_eq!(restored.range::<&[u8], _>(.., u64::MAX).count(), 200);
    for i in 8..200 {
        assert_eq!(
            restored.get(key(i), u64::MAX).unwrap().as_deref(),
            Some(format!("v{i}").as_bytes())
        );
    }
}

#[test]
fn a_bad_listing_is_refused() {
    let io: Arc<MemPages> = Arc::new(MemPages::default());
    let cfg = super::Config::tiny;
    let low = |s: &str| Some(Bytes::copy_from_slice(s.as_bytes()));
    type Listing = Vec<(u64, u64, Option<Bytes>)>;
    let cases: Vec<(Listing, u64)> = vec![
        (vec![], 4),
        (vec![(0, 0, None), (0, 1, low("b"))], 4),
        (vec![(0, 0, None), (5, 1, low("b"))], 4),
        (vec![(0, 0, low("a"))], 4),
        (vec![(0, 0, None), (1, 1, None)], 4),
        (vec![(0, 0, None)], 1 << 50),
    ];
    for (list, high) in cases {
        assert!(
            Tree::restore(cfg(), Box::new(io.clone()), &list, high).is_err(),
            "{list:?} {high}"
        );
    }
}

/// F2's page id met twice. A merge of leaf `R` into its left neighbour `L`
/// is left unfinished before the listing starts: its index-term-delete is
/// on the parent, but `R` is evicted and its fault-in failed (a read
/// error). The walk reaches `R` through `L`'s sibling pointer and lists
/// it. Then, while the walk goes on, the merge is finished (reads work
/// again), `R`'s id is freed, and a split of the rightmost leaf takes it
/// for its right half, which the walk then meets. Without the restart on
/// an id met twice, the listing names that id twice and the table does not
/// restore ("lists a page id twice").
#[test]
fn a_page_id_freed_and_reused_during_the_listing_restarts_it() {
    use super::mapping_table::Pid;
    use super::test_pages::{neighbours, paged_tree, post_merge};
    use crossbeam_epoch as epoch;

    let io = Arc::new(MemPages::default());
    let n = 40u64;
    let tree = paged_tree(&io, n);
    let (_, r_pid, parent, merge) = neighbours(&tree);

    // R evicted, reads failing: the merge is posted and cannot finish.
    tree.evict(&[r_pid], false).unwrap();
    io.fail_reads.store(true, Ordering::Relaxed);
    let merge = post_merge(&tree, parent, merge);
    assert!(
        tree.complete_merge(&merge, &epoch::pin()).is_err(),
        "R's fault-in fails"
    );

    // The walk: once R is listed, finish the merge; at the next step (the
    // walk unpinned), let R's id be freed and split the rightmost leaf so
    // that its right half takes it.
    #[derive(PartialEq)]
    enum Stage {
        Before,
        Merged,
        Reused,
    }
    let stage = Arc::new(Mutex::new(Stage::Before));
    let seen = Arc::new(Mutex::new(Vec::<Pid>::new()));
    let (hook_stage, hook_seen) = (stage.clone(), seen.clone());
    let io_hook = io.clone();
    let mut next_key = n;
    *lock(&tree.paging.as_deref().unwrap().list_hook) = Some(Box::new(move |tree: &Tree, listed: Option<Pid>| {
        let mut stage = lock(&hook_stage);
        match (listed, &*stage) {
            (Some(pid), Stage::Before) if pid == r_pid => {
                io_hook.fail_reads.store(false, Ordering::Relaxed);
                let guard = epoch::pin();
                tree.complete_merge(&merge, &guard).unwrap();
                assert!(merge.done.load(Ordering::Acquire), "the merge finished during the walk");
                guard.flush();
                *stage = Stage::Merged;
            }
            (None, Stage::Merged) => {
                // Unpinned here: the freed id reaches the free list once
                // the epoch moves on.
                for _ in 0..100_000 {
                    if tree.table.has_free_pid() {
                        break;
                    }
                    epoch::pin().flush();
                    std::thread::yield_now();
                }
                assert!(tree.table.has_free_pid(), "R's id was freed");
                // Keys after every key: the rightmost leaf splits.
                for _ in 0..16 {
                    tree.put(key(next_key), next_key + 1, format!("v{next_key}")).unwrap();
                    next_key += 1;
                    if tree.leaf_pids().contains(&r_pid) {
                        *stage = Stage::Reused;
                        return;
                    }
                }
                panic!("no split took R's freed id");
            }
            (Some(pid), _) => lock(&hook_seen).push(pid),
            _ => {}
        }
    }));

    let (leaves, pid_high) = tree.list_leaves(u64::MAX).unwrap();
    *lock(&tree.paging.as_deref().unwrap().list_hook) = None;
    assert!(*lock(&stage) == Stage::Reused, "the interleaving happened");
    // The walk met R's id twice and started over: the final listing names
    // each id once, R's for the split's right half, not for R.
    let mut pids: Vec<Pid> = leaves.iter().map(|l| l.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), leaves.len(), "a page id listed twice");
    assert!(lock(&seen).contains(&r_pid), "the walk met R's id again");
    let list: Vec<_> = leaves.iter().map(|l| (l.pid, l.addr, l.low.clone())).collect();
    let restored = Tree::restore(super::Config::tiny(), Box::new(io.clone()), &list, pid_high).unwrap();
    for i in 0..n {
        assert_eq!(
            restored.get(key(i), u64::MAX).unwrap().as_deref(),
            Some(format!("v{i}").as_bytes()),
            "key {i}"
        );
    }
}

/// The clock's hand lowers an evicted leaf's read-through count as it
/// passes it (`super::read_through`: a leaf comes in once its point reads
/// outrun the hand by `ADMIT`), so reads spread thinly over time never
/// bring a leaf in. Every leaf evicted, a few reads of one through its
/// stub, then turns of the hand: the count falls by one a pass, to 0.
#[test]
fn the_hand_lowers_an_evicted_leafs_read_through_count() {
    let io = Arc::new(MemPages::default());
    let n = 60;
    let tree = tree_with(&io, n);
    io.durable.store(u64::MAX, Ordering::Relaxed);
    let first = tree.leaf_pids()[0];
    tree.evict_all().unwrap();
    assert!(tree.leaf_pids().is_empty(), "every leaf evicted");
    tree.force_read_through(Some(true));
    let paging = tree.paging.as_deref().unwrap();
    let reads = 6;
    for _ in 0..reads {
        // key 0 is in the first leaf; written twice, it reads `w0`.
        assert_eq!(tree.get(key(0), u64::MAX).unwrap().as_deref(), Some(&b"w0"[..]));
    }
    assert_eq!(paging.counters.read_throughs.load(Ordering::Relaxed), reads);
    let counted = paging.through.get(first);
    assert!(counted >= reads, "each read-through counted ({counted})");
    // Nothing resident but the inner pages: the hand finds nothing to take
    // and turns its four times over every page id.
    tree.evict_to(0, 1).unwrap();
    let after = paging.through.get(first);
    assert_eq!(
        after,
        counted.saturating_sub(4),
        "four passes of the hand, one less each"
    );
    tree.evict_to(0, 1).unwrap();
    assert_eq!(paging.through.get(first), after.saturating_sub(4));
    // The leaf still reads through (the count is below the limit), and its
    // value is unchanged.
    assert_eq!(tree.get(key(0), u64::MAX).unwrap().as_deref(), Some(&b"w0"[..]));
    assert_eq!(paging.counters.read_throughs.load(Ordering::Relaxed), reads + 1);
}

/// PK1 (`super::paging`): an eviction leaves a cold stub in each leaf's
/// slot; a plain stub something unpacked and left is packed again by the
/// clock's hand once its use count is 0, not before; every key reads back.
#[test]
fn evictions_leave_cold_stubs_and_the_hand_packs_unpacked_ones() {
    use super::mapping_table::Peek;
    let io = Arc::new(MemPages::default());
    let n = 60;
    let tree = tree_with(&io, n);
    io.durable.store(u64::MAX, Ordering::Relaxed);
    let pids = tree.leaf_pids();
    assert!(pids.len() > 3);
    tree.evict_all().unwrap();
    let paging = tree.paging.as_deref().unwrap();
    let cold = |pid| matches!(tree.table.peek(pid, &crossbeam_epoch::pin()), Peek::Cold(_));
    assert!(pids.iter().all(|&p| cold(p)), "every leaf evicted cold");
    let packs = paging.counters.packs.load(Ordering::Relaxed);
    assert_eq!(packs, pids.len() as u64);
    // Unpacked (as a descent that steps over a leaf unpacks it) and left,
    // with a use count of 2: the hand's first two passes lower it, the
    // third packs.
    {
        let guard = crossbeam_epoch::pin();
        assert!(tree.table.load(pids[0], &guard).unwrap().is_stub());
    }
    paging.uses.touch(pids[0], 2);
    assert!(!cold(pids[0]));
    // Nothing resident but the inner pages: the hand makes its four turns.
    tree.evict_to(0, 1).unwrap();
    assert!(cold(pids[0]), "packed by the hand");
    assert_eq!(paging.counters.packs.load(Ordering::Relaxed), packs + 1);
    assert_eq!(paging.uses.get(pids[0]), 0);
    for i in 0..n {
        assert_eq!(
            tree.get(key(i), u64::MAX).unwrap().as_deref(),
            Some(value_at(n, i, u64::MAX).as_bytes())
        );
    }
}

/// KS1 (`super::paging`): a leaf evicted dirty keeps its key set in its
/// cold stub with an age count of 3 (its clock count stays 0); the clock's
/// hand leaves it alone, and aging passes lower the count and drop the set
/// on the fourth (a new cold record). Every key reads back the same.
#[test]
fn aging_passes_drop_the_key_sets_no_write_used() {
    use super::mapping_table::Peek;
    let io = Arc::new(MemPages::default());
    let n = 60;
    let tree = tree_with(&io, n);
    io.durable.store(u64::MAX, Ordering::Relaxed);
    let pids = tree.leaf_pids();
    assert!(pids.len() > 3);
    tree.evict_all().unwrap();
    let paging = tree.paging.as_deref().unwrap();
    let keyed = |pid| matches!(tree.table.peek(pid, &crossbeam_epoch::pin()), Peek::Cold(c) if c.has_keys());
    assert!(
        pids.iter().all(|&p| keyed(p)),
        "evicted dirty: every leaf keeps its key set"
    );
    assert!(
        pids.iter().all(|&p| paging.key_age.get(p) == 3),
        "three passes of grace"
    );
    assert!(
        pids.iter().all(|&p| paging.uses.get(p) == 0),
        "the clock's counts apart"
    );
    // Nothing resident but the inner pages: the hand makes its four turns,
    // and leaves the cold leaves' counts alone.
    tree.evict_to(0, 1).unwrap();
    assert!(pids.iter().all(|&p| keyed(p) && paging.key_age.get(p) == 3));
    let stubs = tree.stub_bytes();
    for pass in 0..3 {
        assert_eq!(tree.age_key_sets(), 0, "pass {pass}");
    }
    assert!(pids.iter().all(|&p| keyed(p)));
    assert_eq!(tree.age_key_sets(), pids.len(), "no write used them: dropped");
    assert!(pids.iter().all(|&p| !keyed(p)));
    assert_eq!(
        paging.counters.key_sets_dropped.load(Ordering::Relaxed),
        pids.len() as u64
    );
    assert!(
        tree.stub_bytes() + 8 * n <= stubs,
        "{} of {stubs} stub bytes",
        tree.stub_bytes()
    );
    for i in 0..n {
        assert_eq!(
            tree.get(key(i), u64::MAX).unwrap().as_deref(),
            Some(value_at(n, i, u64::MAX).as_bytes())
        );
    }
}

/// A location table whose listing cannot be a tree's is refused, never
/// restored (the open reports it as corruption of the table, naming it):
/// no leaf, a page id twice, an id at or above the high-water mark, a
/// high-water mark out of range, a low fence on the first leaf or none on
/// a later one, low fences not in key order. The well-formed listing beside them restores.
#[test]
fn restore_refuses_a_listing_that_is_no_tree() {
    let io = Arc::new(MemPages::default());
    let low = |s: &str| Some(Bytes::copy_from_slice(s.as_bytes()));
    let restore = |list: &[(u64, u64, Option<Bytes>)], pid_high| {
        Tree::restore(super::Config::tiny(), Box::new(io.clone()), list, pid_high).map(|_| ())
    };
    let good = vec![(0, 0, None), (3, 1, low("k")), (5, 2, low("t"))];
    assert_eq!(restore(&good, 6), Ok(()));
    type Listing = Vec<(u64, u64, Option<Bytes>)>;
    let cases: Vec<(&str, Listing, u64, &str)> = vec![
        ("empty", vec![], 6, "lists no leaf"),
        (
            "duplicate",
            vec![(0, 0, None), (3, 1, low("k")), (3, 2, low("t"))],
            6,
            "twice",
        ),
        (
            "at pid_high",
            vec![(0, 0, None), (6, 1, low("k"))],
            6,
            "above its high-water mark",
        ),
        ("pid_high huge", good.clone(), u64::MAX, "out of range"),
        ("pid_high 2^40 + 1", good.clone(), (1 << 40) + 1, "out of range"),
        (
            "first with a fence",
            vec![(0, 0, low("a")), (3, 1, low("k"))],
            6,
            "only the first leaf",
        ),
        (
            "later without",
            vec![(0, 0, None), (3, 1, None)],
            6,
            "only the first leaf",
        ),
        (
            "fences out of order",
            vec![(0, 0, None), (3, 1, low("t")), (5, 2, low("k"))],
            6,
            "key order",
        ),
        (
            "fence repeated",
            vec![(0, 0, None), (3, 1, low("k")), (5, 2, low("k"))],
            6,
            "key order",
        ),
    ];
    for (name, list, pid_high, want) in cases {
        match restore(&list, pid_high) {
            Err(reason) => assert!(reason.contains(want), "{name}: {reason}"),
            Ok(()) => panic!("{name}: restored"),
        }
    }
}
