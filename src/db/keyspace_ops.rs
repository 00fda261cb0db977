//! The `*_in` methods of [`Transaction`] and [`Snapshot`]: the default
//! keyspace's operations on any [`Keyspace`] (`design/keyspaces.md`). The
//! default keyspace's handle goes to the methods without `_in`; another is
//! resolved once per handle ([`super::keyspace::KsCache`]) and read in its
//! own tree, merged with the transaction's writes to it.

use std::ops::{Bound, RangeBounds};

use bytes::Bytes;

use super::{Keyspace, Snapshot, Transaction};
use crate::bwtree::Tree;
use crate::mvcc::iter::{bounds, byte_bounds, prefix_end, Iter};
use crate::Result;

impl Transaction {
    /// [`Transaction::get`] in keyspace `ks`.
    pub fn get_in(&self, ks: &Keyspace, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let engine = self.snapshot.engine();
        let Some(r) = self.cache.resolve(engine, self.snapshot.ts(), ks)? else {
            return self.get(key);
        };
        let key = key.as_ref();
        if let Some(v) = self.others.get(&r.ks.id).and_then(|o| o.1.get(key)) {
            return Ok(v.clone());
        }
        let value = engine.get_in(&r.ks.tree, key, self.snapshot.ts())?;
        if self.serializable() {
            r.reads.key(key);
        }
        Ok(value)
    }

    /// [`Transaction::put`] in keyspace `ks`. A keyspace dropped after this
    /// transaction began makes its commit fail with
    /// [`crate::Error::KeyspaceNotFound`].
    pub fn put_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        // Resolved (visible at the snapshot): then the handle's own `Arc`
        // is the resolved keyspace's, and needs no clone per write.
        let resolved = self.cache.resolve(self.snapshot.engine(), self.snapshot.ts(), ks)?;
        let (Some(_), Some(k)) = (resolved, &ks.inner) else {
            return self.put(key, value);
        };
        let (key, value) = (key.as_ref(), value.as_ref());
        Tree::check_key(key)?;
        Tree::check_value(value)?;
        self.write_in(k, Bytes::copy_from_slice(key), Some(Bytes::copy_from_slice(value)));
        Ok(())
    }

    /// [`Transaction::delete`] in keyspace `ks`.
    pub fn delete_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>) -> Result<()> {
        let resolved = self.cache.resolve(self.snapshot.engine(), self.snapshot.ts(), ks)?;
        let (Some(_), Some(k)) = (resolved, &ks.inner) else {
            return self.delete(key);
        };
        let key = key.as_ref();
        Tree::check_key(key)?;
        self.write_in(k, Bytes::copy_from_slice(key), None);
        Ok(())
    }

    /// [`Transaction::range`] in keyspace `ks`. A keyspace this transaction
    /// cannot read yields one `Err` ([`crate::Error::KeyspaceNotFound`]).
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, ks: &Keyspace, range: R) -> Iter<'_> {
        let engine = self.snapshot.engine();
        let r = match self.cache.resolve(engine, self.snapshot.ts(), ks) {
            Ok(Some(r)) => r,
            Ok(None) => return self.range(range),
            Err(e) => return Iter::failed(e),
        };
        let (start, end) = byte_bounds(&range);
        let writes = self.others.get(&r.ks.id).map(|o| &o.1);
        let iter = engine.scan_in(&r.ks.tree, self.snapshot.ts(), writes, start, end);
        match bounds(start, end) {
            Some((start, end)) if self.serializable() => iter.tracked(r.reads.track(start, end)),
            _ => iter,
        }
    }

    /// [`Transaction::prefix`] in keyspace `ks`.
    pub fn prefix_in(&self, ks: &Keyspace, prefix: impl AsRef<[u8]>) -> Iter<'_> {
        let prefix = prefix.as_ref();
        let end = prefix_end(prefix);
        let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.range_in::<&[u8], _>(ks, (Bound::Included(prefix), end))
    }

    /// [`Transaction::len`] in keyspace `ks`: its live keys at the snapshot
    /// with this transaction's writes to it applied. Under
    /// [`crate::Isolation::Serializable`], a read of `ks`'s count, as `len`
    /// is of the default keyspace's: only commits that change it refuse
    /// this transaction's.
    pub fn len_in(&self, ks: &Keyspace) -> Result<u64> {
        let engine = self.snapshot.engine();
        let Some(r) = self.cache.resolve(engine, self.snapshot.ts(), ks)? else {
            return self.len();
        };
        if self.serializable() {
            r.reads.count();
        }
        let ts = self.snapshot.ts();
        let mut n = super::keyspace::count_at(&r.ks, ts, engine.count_floor())? as i64;
        for (k, v) in self.others.get(&r.ks.id).into_iter().flat_map(|o| o.1.iter()) {
            let was = engine.get_in(&r.ks.tree, k, ts)?.is_some();
            if self.serializable() {
                // A read of `k`, as in `len`.
                r.reads.key(k);
            }
            n += i64::from(v.is_some()) - i64::from(was);
        }
        Ok(n.max(0) as u64)
    }
}

