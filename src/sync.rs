//! The library's synchronisation primitives, in one place: atomics, locks,
//! condition variables, `Arc`, thread-locals, and the backoff of CAS retry
//! loops. Under `--cfg loom` each comes from loom, so that the model checker
//! sees every interleaving of the code that uses it; crossbeam-epoch switches
//! itself under `--cfg crossbeam_loom` (with its `loom` feature).
//!
//! Library code imports these, never `std::sync` or `std::thread_local!`
//! directly. The exceptions, each with no protocol of ours on it:
//! - `Arc<dyn Fs>` and `Arc<dyn FsSync>`: shared handles to the file system
//!   and to a file's sync handle;
//! - `Weak<Engine>` of the background threads, which exist only outside loom;
//! - process-wide statics that only spread threads, count or number things
//!   (a static cannot hold a loom atomic): the shard hint of [`ShardedU64`],
//!   the first-slot hint of `mvcc::registry`, the savepoints' transaction ids
//!   in `db::savepoint`, the engines' ids in `engine` (a keyspace handle
//!   names its database by it), and the live-node counter of feature
//!   `leak-check`;
//! - the per-thread node pool of `bwtree::chain::mem`, compiled only outside
//!   loom (under loom every node is a plain allocation);
//! - the test tools behind features (`fs::FaultFs`, `history`);
//! - the cleaner's victim list in `engine::clean` (a `std::sync::RwLock`
//!   holding a hint, which chains a flush should not extend: no protocol
//!   depends on it, and a loom lock would add scheduling points to every
//!   model's flushes).
//!
//! `std::sync::OnceLock` has no loom counterpart; the lazily grown lists that
//! need one use [`OnceSlot`], built here on a shim atomic so loom checks it
//! too.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
#[cfg(loom)]
pub(crate) use loom::thread_local;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
#[cfg(not(loom))]
pub(crate) use std::thread_local;

pub(crate) use std::sync::atomic::Ordering;
pub(crate) use std::sync::TryLockError;

/// Lock `m`, ignoring poisoning: every lock in the library guards state that
/// stays consistent at each unlock point, so a panic elsewhere while it was
/// held does not make the state wrong.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Exponential backoff for CAS retry loops.
///
/// Outside loom this is crossbeam-utils' `Backoff`; under loom a spin must be a
/// yield, or the model checker would explore an unbounded spin.
pub(crate) struct Backoff {
    #[cfg(not(loom))]
    inner: crossbeam_utils::Backoff,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff {
            #[cfg(not(loom))]
            inner: crossbeam_utils::Backoff::new(),
        }
    }

    /// Back off after a lost CAS.
    pub(crate) fn snooze(&self) {
        #[cfg(not(loom))]
        self.inner.snooze();
        #[cfg(loom)]
        loom::thread::yield_now();
    }
}

