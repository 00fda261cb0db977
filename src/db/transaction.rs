//! [`Transaction`]: a read-write transaction under snapshot isolation; an
//! owned handle (`'static + Send + Sync`) that buffers its writes and hands them
//! to the engine's commit protocol.

use std::ops::RangeBounds;

use bytes::Bytes;

use super::savepoint::{Savepoint, Undo};
use crate::bwtree::Tree;
use crate::engine::{Engine, Pinned};
use crate::mvcc::iter::{byte_bounds, Iter};
use crate::mvcc::WriteSet;
use crate::sync::Arc;
use crate::{Isolation, Result};

/// A read-write transaction under snapshot isolation, with savepoints.
///
/// It reads the snapshot taken by [`crate::Db::begin`] plus its own writes,
/// which it buffers until [`Transaction::commit`]. Commit validates the
/// written keys: if another transaction committed a write to one of them
/// after this snapshot was taken, commit fails with an error for which
/// [`crate::Error::is_conflict`] holds, and nothing is installed (first committer
/// wins). Reads never conflict and never block.
///
/// Dropping a transaction without committing rolls it back. A committed
/// transaction is consumed, so it cannot be used again:
///
/// ```compile_fail
/// let db = bwtx::Db::in_memory();
/// let mut tx = db.begin();
/// tx.put("k", "v").unwrap();
/// tx.commit().unwrap();
/// tx.get("k").unwrap(); // error: use of moved value `tx`
/// ```
///
/// A transaction owns its handle on the database, so it can be moved into
/// another thread, even after the [`crate::Db`] it came from is dropped:
///
/// ```
/// let db = bwtx::Db::in_memory();
/// let mut tx = db.begin();
/// drop(db);
/// std::thread::spawn(move || {
///     tx.put("k", "v")?;
///     tx.commit()
/// })
/// .join()
/// .unwrap()?;
/// # Ok::<(), bwtx::Error>(())
/// ```
///
/// [`Transaction::savepoint`] marks a point in its writes that
/// [`Transaction::rollback_to`] can return to, undoing the writes made since
/// while keeping the earlier ones (see [`Savepoint`]):
///
/// ```
/// let db = bwtx::Db::in_memory();
/// let mut tx = db.begin();
/// tx.put("order", "placed")?;
/// let sp = tx.savepoint();
/// tx.put("order", "paid")?;
/// tx.put("receipt", "1")?;
/// tx.rollback_to(&sp)?; // the payment failed: undo it, keep the order
/// assert_eq!(tx.get("order")?.as_deref(), Some(&b"placed"[..]));
/// assert_eq!(tx.write_count(), 1);
/// tx.commit()?;
/// # Ok::<(), bwtx::Error>(())
/// ```
pub struct Transaction {
    snapshot: Pinned,
    writes: WriteSet,
    /// Savepoints and the undo log (empty until the first savepoint).
    undo: Undo,
    /// The level chosen at begin.
    isolation: Isolation,
}

impl Transaction {
    pub(crate) fn new(engine: &Arc<Engine>, isolation: Isolation) -> Self {
        Transaction {
            snapshot: Pinned::new(engine),
            writes: WriteSet::new(),
            undo: Undo::default(),
            isolation,
        }
    }

    /// The isolation level this transaction was begun with.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The snapshot timestamp: this transaction sees exactly the commits at
    /// or below it (and its own writes).
    pub fn snapshot_ts(&self) -> u64 {
        self.snapshot.ts()
    }

