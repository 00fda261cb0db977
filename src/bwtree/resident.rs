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
//!
//! Retired bytes: a chain the table unlinks leaves the resident bytes at
//! once, but its memory is freed only after its grace period, when the
//! epoch collector runs its deferred destructor. Those bytes are counted
//! apart ([`ResidentBytes::retire`] adds, the destructor subtracts through
//! the [`Retired`] handle it holds): memory the process still holds, which
//! eviction cannot reduce. The collector frees garbage only as threads pin
//! (a few bags per 128 pins of a thread), so a thread that retires much
//! (a checkpoint re-basing every dirty leaf, an eviction batch, a load of
//! large commits) used to pile up tens of megabytes before anyone collected
//! it (measured: 87 MiB of garbage beside a 64 MiB cache during a load).
//! So a retire that moves its shard across a chunk boundary flushes the
//! retiring thread's guard ([`crossbeam_epoch::Guard::flush`]: the local
//! bag to the global queue, and one collection step), and
//! [`reclaim_until`] runs collection steps on demand.
//!
//! Evicted leaves' stubs (a chain of one `Evicted` node: the node and its
//! fences) are counted apart too ([`ResidentBytes::stubs`]): one per
//! evicted leaf, whatever the cache holds, so they grow with the data, not
//! with what is cached, and eviction cannot reduce them (evicting makes
//! one). Counted in the budget, they starved the evictor once the data
//! was large enough: at 5M keys in 32-key leaves about 227,000 stubs of
//! 352 estimated bytes are 80 MB, more than a 64 MiB budget, so the
//! resident bytes never fell below it and every reader and committer sat
//! in the help path (`design/storage.md` §5.3).

use crossbeam_epoch::Guard;

use crate::sync::{Arc, AtomicBool, OnceSlot, Ordering::Relaxed, ShardedU64};

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
    retired: Retired,
    /// Estimated bytes of the evicted leaves' stubs the table holds (not
    /// in the resident total; see the module doc). Boxed: the counter is
    /// about a kilobyte, and a tree is moved by value while it is built
    /// (inline, it overflowed a loom model's thread stack).
    stubs: Box<ShardedU64>,
}

/// Bytes of retired chains not yet freed, shared with their deferred
/// destructors (which may run after the table is gone).
#[derive(Clone)]
pub(crate) struct Retired(Arc<ShardedU64>);

impl Retired {
    /// The destructor freed `n` bytes.
    #[inline]
    pub(crate) fn freed(&self, n: u64) {
        self.0.sub(n);
    }
}

/// Without an alarm, a retire flushes its guard each time its shard crosses
/// a multiple of this many bytes (with one, the alarm's chunk).
const RETIRED_CHUNK_SHIFT: u32 = 20;

/// Collection steps [`reclaim_until`] runs at most (each frees up to
/// crossbeam's 8 bags of 64 deferred destructors whose grace period is over).
const RECLAIM_STEPS: usize = 32;

impl ResidentBytes {
    pub(crate) fn new() -> Self {
        ResidentBytes {
            shards: ShardedU64::new(),
            alarm: OnceSlot::new(),
            armed: AtomicBool::new(false),
            retired: Retired(Arc::new(ShardedU64::new())),
            stubs: Box::new(ShardedU64::new()),
        }
    }

    /// A stub of `n` bytes was published (an eviction, or a leaf restored
    /// from a location table).
    #[inline]
    pub(crate) fn add_stub(&self, n: u64) {
        self.stubs.add(n);
    }

    /// A stub of `n` bytes was retired under `guard` (a fault-in replaced
    /// it): it leaves the stub count and joins the retired bytes until its
    /// destructor ran. Returns the handle the destructor reports through.
    #[inline]
    pub(crate) fn retire_stub(&self, n: u64) -> Retired {
        self.stubs.sub(n);
        self.retired.0.add(n);
        self.retired.clone()
    }

    /// Estimated bytes of the evicted leaves' stubs (0 if the subtractions
    /// seen outrun the additions seen).
    pub(crate) fn stubs(&self) -> u64 {
        let sum = self.stubs.sum();
        if (sum as i64) < 0 {
            0
        } else {
            sum
        }
    }

    /// Set the stub total (before the counter is shared).
    pub(crate) fn set_stubs(&self, n: u64) {
        self.stubs.set(n);
    }

    /// `n` resident bytes were retired under `guard`: they leave the
    /// resident count, and `garbage` of them (what the destructor will free:
    /// `n` less the values something else still holds) join the retired
    /// one. Returns the handle the deferred destructor reports the free
    /// through (it must report `garbage`). On a chunk crossing, flushes
    /// `guard` (see the module doc).
    #[inline]
    pub(crate) fn retire(&self, n: u64, garbage: u64, guard: &Guard) -> Retired {
        self.shards.sub(n);
        let old = self.retired.0.add(garbage);
        let shift = self.alarm.get().map_or(RETIRED_CHUNK_SHIFT, |a| a.chunk_shift);
        if (old ^ old.wrapping_add(garbage)) >> shift != 0 {
            guard.flush();
        }
        self.retired.clone()
    }

    /// Bytes retired and not yet freed (0 if the frees seen outrun the
    /// retires seen).
    pub(crate) fn retired(&self) -> u64 {
        let sum = self.retired.0.sum();
        if (sum as i64) < 0 {
            0
        } else {
            sum
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

/// Run the epoch collector's steps (each on a fresh pin, so this thread
/// does not hold the epoch back) until `done`, at most [`RECLAIM_STEPS`] of
/// them. The collector is process-wide: a step frees the garbage of every
/// tree whose grace period is over; garbage a pinned thread can still reach
/// stays.
pub(crate) fn reclaim_until(done: impl Fn() -> bool) {
    for _ in 0..RECLAIM_STEPS {
        if done() {
            return;
        }
        crossbeam_epoch::pin().flush();
    }
}
