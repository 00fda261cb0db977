//! Flushing leaves for a checkpoint (`design/storage.md` §4, §6): write the
//! image of every dirty leaf (fuzzy, while commits and structure
//! modifications run), then, with structure modifications paused, list every
//! leaf with the address of an image that holds all its versions at or
//! below the checkpoint's timestamp. The engine syncs the page segment and
//! writes that list as the location table.
//!
//! Invariants
//! - F1. A listed address names an image written from a chain loaded after
//!   every commit at or below the checkpoint's timestamp `C` was installed,
//!   built with a GC watermark at or below `C` (the checkpoint holds a
//!   snapshot at `C`), keeping every version at or below the durable
//!   timestamp `D >= C` (W1): so it holds, for each of its keys, every
//!   version a snapshot at `C` or later may read among those `<= D`.
//! - F2. The listed leaves partition the key space: each one's low fence is
//!   the previous one's high fence, as read from the chain whose image is
//!   listed. The structure-modification gate is closed while they are
//!   listed (merge starts wait; a page that should merge stays underfull
//!   until a later consolidation), and a leaf whose low fence differs from
//!   the position reached (a merge that was under way) restarts the
//!   listing. Splits do not wait: a split keeps the left half's low fence,
//!   so it cannot move the position the walk reached. A leaf split after
//!   the walk loaded it is listed with the image of the chain it loaded,
//!   which holds the whole range before the split, and the walk goes on
//!   at that range's high fence: the right half's keys are in the listed
//!   image, and its page id, not listed, is free at restore (below the
//!   high-water mark). A leaf split before is met as any leaf, the right
//!   half reached by the B-link sibling if its parent has no entry yet.
//!   The high-water mark is read after the walk, so a right half listed
//!   during it lies below the mark. A page id met twice restarts the
//!   listing: a merge left unfinished before the gate closed (its fault-in
//!   failed) may be finished during the walk after its right leaf was
//!   listed, and a split may then reuse that leaf's freed id (found in
//!   review; `flush_tests::a_page_id_freed_and_reused_during_the_listing_restarts_it`
//!   plays it through the test hook `Paging::list_hook`). (Splits used to wait too: a load in key
//!   order then grew the rightmost leaf for the whole listing, rebuilt
//!   whole at each consolidation. The loom model
//!   `a_checkpoint_lists_a_partition_while_a_leaf_splits` races the two.)
//! - F3. A flushed leaf is CASed to a base page whose `disk` address is the
//!   new chain head (clean, or [`DIRTY`] if versions above the limit stayed
//!   in memory only); a lost CAS leaves it as it was, the record unused
//!   except by this listing.
//!
//! Delta flushes (`design/storage.md` §4): a page's on-disk chain is a base
//! image and up to [`FLUSH_CHAIN`]` - 1` delta flushes, each `prev`-linked
//! to the part before it. The page store knows, for each chain head it
//! wrote or read, its `upto` ([`PageIo::chain_upto`]): the newest version
//! timestamp in the chain. No version of the page in `(upto, D]` (`D` the
//! limit of the flush that wrote the head) is missing from it: every commit
//! `<= D` was installed before `D` was read, so the chain holds it, or GC
//! dropped it for a newer one, which the chain holds.
//! - DF1. A base page with `disk = a | DIRTY` *builds on* the chain at `a`:
//!   for every snapshot at or above the GC watermark, reading the chain at
//!   `a` merged with the page's versions newer than `upto(a)` gives what
//!   reading the page gives. It holds when a flush or a fault-in sets it
//!   (every version `<= D` was installed before `D` was read, so the chain
//!   holds them all; a fault-in that collects at a newer watermark than
//!   its stub's sets it only if that dropped no tombstone, the rule below),
//!   and consolidation keeps it ([`builds_on`]) only for
//!   chains of version deltas over such a base whose GC dropped no
//!   tombstone: dropping versions older than a kept one changes no read at
//!   or above the watermark, but a dropped tombstone newer than `upto`
//!   would let the chain's older value show through. Splits and merges
//!   build pages that build on nothing.
//! - DF2. So a flush of such a page writes only its versions in
//!   `(upto(a), D]` as a delta flush with `prev = a` (nothing at all if
//!   there are none: `a` is the result), unless the page store declines
//!   (chain at [`FLUSH_CHAIN`] parts, or the deltas too large next to the
//!   base image); then the whole image.

use bytes::Bytes;
use crossbeam_epoch::{self as epoch, Guard};

use super::base::{DIRTY, NO_DISK};
use super::chain::{Chain, Node};
use super::consolidate::collect_leaf;
use super::delta::Body;
use super::mapping_table::{Peek, Pid};
use super::paging::{DeltaVersion, GatePass, PageIo, Paging};
use super::search::Target;
use super::tree::{Leaf, Path, Tree};
use crate::sync::{MutexGuard, Ordering};
use crate::{Error, Result};

