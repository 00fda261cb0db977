//! Read-write transactions and read-only snapshots.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use bytes::Bytes;

use super::iter::{bounds, prefix_end, Iter};
use super::latches::Latches;
use super::watermark::Pin;
use super::Shared;
use crate::bwtree::Tree;
use crate::{Error, Result};

fn as_bytes<K: AsRef<[u8]>>(b: Bound<&K>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

type Writes = BTreeMap<Bytes, Option<Bytes>>;

/// The keys between `start` and `end` as of `ts`, merged with `writes`.
fn scan<'a>(db: &'a Shared, ts: u64, writes: Option<&'a Writes>, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Iter<'a> {
    let Some(b) = bounds(start, end) else {
        return Iter::empty();
    };
    let buf = writes.filter(|w| !w.is_empty()).map(|w| w.range::<[u8], _>(b));
    Iter::new(db.tree.range::<&[u8], _>(b, ts), buf)
}

/// [`scan`] over the keys that start with `prefix`.
fn scan_prefix<'a>(db: &'a Shared, ts: u64, writes: Option<&'a Writes>, prefix: &[u8]) -> Iter<'a> {
    match prefix_end(prefix) {
        Some(end) => scan(db, ts, writes, Bound::Included(prefix), Bound::Excluded(&end[..])),
        None => scan(db, ts, writes, Bound::Included(prefix), Bound::Unbounded),
    }
}

/// A read-write transaction under snapshot isolation.
///
/// It reads the snapshot taken by [`crate::Db::begin`] plus its own writes,
/// which it buffers until [`Transaction::commit`]. Commit validates the
/// written keys: if another transaction committed a write to one of them
/// after this snapshot was taken, commit fails with an error for which
/// [`Error::is_conflict`] holds, and nothing is installed (first committer
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
pub struct Transaction<'db> {
    db: &'db Shared,
    pin: Pin<'db>,
    writes: Writes,
}

impl<'db> Transaction<'db> {
    pub(crate) fn new(db: &'db Shared) -> Self {
        Transaction {
            db,
            pin: db.registry.pin(&db.oracle),
            writes: BTreeMap::new(),
        }
    }

    /// The snapshot timestamp: this transaction sees exactly the commits at
    /// or below it (and its own writes).
    pub fn snapshot_ts(&self) -> u64 {
        self.pin.ts()
    }

