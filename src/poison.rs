//! The sticky flag that turns a failed write or sync into a poisoned file
//! set (`design/durability.md`: after a failed fsync the database refuses
//! writes until it is reopened; an fsync is never retried).
//!
//! One `Poison` guards the log (`wal::writer`) and one each page-store
//! segment set (`pagestore::store`). Set once, never cleared: a reopen builds
//! new ones.

use crate::error::{Error, Result};
use crate::sync::{AtomicBool, Ordering};

/// Set by the first failed write or sync; every later operation checks it.
#[derive(Debug)]
pub(crate) struct Poison(AtomicBool);

impl Poison {
    pub(crate) fn new() -> Self {
        Self(AtomicBool::new(false))
    }

    /// True once a write or sync failed.
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// `Err(Poisoned)` once a write or sync failed.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_set() {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    /// Record the failure `e` and return it as the operation's error.
    pub(crate) fn set(&self, e: std::io::Error) -> Error {
        self.0.store(true, Ordering::Release);
        Error::Io(e)
    }

    /// Run `f`, a sync (or the hook before one): a panic in it sets the
    /// flag (whether the sync took effect is unknown, as after a failed
    /// one), then goes on unwinding. A sync run while the thread is already
    /// unwinding for another reason sets nothing.
    pub(crate) fn on_panic<T>(&self, f: impl FnOnce() -> T) -> T {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(panic) => {
                self.0.store(true, Ordering::Release);
                std::panic::resume_unwind(panic)
            }
        }
    }
}
