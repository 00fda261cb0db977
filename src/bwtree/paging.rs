//! Paged leaves (`design/storage.md` §3-§5): the [`PageIo`] contract the
//! tree reads and writes leaf images through, the fault-in of an `Evicted`
//! leaf, eviction, and the commit gate that keeps eviction away from a commit
//! between its validation and its install. Flushes for checkpoints are in
//! `super::flush`, the tree rebuilt from a location table in
//! `super::restore`.
//!
//! The tree does not know the page store: the engine implements [`PageIo`]
//! over `pagestore::SegmentStore` and the image codec. A tree without paging
//! never holds an `Evicted` node; its descents test at the leaf whether the
//! tree has paging and one header flag.
//!
//! Invariants
//! - P1 (replaced). It said that an `Evicted` node is a whole chain; since
//!   blind writes (`super::blind`), P4-P6 say what may be over one.
//! - P2. Only a clean page is evicted: a base page whose `disk` address names
//!   an image equal to it (evicted without a write), or a consolidated base
//!   written whole first. The clock's batches do not sync the page segment:
//!   a checkpoint syncs it before it publishes any address in a location
//!   table (`super::flush`).
//! - P4 (blind chains). An `Evicted` stub is always the base of its chain,
//!   and only version deltas are ever prepended over it. `is_evicted` is
//!   true on every node of such a chain, `is_stub` on a stub alone. Every
//!   path that would post another delta (split, merge, freeze) or
//!   consolidate checks `is_evicted` on the head it CASes, or holds a head
//!   from a faulting descent.
//! - P5 (newer than the disk). Every version of a delta over a stub is newer
//!   than every version of the stub's on-disk chain, whose newest is the
//!   stub's `max_ts`: a blind install needs `ts > max_ts` (a commit's
//!   timestamp always is: it is taken after its validation saw the chain,
//!   and every version on disk was installed before the stub was). So a
//!   delta's version of a key at or below a snapshot is what the snapshot
//!   reads (no I/O); a commit whose key no delta holds passes
//!   first-committer-wins without the image if `max_ts` is at or below its
//!   snapshot, and learns the key's liveness (for the live-key count) from
//!   the stub's key fingerprints (read from the on-disk chain first if the
//!   stub has none: `PageIo::key_set`); otherwise it faults the leaf in.
//! - P6 (flushing blind writes). Deltas over a stub are resident bytes (the
//!   stub is counted as a stub). Eviction and a checkpoint's flush write
//!   the ones at or below `D` (W1) as a delta flush appended on the stub's
//!   on-disk chain ([`PageIo::write_delta_on`]: never a rebase, the chain's
//!   older versions are not in memory), then CAS in a new stub (the new
//!   head, `max_ts`, key set; the same GC watermark) with the deltas above
//!   `D` kept over it. A page store that declines gets the page faulted in
//!   (deltas rebuilt over the image), written whole later.
//! - P7 (key sets). A stub's key set, when it has one, holds every key of
//!   its on-disk chain with its liveness. A leaf evicted dirty (written
//!   since its last flush) gets one from the page in memory; one evicted
//!   clean, or restored from a table, gets none, and its first blind write
//!   reads it from the chain (`PageIo::key_set`): leaves that are only read
//!   keep no 8 bytes a key in memory for writes that do not come.
//! - P8 (read-worn chains). A clean leaf whose on-disk chain has several
//!   parts (delta flushes over a base image) and whose reads have read
//!   enough records beyond the first since it was written
//!   ([`PageIo::clean_eviction`]) is written whole when it is evicted, and
//!   its stub names the new image: each read-through and fault-in of a
//!   chain reads every part, and the page in memory is already their
//!   merge. A clean page equals its chain (P2), so the image holds nothing
//!   above `D` (W1).
//! - PK1 (packing, `super::cold`). An eviction, or a checkpoint's flush of
//!   blind writes (P6), whose new chain is a plain stub (nothing over it)
//!   CASes in its cold stub instead; the clock's hand packs a plain stub
//!   it passes (one an operation unpacked and left so: a write that then
//!   conflicted, a key-set read, a descent that stepped over it) once it
//!   finds the leaf's use count at 0: no write since the hand's last pass
//!   (a write's descent raises it; reads of an evicted leaf do not). A
//!   fault-in whose stub was packed and unpacked again while it read the
//!   image installs on the stub now there (the same leaf, C1). Reads and scans read a cold leaf through packed
//!   (`Tree::descend_leaf`), and the walks over every leaf (the GC sweep,
//!   a checkpoint's listing, serializable validation's skip of leaves by
//!   `max_ts`, the cleaner's list of addresses and its relocations) leave
//!   it packed; anything else that meets it (a write, a fault-in) unpacks
//!   it first (T8 in `super::mapping_table`). Packing needs no gate: it
//!   changes no content (C1), and a commit whose validated stub was packed
//!   meanwhile installs by a fresh descent (G1's path for a changed head).
//! - KS1 (aging key sets). An eviction or a checkpoint's flush of blind
//!   writes that leaves a cold stub with a key set sets the leaf's key-set
//!   age count (`Paging::key_age`, apart from the clock's use counts) to
//!   [`clock::POINT`] (`Tree::replace_evicted`, before its CAS). An aging pass
//!   ([`Tree::age_key_sets`], the evictor thread's, every
//!   `KEY_SET_PASS`) lowers the count of every cold leaf with a key set
//!   and drops the set (a new cold record by CAS, C2) of one it finds at
//!   0: no write for three passes (a write unpacks the leaf, and its next
//!   eviction or flush sets the count again). Not the clock's hand: its speed
//!   follows the workload (under uniform updates it turned several times a
//!   second, and sets dropped by its passes were read back by 37% of the
//!   writes). A leaf written often keeps its set;
//!   one written once (a load) does not keep 8 bytes a key for writes that
//!   do not come, and its next blind write reads the set from the chain
//!   (P7). Nothing but memory changes: a stub without a set is one
//!   restored from a table.
//! - W1 (the WAL rule). An image holds only versions at or below the log's
//!   durable timestamp `D` ([`PageIo::durable_ts`]) when it was built: a page
//!   holding a newer version is not evicted, so a power loss can never
//!   resurrect an unacknowledged commit from a page image.
//! - G1 (the commit gate). No eviction CAS happens while a commit is between
//!   `Tree::prepare` (which faults in every leaf it locates, except those
//!   it validates blind, P5) and the end of its install: so the install,
//!   which runs after the commit timestamp is taken, never meets a leaf
//!   evicted since its validation and never does I/O. A chain over a stub
//!   that changed since validation (another blind write, a fault-in, a
//!   checkpoint's P6 flush, which runs outside the gate) is installed on by
//!   a fresh descent that does not fault: the version goes over the stub
//!   blind (P5 holds: the new stub's `max_ts` is at most `D`, below any
//!   commit not yet logged). See `design/storage.md` §5.2 for the one
//!   exception, a merge begun before the commit whose absorber was evicted.

