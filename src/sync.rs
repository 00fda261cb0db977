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
