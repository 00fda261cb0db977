//! [`Transaction`]: a read-write transaction under snapshot isolation or
//! serializable; an owned handle (`'static + Send + Sync`) that buffers its
//! writes (and, when serializable, records its reads) and hands them to the
//! engine's commit protocol.

use std::ops::{Bound, RangeBounds};

use bytes::Bytes;

use super::keyspace::KsCache;
use super::savepoint::{Savepoint, Undo};
use crate::bwtree::Tree;
use crate::engine::commit::Part;
use crate::engine::keyspaces::KsTree;
use crate::engine::{Engine, Pinned};
use crate::mvcc::iter::{bounds, byte_bounds, prefix_end, Iter};
use crate::mvcc::readset::ReadSet;
use crate::mvcc::WriteSet;
use crate::sync::Arc;
use crate::{Isolation, Result};

/// A read-write transaction, with savepoints, at the isolation level chosen
/// when it began ([`Transaction::isolation`]).
///
/// It reads the snapshot taken by [`crate::Db::begin`] plus its own writes,
/// which it buffers until [`Transaction::commit`]. Commit validates the
/// written keys: if another transaction committed a write to one of them
/// after this snapshot was taken, commit fails with an error for which
/// [`crate::Error::is_conflict`] holds, and nothing is installed (first committer
/// wins). Reads never block.
///
/// - [`Isolation::Snapshot`] (the default): reads are not validated and
///   never cause a conflict; write skew can commit.
/// - [`Isolation::Serializable`]: the transaction also records the keys it
///   reads with [`Transaction::get`] (found or absent) and the ranges it
///   scans with [`Transaction::range`] and [`Transaction::prefix`] (narrowed,
///   when an iterator is dropped early, to the part it yielded). If it has
///   writes, its commit fails with a conflict when a transaction that
///   committed after its snapshot wrote one of those keys or a key inside
///   one of those ranges ([`crate::ConflictReason::Read`],
///   [`crate::ConflictReason::Range`]), or changed the number of keys it
///   counted with [`Transaction::len`] ([`crate::ConflictReason::Count`]). If every transaction that writes
///   is serializable, every committed history is then serializable, in
///   commit-timestamp order (snapshot-isolation writers beside them can
///   still form a write skew with them). A serializable transaction
///   with no writes never validates and never fails: it serializes at its
///   snapshot.
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
    pub(super) snapshot: Pinned,
    /// Writes to the default keyspace.
    pub(super) writes: WriteSet,
    /// Savepoints and the undo log (empty until the first savepoint).
    undo: Undo,
    /// The level chosen at begin.
    isolation: Isolation,
    /// Serializable: the keys and ranges read in the default keyspace
    /// (empty under snapshot isolation).
    reads: ReadSet,
    /// Writes to other keyspaces, by keyspace id.
    pub(super) others: std::collections::BTreeMap<u32, (Arc<KsTree>, WriteSet)>,
    /// The other keyspaces used so far, resolved at the snapshot (with
    /// their read sets).
    pub(super) cache: KsCache,
}

impl Transaction {
    pub(crate) fn new(engine: &Arc<Engine>, isolation: Isolation) -> Self {
        Transaction {
            snapshot: Pinned::new(engine),
            writes: WriteSet::new(),
            undo: Undo::default(),
            isolation,
            reads: ReadSet::default(),
            others: Default::default(),
            cache: KsCache::new(),
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

    /// Is this transaction serializable (does it record its reads)?
    #[inline]
    pub(super) fn serializable(&self) -> bool {
        self.isolation == Isolation::Serializable
    }

    /// The value of `key` in this transaction's view, `None` if absent or
    /// deleted. Zero-copy. A serializable transaction records the key
    /// (found or absent) unless its own write set answered.
    ///
    /// Fails with [`crate::Error::KeyTooLarge`] for a key over
    /// [`crate::tree::MAX_KEY_LEN`], with [`crate::Error::SnapshotTooOld`] once
    /// the transaction outlived [`crate::Options::max_snapshot_age`] and
    /// garbage collection passed its snapshot, and with
    /// [`crate::Error::Io`] or [`crate::Error::Corruption`] if an evicted page
    /// cannot be read back.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        let value = self.snapshot.engine().get(key, self.snapshot.ts())?;
        if self.serializable() {
            self.reads.key(key);
        }
        Ok(value)
    }

    /// Buffer a write of `value` to `key`; visible to this transaction's
    /// reads now, to others once committed. Fails with
    /// [`crate::Error::KeyTooLarge`] or [`crate::Error::ValueTooLarge`] past
    /// [`crate::tree::MAX_KEY_LEN`] or [`crate::tree::MAX_VALUE_LEN`]
    /// (nothing is buffered then).
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        Tree::check_key(key)?;
        Tree::check_value(value)?;
        self.write(Bytes::copy_from_slice(key), Some(Bytes::copy_from_slice(value)));
        Ok(())
    }