use std::collections::VecDeque;

use bytes::Bytes;
use crossbeam_epoch::{self as epoch, Guard};

use super::base::{LeafBase, PageRange};
use super::chain::{Chain, Node};
use super::clock::{self, ThroughCounts, UseCounts};
use super::cold::Cold;
use super::delta::Body;
pub(crate) use super::gate::{Gate, GatePass};
use super::mapping_table::{Peek, Pid};
use super::tree::Tree;
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering};
use crate::Result;

pub(crate) use super::page_io::{CleanEviction, DeltaVersion, Over, PageIo, Unread};

/// Counters of the paging layer (relaxed; rare events).
#[derive(Default)]
pub(crate) struct PagingCounters {
    /// Evicted leaves faulted back in (cache misses).
    pub(crate) faults: AtomicU64,
    /// Leaves evicted.
    pub(crate) evictions: AtomicU64,
    /// Leaf images written (evictions and flushes).
    pub(crate) pages_written: AtomicU64,
    /// Leaf images written by checkpoint flushes (`super::flush`).
    pub(crate) flushes: AtomicU64,
    /// Delta flushes written (evictions and checkpoint flushes; also counted
    /// in `pages_written`).
    pub(crate) delta_flushes: AtomicU64,
    /// Writes a commit validated over an evicted leaf's stub without
    /// faulting it in (blind writes, P5), counted at validation.
    pub(crate) blind_writes: AtomicU64,
    /// Key sets read from the on-disk chain by a blind write over a stub
    /// that has none (`PageIo::key_set`, P5).
    pub(crate) key_set_reads: AtomicU64,
    /// Point reads answered by a delta over an evicted leaf's stub, without
    /// faulting it in (P5).
    pub(crate) blind_reads: AtomicU64,
    /// Point reads and scans answered from an evicted leaf's on-disk chain
    /// without faulting it in (`super::read_through`).
    pub(crate) read_throughs: AtomicU64,
    /// Cold stubs made (PK1, `super::cold`): by evictions, and by the
    /// clock's hand packing a plain stub.
    pub(crate) packs: AtomicU64,
    /// Key sets the aging passes (KS1) and the test hook dropped from cold
    /// leaves.
    pub(crate) key_sets_dropped: AtomicU64,
    /// Clean leaves evicted without a write (their image was on disk).
    pub(crate) clean_evictions: AtomicU64,
    /// Clean leaves written whole on eviction because their on-disk chain
    /// was read often enough (P8; also in `pages_written`).
    pub(crate) chains_rewritten: AtomicU64,
    /// Leaves left resident by an eviction because they held a version
    /// above the durable timestamp (W1).
    pub(crate) held_by_wal: AtomicU64,
    /// Fault-ins by a commit's install, after its timestamp was taken: 0
    /// while the commit gate (G1) holds, except for the merge case in the
    /// module doc. The loom model of the gate checks it.
    pub(crate) install_faults: AtomicU64,
}