/// Give the CPU to another thread (under loom, to another model thread: a
/// plain `std::thread::yield_now` in a retry loop is an unbounded spin to
/// the model checker).
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Wait until `ready()` holds, for waits expected to be short (another
/// thread is mid-way through a bounded step): spin on the condition for a
/// while, then yield between checks. Under loom every check is a yield.
pub(crate) fn wait_until(mut ready: impl FnMut() -> bool) {
    #[cfg(not(loom))]
    {
        for _ in 0..SPIN_CHECKS {
            if ready() {
                return;
            }
            for _ in 0..16 {
                std::hint::spin_loop();
            }
        }
        while !ready() {
            std::thread::yield_now();
        }
    }
    #[cfg(loom)]
    while !ready() {
        loom::thread::yield_now();
    }
}

/// Checks [`wait_until`] spins for before yielding: a few microseconds, the
/// order of one commit's installation.
#[cfg(not(loom))]
const SPIN_CHECKS: u32 = 512;

/// Where group-commit followers sleep while a leader writes or syncs for
/// them, with a count of wake-ups so that none is lost.
///
/// # Protocol
/// - A follower reads [`WakeUps::seen`] (without a lock) *before* its
///   attempt to lead, and after the attempt fails calls
///   [`WakeUps::sleep`] with that count and its own "done" test.
/// - A leader that finished (or failed) calls [`WakeUps::wake`]: it bumps
///   the count under the condvar's mutex, then notifies.
/// - `sleep` checks the count and `done` under the mutex and sleeps only
///   if neither moved. A leader that finished after the follower's attempt
///   began either bumped the count before the follower took the mutex (it
///   looks again instead of sleeping) or after the follower released it by
///   sleeping (the notification wakes it). The 1 ms timeout is a safety
///   net, never the protocol (`loom_tests/tests/log_sync.rs` checks it
///   without one mattering: loom reports a deadlock if the count is not
///   compared).
pub(crate) struct WakeUps {
    count: AtomicU64,
    lock: Mutex<()>,
    cv: Condvar,
}

impl WakeUps {
    pub(crate) fn new() -> Self {
        WakeUps {
            count: AtomicU64::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// The wake-ups so far: read before an attempt to lead.
    pub(crate) fn seen(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Wake every follower (a leader finished or failed).
    pub(crate) fn wake(&self) {
        {
            let _g = lock(&self.lock);
            self.count.fetch_add(1, Ordering::AcqRel);
        }
        self.cv.notify_all();
    }

    /// Sleep until the next wake-up (1 ms at most), unless one came since
    /// `seen` or `done()` holds.
    pub(crate) fn sleep(&self, seen: u64, done: impl FnOnce() -> bool) {
        self.sleep_up_to(seen, done, std::time::Duration::from_millis(1));
    }

    /// [`WakeUps::sleep`] for up to `max`: for a waiter that no leader
    /// serves (the change stream waiting for the next sync), which the
    /// next wake-up ends.
    pub(crate) fn sleep_up_to(&self, seen: u64, done: impl FnOnce() -> bool, max: std::time::Duration) {
        let g = lock(&self.lock);
        if self.count.load(Ordering::Acquire) == seen && !done() {
            let _ = self.cv.wait_timeout(g, max);
        }
    }
}

/// A `u64` split over cache-padded shards, each thread adding to its own
/// (threads are spread over the shards on first use), so that counters
/// bumped on every commit or install do not make every thread write one
/// cache line. Reading sums the shards (wrapping: a shard may go "negative"
/// when one thread subtracts what another added).
pub(crate) struct ShardedU64 {
    shards: [crossbeam_utils::CachePadded<AtomicU64>; SHARDS],
}

#[cfg(not(loom))]
const SHARDS: usize = 8;
#[cfg(loom)]
const SHARDS: usize = 1;

/// This thread's shard.
#[cfg(not(loom))]
fn shard() -> usize {
    // A plain static, not a shim atomic: it only spreads threads over the
    // shards (any value is correct), and a loom atomic cannot be a static.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

#[cfg(loom)]
fn shard() -> usize {
    0
}

impl ShardedU64 {
    pub(crate) fn new() -> Self {
        ShardedU64 {
            shards: std::array::from_fn(|_| crossbeam_utils::CachePadded::new(AtomicU64::new(0))),
        }
    }

    /// Add `n` to this thread's shard; the shard's previous value.
    #[inline]
    pub(crate) fn add(&self, n: u64) -> u64 {
        self.shards[shard()].fetch_add(n, Ordering::Relaxed)
    }

    /// Subtract `n` (wrapping) from this thread's shard.
    #[inline]
    pub(crate) fn sub(&self, n: u64) {
        self.shards[shard()].fetch_sub(n, Ordering::Relaxed);
    }

    /// Set the total to `n` (before the counter is shared).
    pub(crate) fn set(&self, n: u64) {
        for s in &self.shards {
            s.store(0, Ordering::Relaxed);
        }
        self.shards[0].store(n, Ordering::Relaxed);
    }

    /// The wrapping sum of the shards.
    pub(crate) fn sum(&self) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |a, s| a.wrapping_add(s.load(Ordering::Relaxed)))
    }
}

/// A slot written at most once with a boxed value, then read without a lock:
/// the "race to initialise" cell (`once_cell::race::OnceBox`), on a shim
/// atomic so that loom checks it.
///
/// # Definitions
/// - The slot is *empty* while its pointer is null, *set* once a
///   compare-and-swap from null installed a pointer from `Box::into_raw`.
///
/// # Invariants
/// 1. A non-null pointer came from `Box::into_raw` and is never changed or
///    freed until `drop` (which has `&mut self`, so no reference from
///    [`OnceSlot::get`] is alive then).
/// 2. Every reader loads with `Acquire` and the one successful CAS publishes
///    with `Release`, so the box's contents are initialised before a reader
///    can see the pointer.
pub(crate) struct OnceSlot<T> {
    ptr: AtomicPtr<T>,
    /// Owns a `T` (for drop check) without the auto traits of `AtomicPtr`,
    /// which would make the slot `Send + Sync` for any `T`.
    _owns: std::marker::PhantomData<*mut T>,
}

impl<T> OnceSlot<T> {
    pub(crate) fn new() -> Self {
        OnceSlot {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
            _owns: std::marker::PhantomData,
        }
    }

    /// The value, if set.
    pub(crate) fn get(&self) -> Option<&T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: by invariant 1, a non-null `p` points to a live box that
        // stays put while `self` is borrowed; invariant 2 makes its contents
        // visible to this thread.
        unsafe { p.as_ref() }
    }

    /// The value, setting it to `make()` first if the slot is empty. Racing
    /// callers may each call `make`; exactly one value is kept, the others
    /// are dropped, and every caller gets the kept one.
    pub(crate) fn get_or_init(&self, make: impl FnOnce() -> Box<T>) -> &T {
        if let Some(v) = self.get() {
            return v;
        }
        let fresh = Box::into_raw(make());
        match self
            .ptr
            .compare_exchange(std::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            // SAFETY: `fresh` is now the slot's pointer: invariant 1 keeps it
            // alive for as long as `self` is borrowed.
            Ok(_) => unsafe { &*fresh },
            Err(kept) => {
                // SAFETY: `fresh` came from `Box::into_raw` above and was never
                // published (the CAS failed), so this thread still owns it.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: `kept` is the non-null pointer another thread
                // installed; invariants 1 and 2 apply.
                unsafe { &*kept }
            }
        }
    }
}

impl<T> Drop for OnceSlot<T> {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        let p = *self.ptr.get_mut();
        #[cfg(loom)]
        let p = self.ptr.with_mut(|p| *p);
        if !p.is_null() {
            // SAFETY: invariant 1: `p` came from `Box::into_raw`, nothing else
            // frees it, and `&mut self` means no borrow from `get` is alive.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

// SAFETY: an `OnceSlot<T>` owns a `Box<T>` and hands out `&T`: it may move to
// another thread when `T: Send`, and be shared when `T: Send + Sync` (a
// sharer may set the value, which then drops on another thread).
unsafe impl<T: Send> Send for OnceSlot<T> {}
// SAFETY: see `Send` above.
unsafe impl<T: Send + Sync> Sync for OnceSlot<T> {}
