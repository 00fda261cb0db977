//! Nothing leaks: every delta, page and page id retired during heavy
//! insert/delete churn with splits and merges is reclaimed, and dropping the
//! tree frees the rest. Needs `--features leak-check` (node counters); the
//! README's test command enables it.
#![cfg(feature = "leak-check")]

use bwtx::tree::{live_nodes, Config, Tree};

/// Advance the epoch until deferred destructors have run.
fn settle() {
    for _ in 0..2_000 {
        crossbeam_epoch::pin().flush();
    }
}

#[test]
fn churn_then_drop_frees_every_node_and_reuses_page_ids() {
    assert_eq!(live_nodes(), 0);
    let tree = Tree::with_config(Config::tiny()).unwrap();
    let mut first_cycle_ids = 0;
    for cycle in 0..6u64 {
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let tree = &tree;
                s.spawn(move || {
                    let base = cycle * 10;
                    for i in 0..1500u32 {
                        let k = (i * 4 + t).to_be_bytes();
                        tree.put(k, base + 1, k).unwrap();
                    }
                    for i in 0..1500u32 {
                        let k = (i * 4 + t).to_be_bytes();
                        tree.delete(k, base + 2).unwrap();
                    }
                });
            }
        });
        // Each sweep merges every page that is not the leftmost child of its
        // parent; the parents merge in turn, so a few sweeps empty the tree:
        // sweep until one frees nothing more.
        let mut live = isize::MAX;
        for _ in 0..20 {
            tree.collect_garbage(cycle * 10 + 2);
            settle();
            if live_nodes() >= live {
                break;
            }
            live = live_nodes();
        }
        assert_eq!(tree.range::<&[u8], _>(.., u64::MAX).count(), 0);
        let s = tree.stats();
        if cycle == 0 {
            first_cycle_ids = s.page_ids;
            assert!(s.splits > 100 && s.merges > 100, "{s:?}");
        }
        // Freed page ids come back: the id space does not grow with churn.
        assert!(
            s.page_ids <= first_cycle_ids * 2,
            "cycle {cycle}: {s:?} vs {first_cycle_ids}"
        );
        // An empty tree holds a handful of nodes, not the churn's garbage.
        assert!(live_nodes() < 64, "cycle {cycle}: {} nodes live, {s:?}", live_nodes());
    }
    drop(tree);
    settle();
    assert_eq!(live_nodes(), 0, "nodes leaked after drop");
}