mod installing {
    // Not `const`-initialised: loom's `thread_local!` does not take that form.
    #![allow(clippy::missing_const_for_thread_local)]
    crate::sync::thread_local! {
        /// Set while this thread runs a commit's install ([`super::Installing`]).
        pub(super) static INSTALLING: std::cell::Cell<bool> = std::cell::Cell::new(false);
    }
}
use installing::INSTALLING;

/// Marks the current thread as installing a commit while it lives.
pub(crate) struct Installing(());

impl Installing {
    pub(crate) fn start() -> Self {
        INSTALLING.with(|f| f.set(true));
        Installing(())
    }
}

impl Drop for Installing {
    fn drop(&mut self) {
        INSTALLING.with(|f| f.set(false));
    }
}

/// The paging state of a tree opened with a page store.
pub(crate) struct Paging {
    pub(crate) io: Box<dyn PageIo>,
    pub(crate) gate: Gate,
    /// Leaf merge starts hold a pass (splits need none, F2 in
    /// `super::flush`); a checkpoint closes it while it lists the leaves.
    pub(crate) smo_gate: Gate,
    /// One eviction batch at a time (the gate has one closer); a checkpoint
    /// holds it while it looks for page segments nothing references.
    pub(crate) evicting: Mutex<()>,
    pub(crate) counters: PagingCounters,
    /// The clock's use counts, by page id.
    pub(crate) uses: UseCounts,
    /// Aging passes left to the key set of each leaf evicted with one
    /// (KS1; apart from `uses`, which a fault-in keeps: a scan's
    /// fault-in would find the leaf hot).
    pub(crate) key_age: UseCounts,
    /// Evicted leaves' read-through counts (`super::read_through`'s
    /// admission), by page id: point read-throughs (more for a chain of
    /// several parts) net of the hand's passes; a scan's raise it to 1.
    pub(crate) through: ThroughCounts,
    /// The clock's hand: the next page id it passes (modulo the table's
    /// high-water mark).
    pub(super) hand: AtomicU64,
    /// Leaves faulted in by scans, oldest first: the evictor takes those
    /// still at a scan's use count before it moves the hand, so a long scan
    /// evicts its own pages and does not wear down the hot set's counts.
    pub(super) probation: Mutex<VecDeque<Pid>>,
    /// Leaves faulted in by point operations, oldest first: the evictor's
    /// clock passes over these before it moves the hand, so that with the
    /// data many times the cache it does not walk the evicted leaves (most
    /// of the table) to find resident ones. An entry whose leaf was evicted
    /// since is dropped when the clock meets it; leaves that never were
    /// faulted in (built by splits, or beyond [`PROBATION_MAX`]) are the
    /// hand's.
    pub(super) faulted: Mutex<VecDeque<Pid>>,
    /// The cache is under pressure: point reads and scans of evicted
    /// leaves read through (`super::read_through`; a relaxed hint, written
    /// by the engine's evictor).
    pub(crate) read_through: AtomicBool,
    /// The test hook `Db::force_read_through`: [`FORCE_NONE`] (the
    /// pressure hint decides), [`FORCE_ON`] or [`FORCE_OFF`]. Written by the
    /// hook alone, never by the evictor: a pressure hint computed before a
    /// hook call and stored after it cannot undo the hook.
    pub(crate) forced: AtomicU64,
    /// Test hook of a checkpoint's listing of the leaves (`super::flush`):
    /// called with `None` at each step of the walk before it pins, and with
    /// `Some(pid)` once it listed leaf `pid` (still pinned).
    #[cfg(test)]
    pub(crate) list_hook: Mutex<Option<ListHook>>,
}

