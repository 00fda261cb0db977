//! The resident-byte counter of a tree with paging (`design/storage.md`
//! §5.1): the estimated heap bytes of the chains the mapping table holds,
//! sharded like the engine's event counters (`mvcc/counters.rs`) so that
//! installs and retirements on different threads do not all write one cache
//! line. Reading sums the shards.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering::Relaxed};

#[cfg(not(loom))]
const SHARDS: usize = 8;
#[cfg(loom)]
const SHARDS: usize = 1;

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

/// Resident bytes: each shard holds a wrapping (two's complement) sum of
/// what its threads added and subtracted; the shards' wrapping sum is the
/// total.
pub(crate) struct ResidentBytes {
    shards: [CachePadded<AtomicU64>; SHARDS],
}

impl ResidentBytes {
    pub(crate) fn new() -> Self {
        ResidentBytes {
            shards: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
        }
    }

    /// Add `n` bytes.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.shards[shard()].fetch_add(n, Relaxed);
    }

    /// Subtract `n` bytes.
    #[inline]
    pub(crate) fn sub(&self, n: u64) {
        self.shards[shard()].fetch_sub(n, Relaxed);
    }

    /// Set the total (before the counter is shared).
    pub(crate) fn set(&self, n: u64) {
        for s in &self.shards {
            s.store(0, Relaxed);
        }
        self.shards[0].store(n, Relaxed);
    }

    /// The total (0 if the subtractions seen outrun the additions seen).
    pub(crate) fn get(&self) -> u64 {
        let sum = self.shards.iter().fold(0u64, |a, s| a.wrapping_add(s.load(Relaxed)));
        if (sum as i64) < 0 {
            0
        } else {
            sum
        }
    }
}