impl Snapshot {
    /// The keyspace named `name` as of this snapshot, without creating one:
    /// [`crate::Error::KeyspaceNotFound`] if none had that name then. With
    /// [`crate::Db::snapshot_at`] it reads a keyspace since dropped, or
    /// dropped and created again (where [`crate::Db::keyspace`] names the
    /// new one). `"default"` is the default keyspace; a name no keyspace
    /// can have is [`crate::Error::InvalidArgument`] (see
    /// [`crate::Db::keyspace`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let db = bwtx::Options::new()
    ///     .history_retention(Duration::from_secs(3600))
    ///     .in_memory()?;
    /// let users = db.keyspace("users")?;
    /// let mut tx = db.begin();
    /// tx.put_in(&users, "ann", "1")?;
    /// let then = tx.commit()?;
    /// db.drop_keyspace("users")?;
    /// let again = db.keyspace("users")?; // a new, empty keyspace
    /// assert_eq!(db.snapshot().get_in(&again, "ann")?, None);
    /// let past = db.snapshot_at(then)?;
    /// let old = past.keyspace("users")?;
    /// assert_eq!(past.get_in(&old, "ann")?.as_deref(), Some(&b"1"[..]));
    /// # Ok::<(), bwtx::Error>(())
    /// ```
    pub fn keyspace(&self, name: &str) -> Result<Keyspace> {
        let engine = self.snapshot.engine();
        Ok(Keyspace {
            db: engine.id,
            inner: engine.keyspace_at(name, self.snapshot.ts())?,
        })
    }

    /// [`Snapshot::get`] in keyspace `ks`.
    pub fn get_in(&self, ks: &Keyspace, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let engine = self.snapshot.engine();
        match self.cache.resolve(engine, self.snapshot.ts(), ks)? {
            Some(r) => engine.get_in(&r.ks.tree, key.as_ref(), self.snapshot.ts()),
            None => self.get(key),
        }
    }

    /// [`Snapshot::range`] in keyspace `ks`. A keyspace this snapshot
    /// cannot read yields one `Err` ([`crate::Error::KeyspaceNotFound`]).
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, ks: &Keyspace, range: R) -> Iter<'_> {
        let engine = self.snapshot.engine();
        match self.cache.resolve(engine, self.snapshot.ts(), ks) {
            Ok(Some(r)) => {
                let (start, end) = byte_bounds(&range);
                engine.scan_in(&r.ks.tree, self.snapshot.ts(), None, start, end)
            }
            Ok(None) => self.range(range),
            Err(e) => Iter::failed(e),
        }
    }

    /// [`Snapshot::prefix`] in keyspace `ks`.
    pub fn prefix_in(&self, ks: &Keyspace, prefix: impl AsRef<[u8]>) -> Iter<'_> {
        let engine = self.snapshot.engine();
        match self.cache.resolve(engine, self.snapshot.ts(), ks) {
            Ok(Some(r)) => engine.scan_prefix_in(&r.ks.tree, self.snapshot.ts(), None, prefix.as_ref()),
            Ok(None) => self.prefix(prefix),
            Err(e) => Iter::failed(e),
        }
    }

    /// [`Snapshot::len`] in keyspace `ks` (exact, O(log n)). A named
    /// keyspace's counts are kept from the database's last open on, so a
    /// snapshot from before that ([`crate::Db::snapshot_at`] with
    /// [`crate::Options::history_retention`]) reads the keyspace but cannot
    /// count it: [`crate::Error::SnapshotTooOld`] naming the oldest
    /// timestamp it can count at (the default keyspace's counts survive
    /// restarts). Also `KeyspaceNotFound` and `InvalidArgument` as for the
    /// other `*_in` methods.
    pub fn len_in(&self, ks: &Keyspace) -> Result<u64> {
        let engine = self.snapshot.engine();
        match self.cache.resolve(engine, self.snapshot.ts(), ks)? {
            Some(r) => super::keyspace::count_at(&r.ks, self.snapshot.ts(), engine.count_floor()),
            None => Ok(self.len()),
        }
    }
}
