//! [`Savepoint`]s of a [`crate::Transaction`], and the undo log that rolls
//! its write set back to one (see `design/mvcc.md`, "Savepoints").
//!
//! A transaction with no savepoint keeps no undo log: its writes cost what
//! they cost before savepoints existed. From its first savepoint on, each
//! put or delete appends to [`Undo`] the key and what the write set held for
//! it before (an entry, or nothing). Rolling back to a savepoint replays the
//! log backwards to the length it had when the savepoint was taken, which
//! restores the write set to exactly its state then: keys first written
//! after the savepoint leave the write set (so they can no longer conflict
//! at commit), and keys overwritten after it get their earlier entry back.
//!
//! Only the first write of each key after the newest live savepoint is
//! logged: a later one in the same stretch replaces a value no rollback can
//! return to (every savepoint it could, the newest included, came before
//! the first write, whose entry holds the value then). So the log holds at
//! most one entry per key and savepoint, not one per write (before
//! 2026-12-08, overwriting a key a thousand times after one savepoint kept
//! a thousand old values).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::{Error, Result};

/// Transaction identities for savepoints, drawn on a transaction's first
/// savepoint (so that transactions without savepoints never touch this
/// shared counter). 0 means "none drawn yet".
static NEXT_TXN_ID: AtomicU64 = AtomicU64::new(1);

/// A point in a transaction's writes that [`crate::Transaction::rollback_to`]
/// can return to; made by [`crate::Transaction::savepoint`].
///
/// A savepoint belongs to the transaction that made it: rolling another
/// transaction back to it is [`Error::InvalidArgument`]. Rolling back to a
/// savepoint keeps it (a second rollback to it works), but invalidates every
/// savepoint taken after it: rolling back to one of those is
/// [`Error::InvalidArgument`] too. [`crate::Transaction::release_savepoint`]
/// ends a savepoint (and those after it) without undoing anything; once
/// none is left, writes are no longer logged for rollbacks.
///
/// ```
/// let db = bwtx::Db::in_memory();
/// let mut tx = db.begin();
/// tx.put("a", "1")?;
/// let sp = tx.savepoint();
/// tx.put("a", "2")?;
/// tx.put("b", "2")?;
/// tx.rollback_to(&sp)?;
/// assert_eq!(tx.get("a")?.as_deref(), Some(&b"1"[..]));
/// assert_eq!(tx.get("b")?, None);
/// tx.commit()?;
/// # Ok::<(), bwtx::Error>(())
/// ```
#[must_use = "a savepoint does nothing unless rolled back to"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Savepoint {
    /// The identity of the transaction that made it.
    txn: u64,
    /// Its number within that transaction (0, 1, 2, ... in order taken).
    serial: u64,
    /// The undo log's length when it was taken.
    undo_len: usize,
}

/// A transaction's savepoint state: its identity, its live savepoints and
/// the undo log. Empty (and allocation-free) until the first savepoint.
/// One undo entry: the keyspace id, the key, and what the keyspace's write
/// set held for it before (`None`: nothing).
type UndoEntry = (u32, Bytes, Option<Option<Bytes>>);

#[derive(Debug, Default)]
pub(crate) struct Undo {
    /// This transaction's identity; 0 until the first savepoint.
    txn: u64,
    /// Savepoints taken so far (the next one's serial).
    taken: u64,
    /// The live savepoints' serials, in increasing order. Invariant: the
    /// undo log is kept while this is non-empty; a rollback removes the
    /// serials after its target.
    live: Vec<u64>,
    /// Per write since the first savepoint: the key and the write set's
    /// entry for it before that write (`None`: the key was not in it).
    /// `(keyspace id, key, what the write set held before)`.
    log: Vec<UndoEntry>,
    /// The keys logged since the newest live savepoint: a key in it is not
    /// logged again until the next savepoint or rollback.
    logged: HashSet<(u32, Bytes)>,
}

impl Undo {
    /// Whether writes must be logged (some savepoint is live).
    #[inline]
    pub(crate) fn active(&self) -> bool {
        !self.live.is_empty()
    }

    /// Record that the write set's entry for `key` was `prev` before a
    /// write. Call only when [`Undo::active`].
    pub(crate) fn record(&mut self, ks: u32, key: Bytes, prev: Option<Option<Bytes>>) {
        debug_assert!(self.active());
        if self.logged.insert((ks, key.clone())) {
            self.log.push((ks, key, prev));
        }
    }

    /// Take a savepoint at the current end of the log.
    pub(crate) fn savepoint(&mut self) -> Savepoint {
        if self.txn == 0 {
            self.txn = NEXT_TXN_ID.fetch_add(1, Ordering::Relaxed);
        }
        let serial = self.taken;
        self.taken += 1;
        self.live.push(serial);
        self.logged.clear();
        Savepoint {
            txn: self.txn,
            serial,
            undo_len: self.log.len(),
        }
    }

    /// Undo `writes` back to `sp`: replay the log backwards to the length it
    /// had then, and invalidate the savepoints taken after `sp`.
    pub(crate) fn rollback_to(
        &mut self,
        sp: &Savepoint,
        mut undo: impl FnMut(u32, Bytes, Option<Option<Bytes>>),
    ) -> Result<()> {
        let pos = self.live_position(sp)?;
        self.live.truncate(pos + 1);
        debug_assert!(sp.undo_len <= self.log.len());
        while self.log.len() > sp.undo_len {
            let (ks, key, prev) = self.log.pop().expect("the log is longer than the savepoint's length");
            undo(ks, key, prev);
        }
        // `sp` is the newest live savepoint now, and nothing is logged
        // after it.
        self.logged.clear();
        Ok(())
    }

