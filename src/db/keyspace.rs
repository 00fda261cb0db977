//! [`Keyspace`]: a handle on one named keyspace (`design/keyspaces.md`),
//! [`KeyspaceStats`], the `Db` methods that open, list and drop keyspaces,
//! and the per-handle cache through which a transaction or snapshot reads
//! a keyspace's tree.
//!
//! A transaction or snapshot resolves each keyspace it uses once: whether it
//! can read it at its snapshot timestamp (the catalog as of then), and, for
//! a serializable transaction, the keyspace's read set. The cache is a chain
//! of [`OnceSlot`]s, so `&self` reads can add to it and borrow trees from it
//! for as long as the handle lives.

use std::fmt;

use super::Db;
use crate::engine::keyspaces::{KsTree, DEFAULT_NAME};
use crate::engine::Engine;
use crate::mvcc::readset::ReadSet;
use crate::sync::{Arc, OnceSlot};
use crate::{Error, Result};

/// A handle on a keyspace: a named, ordered key space of its own in the
/// database, read and written through a transaction's or snapshot's `*_in`
/// methods (`tx.put_in(&ks, key, value)`). One transaction uses any number
/// of keyspaces, atomically; the same key in two keyspaces is two keys.
///
/// Cheap to clone (an `Arc`), `Send + Sync`. It does not keep the database
/// open. Using it after its keyspace was dropped (in a transaction or
/// snapshot that began after the drop, or in a commit after it) returns
/// [`Error::KeyspaceNotFound`]; using it with another database (or the same
/// directory opened again) returns [`Error::InvalidArgument`].
///
/// ```
/// let db = bwtx::Db::in_memory();
/// let users = db.keyspace("users")?;
/// let mut tx = db.begin();
/// tx.put_in(&users, "alice", "1")?;
/// tx.put("alice", "default keyspace")?;
/// tx.commit()?;
/// assert_eq!(db.snapshot().get_in(&users, "alice")?.as_deref(), Some(&b"1"[..]));
/// # Ok::<(), bwtx::Error>(())
/// ```
#[derive(Clone)]
pub struct Keyspace {
    /// The engine it belongs to (`Engine::id`).
    pub(crate) db: u64,
    /// `None`: the default keyspace.
    pub(crate) inner: Option<Arc<KsTree>>,
}

impl Keyspace {
    /// The keyspace's name (`"default"` for the default one).
    pub fn name(&self) -> &str {
        self.inner.as_ref().map_or(DEFAULT_NAME, |k| &k.name)
    }
}

impl fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyspace")
            .field("name", &self.name())
            .field("id", &self.inner.as_ref().map_or(0, |k| k.id))
            .finish()
    }
}

/// Figures of one keyspace ([`Db::keyspace_stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyspaceStats {
    /// Live keys at the newest snapshot (exact).
    pub live_keys: u64,
    /// Page ids the keyspace's tree has used (leaves and inner nodes).
    pub pages: u64,
    /// Estimated heap bytes of its pages held in memory (0 without a page
    /// store; with one, its share of the one cache budget every tree
    /// shares).
    pub resident_bytes: u64,
}

impl Db {
    /// The keyspace `name`, created if it does not exist. Creation is a
    /// commit (through the log, in the database's durability mode): once
    /// this returns, the keyspace survives a crash as that mode promises.
    /// `"default"` is the default keyspace, which the methods without `_in`
    /// use.
    ///
    /// Names are 1-64 bytes of `A-Z a-z 0-9 _ . -`, not starting with `.`
    /// or `_`; another is [`Error::InvalidArgument`]. A database with a
    /// page store (`Options::cache_size`) takes keyspace ids up to 65,534
    /// (each tree's page records carry its id as a 16-bit tag); past that,
    /// creating one is `InvalidArgument`. Ids are never reused, not even
    /// after a drop, so the limit counts every keyspace ever created there. A creation whose log write or sync
    /// fails is [`Error::Io`], and the database is poisoned: asking for
    /// the keyspace again is [`Error::Poisoned`] until it is reopened.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace> {
        Ok(Keyspace {
            db: self.engine.id,
            inner: self.engine.keyspace(name)?,
        })
    }

    /// The names of the live keyspaces, sorted, `"default"` included. Fails
    /// only if the catalog cannot be read ([`Error::Io`] or
    /// [`Error::Corruption`] for an evicted page).
    pub fn keyspaces(&self) -> Result<Vec<String>> {
        self.engine.keyspace_names()
    }

    /// Drop keyspace `name` (a commit, like its creation). Snapshots and
    /// transactions that began before the drop still read it; commits
    /// into it after the drop fail with [`Error::KeyspaceNotFound`], and so
    /// do those of serializable transactions that read it (in commit
    /// order their reads would follow the drop); its
    /// memory is freed once no snapshot can read it (and its handles are
    /// gone). A keyspace created again under the same name is a new, empty
    /// one. Dropping `"default"` is [`Error::InvalidArgument`]; a name that
    /// does not exist is [`Error::KeyspaceNotFound`].
    pub fn drop_keyspace(&self, name: &str) -> Result<()> {
        self.engine.drop_keyspace(name)
    }

    /// Figures of keyspace `ks` at the newest snapshot. Fails with
    /// [`Error::KeyspaceNotFound`] once `ks` was dropped, and with
    /// [`Error::InvalidArgument`] for a handle of another database.
    pub fn keyspace_stats(&self, ks: &Keyspace) -> Result<KeyspaceStats> {
        let snap = self.snapshot();
        let live_keys = snap.len_in(ks)?;
        let tree = match &ks.inner {
            Some(k) => &k.tree,
            None => &self.engine.tree,
        };
        Ok(KeyspaceStats {
            live_keys,
            pages: tree.stats().page_ids,
            resident_bytes: tree.resident_bytes(),
        })
    }
}

