//! The tree's side of a transaction commit: validate a write set, then
//! install it at the commit timestamp, with one descent per key.
//!
//! The protocol, in the order the engine runs it (`engine/commit.rs`;
//! `design/mvcc.md`, section 3), with the write set's latches held from before step 1 until
//! after step 2:
//!
//! 1. [`Tree::prepare`] descends to the leaf of each written key, in the
//!    order given, and reads the key's newest version there (tombstones
//!    included). One newer than the snapshot is a [`Conflict`]; nothing is
//!    kept. A leaf evicted to a stub is not faulted in when the stub's
//!    `max_ts` or its deltas decide that (blind writes, P5 in
//!    `super::paging`), for at most [`Tree::blind_run`] consecutive writes
//!    of the write set into one leaf: past that it is faulted in here,
//!    before the commit timestamp, so that step 2 consolidates and splits
//!    it as it goes. (Blind deltas over a stub cannot be consolidated
//!    before the commit is published, and every install after the first
//!    walks them to find the stub: a 300,000-write transaction into one
//!    evicted leaf took over 12 minutes, against 0.6 s in memory.)
//!    Otherwise it returns a [`Prepared`] commit, which holds, out of
//!    the caller's sight, an epoch guard and the leaf found for each key.
//!    The caller then takes the commit timestamp.
//! 2. [`Prepared::install`] installs every write as a version at the commit
//!    timestamp. Each write whose key and value fit a delta inline
//!    (`INLINE_KV`, 192 bytes) goes onto its leaf with one CAS if the leaf's
//!    head is still the one validated: then the page is exactly as validated, and
//!    the guard, pinned since, rules out a new node at the old head's
//!    address. Otherwise (a larger write, a changed head, or a lost CAS) it
//!    takes a fresh descent.
//!    Consolidation is deferred, except for chains twice the threshold long
//!    (so a large write set still splits the pages it fills as it goes).
//!    The guard is released; the [`Installed`] result lists the keys whose
//!    leaves' chains reached the threshold.
//! 3. [`Installed::consolidate`] consolidates those leaves. The engine
//!    calls it after publishing the commit, off the window in which later
//!    commits wait for this one.
//!
//! No page id, node reference or epoch guard crosses this API.

use bytes::Bytes;
use crossbeam_epoch::{self as epoch, Guard};
use smallvec::SmallVec;

use super::blind::BlindCheck;
use super::chain::{Delta, Node};
use super::delta::{Body, Payload, INLINE_KV};
use super::mapping_table::Pid;
use super::paging::{GatePass, Installing};
use super::search::{leaf_find, Target};
use super::tree::{Path, Tree};
use crate::sync::Ordering;

/// A write whose key has a newer version than the snapshot: the commit that
/// installed it won.
#[derive(Debug)]
pub(crate) struct Conflict<'w> {
    pub(crate) key: &'w Bytes,
    /// The newer version's commit timestamp.
    pub(crate) winner: u64,
}

/// Why a write set could not be prepared.
#[derive(Debug)]
pub(crate) enum PrepareError<'w> {
    /// A newer version of a written key.
    Conflict(Conflict<'w>),
    /// A leaf could not be faulted in (I/O error or corrupt image).
    Page(crate::Error),
}

/// A validated write set, ready for step 2 of the protocol in the module doc.
#[must_use = "dropping a prepared commit installs nothing"]
pub(crate) struct Prepared<'t, 'w> {
    tree: &'t Tree,
    /// Pinned before the first descent: the heads recorded in `writes` stay
    /// allocated until [`Prepared::install`] is done.
    guard: Guard,
    writes: SmallVec<[Located<'w>; 4]>,
    /// Live keys the write set creates minus those it deletes, as of the
    /// newest versions validation read (under the write latches).
    live_delta: i64,
    /// Trees with paging: held from before the first descent until the
    /// install is done, so no leaf prepare faulted in is evicted meanwhile
    /// (`super::paging`, G1). Dropped after `guard`'s last use.
    _gate: Option<GatePass<'t>>,
}

/// One write and the leaf validation found for its key.
struct Located<'w> {
    key: &'w Bytes,
    /// `None`: a delete.
    value: Option<&'w Bytes>,
    pid: Pid,
    /// The leaf's head when validated. Only compared with the page's current
    /// head, never dereferenced: a reference is taken from the mapping table
    /// again, under the guard.
    head: *const Node,
}

/// An installed write set, ready for step 3 of the protocol in the module doc.
#[must_use = "the leaves whose chains grew long are consolidated by `consolidate`"]
pub(crate) struct Installed<'t, 'w> {
    tree: &'t Tree,
    /// Keys whose leaves' chains reached `leaf_chain` when installed.
    long_chains: SmallVec<[&'w Bytes; 4]>,
}

impl Tree {
    /// Validate a write set (`None` values are deletes) against snapshot
    /// `snapshot_ts`: the first key, in the order given, whose newest version
    /// is newer than the snapshot is a [`Conflict`]. The keys and values must
    /// have been checked ([`Tree::check_key`], [`Tree::check_value`]).
    pub(crate) fn prepare<'t, 'w>(
        &'t self,
        writes: impl IntoIterator<Item = (&'w Bytes, &'w Option<Bytes>)>,
        snapshot_ts: u64,
    ) -> Result<Prepared<'t, 'w>, PrepareError<'w>> {
        let writes = writes.into_iter();
        let gate = self.paging.as_deref().map(|p| p.gate.enter());
        let guard = epoch::pin();
        let mut located = SmallVec::with_capacity(writes.size_hint().0);
        let mut live_delta = 0i64;
        // The leaf the last blind write went to, and how many of the write
        // set's writes in a row went blind onto it (the write set is in key
        // order, so one leaf's writes are consecutive).
        let mut run: Option<(Pid, usize)> = None;
        for (key, value) in writes {
            let mut path = Path::new();
            let (pid, head, newest) = self
                .validate_write(key, snapshot_ts, &guard, &mut path, &mut run)
                .map_err(PrepareError::Page)?;
            if let Some(winner) = newest.newest.filter(|&w| w > snapshot_ts) {
                return Err(PrepareError::Conflict(Conflict { key, winner }));
            }
            live_delta += i64::from(value.is_some()) - i64::from(newest.live);
            located.push(Located {
                key,
                value: value.as_ref(),
                pid,
                head,
            });
        }
        Ok(Prepared {
            tree: self,
            guard,
            writes: located,
            live_delta,
            _gate: gate,
        })
    }