    /// Release `sp` and every savepoint taken after it: none of them can be
    /// rolled back to any more, and the writes made since stay. With no
    /// live savepoint left, the log and `logged` are dropped and writes are
    /// no longer logged (S3). Otherwise the log stays whole: a rollback to
    /// an earlier savepoint replays it to that one's length, and for a key
    /// logged both before and after `sp`, the earlier entry is replayed
    /// last (S1). `logged` keeps the keys logged since the newest released
    /// savepoint, a subset of those since the newest live one: a key
    /// written between them is logged once more at its next write, which
    /// S1 allows.
    pub(crate) fn release(&mut self, sp: &Savepoint) -> Result<()> {
        let pos = self.live_position(sp)?;
        self.live.truncate(pos);
        if self.live.is_empty() {
            self.log = Vec::new();
            self.logged = HashSet::new();
        }
        Ok(())
    }

    /// Where `sp` is in `live`, or why it cannot be used.
    fn live_position(&self, sp: &Savepoint) -> Result<usize> {
        if self.txn == 0 || sp.txn != self.txn {
            return Err(Error::InvalidArgument("savepoint belongs to another transaction"));
        }
        self.live.binary_search(&sp.serial).map_err(|_| {
            Error::InvalidArgument("savepoint was released, or invalidated by a rollback to an earlier savepoint")
        })
    }

    /// Entries in the log (tests).
    #[cfg(test)]
    pub(crate) fn log_len(&self) -> usize {
        self.log.len()
    }
}

#[cfg(test)]
mod tests {
    /// Releasing a savepoint keeps every write, ends it and the savepoints
    /// after it, leaves the earlier ones working, and once none is left
    /// drops the log and stops logging.
    #[test]
    fn release_keeps_writes_and_ends_later_savepoints() {
        let db = crate::Db::in_memory();
        let mut tx = db.begin();
        let get = |tx: &crate::Transaction, k: &str| tx.get(k).unwrap().map(|v| String::from_utf8(v.to_vec()).unwrap());
        tx.put("k", "0").unwrap();
        let sp1 = tx.savepoint();
        tx.put("k", "1").unwrap();
        tx.put("j", "1").unwrap();
        let sp2 = tx.savepoint();
        tx.put("k", "2").unwrap();
        let sp3 = tx.savepoint();
        tx.put("i", "3").unwrap();
        tx.release_savepoint(&sp2).unwrap();
        assert_eq!(
            (get(&tx, "k").as_deref(), get(&tx, "i").as_deref()),
            (Some("2"), Some("3"))
        );
        for sp in [&sp2, &sp3] {
            assert!(matches!(tx.rollback_to(sp), Err(crate::Error::InvalidArgument(_))));
            assert!(matches!(
                tx.release_savepoint(sp),
                Err(crate::Error::InvalidArgument(_))
            ));
        }
        // Writes after the release are still logged for sp1.
        tx.put("j", "4").unwrap();
        tx.rollback_to(&sp1).unwrap();
        assert_eq!(
            (get(&tx, "k").as_deref(), get(&tx, "j"), get(&tx, "i")),
            (Some("0"), None, None)
        );
        tx.put("k", "5").unwrap();
        tx.release_savepoint(&sp1).unwrap();
        assert_eq!(tx.undo_len(), 0, "no live savepoint: the log is gone");
        tx.put("k", "6").unwrap();
        assert_eq!(tx.undo_len(), 0, "and nothing is logged");
        assert!(matches!(tx.rollback_to(&sp1), Err(crate::Error::InvalidArgument(_))));
        let other = db.begin().savepoint();
        assert!(matches!(
            tx.release_savepoint(&other),
            Err(crate::Error::InvalidArgument(_))
        ));
        tx.commit().unwrap();
        assert_eq!(db.snapshot().get("k").unwrap().as_deref(), Some(&b"6"[..]));
    }

    /// One entry per key and savepoint, however often the key is written,
    /// and rollbacks to each savepoint still restore exactly.
    #[test]
    fn overwrites_log_once_per_key_and_savepoint() {
        let db = crate::Db::in_memory();
        let mut tx = db.begin();
        tx.put("k", "0").unwrap();
        let sp1 = tx.savepoint();
        for i in 1..=1000 {
            tx.put("k", format!("a{i}")).unwrap();
        }
        tx.put("j", "a").unwrap();
        assert_eq!(tx.undo_len(), 2);
        let sp2 = tx.savepoint();
        for i in 1..=1000 {
            tx.put("k", format!("b{i}")).unwrap();
        }
        tx.delete("j").unwrap();
        tx.put("j", "b").unwrap();
        assert_eq!(tx.undo_len(), 4);
        let get = |tx: &crate::Transaction, k: &str| tx.get(k).unwrap().map(|v| String::from_utf8(v.to_vec()).unwrap());
        tx.rollback_to(&sp2).unwrap();
        assert_eq!(
            (get(&tx, "k").as_deref(), get(&tx, "j").as_deref()),
            (Some("a1000"), Some("a"))
        );
        tx.put("k", "c").unwrap();
        tx.put("k", "d").unwrap();
        assert_eq!(tx.undo_len(), 3, "logged again after the rollback, once");
        tx.rollback_to(&sp2).unwrap();
        assert_eq!(get(&tx, "k").as_deref(), Some("a1000"));
        tx.rollback_to(&sp1).unwrap();
        assert_eq!((get(&tx, "k").as_deref(), get(&tx, "j")), (Some("0"), None));
        assert_eq!(tx.undo_len(), 0);
    }
}