/// One leaf of a checkpoint's location table.
#[derive(Clone, Debug)]
pub(crate) struct ListedLeaf {
    pub(crate) pid: Pid,
    /// An image holding every version of the page at or below the
    /// checkpoint's timestamp (F1).
    pub(crate) addr: u64,
    /// The leaf's low fence (`None`: the leftmost leaf).
    pub(crate) low: Option<Bytes>,
}

/// Most parts (a base image and delta flushes) a page's on-disk chain has: a
/// flush that would make it longer writes a whole image (DF2).
pub(crate) const FLUSH_CHAIN: usize = 8;

/// The `disk` field of a base consolidated from `head` whose GC dropped
/// `tombs` tombstones: `a | DIRTY` if the chain is version deltas over a
/// base that equals or builds on the on-disk chain at `a` and no tombstone
/// was dropped (DF1), else [`NO_DISK`].
pub(super) fn builds_on(head: &Node, tombs: usize) -> u64 {
    if tombs > 0 {
        return NO_DISK;
    }
    let mut node = head;
    loop {
        match &node.body {
            Body::Version { .. } => match node.next() {
                Some(next) => node = next,
                None => return NO_DISK,
            },
            Body::Leaf(b) => return b.disk_head().map_or(NO_DISK, |a| a | DIRTY),
            _ => return NO_DISK,
        }
    }
}

/// Times the listing starts over after meeting a merge under way before it
/// gives up (with [`Error::Contention`]).
const LIST_ATTEMPTS: u32 = 16;