/// [`Paging::list_hook`]'s type.
#[cfg(test)]
pub(crate) type ListHook = Box<dyn FnMut(&super::Tree, Option<Pid>) + Send>;

/// [`Paging::forced`]: the pressure hint decides.
pub(crate) const FORCE_NONE: u64 = 0;
/// [`Paging::forced`]: reads of evicted leaves read through (admission
/// still applies).
pub(crate) const FORCE_ON: u64 = 1;
/// [`Paging::forced`]: reads of evicted leaves never read through.
pub(crate) const FORCE_OFF: u64 = 2;

/// Most leaves the probation queue remembers (the clock finds the rest).
const PROBATION_MAX: usize = 1 << 16;

/// Leaves one eviction batch takes (one gate closing each).
pub(super) const BATCH: usize = 256;

impl Paging {
    pub(crate) fn new(io: Box<dyn PageIo>) -> Self {
        Paging {
            io,
            gate: Gate::default(),
            smo_gate: Gate::default(),
            evicting: Mutex::new(()),
            counters: PagingCounters::default(),
            uses: UseCounts::new(),
            key_age: UseCounts::new(),
            through: ThroughCounts::new(),
            hand: AtomicU64::new(0),
            probation: Mutex::new(VecDeque::new()),
            faulted: Mutex::new(VecDeque::new()),
            read_through: AtomicBool::new(false),
            forced: AtomicU64::new(FORCE_NONE),
            #[cfg(test)]
            list_hook: Mutex::new(None),
        }
    }
}

/// The base page of a clean-able leaf chain: a base built at `watermark`
/// or later, alone or under the `Split` delta of the split that built it.
fn clean_base(head: &Node, watermark: u64) -> Option<&LeafBase> {
    let node = match &head.body {
        Body::Split { .. } => head.next()?,
        _ => head,
    };
    match &node.body {
        Body::Leaf(b) if b.built_watermark >= watermark || (b.version_count() == b.len() && !b.has_tombstone()) => {
            Some(b)
        }
        _ => None,
    }
}