    /// The leaf of `key` and what validation needs of its newest version:
    /// decided blind over an evicted leaf's stub if it can be
    /// (`super::blind`, P5 in `super::paging`), else after a faulting descent.
    /// `run`: the leaf of the write set's last blind write and how many
    /// went blind onto it in a row; past [`Tree::blind_run`] the leaf is
    /// faulted in instead.
    fn validate_write<'g>(
        &'g self,
        key: &[u8],
        snapshot_ts: u64,
        guard: &'g Guard,
        path: &mut Path<'g>,
        run: &mut Option<(Pid, usize)>,
    ) -> crate::Result<(Pid, &'g Node, BlindCheck)> {
        if let Some(paging) = self.paging.as_deref() {
            let (pid, head) = self.descend_to::<false, { super::clock::POINT }>(Target::Key(key), guard, path)?;
            if !head.is_evicted() {
                return Ok((pid, head, check(head, key)));
            }
            let n = match *run {
                Some((p, n)) if p == pid => n,
                _ => 0,
            };
            if n < self.blind_run() {
                if let Some((head, c)) = self.blind_check(paging, pid, head, key, snapshot_ts, guard)? {
                    paging.counters.blind_writes.fetch_add(1, Ordering::Relaxed);
                    *run = Some((pid, n + 1));
                    return Ok((pid, head, c));
                }
            }
            path.clear();
        }
        let (pid, head) = self.descend(Target::Key(key), guard, path)?;
        Ok((pid, head, check(head, key)))
    }

    /// How many writes of one write set in a row go blind onto one evicted
    /// leaf before `prepare` faults it in: twice the consolidation
    /// threshold, the longest chain an install leaves unconsolidated on a
    /// resident leaf.
    pub(crate) fn blind_run(&self) -> usize {
        2 * usize::from(self.cfg.leaf_chain)
    }

    /// Consolidate the leaf holding `key` if its chain reached the threshold.
    pub(super) fn consolidate_leaf_of(&self, key: &[u8]) {
        let guard = epoch::pin();
        let mut path = Path::new();
        // A failed fault-in: nothing to consolidate.
        let Ok((pid, head)) = self.descend(Target::Key(key), &guard, &mut path) else {
            return;
        };
        if head.chain_len >= self.cfg.leaf_chain {
            self.consolidate(pid, head, &path, &guard);
        }
    }
}

/// The newest version of `key` on a resident chain, as validation needs it.
fn check(head: &Node, key: &[u8]) -> BlindCheck {
    let newest = leaf_find(head, key, u64::MAX);
    BlindCheck {
        newest: newest.as_ref().map(|h| h.ts()),
        live: newest.is_some_and(|h| h.is_live()),
    }
}

impl<'t, 'w> Prepared<'t, 'w> {
    /// Live keys the write set creates minus those it deletes (exact while
    /// the write latches are held, as from validation to install).
    pub(crate) fn live_delta(&self) -> i64 {
        self.live_delta
    }

    /// Install every write as a version at commit timestamp `ts` (above
    /// every GC watermark), each onto the leaf validation found if that is
    /// unchanged, else by a fresh descent. Cannot fail.
    pub(crate) fn install(self, ts: u64) -> Installed<'t, 'w> {
        let Prepared {
            tree,
            guard,
            writes,
            _gate,
            ..
        } = self;
        let mut long_chains = SmallVec::new();
        let installing = tree.paging.is_some().then(Installing::start);
        for w in &writes {
            if tree.install_located(w, ts, &guard) {
                long_chains.push(w.key);
            }
        }
        drop(installing);
        drop(writes);
        drop(guard);
        drop(_gate);
        Installed { tree, long_chains }
    }
}

impl Tree {
    /// Install `w` with one CAS onto the head validation found, if the page
    /// still has that head; otherwise (or if the CAS is lost) by
    /// [`Tree::install_committed`]. Returns its "chain is long" flag.
    fn install_located(&self, w: &Located<'_>, ts: u64, guard: &Guard) -> bool {
        let vlen = w.value.map_or(0, |v| v.len());
        if w.key.len() + vlen <= INLINE_KV {
            let current = self.table.load(w.pid, guard);
            if let Some(head) = current.filter(|h| std::ptr::eq(*h, w.head) && !h.is_frozen()) {
                let delta = Delta::new(Body::Version {
                    ts,
                    kv: Payload::copy(w.key, w.value.map(|v| &v[..])),
                });
                if let Ok(new) = self.table.install(w.pid, head, delta, guard) {
                    return new.chain_len >= self.cfg.leaf_chain;
                }
            }
        }
        self.install_committed(w.key, ts, w.value)
    }
}

impl Installed<'_, '_> {
    /// Consolidate the leaves whose chains reached the threshold.
    pub(crate) fn consolidate(self) {
        for key in self.long_chains {
            self.tree.consolidate_leaf_of(key);
        }
    }
}
