//! The tree: descent with help-along, and the operations the engine and
//! recovery call (install a version, read as of a timestamp, newest ts).
//! Its configuration is `super::config`'s [`Config`], re-exported here.

use bytes::Bytes;
use crossbeam_epoch::{self as epoch, Guard};
use smallvec::SmallVec;

use super::base::{LeafBase, PageRange};
use super::chain::{Chain, Delta, Node};
use super::clock;
use super::cold::Cold;
use super::delta::{Body, Payload, INLINE_KV};
use super::mapping_table::{MappingTable, Peek, Pid};
use super::paging::{PageIo, Paging};
use super::search::{leaf_find, route, Target};
use super::stats::Counters;
use crate::sync::{AtomicU64, Backoff, Ordering};
use crate::{Error, Result};

pub use super::config::Config;

/// The leaf a descent ends at ([`Tree::descend_leaf`]).
pub(crate) enum Leaf<'g> {
    /// Its chain's newest node.
    Node(&'g Node),
    /// Its cold stub, left packed.
    Cold(&'g Cold),
}

/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 4 * 1024;
/// Longest value accepted, in bytes (values are addressed with 31 bits).
pub const MAX_VALUE_LEN: usize = 256 * 1024 * 1024;

/// A CAS-retry loop gives up (with [`Error::Contention`]) after this many
/// lost attempts. Lock-free progress makes this unreachable in practice.
pub(crate) const MAX_ATTEMPTS: u32 = 1 << 20;

/// How many times a walk that helps finish a merge it meets (rather than
/// reporting at once, as point operations do) tries before it returns the
/// error that stops it (an absorber whose image cannot be read).
const MERGE_RETRIES: u32 = 8;

/// One inner page on the way down: its id and the chain head we routed through.
#[derive(Clone, Copy)]
pub(crate) struct Step<'g> {
    pub(crate) pid: Pid,
    pub(crate) head: &'g Node,
}

pub(crate) type Path<'g> = SmallVec<[Step<'g>; 8]>;

/// A latch-free, multi-version Bw-Tree.
///
/// Keys are byte strings ordered lexicographically; each key holds versions
/// stamped with commit timestamps (`ts >= 1`); a version's value is bytes or a
/// tombstone. All methods take `&self` and may be called from any number of
/// threads; no method takes a lock.
pub struct Tree {
    pub(crate) table: MappingTable,
    pub(crate) root: AtomicU64,
    pub(crate) cfg: Config,
    pub(crate) watermark: AtomicU64,
    pub(crate) stats: Counters,
    /// Set when the tree's leaves may be evicted to a page store
    /// ([`super::paging`]); `None`: every page is always resident.
    pub(crate) paging: Option<Box<Paging>>,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

/// `a < b` for upper fences, where `None` is plus infinity.
#[inline]
pub(crate) fn high_lt(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (_, None) => a.is_some(),
        (None, Some(_)) => false,
        (Some(a), Some(b)) => super::keys::key_lt(a, b),
    }
}

/// The root word: the root's page id in the low 48 bits and a generation in
/// the high 16, bumped by every root change, so that a thread holding a stale
/// view of the root cannot install a new root over a newer one (ABA).
pub(crate) const ROOT_PID_BITS: u32 = 48;

#[inline]
pub(crate) fn root_pid(word: u64) -> Pid {
    word & ((1 << ROOT_PID_BITS) - 1)
}

#[inline]
pub(crate) fn next_root_word(word: u64, pid: Pid) -> u64 {
    debug_assert!(pid < 1 << ROOT_PID_BITS);
    let generation = ((word >> ROOT_PID_BITS) + 1) & 0xffff;
    (generation << ROOT_PID_BITS) | pid
}

impl Tree {
    /// An empty tree with the default configuration.
    pub fn new() -> Self {
        Self::with_config(Config::default()).expect("default config is valid")
    }

    /// An empty tree with `cfg`; an error if the configuration is inconsistent.
    pub fn with_config(cfg: Config) -> Result<Self> {
        cfg.validate()?;
        let table = MappingTable::new();
        let guard = epoch::pin();
        let root = table.alloc(&guard);
        table.store_new(
            root,
            Chain::base(Node::base(Body::Leaf(LeafBase::empty(PageRange::full())))),
        );
        Ok(Tree {
            table,
            root: AtomicU64::new(root),
            cfg,
            watermark: AtomicU64::new(0),
            stats: Counters::default(),
            paging: None,
        })
    }

