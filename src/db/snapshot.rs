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
    pub(super) snapshot: Pinned,
    /// The keyspaces read so far, resolved at the snapshot.
    pub(super) cache: super::keyspace::KsCache,
}

impl Snapshot {
    pub(crate) fn new(engine: &Arc<Engine>) -> Self {
        Snapshot {
            snapshot: Pinned::new(engine),
            cache: super::keyspace::KsCache::new(),
        }
    }

    pub(crate) fn at(engine: &Arc<Engine>, ts: u64) -> Result<Self> {
        Ok(Snapshot {
            snapshot: Pinned::at(engine, ts)?,
            cache: super::keyspace::KsCache::new(),
        })
    }

    /// The snapshot timestamp: exactly the commits at or below it are seen.
    pub fn ts(&self) -> u64 {
        self.snapshot.ts()
    }

    /// The exact number of keys in this snapshot, without a scan: each
    /// commit knows from its validation which keys it creates and deletes,
    /// and the counts are kept per commit timestamp (`design/mvcc.md` §12).
    /// O(log n) in the commits since the oldest open snapshot.
    ///
    /// ```
    /// let db = bwtx::Db::in_memory();
    /// db.transaction(|tx| { tx.put("a", "1")?; tx.put("b", "2") })?;
    /// let before = db.snapshot();
    /// db.transaction(|tx| tx.delete("a"))?;
    /// assert_eq!(before.len(), 2);
    /// assert_eq!(db.snapshot().len(), 1);
    /// # Ok::<(), bwtx::Error>(())
    /// ```
    pub fn len(&self) -> u64 {
        self.snapshot.engine().live_keys(self.snapshot.ts())
    }

    /// Whether this snapshot holds no key ([`Snapshot::len`] is 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `key`, `None` if absent. Zero-copy. Fails as
    /// [`crate::Transaction::get`] does: `KeyTooLarge`, `SnapshotTooOld` for
    /// a snapshot older than [`crate::Options::max_snapshot_age`] once
    /// garbage collection passed it, `Io` or `Corruption` for an evicted
    /// page that cannot be read back.
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
