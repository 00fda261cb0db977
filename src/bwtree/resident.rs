//! The resident-byte counter of a tree with paging (`design/storage.md`
//! §5.1): the estimated heap bytes of the chains the mapping table holds,
//! sharded (`crate::sync::ShardedU64`, as the engine's event counters are) so that
//! installs and retirements on different threads do not all write one cache
//! line. Reading sums the shards.
//!
//! It also wakes the evictor: once [`ResidentBytes::set_alarm`] gave it a
//! limit and a wake function, an add that moves its shard across a chunk
//! boundary (a chunk is about 1/128 of the limit) sums the shards, and if the
//! total is above the limit and the alarm is armed, disarms it and calls the
//! wake function: one wake per arming ([`ResidentBytes::arm`], which the
//! evictor calls after each round).

use crate::sync::{AtomicBool, OnceSlot, Ordering::Relaxed, ShardedU64};

/// What an add past the limit calls, set once.
struct Alarm {
    limit: u64,
    /// Shards check the total when they cross a multiple of `1 << chunk_shift`.
    chunk_shift: u32,
    wake: Box<dyn Fn() + Send + Sync>,
}

/// Resident bytes: each shard holds a wrapping (two's complement) sum of
/// what its threads added and subtracted; the shards' wrapping sum is the
/// total.
pub(crate) struct ResidentBytes {
    shards: ShardedU64,
    alarm: OnceSlot<Alarm>,
    armed: AtomicBool,
}

impl ResidentBytes {
    pub(crate) fn new() -> Self {
        ResidentBytes {
            shards: ShardedU64::new(),
            alarm: OnceSlot::new(),
            armed: AtomicBool::new(false),
        }
    }

    /// Add `n` bytes.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        let old = self.shards.add(n);
        if let Some(alarm) = self.alarm.get() {
            if (old ^ old.wrapping_add(n)) >> alarm.chunk_shift != 0 {
                self.check(alarm);
            }
        }
    }

    /// Subtract `n` bytes.
    #[inline]
    pub(crate) fn sub(&self, n: u64) {
        self.shards.sub(n);
    }

    /// Set the total (before the counter is shared).
    pub(crate) fn set(&self, n: u64) {
        self.shards.set(n);
    }

    /// The total (0 if the subtractions seen outrun the additions seen).
    pub(crate) fn get(&self) -> u64 {
        let sum = self.shards.sum();
        if (sum as i64) < 0 {
            0
        } else {
            sum
        }
    }

    #[cold]
    fn check(&self, alarm: &Alarm) {
        if self.armed.load(Relaxed) && self.get() > alarm.limit && self.armed.swap(false, Relaxed) {
            (alarm.wake)();
        }
    }

    /// Call `wake` when the total passes `limit` while armed (see the module
    /// doc). Set at most once; a later call is ignored. Arms the alarm.
    pub(crate) fn set_alarm(&self, limit: u64, wake: Box<dyn Fn() + Send + Sync>) {
        let chunk = (limit / 128).max(4096);
        let chunk_shift = 63 - chunk.leading_zeros();
        self.alarm.get_or_init(|| {
            Box::new(Alarm {
                limit,
                chunk_shift,
                wake,
            })
        });
        self.arm();
    }

    /// Arm the alarm: the next add that finds the total above the limit
    /// wakes (once).
    pub(crate) fn arm(&self) {
        self.armed.store(true, Relaxed);
    }
}
