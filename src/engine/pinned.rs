//! [`Pinned`]: a registered snapshot that owns a reference to its engine,
//! the core of the owned `Transaction` and `Snapshot` handles.
//!
//! A handle must be `'static + Send + Sync` (movable into a spawned thread or task,
//! even after the `Db` it came from is dropped), so it cannot borrow the
//! engine: it holds an `Arc` of it. Beginning a handle costs that `Arc`'s
//! increment on top of the registry slot's CAS; see `design/architecture.md`
//! ("Owned handles") for what that was measured to cost.

use super::Engine;
use crate::mvcc::registry::Pin;
use crate::sync::Arc;
use crate::{Error, Result};

/// A snapshot registered with an engine's registry, unregistered on drop.
pub(crate) struct Pinned {
    engine: Arc<Engine>,
    /// `Some` until dropped.
    pin: Option<Pin>,
    /// The snapshot timestamp (a copy of the pin's, read on every access).
    ts: u64,
}

impl Pinned {
    /// Register a snapshot of everything committed so far.
    pub(crate) fn new(engine: &Arc<Engine>) -> Pinned {
        let pin = engine.registry.pin(&engine.oracle);
        Pinned {
            engine: engine.clone(),
            ts: pin.ts(),
            pin: Some(pin),
        }
    }

    /// Register a snapshot at the past timestamp `ts` (time travel):
    /// [`Error::InvalidArgument`] above the read timestamp,
    /// [`Error::SnapshotTooOld`] below what garbage collection keeps.
    pub(crate) fn at(engine: &Arc<Engine>, ts: u64) -> Result<Pinned> {
        if ts > engine.oracle.read_ts() {
            return Err(Error::InvalidArgument(
                "snapshot_at: the timestamp is above the newest visible commit",
            ));
        }
        let pin = engine
            .registry
            .pin_at(ts)
            .map_err(|oldest| Error::SnapshotTooOld { requested: ts, oldest })?;
        let pinned = Pinned {
            engine: engine.clone(),
            ts,
            pin: Some(pin),
        };
        // With `Options::max_snapshot_age`: a timestamp committed longer ago
        // than the age is already expired, and unless the retention window
        // keeps it, the next GC would pass it (its reads would then fail):
        // refused now (dropping the pin).
        if let Some(b) = engine.horizon.bounds(engine.oracle.read_ts(), true) {
            let oldest = b.expire_below.min(b.retain_from);
            if ts < oldest {
                return Err(Error::SnapshotTooOld { requested: ts, oldest });
            }
        }
        Ok(pinned)
    }

    /// The snapshot timestamp.
    #[inline]
    pub(crate) fn ts(&self) -> u64 {
        self.ts
    }

    /// The engine.
    #[inline]
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(pin) = self.pin.take() {
            self.engine.registry.unpin(pin);
        }
    }
}