    /// Let leaves be evicted to (and faulted in from) `io`; before the tree
    /// is shared.
    /// Its leaves split at [`Config::paged_leaf_max`] from now on.
    pub(crate) fn set_page_io(&mut self, io: Box<dyn PageIo>) {
        self.cfg = self.cfg.paged();
        self.paging = Some(Box::new(Paging::new(io)));
        self.table.count_bytes();
    }

    /// The configuration this tree was built with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub(crate) fn check_key(key: &[u8]) -> Result<()> {
        if key.len() > MAX_KEY_LEN {
            return Err(Error::KeyTooLarge {
                len: key.len(),
                max: MAX_KEY_LEN,
            });
        }
        Ok(())
    }

    /// Walk from the root to the page that holds `t`, recording the inner pages
    /// passed in `path`. Finishes any structure modification met on the way
    /// (help-along): posts missing index entries, grows the root after a root
    /// split, and completes merges of frozen pages before going on.
    ///
    /// An evicted leaf is faulted in first; a failed read is the error.
    #[inline]
    pub(crate) fn descend<'g>(
        &'g self,
        t: Target<'_>,
        guard: &'g Guard,
        path: &mut Path<'g>,
    ) -> Result<(Pid, &'g Node)> {
        self.descend_to::<true, { clock::POINT }>(t, guard, path)
    }

    /// [`Tree::descend`]; with `FAULT` false an evicted leaf is returned as
    /// it is (and the descent fails only if `USE` is `clock::POINT` or has
    /// `clock::PROBE` and a merge it helps cannot read a page). With paging,
    /// the leaf's clock use count is raised to `USE` (0: not touched;
    /// `clock::POINT`, `clock::SCAN`; with `clock::PROBE`, only if the leaf
    /// is resident).
    pub(crate) fn descend_to<'g, const FAULT: bool, const USE: u64>(
        &'g self,
        t: Target<'_>,
        guard: &'g Guard,
        path: &mut Path<'g>,
    ) -> Result<(Pid, &'g Node)> {
        loop {
            // Without `COLD` every slot is loaded (unpacked): a cold leaf
            // never comes back, and a restart would be correct anyway.
            if let (pid, Leaf::Node(head)) = self.descend_leaf::<FAULT, USE, false>(t, guard, path)? {
                return Ok((pid, head));
            }
        }
    }

    /// [`Tree::descend_to`]; with `COLD` (never with `FAULT`), a cold leaf
    /// (`super::cold`) below a parent (or a root leaf with no high fence)
    /// whose fences hold the target is returned packed, so that a read of
    /// it leaves it packed; past its high fence the descent goes on to its
    /// right sibling. Any other cold slot met is unpacked, as without
    /// `COLD`. A cold leaf's use count is not touched (a cold leaf is
    /// evicted: `clock::PROBE` would not touch it either).
    pub(crate) fn descend_leaf<'g, const FAULT: bool, const USE: u64, const COLD: bool>(
        &'g self,
        t: Target<'_>,
        guard: &'g Guard,
        path: &mut Path<'g>,
    ) -> Result<(Pid, Leaf<'g>)> {
        const { assert!(!(FAULT && COLD), "a faulting descent has no use for a cold leaf") };
        let backoff = Backoff::new();
        // Failed attempts at finishing a merge met on the way (its absorber
        // could not be read): a few, then the error (below).
        let mut merge_failures = 0u32;
        'restart: loop {
            path.clear();
            let root_word = self.root.load(Ordering::Acquire);
            let mut pid = root_pid(root_word);
            // The upper fence our parent believes `pid` has (None: we came over
            // a sibling link or from the root, so there is nothing to compare).
            let mut parent_hi: Option<(Option<&'g [u8]>, u64)> = None;
            loop {
                let head = if COLD {
                    match self.table.peek(pid, guard) {
                        // A cold leaf below a parent, or a root leaf with no
                        // high fence (no root grow due): the checks below,
                        // on its fences. A split whose index entry the
                        // parent lacks is left to the next descent that
                        // meets the leaf's node (help-along needs the node).
                        Peek::Cold(cold) if (!path.is_empty() || cold.high().is_none()) && t.above_low(cold.low()) => {
                            if t.below_high(cold.high()) {
                                return Ok((pid, Leaf::Cold(cold)));
                            }
                            pid = cold.sibling();
                            parent_hi = None;
                            continue;
                        }
                        Peek::Node(node) => Some(node),
                        Peek::Free => None,
                        // Anything else: unpacked, and the node's checks.
                        Peek::Cold(_) => self.table.load(pid, guard),
                    }
                } else {
                    self.table.load(pid, guard)
                };
                let Some(head) = head else {
                    // Unlinked under us (merge or root shrink): start again.
                    backoff.snooze();
                    continue 'restart;
                };
                if !t.above(head) {
                    backoff.snooze();
                    continue 'restart;
                }
                if let (true, Body::RemoveNode { merge }) = (head.is_frozen(), &head.body) {
                    match merge {
                        Some(merge) => {
                            // Point operations (a get, a write's descent)
                            // report a page they cannot read, as they did
                            // when they always faulted in: a disk that keeps
                            // failing must not spin them.
                            //
                            // Other walks (GC's sweep, a checkpoint's
                            // listing, validation's, the evictor's path)
                            // retry a few times, then report it too: before,
                            // they retried forever on an absorber whose
                            // image could not be read, and hung.
                            if FAULT || USE == clock::POINT || USE & clock::PROBE != 0 {
                                self.complete_merge(merge, guard)?;
                            } else if let Err(e) = self.complete_merge(merge, guard) {
                                merge_failures += 1;
                                if merge_failures >= MERGE_RETRIES {
                                    return Err(e);
                                }
                                backoff.snooze();
                            }
                        }
                        None => self.finish_root_shrink(pid, head, guard),
                    }
                    continue 'restart;
                }
                if let (Some((hi, hi_head)), Some(parent)) = (parent_hi, path.last()) {
                    if head.high_below(hi, hi_head) {
                        // Our parent lacks the separator of a split: post it.
                        self.post_index_entry(*parent, pid, head, hi, guard);
                    }
                }
                if path.is_empty() && head.has_high() && pid == root_pid(root_word) {
                    self.grow_root(root_word, pid, head, guard);
                    continue 'restart;
                }
                if !t.below(head) {
                    pid = head.range().sibling;
                    parent_hi = None;
                    continue;
                }
                if head.leaf {
                    if USE > 0 {
                        if let Some(paging) = self.paging.as_deref() {
                            if USE & clock::PROBE == 0 || !head.is_evicted() {
                                paging.uses.touch(pid, USE & !clock::PROBE);
                            }
                        }
                    }
                    if FAULT && head.is_evicted() {
                        match self.fault_in(pid, head, guard, USE == clock::SCAN)? {
                            Some(head) => return Ok((pid, Leaf::Node(head))),
                            None => {
                                backoff.snooze();
                                continue 'restart;
                            }
                        }
                    }
                    return Ok((pid, Leaf::Node(head)));
                }
                if head.chain_len >= self.cfg.inner_chain {
                    self.consolidate(pid, head, path, guard);
                }
                let down = route(head, t);
                path.push(Step { pid, head });
                pid = down.child;
                parent_hi = Some((down.hi, down.hi_head));
            }
        }
    }

    /// Install a version of `key` committed at `ts` (`None`: a tombstone).
    /// Zero-copy: the tree keeps the given `Bytes`.
    pub fn install(&self, key: Bytes, ts: u64, value: Option<Bytes>) -> Result<()> {
        Self::check_key(&key)?;
        if let Some(v) = &value {
            if v.len() > MAX_VALUE_LEN {
                return Err(Error::ValueTooLarge {
                    len: v.len(),
                    max: MAX_VALUE_LEN,
                });
            }
        }
        self.install_payload(Payload::Refcounted { key, value }, ts, true)
            .map(|_| ())
    }

    /// Install a version whose payload is built (and size-checked) already.
    /// With `consolidate` false, a chain that reached the consolidation
    /// threshold (but not twice it) is left alone and `Ok(true)` returned: the caller
    /// consolidates later (a commit does, in [`super::commit::Installed::consolidate`]).
    fn install_payload(&self, kv: Payload, ts: u64, consolidate: bool) -> Result<bool> {
        if ts == 0 {
            return Err(Error::InvalidArgument("commit timestamps start at 1"));
        }
        let guard = epoch::pin();
        let mut path = Path::new();
        let mut delta = Delta::new(Body::Version { ts, kv });
        let backoff = Backoff::new();
        for _ in 0..MAX_ATTEMPTS {
            let (pid, head) = match delta.body() {
                Body::Version { kv, .. } => self.leaf_for_version(kv.key(), ts, &guard, &mut path)?,
                _ => unreachable!("install_payload() builds a version delta"),
            };
            match self.table.install(pid, head, delta, &guard) {
                Ok(new) => {
                    if new.chain_len >= self.cfg.leaf_chain && new.is_evicted() {
                        // Over a stub: consolidation needs the image, and a
                        // commit's install never reads (G1): its caller
                        // consolidates after publishing.
                        if !consolidate {
                            return Ok(true);
                        }
                        if let Body::Version { kv, .. } = &new.body {
                            self.consolidate_leaf_of(kv.key());
                        }
                        return Ok(false);
                    }
                    if new.chain_len >= self.cfg.leaf_chain {
                        // Deferred only up to twice the threshold, so that a
                        // large transaction still consolidates (and splits) as
                        // it goes instead of leaving long chains behind.
                        if !consolidate && u32::from(new.chain_len) < 2 * u32::from(self.cfg.leaf_chain) {
                            return Ok(true);
                        }
                        self.consolidate(pid, new, &path, &guard);
                    }
                    return Ok(false);
                }
                Err(d) => {
                    delta = d;
                    self.stats.cas_retries.fetch_add(1, Ordering::Relaxed);
                    backoff.snooze();
                }
            }
        }
        Err(Error::Contention { attempts: MAX_ATTEMPTS })
    }

    /// The leaf to install a version of `key` at `ts` on: a chain over an
    /// evicted leaf's stub as it is if `ts` is above the stub's `max_ts`
    /// (a blind write, P5 in `super::paging`: no I/O), else after a
    /// faulting descent.
    fn leaf_for_version<'g>(
        &'g self,
        key: &[u8],
        ts: u64,
        guard: &'g Guard,
        path: &mut Path<'g>,
    ) -> Result<(Pid, &'g Node)> {
        if self.paging.is_some() {
            let (pid, head) = self.descend_to::<false, { clock::POINT }>(Target::Key(key), guard, path)?;
            match super::blind::stub_of(head).map(|s| &s.body) {
                None => return Ok((pid, head)),
                Some(Body::Evicted { max_ts, .. }) if *max_ts < ts => return Ok((pid, head)),
                _ => path.clear(),
            }
        }
        self.descend(Target::Key(key), guard, path)
    }

    /// Install `value` for `key` at `ts`, copying both (small ones into the
    /// delta itself: one allocation per write).
    pub fn put(&self, key: impl AsRef<[u8]>, ts: u64, value: impl AsRef<[u8]>) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        Self::check_key(key)?;
        if value.len() > MAX_VALUE_LEN {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        self.install_payload(Payload::copy(key, Some(value)), ts, true)
            .map(|_| ())
    }

    /// Check a value against [`MAX_VALUE_LEN`].
    pub(crate) fn check_value(value: &[u8]) -> Result<()> {
        if value.len() > MAX_VALUE_LEN {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        Ok(())
    }

    /// Install a version whose key and value were checked already: small
    /// pairs are copied into the delta (one allocation), larger ones shared.
    /// Retries lost CASes until it succeeds: a committed write must land.
    /// Defers consolidation up to twice the chain threshold: returns true if
    /// the key's chain reached the threshold, for the caller to consolidate
    /// once it is off its critical path ([`super::commit::Installed::consolidate`]).
    pub(crate) fn install_committed(&self, key: &Bytes, ts: u64, value: Option<&Bytes>) -> bool {
        let vlen = value.map_or(0, |v| v.len());
        let backoff = Backoff::new();
        loop {
            let kv = if key.len() + vlen <= INLINE_KV {
                Payload::copy(key, value.map(|v| &v[..]))
            } else {
                Payload::Refcounted {
                    key: key.clone(),
                    value: value.cloned(),
                }
            };
            match self.install_payload(kv, ts, false) {
                Ok(long) => return long,
                Err(Error::Contention { .. }) => continue,
                // A failed fault-in: under the commit gate (`super::paging`,
                // G1) the leaf of a committed key is resident, except after
                // a merge begun before the commit whose absorber was
                // evicted. A committed write must land: retry until the
                // page store answers.
                Err(_) => backoff.snooze(),
            }
        }
    }

    /// Install a tombstone for `key` at `ts`.
    pub fn delete(&self, key: impl AsRef<[u8]>, ts: u64) -> Result<()> {
        let key = key.as_ref();
        Self::check_key(key)?;
        self.install_payload(Payload::copy(key, None), ts, true).map(|_| ())
    }

    /// The value of `key` as of snapshot `ts`: the newest version with a
    /// timestamp `<= ts`, `None` if that is a tombstone or there is none.
    /// Zero-copy: the returned `Bytes` shares the page's buffer.
    pub fn get(&self, key: impl AsRef<[u8]>, ts: u64) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        Self::check_key(key)?;
        let guard = epoch::pin();
        let mut path = Path::new();
        if self.paging.is_none() {
            // In memory: one descent (no stubs), kept apart so that it
            // compiles as it did before blind reads.
            let (_, head) = self.descend(Target::Key(key), &guard, &mut path)?;
            return Ok(leaf_find(head, key, ts).and_then(|h| h.value()));
        }
        // A delta over an evicted leaf's stub may answer without I/O (P5),
        // else its on-disk chain without a fault-in (`super::read_through`).
        let (pid, head) = match self.descend_leaf::<false, { clock::PROBE | clock::POINT }, true>(
            Target::Key(key),
            &guard,
            &mut path,
        )? {
            (pid, Leaf::Node(head)) => (pid, head),
            // A cold leaf is read through packed (`super::cold`); one
            // the admission brings in is faulted in below.
            (pid, Leaf::Cold(cold)) => {
                if let Some(value) = self.read_through_cold(pid, cold, key, ts)? {
                    return Ok(value);
                }
                path.clear();
                let (_, head) = self.descend(Target::Key(key), &guard, &mut path)?;
                return Ok(leaf_find(head, key, ts).and_then(|h| h.value()));
            }
        };
        if let Some(hit) = super::search::delta_find(head, key, ts) {
            if head.is_evicted() {
                if let Some(p) = self.paging.as_deref() {
                    p.counters.blind_reads.fetch_add(1, Ordering::Relaxed);
                    p.uses.touch(pid, clock::SCAN);
                }
            }
            return Ok(hit.and_then(|h| h.value()));
        }
        if head.is_evicted() {
            if let Some(value) = self.read_through(pid, head, key, ts, &guard)? {
                return Ok(value);
            }
        }
        path.clear();
        let (_, head) = self.descend(Target::Key(key), &guard, &mut path)?;
        Ok(leaf_find(head, key, ts).and_then(|h| h.value()))
    }

    /// The commit timestamp of the newest version of `key` (tombstones
    /// included), `None` if the key has no version.
    pub fn newest_ts(&self, key: impl AsRef<[u8]>) -> Result<Option<u64>> {
        let key = key.as_ref();
        Self::check_key(key)?;
        let guard = epoch::pin();
        let mut path = Path::new();
        let (_, head) = self.descend(Target::Key(key), &guard, &mut path)?;
        Ok(leaf_find(head, key, u64::MAX).map(|h| h.ts()))
    }

    /// The GC watermark consolidations use.
    pub fn gc_watermark(&self) -> u64 {
        self.watermark.load(Ordering::Acquire)
    }

    /// `Ok` if a read at `ts` that has just finished was complete: the GC
    /// watermark is still at or below `ts`, so no consolidation can have
    /// dropped a version it would see. Else [`crate::Error::SnapshotTooOld`].
    #[inline]
    pub(crate) fn check_readable(&self, ts: u64) -> Result<()> {
        let wm = self.gc_watermark();
        if wm > ts {
            return Err(crate::Error::SnapshotTooOld {
                requested: ts,
                oldest: wm,
            });
        }
        Ok(())
    }

    /// Raise the GC watermark: from now on consolidation may drop versions no
    /// snapshot at or above `watermark` can see. It never goes down.
    pub fn set_gc_watermark(&self, watermark: u64) {
        self.watermark.fetch_max(watermark, Ordering::AcqRel);
    }

    /// Raise the watermark to `watermark` and consolidate every leaf that
    /// holds deltas or old versions, so pages nobody writes are collected too.
    /// Returns the number of versions dropped.
    pub fn collect_garbage(&self, watermark: u64) -> u64 {
        self.collect_garbage_held(watermark, watermark).0
    }

    /// [`Tree::collect_garbage`], also counting the versions the resident
    /// leaves keep (after their consolidation) that a watermark of `above`
    /// would drop: `(dropped, held)`. An estimate: evicted leaves and
    /// deltas not consolidated are not counted.
    pub(crate) fn collect_garbage_held(&self, watermark: u64, above: u64) -> (u64, u64) {
        self.set_gc_watermark(watermark);
        let mut held = 0u64;
        let watermark = self.gc_watermark();
        let before = self.stats.versions_dropped.load(Ordering::Relaxed);
        let mut pos: Option<Bytes> = None;
        loop {
            let guard = epoch::pin();
            let mut path = Path::new();
            let t = pos.as_deref().map_or(Target::Key(&[]), Target::Key);
            // Evicted leaves are not read: their images are collected when
            // next faulted in and consolidated, the version deltas over their
            // stubs here, among themselves (`Tree::collect_blind`).
            let leaf = match self.descend_leaf::<false, 0, true>(t, &guard, &mut path) {
                Ok(leaf) => leaf,
                Err(_) => break,
            };
            let underfull = |n: &Node, min: usize| (n.count as usize) < min && n.range().low.is_some();
            let high = match leaf {
                (pid, Leaf::Node(head)) => {
                    let (high, h) = self.sweep_leaf(pid, head, &path, watermark, above, &guard);
                    held += h;
                    high
                }
                // A cold leaf has nothing to collect in memory, and stays
                // packed (`super::cold`); the pages above it are looked at.
                (_, Leaf::Cold(cold)) => cold.high().map(Bytes::copy_from_slice),
            };
            for i in (0..path.len()).rev() {
                let step = path[i];
                if underfull(step.head, self.cfg.inner_min) {
                    if let Some(h) = self.table.load(step.pid, &guard) {
                        self.consolidate(step.pid, h, &path[..i], &guard);
                    }
                }
            }
            match high {
                Some(h) => pos = Some(h),
                None => break,
            }
        }
        (self.stats.versions_dropped.load(Ordering::Relaxed) - before, held)
    }
}