    /// The value of `key` in this transaction's view, `None` if absent or
    /// deleted. Zero-copy.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        self.db.tree.get(key, self.pin.ts())
    }

    /// Buffer a write of `value` to `key`; visible to this transaction's
    /// reads now, to others once committed.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        Tree::check_key(key)?;
        Tree::check_value(value)?;
        self.writes
            .insert(Bytes::copy_from_slice(key), Some(Bytes::copy_from_slice(value)));
        Ok(())
    }

    /// Buffer a delete of `key` (a no-op for absent keys, but still a write:
    /// it conflicts with a concurrent write of the same key).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        Tree::check_key(key)?;
        self.writes.insert(Bytes::copy_from_slice(key), None);
        Ok(())
    }

    /// The keys in `range` with their values, in key order (reverse with
    /// `.rev()`), as this transaction sees them: its snapshot merged with its
    /// own writes.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter<'_> {
        let (start, end) = (as_bytes(range.start_bound()), as_bytes(range.end_bound()));
        scan(self.db, self.pin.ts(), Some(&self.writes), start, end)
    }

    /// The keys that start with `prefix`, as [`Transaction::range`] does.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter<'_> {
        scan_prefix(self.db, self.pin.ts(), Some(&self.writes), prefix.as_ref())
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
    /// Fails with [`Error::Conflict`] (see [`Error::is_conflict`]) if a
    /// transaction that committed after this one's snapshot wrote one of the
    /// same keys; then nothing is installed.
    pub fn commit(self) -> Result<u64> {
        let db = self.db;
        if self.writes.is_empty() {
            return Ok(self.pin.ts());
        }
        let start = self.pin.ts();
        let log = db.store.as_ref().filter(|s| s.logs());
        if let Some(store) = log {
            // A poisoned log takes no more commits.
            store.wal.check()?;
        }
        // 1. Latch the write set's stripes (ascending: no deadlock).
        let held = db.latches.lock(Latches::stripes(self.writes.keys().map(|k| &k[..])));
        // 2. Validate: no write newer than our snapshot. A version installed
        //    by a commit still being published counts: that commit won. The
        //    leaves found are kept (by the tree, under one epoch guard) for
        //    step 4.
        let prepared = match db.tree.prepare(self.writes.iter(), start) {
            Ok(prepared) => prepared,
            Err(conflict) => {
                drop(held);
                db.stats.conflicts.add(1);
                return Err(Error::Conflict {
                    key: conflict.key.clone(),
                    winner: conflict.winner,
                    snapshot: start,
                });
            }
        };
        // 3. Commit timestamp: one fetch_add. It is above the read timestamp
        //    and so above every GC watermark.
        let ts = db.oracle.allocate();
        // 4. Install every version at that timestamp, on the leaf validation
        //    found if it did not change since (else by a fresh descent).
        //    Consolidation of the leaves this fills up waits until after
        //    publication (step 8): later commits wait for this one.
        let installed = prepared.install(ts.ts);
        // 5. Append the log record (a memory copy into the pending buffer).
        let appended = log.map(|store| store.log(ts.ts, self.writes.iter()));
        // 6. Unlatch, then 7. wait for the log (group commit: one sync
        //    covers every committer waiting), holding no lock.
        drop(held);
        let logged = match (log, appended) {
            (Some(store), Some(Ok(()))) => {
                let r = store.wait(ts.ts);
                if r.is_ok() {
                    // Every commit the log holds is installed: the whole
                    // group becomes visible at once, not one by one.
                    db.oracle.advance_to(store.logged_ts());
                }
                r
            }
            (_, Some(Err(e))) => Err(e),
            _ => Ok(()),
        };
        // 8. Publish: visible once every earlier commit is. Done even if the
        //    log failed (later commits wait on it); the error is returned,
        //    the database is poisoned, and recovery keeps the commit whole
        //    or drops it whole.
        let ts = ts.publish();
        installed.consolidate();
        logged?;
        db.stats.commits.add(1);
        db.stats.versions_installed.add(self.writes.len() as u64);
        db.after_commit(ts);
        Ok(ts)
    }

    /// Discard the buffered writes. Same as dropping the transaction.
    pub fn rollback(self) {}
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("snapshot_ts", &self.pin.ts())
            .field("writes", &self.writes.len())
            .finish()
    }
}

/// A read-only view of the database as of one timestamp.
///
/// Never blocks writers and never aborts. While it lives, garbage collection
/// keeps every version it can see; drop it to let them go.
pub struct Snapshot<'db> {
    db: &'db Shared,
    pin: Pin<'db>,
}

impl<'db> Snapshot<'db> {
    pub(crate) fn new(db: &'db Shared) -> Self {
        Snapshot {
            db,
            pin: db.registry.pin(&db.oracle),
        }
    }

    /// The snapshot timestamp: exactly the commits at or below it are seen.
    pub fn ts(&self) -> u64 {
        self.pin.ts()
    }

    /// The value of `key`, `None` if absent. Zero-copy.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.db.tree.get(key, self.pin.ts())
    }

    /// The keys in `range` with their values, in key order (reverse with `.rev()`).
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter<'_> {
        let (start, end) = (as_bytes(range.start_bound()), as_bytes(range.end_bound()));
        scan(self.db, self.pin.ts(), None, start, end)
    }

    /// The keys that start with `prefix`, in key order.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter<'_> {
        scan_prefix(self.db, self.pin.ts(), None, prefix.as_ref())
    }
}

impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("ts", &self.pin.ts()).finish()
    }
}
