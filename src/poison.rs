//! The sticky flag that turns a failed write or sync into a poisoned file
//! set (`design/durability.md`: after a failed fsync the database refuses
//! writes until it is reopened; an fsync is never retried).
//!
//! One `Poison` guards the log (`wal::writer`) and one each page-store
//! segment set (`pagestore::store`). Set once, never cleared: a reopen builds
//! new ones.

use crate::error::{Error, Result};
use crate::sync::{lock, AtomicBool, Mutex, Ordering};

/// Set by the first failed write or sync; every later operation checks it.
/// It keeps that failure's message (the operation's error goes to its
/// caller, often a background thread; later operations only get
/// `Poisoned`), for [`crate::Db::poison_cause`].
#[derive(Debug)]
pub(crate) struct Poison(AtomicBool, Mutex<Option<String>>);

impl Poison {
    pub(crate) fn new() -> Self {
        Self(AtomicBool::new(false), Mutex::new(None))
    }

    /// The first failure's message, once set.
    pub(crate) fn cause(&self) -> Option<String> {
        if !self.is_set() {
            return None;
        }
        Some(lock(&self.1).clone().unwrap_or_else(|| "unknown".to_owned()))
    }

    /// Keep `why` unless a cause is kept already, then set the flag.
    fn mark(&self, why: impl FnOnce() -> String) {
        lock(&self.1).get_or_insert_with(why);
        self.0.store(true, Ordering::Release);
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
        self.mark(|| e.to_string());
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
                self.mark(|| "a sync panicked".to_owned());
                std::panic::resume_unwind(panic)
            }
        }
    }
}
