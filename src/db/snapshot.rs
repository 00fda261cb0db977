//! [`Snapshot`]: a read-only view of the database as of one timestamp; an
//! owned handle (`'static + Send + Sync`).

use std::ops::RangeBounds;

use bytes::Bytes;

use crate::engine::{Engine, Pinned};
use crate::mvcc::iter::{byte_bounds, Iter};
use crate::sync::Arc;
use crate::Result;

/// A read-only view of the database as of one timestamp.
///
/// Never blocks writers and never aborts. While it lives, garbage collection
/// keeps every version it can see; drop it to let them go.
///
/// Like a [`crate::Transaction`], it owns its handle on the database: it can
/// move to another thread and outlive the [`crate::Db`] it came from.
pub struct Snapshot {
    snapshot: Pinned,
}

impl Snapshot {
    pub(crate) fn new(engine: &Arc<Engine>) -> Self {
        Snapshot {
            snapshot: Pinned::new(engine),
        }
    }

    pub(crate) fn at(engine: &Arc<Engine>, ts: u64) -> Result<Self> {
        Ok(Snapshot {
            snapshot: Pinned::at(engine, ts)?,
        })
    }

    /// The snapshot timestamp: exactly the commits at or below it are seen.
    pub fn ts(&self) -> u64 {
        self.snapshot.ts()
    }

    /// The value of `key`, `None` if absent. Zero-copy.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.snapshot.engine().get(key.as_ref(), self.snapshot.ts())
    }

    /// The keys in `range` with their values, in key order (reverse with `.rev()`).
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter<'_> {
        let (start, end) = byte_bounds(&range);
        self.snapshot.engine().scan(self.snapshot.ts(), None, start, end)
    }

    /// The keys that start with `prefix`, in key order.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter<'_> {
        self.snapshot
            .engine()
            .scan_prefix(self.snapshot.ts(), None, prefix.as_ref())
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("ts", &self.snapshot.ts()).finish()
    }
}
