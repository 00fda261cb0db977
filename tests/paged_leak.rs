//! Nothing leaks with eviction: every node retired by evictions, fault-ins,
//! splits and merges under a tiny page cache is reclaimed, and closing the
//! database frees the rest. Needs `--features leak-check` (node counters).
#![cfg(feature = "leak-check")]

use std::sync::Arc;

use bwtx::fs::FaultFs;
use bwtx::tree::live_nodes;
use bwtx::{Durability, Options};

/// Advance the epoch until deferred destructors have run, waiting (at most
/// 10 s) for threads that are still exiting: a scoped thread counts as
/// joined once its closure returns, before its thread-local epoch handle
/// is torn down, and until then its garbage is not in the global queue
/// (seen under CPU contention: a few dozen nodes freed 10 ms later). A
/// real leak never reaches zero.
fn settle() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        for _ in 0..2_000 {
            crossbeam_epoch::pin().flush();
        }
        if live_nodes() == 0 || std::time::Instant::now() > deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn churn_with_eviction_then_close_frees_every_node() {
    assert_eq!(live_nodes(), 0);
    let fs = FaultFs::new();
    let db = Options::new()
        .file_system(Arc::new(fs.clone()))
        .durability(Durability::None)
        .gc_interval(Some(std::time::Duration::from_millis(1)))
        .checkpoint_bytes(0)
        .tree_config(bwtx::tree::Config::tiny())
        .cache_size(16 << 10)
        .open("/db")
        .unwrap();
    for cycle in 0..2u32 {
        // Reads fault leaves in during the first cycle and read them
        // through during the second, whatever the evictor's pressure flag
        // says, so both paths' nodes are counted.
        db.force_read_through(Some(cycle == 1));
        std::thread::scope(|s| {
            for t in 0..3u32 {
                let db = &db;
                s.spawn(move || {
                    for i in 0..400u32 {
                        let k = (i * 3 + t).to_be_bytes();
                        db.transaction(|tx| tx.put(k, [cycle as u8; 40])).unwrap();
                    }
                    for i in 0..400u32 {
                        let k = (i * 3 + t).to_be_bytes();
                        assert!(db.snapshot().get(k).unwrap().is_some());
                    }
                    for i in 0..400u32 {
                        let k = (i * 3 + t).to_be_bytes();
                        db.transaction(|tx| tx.delete(k)).unwrap();
                    }
                });
            }
        });
        assert_eq!(db.snapshot().range::<&[u8], _>(..).count(), 0);
    }
    let s = db.stats();
    assert!(s.evictions > 100 && s.cache_misses > 100 && s.merges > 0, "{s:?}");
    assert!(s.read_throughs > 0, "{s:?}");
    drop(db);
    settle();
    assert_eq!(live_nodes(), 0, "nodes leaked after close");
}
