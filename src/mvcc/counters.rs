//! Sharded event counters: each thread adds to its own cache line; reading
//! sums the shards. Commits and installs count here without making every
//! committer write one shared line.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering::Relaxed};

#[cfg(not(loom))]
const SHARDS: usize = 8;
#[cfg(loom)]
const SHARDS: usize = 1;

pub(crate) struct Counter {
    shards: [CachePadded<AtomicU64>; SHARDS],
}

#[cfg(not(loom))]
fn shard() -> usize {
    // A plain static, not a shim atomic: it only spreads threads over the
    // shards (any value is correct), and a loom atomic cannot be a static.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    crate::sync::thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

#[cfg(loom)]
fn shard() -> usize {
    0
}

impl Counter {
    pub(crate) fn new() -> Self {
        Counter {
            shards: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
        }
    }

    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.shards[shard()].fetch_add(n, Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.shards.iter().map(|s| s.load(Relaxed)).sum()
    }
}

/// The engine's event counters (commits, conflicts, versions installed, GC
/// sweeps).
pub(crate) struct EngineCounters {
    pub(crate) commits: Counter,
    pub(crate) conflicts: Counter,
    pub(crate) versions_installed: Counter,
    pub(crate) sweeps: Counter,
}

impl EngineCounters {
    pub(crate) fn new() -> Self {
        EngineCounters {
            commits: Counter::new(),
            conflicts: Counter::new(),
            versions_installed: Counter::new(),
            sweeps: Counter::new(),
        }
    }
}