/// Does `page` hold version `ts` of `key`?
fn holds(page: &LeafBase, key: &[u8], ts: u64) -> bool {
    page.keys
        .find(key)
        .is_some_and(|i| page.versions(i).iter().any(|v| v.ts == ts))
}

/// Every version of `base`, in key order and newest first per key.
pub(super) fn base_versions(base: &LeafBase) -> Vec<DeltaVersion<'_>> {
    let mut out = Vec::with_capacity(base.version_count());
    for i in 0..base.len() {
        let key = base.keys.key(i);
        for v in base.versions(i) {
            out.push((key, v.ts, value_slice(base.value_ref(v))));
        }
    }
    out
}

/// A borrowed value as a delta flush takes it.
pub(super) fn value_slice(v: super::base::ValRef<'_>) -> Option<&[u8]> {
    match v {
        super::base::ValRef::Tomb => None,
        super::base::ValRef::Inline(b) => Some(b),
        super::base::ValRef::Refcounted(b) => Some(&b[..]),
    }
}

/// A copy of `r` that shares no bytes with the page it came from.
pub(super) fn detached(r: &PageRange) -> PageRange {
    let copy = |k: &Option<Bytes>| k.as_deref().map(Bytes::copy_from_slice);
    PageRange::new(copy(&r.low), copy(&r.high), r.sibling)
}