impl Tree {
    /// A pass for a leaf merge start (splits take none, F2): `Some(None)` without paging
    /// (no checkpoint lists leaves), `None` while a checkpoint has the
    /// structure-modification gate closed.
    pub(crate) fn smo_pass(&self) -> Option<Option<GatePass<'_>>> {
        match self.paging.as_deref() {
            None => Some(None),
            Some(p) => p.smo_gate.try_enter().map(Some),
        }
    }

    /// The address of an image of leaf `pid` (head `head`) holding every
    /// version at or below `durable`: an evicted or clean page's own, a
    /// delta flush of blind writes over a stub (P6), or a new chain head (a delta flush, DF2, or a whole image; F1, F3).
    /// `None`: the page is frozen (a merge is removing it), or its blind
    /// writes' fault-in lost a race (look again).
    fn flush_leaf(&self, paging: &Paging, pid: Pid, head: &Node, durable: u64, guard: &Guard) -> Result<Option<u64>> {
        if head.is_evicted() && !head.is_stub() {
            // Blind writes over a stub: a delta flush of those at or below
            // `durable` on the stub's chain (P6 in `super::paging`); if the
            // page store declines, fault the page in and flush it whole.
            if let Some((addr, _)) = self.flush_blind(paging, pid, head, durable, guard)? {
                return Ok(Some(addr));
            }
            return match self.fault_in(pid, head, guard, false)? {
                Some(new) if !new.is_evicted() => self.flush_leaf(paging, pid, new, durable, guard),
                _ => Ok(None),
            };
        }
        match &head.body {
            Body::Evicted { addr, .. } => return Ok(Some(*addr)),
            Body::Leaf(b) if b.is_clean() => return Ok(Some(b.disk)),
            _ if head.is_frozen() => return Ok(None),
            _ => {}
        }
        let view = collect_leaf(head, self.gc_watermark());
        let on = builds_on(head, view.tombs_dropped);
        let whole = view.vers.iter().all(|&(ts, _)| ts <= durable);
        let range = super::paging::detached(head.range());
        let mut versions = Vec::with_capacity(view.vers.len());
        for i in 0..view.len() {
            let key = view.keys[i].as_slice();
            for &(ts, v) in view.versions(i) {
                versions.push((key, ts, super::paging::value_slice(v.raw())));
            }
        }
        let (base, addr) = match self.flush_delta(paging, pid, on, &versions, durable)? {
            Some(addr) => {
                if addr != on & !DIRTY {
                    paging.counters.flushes.fetch_add(1, Ordering::Relaxed);
                }
                (view.build(0..view.len(), range), addr)
            }
            None => {
                paging.counters.flushes.fetch_add(1, Ordering::Relaxed);
                let (image, _) = view.build_upto(range.clone(), durable);
                let addr = paging.io.write_leaf(pid, &image)?;
                paging.counters.pages_written.fetch_add(1, Ordering::Relaxed);
                let base = if whole { image } else { view.build(0..view.len(), range) };
                (base, addr)
            }
        };
        // Versions above the limit stay in memory only: the page builds on
        // the new head (DF1) instead of equalling it.
        let disk = if whole { addr } else { addr | DIRTY };
        let new = Chain::base(Node::base(Body::Leaf(base.with_disk(disk))));
        if self.table.replace(pid, head, new, guard).is_ok() {
            self.stats.consolidations.fetch_add(1, Ordering::Relaxed);
            self.stats
                .versions_dropped
                .fetch_add(view.dropped as u64, Ordering::Relaxed);
        }
        drop(versions);
        Ok(Some(addr))
    }

    /// DF2: if `disk` builds on a chain (`a | DIRTY`) whose `upto` the page
    /// store knows, write the `versions` (the page's, in key order, newest
    /// first per key) newer than it and at most `durable` as a delta flush
    /// (the page store may instead rebase: one delta flush on the chain's
    /// base image), or nothing if there are none. Returns the chain head
    /// that now holds every version `<= durable`, or `None`: write a whole
    /// image.
    pub(super) fn flush_delta(
        &self,
        paging: &Paging,
        pid: Pid,
        disk: u64,
        versions: &[DeltaVersion<'_>],
        durable: u64,
    ) -> Result<Option<u64>> {
        if disk == NO_DISK || disk & DIRTY == 0 {
            return Ok(None);
        }
        let prev = disk & !DIRTY;
        let Some(upto) = paging.io.chain_upto(prev) else {
            return Ok(None);
        };
        if !versions.iter().any(|&(_, ts, _)| ts > upto && ts <= durable) {
            return Ok(Some(prev));
        }
        let new: Vec<DeltaVersion<'_>> = versions.iter().filter(|&&(_, ts, _)| ts <= durable).copied().collect();
        let written = PageIo::write_delta(&*paging.io, pid, prev, &new)?;
        if written.is_some() {
            paging.counters.pages_written.fetch_add(1, Ordering::Relaxed);
            paging.counters.delta_flushes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(written)
    }

    /// Checkpoint phase 1 (fuzzy): write an image of every dirty resident
    /// leaf, at most `durable` (W1), while commits and structure
    /// modifications run. Returns how many images the flushes wrote (an
    /// eviction's, below, are not counted). `between`
    /// runs after each batch of 256 page ids, with no epoch pinned and no
    /// flush of this call in flight (the checkpoint prunes the page file's
    /// chain map there, which each flush adds an entry to).
    ///
    /// `evict`: the dirty leaves are written by evicting them instead
    /// (`Tree::evict`: the image, then a stub; the caller holds no eviction
    /// pause), as a clean close does. A flush builds each leaf again as a
    /// clean base page in memory and frees the chain it replaces a grace
    /// period later: at 5M keys and a 64 MiB cache a clean close's phase 1
    /// added 110 MiB of RSS that way, 63 MiB evicting (`design/storage.md`
    /// §6). An eviction writes the page as the flush would, at most the
    /// durable timestamp it reads itself (W1; at least `durable`), and
    /// frees it: a resident leaf that W1 holds back (a version above that
    /// timestamp) stays and is flushed after it, and a blind chain keeps
    /// its versions above it over the new stub (P6).
    pub(crate) fn flush_dirty(&self, durable: u64, evict: bool, between: &mut dyn FnMut()) -> Result<u64> {
        let Some(paging) = self.paging.as_deref() else {
            return Ok(0);
        };
        let dirty = |head: &Node| {
            let clean = matches!(&head.body, Body::Leaf(b) if b.is_clean());
            head.leaf && !head.is_stub() && !head.is_frozen() && !clean
        };
        let mut written = 0;
        let high = self.table.high_water();
        for chunk in (0..high).collect::<Vec<_>>().chunks(256) {
            if evict {
                let pids: Vec<Pid> = {
                    let guard = epoch::pin();
                    chunk
                        .iter()
                        .copied()
                        .filter(|&pid| matches!(self.table.peek(pid, &guard), Peek::Node(h) if dirty(h)))
                        .collect()
                };
                if !pids.is_empty() {
                    // Leaves it does not evict (a lost CAS, a page store
                    // that declines) stay dirty and are flushed below.
                    self.evict(&pids, false)?;
                }
            }
            let guard = epoch::pin();
            for &pid in chunk {
                // Peeked: a cold leaf is clean, and stays packed.
                let Peek::Node(head) = self.table.peek(pid, &guard) else {
                    continue;
                };
                if !dirty(head) {
                    continue;
                }
                if self.flush_leaf(paging, pid, head, durable, &guard)?.is_some() {
                    written += 1;
                }
            }
            drop(guard);
            between();
        }
        Ok(written)
    }

    /// Checkpoint phase 2: close the structure-modification gate, then list
    /// every leaf in key order with an image address (dirty leaves are
    /// flushed, at most `durable`), and the page-id high-water mark. The
    /// images are not synced: the caller syncs the page segment before it
    /// publishes the list.
    pub(crate) fn list_leaves(&self, durable: u64) -> Result<(Vec<ListedLeaf>, u64)> {
        let Some(paging) = self.paging.as_deref() else {
            return Err(Error::InvalidArgument("a tree without paging has no location table"));
        };
        paging.smo_gate.close();
        let listed = (|| {
            for _ in 0..LIST_ATTEMPTS {
                if let Some(leaves) = self.try_list(paging, durable)? {
                    return Ok(leaves);
                }
            }
            Err(Error::Contention {
                attempts: LIST_ATTEMPTS,
            })
        })();
        paging.smo_gate.open();
        // Ids handed out after the listing are not in it: above the mark.
        Ok((listed?, self.table.high_water()))
    }

    /// One pass of [`Tree::list_leaves`]; `None`: a leaf's low fence was not
    /// the position reached (start over, F2).
    fn try_list(&self, paging: &Paging, durable: u64) -> Result<Option<Vec<ListedLeaf>>> {
        let mut out = Vec::new();
        let mut pos: Option<Bytes> = None;
        // The page ids listed so far, a bit each.
        let mut listed: Vec<u64> = Vec::new();
        loop {
            #[cfg(test)]
            self.call_list_hook(paging, None);
            let guard = epoch::pin();
            let t = pos.as_deref().map_or(Target::Key(&[]), Target::Key);
            let mut path = Path::new();
            let (pid, leaf) = self.descend_leaf::<false, 0, true>(t, &guard, &mut path)?;
            // The leaf's low fence, and its high fence (copied, sharing no
            // page buffer with the list).
            let (low, high) = match leaf {
                Leaf::Node(head) => (head.range().low(), head.range().high().map(Bytes::copy_from_slice)),
                Leaf::Cold(cold) => (cold.low(), cold.high().map(Bytes::copy_from_slice)),
            };
            if low != pos.as_deref() {
                return Ok(None);
            }
            // A page id met twice: a merge left unfinished before the gate
            // closed (its fault-in failed) was finished during the walk after
            // its right leaf was listed, and a split reused the freed id (F2).
            if !mark(&mut listed, pid) {
                return Ok(None);
            }
            let addr = match leaf {
                Leaf::Node(head) => match self.flush_leaf(paging, pid, head, durable, &guard)? {
                    Some(addr) => addr,
                    None => return Ok(None),
                },
                // A cold leaf is listed packed (`super::cold`): its chain is
                // on disk, the image the list names.
                Leaf::Cold(cold) => cold.addr(),
            };
            out.push(ListedLeaf { pid, addr, low: pos });
            #[cfg(test)]
            self.call_list_hook(paging, Some(pid));
            match high {
                Some(h) => pos = Some(h),
                None => return Ok(Some(out)),
            }
        }
    }

    /// Run [`Paging::list_hook`], if a test set one.
    #[cfg(test)]
    fn call_list_hook(&self, paging: &Paging, listed: Option<Pid>) {
        if let Some(hook) = crate::sync::lock(&paging.list_hook).as_mut() {
            hook(self, listed);
        }
    }

    /// Hold off evictions while the returned guard lives (a checkpoint
    /// deleting page segments: no image is written and not yet referenced
    /// meanwhile). `None` without paging.
    pub(crate) fn pause_evictions(&self) -> Option<MutexGuard<'_, ()>> {
        self.paging.as_deref().map(|p| crate::sync::lock(&p.evicting))
    }

    /// Every page-store address the mapping table references now: evicted
    /// leaves' and clean pages' chain heads, and the heads resident pages
    /// build on (DF1), under their deltas too.
    pub(crate) fn disk_addrs(&self) -> Vec<u64> {
        let mut out = Vec::new();
        let high = self.table.high_water();
        for chunk in (0..high).collect::<Vec<_>>().chunks(1024) {
            let guard = epoch::pin();
            for &pid in chunk {
                let mut node = match self.table.peek(pid, &guard) {
                    Peek::Node(node) => node,
                    Peek::Cold(cold) => {
                        out.push(cold.addr());
                        continue;
                    }
                    Peek::Free => continue,
                };
                // The chain's base: a page with deltas still builds on its
                // base's chain once consolidated (DF1).
                while let Some(next) = node.next() {
                    node = next;
                }
                match &node.body {
                    Body::Evicted { addr, .. } => out.push(*addr),
                    Body::Leaf(b) => out.extend(b.disk_head()),
                    _ => {}
                }
            }
        }
        out
    }
}

/// Set `pid`'s bit in `listed` (a bit per page id); `false` if it was set
/// already (a page id met twice, F2).
fn mark(listed: &mut Vec<u64>, pid: Pid) -> bool {
    let (word, bit) = ((pid / 64) as usize, 1u64 << (pid % 64));
    if listed.len() <= word {
        listed.resize(word + 1, 0);
    }
    let new = listed[word] & bit == 0;
    listed[word] |= bit;
    new
}