/// A keyspace as one transaction or snapshot resolved it.
pub(crate) struct Resolved {
    pub(crate) ks: Arc<KsTree>,
    /// Readable at the handle's snapshot.
    visible: bool,
    /// A serializable transaction's reads of it.
    pub(crate) reads: ReadSet,
    next: OnceSlot<Resolved>,
}

/// The keyspaces one handle resolved (module doc).
pub(crate) struct KsCache {
    head: OnceSlot<Resolved>,
}

impl KsCache {
    pub(crate) fn new() -> Self {
        KsCache { head: OnceSlot::new() }
    }

    /// `ks` resolved for `engine` at snapshot `ts`: `None` for the default
    /// keyspace; an error for another database's handle or a keyspace not
    /// readable at `ts`.
    pub(crate) fn resolve(&self, engine: &Engine, ts: u64, ks: &Keyspace) -> Result<Option<&Resolved>> {
        if ks.db != engine.id {
            return Err(Error::InvalidArgument("a keyspace handle of another database"));
        }
        let Some(k) = &ks.inner else { return Ok(None) };
        let mut slot = &self.head;
        loop {
            let node = match slot.get() {
                Some(node) => node,
                None => Self::fill(slot, engine, k, ts)?,
            };
            if node.ks.id == k.id {
                if !node.visible {
                    return Err(Error::KeyspaceNotFound {
                        name: k.name.to_string(),
                    });
                }
                return Ok(Some(node));
            }
            slot = &node.next;
        }
    }

    /// Resolve `k` at `ts` into the empty `slot`. Found or not found is
    /// remembered; any other error (too old, a catalog page unreadable) is
    /// returned and the next call asks again. Another thread may fill the
    /// slot first, with this keyspace or another: the node returned is the
    /// slot's, and the caller looks at whose it is.
    fn fill<'s>(slot: &'s OnceSlot<Resolved>, engine: &Engine, k: &Arc<KsTree>, ts: u64) -> Result<&'s Resolved> {
        let visible = match engine.ks_visible(k, ts) {
            Ok(()) => true,
            Err(Error::KeyspaceNotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        Ok(slot.get_or_init(|| {
            Box::new(Resolved {
                ks: k.clone(),
                visible,
                reads: ReadSet::default(),
                next: OnceSlot::new(),
            })
        }))
    }

    /// Every keyspace resolved so far.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Resolved> {
        std::iter::successors(self.head.get(), |n| n.next.get())
    }
}

/// A named keyspace's exact count at `ts`: 0 before its creation in this
/// run (a snapshot taken before it reads it as empty), `SnapshotTooOld` below the
/// oldest timestamp its counts know. A keyspace rebuilt at open knows its
/// count only from the recovered timestamp on (unlike the default
/// keyspace, whose count history the checkpoints keep), so a
/// [`Db::snapshot_at`] before it cannot count it (`design/keyspaces.md`).
pub(crate) fn count_at(ks: &KsTree, ts: u64, floor: u64) -> Result<u64> {
    if ts < ks.created && ks.created_here {
        return Ok(0);
    }
    let counts = &ks.counts;
    let first = counts.first_ts();
    if ts < first {
        return Err(Error::SnapshotTooOld {
            requested: ts,
            oldest: first,
        });
    }
    Ok(counts.at(ts, floor))
}