impl Tree {
    /// Fault in the evicted leaf `pid` whose head is `head` (a stub, or
    /// version deltas over one: P4): read its image, CAS it in as a base
    /// page with the chain's deltas rebuilt over it (the next consolidation
    /// merges them). `Ok(None)`: the CAS lost (someone else faulted it in
    /// or the page changed): look again. A page a scan faults in (`scan`)
    /// joins the probation queue, which the evictor empties first.
    pub(crate) fn fault_in<'g>(
        &'g self,
        pid: Pid,
        head: &'g Node,
        guard: &'g Guard,
        scan: bool,
    ) -> Result<Option<&'g Node>> {
        let (
            Some(Body::Evicted {
                addr,
                range,
                watermark,
                hint,
                ..
            }),
            Some(paging),
        ) = (super::blind::stub_of(head).map(|s| &s.body), self.paging.as_deref())
        else {
            return Ok(Some(head));
        };
        if INSTALLING.with(|f| f.get()) {
            paging.counters.install_faults.fetch_add(1, Ordering::Relaxed);
        }
        // Collect at the tree's GC watermark, not only the stub's (below);
        // the value-log values of versions that drops are not even read.
        let w = (*watermark).max(self.gc_watermark());
        // Blind writes over the stub at or below `w` hide every version of
        // their keys in the image (P5).
        let over_map = super::blind::newest_at_or_below(head, w);
        let over = |k: &[u8]| over_map.get(k).copied().unwrap_or(0);
        let read = |w| match paging.io.read_leaf_at(pid, *addr, *hint, w, &over) {
            Ok(read) => Ok(Some(read)),
            // The page moved on meanwhile (the cleaner relocated its image,
            // or it was faulted in and written again) and a checkpoint may
            // have deleted the old image's segment: look again.
            Err(_) if !matches!(self.table.peek(pid, guard), Peek::Node(h) if std::ptr::eq(h, head)) => Ok(None),
            Err(e) => Err(e),
        };
        let Some((base, unread)) = read(w)? else {
            return Ok(None);
        };
        // The chain may hold versions the page had dropped (drop them again,
        // uncounted: GC counted them once), and versions GC has passed
        // since the eviction (counted below once the CAS wins). A page
        // built at the current watermark is evicted again as it is, not
        // consolidated first (`clean_base`).
        let mut collected = super::image::collect_counted(base, w, *watermark, &over);
        if unread.iter().any(|(k, ts)| holds(&collected.page, k, *ts)) {
            // A version left unread survived the collection: its empty
            // placeholder must not be read as its value. Never expected
            // (the page store leaves unread only what this collection
            // drops); read everything instead.
            debug_assert!(false, "a value left unread survived the fault-in's collection");
            let Some((base, _)) = read(0)? else {
                return Ok(None);
            };
            collected = super::image::collect_counted(base, w, *watermark, &over);
        }
        let mut base = collected.page;
        base.built_watermark = base.built_watermark.max(w);
        // The page equals (under GC) the chain at `addr` and builds on it
        // (DF1), unless it dropped a tombstone GC had not: a later delta
        // flush or partial rebase keeps the chain's older parts, where a
        // version the tombstone hid could show through again. Then it is
        // dirty with no chain, and its next flush writes a whole image.
        if !collected.tombstone_dropped {
            base = base.with_disk(*addr);
        }
        // The node's fences are the page's (an image written under a split
        // delta may carry the wider fences of the base below it); keep them,
        // so the page also shares nothing with the image's buffer but keys.
        base.range = detached(range);
        // The blind writes' deltas, newer than every version of the image
        // (P5), over it: the page builds on the chain at `addr` (DF1).
        let chain = super::blind::rebuilt(head, Node::base(Body::Leaf(base)), |_, _| true);
        let mut installed = self.table.replace(pid, head, chain, guard);
        if head.is_stub() {
            // The clock's hand packed the stub while its image was read
            // (PK1) and something unpacked it again, or it is packed now:
            // the same leaf (C1), so the page read is still its page. Once
            // more, on the stub now there (a plain stub has no deltas the
            // chain copied).
            if let Err(chain) = installed {
                installed = match self.table.load(pid, guard) {
                    Some(now) if now.is_stub() && matches!(&now.body, Body::Evicted { addr: a, .. } if a == addr) => {
                        self.table.replace(pid, now, chain, guard)
                    }
                    _ => Err(chain),
                };
            }
        }
        match installed {
            Ok(new) => {
                paging.counters.faults.fetch_add(1, Ordering::Relaxed);
                if collected.dropped > 0 {
                    self.stats
                        .versions_dropped
                        .fetch_add(collected.dropped as u64, Ordering::Relaxed);
                }
                let mut q = crate::sync::lock(if scan { &paging.probation } else { &paging.faulted });
                if q.len() < PROBATION_MAX {
                    q.push_back(pid);
                }
                Ok(Some(new))
            }
            // The loser drops its copy.
            Err(_) => Ok(None),
        }
    }

    /// Evict the leaves `pids` that can be: a clean base page as it is (its
    /// image is on disk), a dirty leaf consolidated and its image written
    /// first, if it holds no version above the durable timestamp (W1; else
    /// it stays resident). Syncs once if `sync`, then (gate closed) CASes
    /// each head to its stub, packed if nothing stays over it (PK1).
    /// Returns how many were evicted. An error from
    /// the page store is returned as is (the engine poisons on it); pages
    /// whose head changed meanwhile stay resident (their images are
    /// garbage). Eviction needs no sync (P2): a checkpoint syncs before it
    /// publishes an address.
    pub(crate) fn evict(&self, pids: &[Pid], sync: bool) -> Result<usize> {
        let Some(paging) = self.paging.as_deref() else {
            return Ok(0);
        };
        let _one = crate::sync::lock(&paging.evicting);
        let guard = epoch::pin();
        // Read once: commits made durable later are not in this batch's images.
        let durable = paging.io.durable_ts();
        // (pid, head, the chain to CAS in)
        let mut written: Vec<(Pid, &Node, Chain)> = Vec::with_capacity(pids.len());
        // A leaf written since its last flush keeps its key set in its
        // stub, for the blind writes likely to follow; a clean one (only
        // read since it came in) leaves it on disk, 8 bytes a key, and its
        // first blind write reads it from there (P7). `hint`: the chain's
        // read hint (`PageIo::read_hint`).
        let stub = |head: &Node, addr, b: &LeafBase, keys: bool, hint: u32| {
            Chain::base(Node::base(Body::Evicted {
                addr,
                range: detached(head.range()),
                max_ts: b.max_ts(),
                watermark: b.built_watermark,
                keys: keys.then(|| super::blind::key_set(b)),
                hint,
            }))
        };
        for &pid in pids {
            // Peeked: a leaf evicted cold meanwhile is left packed.
            let Peek::Node(mut head) = self.table.peek(pid, &guard) else {
                continue;
            };
            if !head.leaf || head.is_stub() || head.is_frozen() || head.has_merge_record {
                continue;
            }
            if head.is_evicted() {
                // Blind writes over a stub: only the deltas at or below `D`
                // are written, as a delta flush on the stub's chain (P6); a
                // page store that declines (a chain at its part limit) gets
                // the page faulted in and flushed below as a resident page
                // (a partial rebase or a whole image).
                match self.blind_chain(paging, pid, head, durable)? {
                    Some((_, Some(chain))) => {
                        written.push((pid, head, chain));
                        continue;
                    }
                    Some((_, None)) => {
                        paging.counters.held_by_wal.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    None => match self.fault_in(pid, head, &guard, false)? {
                        Some(new) if new.leaf && !new.is_evicted() && !new.is_frozen() => head = new,
                        _ => continue,
                    },
                }
            }
            if let Body::Leaf(b) = &head.body {
                // Clean (the image at `disk` equals the page), with nothing
                // for GC at the current watermark: evicted as it is. A clean
                // page with garbage is consolidated and written again, so
                // that GC reaches pages that are only read.
                if b.is_clean() && clean_base(head, self.gc_watermark()).is_some() {
                    // A chain of several parts costs a read of each on
                    // every read-through and fault-in; the page in memory
                    // is their merge, so a chain read often is written
                    // whole once (P8). One look-up of the chain decides,
                    // and gives the stub its read hint otherwise.
                    let (addr, hint) = match paging.io.clean_eviction(b.disk) {
                        CleanEviction::Rewrite => {
                            let addr = paging.io.write_leaf(pid, b)?;
                            paging.counters.pages_written.fetch_add(1, Ordering::Relaxed);
                            paging.counters.chains_rewritten.fetch_add(1, Ordering::Relaxed);
                            (addr, paging.io.read_hint(addr))
                        }
                        CleanEviction::Keep { hint } => {
                            paging.counters.clean_evictions.fetch_add(1, Ordering::Relaxed);
                            (b.disk, hint)
                        }
                    };
                    written.push((pid, head, stub(head, addr, b, false, hint)));
                    continue;
                }
            }
            // Consolidate (GC at the current watermark) until the chain is
            // a base page, or `Split -> base` (the left half of a split just
            // made: the split delta adds nothing to the content); a page that
            // keeps changing stays resident.
            let mut base = None;
            for _ in 0..3 {
                base = clean_base(head, self.gc_watermark());
                if base.is_some() {
                    break;
                }
                // With its path, so that an underfull leaf merges as it
                // would on a write (a leaf evicted right after each write
                // would otherwise never merge).
                self.consolidate(pid, head, &self.path_to(pid, head, &guard), &guard);
                match self.table.load(pid, &guard) {
                    Some(h) if h.leaf && !h.is_evicted() && !h.is_frozen() => head = h,
                    _ => break,
                }
            }
            let Some(base) = base else { continue };
            if base.max_ts() > durable {
                // W1: the image would hold a commit the log has not made
                // durable. The page stays resident until the log catches up.
                paging.counters.held_by_wal.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // A page building on its on-disk chain writes only what is new
            // (a delta flush, or nothing); else its whole image.
            let addr = match self.flush_delta(paging, pid, base.disk, &base_versions(base), durable)? {
                Some(addr) => {
                    if base.disk_head() == Some(addr) {
                        // Nothing new since the chain: no write, as clean.
                        paging.counters.clean_evictions.fetch_add(1, Ordering::Relaxed);
                    }
                    addr
                }
                None => {
                    let addr = paging.io.write_leaf(pid, base)?;
                    paging.counters.pages_written.fetch_add(1, Ordering::Relaxed);
                    addr
                }
            };
            written.push((pid, head, stub(head, addr, base, true, paging.io.read_hint(addr))));
        }
        if written.is_empty() {
            return Ok(0);
        }
        if sync {
            paging.io.sync()?;
        }
        paging.gate.close();
        let mut evicted = 0;
        for (pid, head, chain) in written {
            if self.replace_evicted(paging, pid, head, chain, &guard) {
                paging.uses.clear(pid);
                // A resident leaf just evicted counts its read-throughs
                // from 0; deltas shed from over a stub (P6) leave the
                // leaf's count as it was.
                if !head.is_evicted() {
                    paging.through.clear(pid);
                }
                evicted += 1;
            }
        }
        paging.gate.open();
        paging.counters.evictions.fetch_add(evicted as u64, Ordering::Relaxed);
        Ok(evicted)
    }

    /// CAS `chain`, an evicted leaf's new chain (a stub, or blind writes'
    /// deltas over one), in for `head`; a plain stub goes in packed (PK1,
    /// `super::cold`): nothing needs it as a node until a write or a
    /// fault-in. `false`: the page changed.
    pub(super) fn replace_evicted(&self, paging: &Paging, pid: Pid, head: &Node, chain: Chain, guard: &Guard) -> bool {
        match Cold::of(chain.head()) {
            Some(cold) => {
                drop(chain);
                if cold.has_keys() {
                    // KS1: the key set outlives three aging passes. Set
                    // before the CAS, so that a pass between the two
                    // cannot find an old count; harmless if the CAS fails.
                    paging.key_age.touch(pid, clock::POINT);
                }
                let packed = self.table.replace_with_cold(pid, head, cold, guard);
                if packed {
                    paging.counters.packs.fetch_add(1, Ordering::Relaxed);
                }
                packed
            }
            None => self.table.replace(pid, head, chain, guard).is_ok(),
        }
    }

    /// The inner pages above leaf `pid` (head `head`), root first, as a
    /// descent to its low fence finds them; empty if that descent ends at
    /// another leaf or fails.
    fn path_to<'g>(&'g self, pid: Pid, head: &Node, guard: &'g Guard) -> super::tree::Path<'g> {
        let mut path = super::tree::Path::new();
        let t = head
            .range()
            .low
            .as_deref()
            .map_or(super::search::Target::Key(&[]), super::search::Target::Key);
        match self.descend_to::<false, 0>(t, guard, &mut path) {
            Ok((found, _)) if found == pid => path,
            _ => super::tree::Path::new(),
        }
    }

    /// Call `wake` (once per [`Tree::arm_wake`]) when the resident bytes
    /// pass `budget`: the evictor's wake-up (`bwtree/resident.rs`). Set once.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn wake_past(&self, budget: u64, wake: Box<dyn Fn() + Send + Sync>) {
        self.table.resident.set_alarm(budget, wake);
    }

    /// Arm [`Tree::wake_past`]'s wake again (the evictor, before it sleeps).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn arm_wake(&self) {
        self.table.resident.arm();
    }

    /// Estimated heap bytes of the tree's pages (0 without paging), not
    /// counting the evicted leaves' stubs ([`Tree::stub_bytes`]).
    pub(crate) fn resident_bytes(&self) -> u64 {
        self.table.resident_bytes()
    }

    /// Estimated heap bytes of the evicted leaves' stubs (a 320-byte node,
    /// its fences and any key set each, or a cold stub; 0 without paging):
    /// memory that grows with the
    /// data, not with the cache, kept out of the budget so that it cannot
    /// starve the evictor (`super::resident`).
    pub(crate) fn stub_bytes(&self) -> u64 {
        self.table.stub_bytes()
    }

    /// Estimated heap bytes of the tree's retired chains not yet freed (0
    /// without paging).
    pub(crate) fn retired_bytes(&self) -> u64 {
        self.table.resident.retired()
    }
}
