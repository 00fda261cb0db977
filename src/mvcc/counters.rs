//! Sharded event counters: each thread adds to its own cache line; reading
//! sums the shards. Commits and installs count here without making every
//! committer write one shared line.

use crate::sync::ShardedU64;

/// An event counter (`crate::sync::ShardedU64`, only ever added to).
pub(crate) struct Counter(ShardedU64);

impl Counter {
    pub(crate) fn new() -> Self {
        Counter(ShardedU64::new())
    }

    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.add(n);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.sum()
    }
}

/// The engine's event counters (commits, conflicts, versions installed, GC
/// sweeps, waits for the epoch collector).
pub(crate) struct EngineCounters {
    pub(crate) commits: Counter,
    pub(crate) conflicts: Counter,
    pub(crate) versions_installed: Counter,
    pub(crate) sweeps: Counter,
    /// Sleeps in the retired-memory throttle (`Engine::wait_for_reclaim`).
    pub(crate) reclaim_waits: Counter,
    /// Microseconds spent in those sleeps (measured, not nominal).
    pub(crate) reclaim_wait_micros: Counter,
}

impl EngineCounters {
    pub(crate) fn new() -> Self {
        EngineCounters {
            commits: Counter::new(),
            conflicts: Counter::new(),
            versions_installed: Counter::new(),
            sweeps: Counter::new(),
            reclaim_waits: Counter::new(),
            reclaim_wait_micros: Counter::new(),
        }
    }
}