impl Tree {
    /// One resident (or blind-chain) leaf of the GC sweep: collect the
    /// deltas over a stub among themselves, consolidate what holds deltas
    /// or garbage at `watermark`, retry the merge of an underfull leaf.
    /// Returns the leaf's high fence and the versions a snapshot at or
    /// below `above` holds back on it.
    fn sweep_leaf<'g>(
        &'g self,
        pid: Pid,
        head: &'g Node,
        path: &Path<'g>,
        watermark: u64,
        above: u64,
        guard: &'g Guard,
    ) -> (Option<Bytes>, u64) {
        if head.is_evicted() && !head.is_stub() {
            self.collect_blind(pid, head, watermark, guard);
        }
        // Consolidate what holds deltas or garbage, and retry the merge of
        // underfull pages (a merge attempt that lost a race is not retried
        // by anyone else): the sweep is how pages nobody writes get collected.
        let underfull = |n: &Node, min: usize| (n.count as usize) < min && n.range().low.is_some();
        let garbage = |n: &Node| {
            n.chain_len > 0
                || matches!(&n.body, Body::Leaf(b)
                    if b.built_watermark < watermark && (b.version_count() > b.len() || b.has_tombstone()))
        };
        // A consolidation racing ours may have read the watermark before
        // we raised it and won the CAS: look again, a bounded number of
        // times, until the page was built with this watermark.
        let mut head = head;
        for attempt in 0..4 {
            if head.is_evicted() || !(garbage(head) || (attempt == 0 && underfull(head, self.cfg.leaf_min))) {
                break;
            }
            self.consolidate(pid, head, path, guard);
            match self.table.load(pid, guard) {
                Some(h) if h.leaf => head = h,
                _ => break,
            }
        }
        let mut held = 0;
        if let (true, Body::Leaf(b)) = (above > watermark, &head.body) {
            held = b.droppable(above).saturating_sub(b.droppable(watermark)) as u64;
        }
        (head.range().high.clone(), held)
    }
}