    /// Buffer a delete of `key` (a no-op for absent keys, but still a write:
    /// it conflicts with a concurrent write of the same key). Fails with
    /// [`crate::Error::KeyTooLarge`] past [`crate::tree::MAX_KEY_LEN`].
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
            self.undo.record(0, key, prev);
        } else {
            self.writes.insert(key, value);
        }
    }

    /// Buffer a write to keyspace `ks` (not the default one).
    pub(super) fn write_in(&mut self, ks: &Arc<KsTree>, key: Bytes, value: Option<Bytes>) {
        let writes = &mut self
            .others
            .entry(ks.id)
            .or_insert_with(|| (ks.clone(), WriteSet::new()))
            .1;
        let prev = writes.insert(key.clone(), value);
        if self.undo.active() {
            self.undo.record(ks.id, key, prev);
        }
    }

    /// Entries in the savepoint undo log (tests).
    #[cfg(test)]
    pub(crate) fn undo_len(&self) -> usize {
        self.undo.log_len()
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
    /// so they cannot conflict at commit. Reads are not undone: the snapshot
    /// stays the same, and a serializable transaction keeps every key and
    /// range it read before the savepoint and after it in its read set (what
    /// was read stays read, and commit validates it).
    ///
    /// The savepoint stays valid, so rolling back to it again works; the
    /// savepoints taken after it become invalid. Fails with
    /// [`crate::Error::InvalidArgument`], changing nothing, if `savepoint`
    /// was made by another transaction or was invalidated by a rollback to
    /// an earlier savepoint.
    pub fn rollback_to(&mut self, savepoint: &Savepoint) -> Result<()> {
        let (writes, others) = (&mut self.writes, &mut self.others);
        self.undo.rollback_to(savepoint, |ks, key, prev| {
            let writes = match ks {
                0 => &mut *writes,
                id => match others.get_mut(&id) {
                    Some(o) => &mut o.1,
                    None => return,
                },
            };
            match prev {
                Some(entry) => writes.insert(key, entry),
                None => writes.remove(&key),
            };
        })
    }

    /// Release `savepoint` and every savepoint taken after it, undoing
    /// nothing: none of them can be rolled back to any more, and earlier
    /// savepoints stay valid. Once no savepoint is left, writes stop being
    /// logged for rollbacks (a long transaction that takes a savepoint per
    /// step and releases it when the step succeeds keeps no undo log).
    /// Fails with [`crate::Error::InvalidArgument`], changing nothing, if
    /// `savepoint` was made by another transaction, or was released or
    /// invalidated by a rollback to an earlier savepoint.
    ///
    /// ```
    /// let db = bwtx::Db::in_memory();
    /// let mut tx = db.begin();
    /// let step = tx.savepoint();
    /// tx.put("a", "1")?;
    /// tx.release_savepoint(&step)?; // the step succeeded: keep its writes
    /// assert!(tx.rollback_to(&step).is_err());
    /// tx.commit()?;
    /// assert_eq!(db.snapshot().get("a")?.as_deref(), Some(&b"1"[..]));
    /// # Ok::<(), bwtx::Error>(())
    /// ```
    pub fn release_savepoint(&mut self, savepoint: &Savepoint) -> Result<()> {
        self.undo.release(savepoint)
    }

    /// The keys in `range` with their values, in key order (reverse with
    /// `.rev()`), as this transaction sees them: its snapshot merged with its
    /// own writes.
    ///
    /// A serializable transaction records the range when the iterator is
    /// created and narrows it, when the iterator is dropped, to the part it
    /// yielded from either end (all of it if the iterator ran out): so
    /// `range(k..).take(10)` conflicts only with writes up to the tenth key.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter<'_> {
        let (start, end) = byte_bounds(&range);
        let iter = self
            .snapshot
            .engine()
            .scan(self.snapshot.ts(), Some(&self.writes), start, end);
        match bounds(start, end) {
            Some((start, end)) if self.serializable() => iter.tracked(self.reads.track(start, end)),
            _ => iter,
        }
    }

    /// The keys that start with `prefix`, as [`Transaction::range`] does
    /// (and recorded as that range when serializable).
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter<'_> {
        let prefix = prefix.as_ref();
        let iter = self
            .snapshot
            .engine()
            .scan_prefix(self.snapshot.ts(), Some(&self.writes), prefix);
        if !self.serializable() {
            return iter;
        }
        let end = prefix_end(prefix);
        let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        iter.tracked(self.reads.track(Bound::Included(prefix), end))
    }

    /// The exact number of keys this transaction sees: its snapshot's
    /// [`crate::Snapshot::len`] plus the keys its writes create, minus those
    /// they delete (one lookup per written key). Fails as
    /// [`Transaction::get`] does for a written key (`SnapshotTooOld` once the
    /// transaction outlived [`crate::Options::max_snapshot_age`] and garbage
    /// collection passed it; `Io` or `Corruption` for a page that cannot be
    /// read back). Under [`Isolation::Serializable`] the count is a read:
    /// if this transaction writes, its commit is refused
    /// ([`crate::ConflictReason::Count`]) when the commits after its
    /// snapshot changed the count. Updates, and inserts and deletes that
    /// cancel out, leave it as it was and refuse nothing.
    ///
    /// ```
    /// # fn main() -> bwtx::Result<()> {
    /// use bwtx::{ConflictReason, Db, Error, Isolation};
    /// let db = Db::in_memory();
    /// db.transaction(|tx| tx.put("a", "1"))?;
    ///
    /// // An update after the count: committed.
    /// let mut tx = db.begin_with(Isolation::Serializable);
    /// assert_eq!(tx.len()?, 1);
    /// db.transaction(|t| t.put("a", "2"))?;
    /// tx.put("count", "1")?;
    /// tx.commit()?;
    ///
    /// // An insert after the count: refused.
    /// let mut tx = db.begin_with(Isolation::Serializable);
    /// assert_eq!(tx.len()?, 2);
    /// db.transaction(|t| t.put("b", "1"))?;
    /// tx.put("count", "2")?;
    /// match tx.commit() {
    ///     Err(Error::Conflict { reason, .. }) => {
    ///         assert_eq!(*reason, ConflictReason::Count { counted: 2, now: 3 })
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn len(&self) -> Result<u64> {
        if self.serializable() {
            // Commit checks that the count did not change meanwhile.
            self.reads.count();
        }
        let engine = self.snapshot.engine();
        let ts = self.snapshot.ts();
        let mut n = engine.live_keys(ts) as i64;
        for (k, v) in self.writes.iter() {
            let was = engine.get(k, ts)?.is_some();
            if self.serializable() {
                // The count rests on whether `k` was live: a read of `k`.
                // Validation skips it while `k` stays in the write set
                // (the write-write check covers it), and checks it if a
                // rollback to a savepoint takes `k` out.
                self.reads.key(k);
            }
            n += i64::from(v.is_some()) - i64::from(was);
        }
        Ok(n.max(0) as u64)
    }

    /// Whether this transaction sees no key ([`Transaction::len`] is 0):
    /// whether a scan of every key finds a first one. Under
    /// [`Isolation::Serializable`] it reads what that scan reads: every key
    /// up to the first one it finds, or every key if there is none (before
    /// 2026-12-08 it read every key as `len` does, so any later commit
    /// refused this one's).
    pub fn is_empty(&self) -> Result<bool> {
        if !self.serializable() {
            // The count: no scan over deleted or newer versions.
            return Ok(self.len()? == 0);
        }
        match self.range::<&[u8], _>(..).next() {
            None => Ok(true),
            Some(r) => r.map(|_| false),
        }
    }

    /// Number of keys written (put or deleted) so far.
    pub fn write_count(&self) -> usize {
        self.writes.len() + self.others.values().map(|o| o.1.len()).sum::<usize>()
    }

    /// Commit: validate the written keys, take a commit timestamp, install
    /// the versions, and return once the commit is visible to every snapshot
    /// taken afterwards. Returns the commit timestamp (the snapshot timestamp
    /// for a transaction that wrote nothing).
    ///
    /// Writes to several keyspaces commit as one: one timestamp, one log
    /// record, all or nothing.
    ///
    /// Fails with [`crate::Error::Conflict`] (see [`crate::Error::is_conflict`]) if a
    /// transaction that committed after this one's snapshot wrote one of the
    /// same keys (in the same keyspace), or, for a serializable transaction, a
    /// key it read or a key inside a range it scanned; with
    /// [`crate::Error::KeyspaceNotFound`] if a keyspace it wrote to was
    /// dropped meanwhile (for a serializable transaction, also one it read),
    /// with [`crate::Error::SnapshotTooOld`] if it outlived
    /// [`crate::Options::max_snapshot_age`] and garbage collection passed its
    /// snapshot, and, in a database that logs its commits, with
    /// [`crate::Error::InvalidArgument`] if its keys and values come to more
    /// than 2 GiB (one log record holds a transaction); then nothing is
    /// installed. A transaction
    /// that wrote nothing never fails.
    ///
    /// [`crate::Error::Io`] or [`crate::Error::Poisoned`] mean a write or
    /// sync failed (this commit's, or an earlier one's): the outcome of
    /// this commit is unknown. Its writes may be visible in this handle, and
    /// may or may not be there after the database is reopened, whole or not
    /// at all (never in part).
    pub fn commit(self) -> Result<u64> {
        if self.writes.is_empty() && self.others.values().all(|o| o.1.is_empty()) {
            return Ok(self.snapshot.ts());
        }
        let reads = self.serializable().then(|| self.reads.take()).filter(|r| !r.is_empty());
        let engine = self.snapshot.engine();
        if self.others.is_empty() && self.cache.iter().next().is_none() {
            return engine.commit(self.snapshot.ts(), &self.writes, reads.as_ref());
        }
        // Writes or reads in other keyspaces: one part per keyspace.
        let no_writes = WriteSet::new();
        let other_reads: Vec<_> = self
            .cache
            .iter()
            .map(|r| (r, self.serializable().then(|| r.reads.take()).filter(|r| !r.is_empty())))
            .collect();
        let mut parts = vec![Part {
            id: 0,
            tree: &engine.tree,
            counts: &engine.counts,
            ks: None,
            writes: &self.writes,
            reads: reads.as_ref(),
        }];
        for (id, (ks, writes)) in &self.others {
            let reads = other_reads.iter().find(|r| r.0.ks.id == *id).and_then(|r| r.1.as_ref());
            parts.push(Part::of(ks, writes, reads));
        }
        for (r, reads) in &other_reads {
            if !self.others.contains_key(&r.ks.id) && reads.is_some() {
                parts.push(Part::of(&r.ks, &no_writes, reads.as_ref()));
            }
        }
        engine.commit_parts(self.snapshot.ts(), &mut parts)
    }

    /// Discard the buffered writes. Same as dropping the transaction.
    pub fn rollback(self) {}
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("snapshot_ts", &self.snapshot.ts())
            .field("writes", &self.writes.len())
            .field("isolation", &self.isolation)
            .finish()
    }
}