    /// The value of `key` in this transaction's view, `None` if absent or
    /// deleted. Zero-copy.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        self.snapshot.engine().get(key, self.snapshot.ts())
    }

    /// Buffer a write of `value` to `key`; visible to this transaction's
    /// reads now, to others once committed.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        Tree::check_key(key)?;
        Tree::check_value(value)?;
        self.write(Bytes::copy_from_slice(key), Some(Bytes::copy_from_slice(value)));
        Ok(())
    }

    /// Buffer a delete of `key` (a no-op for absent keys, but still a write:
    /// it conflicts with a concurrent write of the same key).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        Tree::check_key(key)?;
        self.write(Bytes::copy_from_slice(key), None);
        Ok(())
    }

    /// Buffer one write, logging what it replaces while a savepoint is live.
    #[inline]
    fn write(&mut self, key: Bytes, value: Option<Bytes>) {
        if self.undo.active() {
            let prev = self.writes.insert(key.clone(), value);
            self.undo.record(key, prev);
        } else {
            self.writes.insert(key, value);
        }
    }

    /// Take a savepoint: a mark in this transaction's writes that
    /// [`Transaction::rollback_to`] can return to. From the first savepoint
    /// on, each write also logs what it replaces (until the transaction
    /// ends); a transaction without savepoints logs nothing.
    pub fn savepoint(&mut self) -> Savepoint {
        self.undo.savepoint()
    }

    /// Undo every write made since `savepoint` was taken: [`Transaction::get`],
    /// [`Transaction::range`] and [`Transaction::prefix`] see the writes as
    /// they were then, and keys first written after it leave the write set,
    /// so they cannot conflict at commit. Reads are not undone (there is
    /// nothing to undo: the snapshot stays the same).
    ///
    /// The savepoint stays valid, so rolling back to it again works; the
    /// savepoints taken after it become invalid. Fails with
    /// [`crate::Error::InvalidArgument`], changing nothing, if `savepoint`
    /// was made by another transaction or was invalidated by a rollback to
    /// an earlier savepoint.
    pub fn rollback_to(&mut self, savepoint: &Savepoint) -> Result<()> {
        self.undo.rollback_to(savepoint, &mut self.writes)
    }

    /// The keys in `range` with their values, in key order (reverse with
    /// `.rev()`), as this transaction sees them: its snapshot merged with its
    /// own writes.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter<'_> {
        let (start, end) = byte_bounds(&range);
        self.snapshot
            .engine()
            .scan(self.snapshot.ts(), Some(&self.writes), start, end)
    }

    /// The keys that start with `prefix`, as [`Transaction::range`] does.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter<'_> {
        self.snapshot
            .engine()
            .scan_prefix(self.snapshot.ts(), Some(&self.writes), prefix.as_ref())
    }

    /// The exact number of keys this transaction sees: its snapshot's
    /// [`crate::Snapshot::len`] plus the keys its writes create, minus those
    /// they delete (one lookup per written key). An error only if a page
    /// cannot be read.
    pub fn len(&self) -> Result<u64> {
        let engine = self.snapshot.engine();
        let ts = self.snapshot.ts();
        let mut n = engine.live_keys(ts) as i64;
        for (k, v) in self.writes.iter() {
            let was = engine.get(k, ts)?.is_some();
            n += i64::from(v.is_some()) - i64::from(was);
        }
        Ok(n.max(0) as u64)
    }

    /// Whether this transaction sees no key ([`Transaction::len`] is 0).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Number of keys written (put or deleted) so far.
    pub fn write_count(&self) -> usize {
        self.writes.len()
    }

    /// Commit: validate the written keys, take a commit timestamp, install
    /// the versions, and return once the commit is visible to every snapshot
    /// taken afterwards. Returns the commit timestamp (the snapshot timestamp
    /// for a transaction that wrote nothing).
    ///
    /// Fails with [`crate::Error::Conflict`] (see [`crate::Error::is_conflict`]) if a
    /// transaction that committed after this one's snapshot wrote one of the
    /// same keys; then nothing is installed.
    pub fn commit(self) -> Result<u64> {
        if self.writes.is_empty() {
            return Ok(self.snapshot.ts());
        }
        self.snapshot.engine().commit(self.snapshot.ts(), &self.writes)
    }

    /// Discard the buffered writes. Same as dropping the transaction.
    pub fn rollback(self) {}
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("snapshot_ts", &self.snapshot.ts())
            .field("writes", &self.writes.len())
            .finish()
    }
}
