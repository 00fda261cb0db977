//! The one place atomics come from. Under `--cfg loom` every atomic, and the
//! backoff used by CAS retry loops, comes from loom so that the model checker
//! sees every interleaving; crossbeam-epoch switches itself under
//! `--cfg crossbeam_loom` (with its `loom` feature).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64};

pub(crate) use std::sync::atomic::Ordering;

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
