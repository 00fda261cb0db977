//! Read-through (`design/storage.md` §5.4): a point read or a scan that
//! meets an evicted leaf answers from the leaf's on-disk chain without
//! faulting the leaf in, unless the leaf has earned its place in the cache.
//!
//! Why: with the data many times the cache, most point reads miss. A
//! fault-in decodes the whole leaf into a base page, installs it, and so
//! makes the evictor write out (or drop) another leaf and the collector
//! free it: at 5M keys and a 64 MiB cache that was about 30 µs of CPU per
//! two-read transaction, most of it spent on pages read once and evicted
//! unread. A read-through reads the chain's records, binary searches the
//! base image's key offsets in place (`image::find_in_leaf`), and copies
//! out one value.
//!
//! A scan reads an evicted leaf through too, whole
//! ([`Tree::read_leaf_through`]): the chain a fault-in would install,
//! built, read by the cursor (all of the leaf's entries in its range, so
//! the next refill does not read it again) and freed instead of published.
//!
//! A cold leaf (`super::cold`) is read through as it is, packed
//! ([`Tree::read_through_cold`], [`Tree::read_leaf_through_cold`]): its
//! cold stub has the address and read hint a read needs, and the descent
//! that found it checked its fences (`Tree::descend_leaf`). Only its
//! fault-in unpacks it.
//!
//! Admission (by frequency within a window, in the spirit of 2Q's ghost list):
//! - **Only under pressure.** While the trees' resident bytes are below
//!   three quarters of the cache (`Tree::set_read_through`, set by the
//!   engine's evictor), every miss faults in, so a cold cache fills as fast
//!   as before.
//! - **Frequency, net of the hand.** A point read-through raises the evicted
//!   leaf's read-through count (`Paging::through`, five bits a page id,
//!   apart from the clock's use counts) by one (by [`MULTI_PART_STEP`] if
//!   the leaf's on-disk chain has several parts), a scan's to at most
//!   [`clock::SCAN`] (scans alone never bring a leaf in, as §5.1 wants). A
//!   point read or a scan that meets an evicted leaf whose count is at
//!   [`ADMIT`] (31, the count's most) faults it in, as do writes and
//!   validation that need the image (unchanged).
//! - **The window is the hand's turns.** The evictor's hand lowers the
//!   count of every evicted leaf it passes by one, and an eviction clears
//!   it, so a leaf comes in once its point reads outrun the hand by 31: a
//!   leaf read 31 more times than the hand passed it. The hand turns only
//!   as fast as the cache must shed pages, so with few fault-ins the window
//!   widens and a leaf that stays hot still comes in.
//! - **Blind reads.** A point read that a delta over the stub answers
//!   (P5) raises the leaf's clock use count (not its read-through count)
//!   to [`clock::SCAN`]: the chain of deltas is
//!   resident (P6), and the mark keeps it one more turn of the hand.
//!
//! Invariants
//! - R1 (the same answer). A read-through returns what the fault-in would
//!   have: the deltas over the stub are searched first (P5: they are newer
//!   than the whole on-disk chain), then the chain's parts, taking the
//!   newest version at or below the snapshot any part holds, the newer part
//!   winning a tie, as `image::merge_chain` merges them. The chain may still
//!   hold versions the page had dropped by GC, but for every snapshot at or
//!   above the page's watermark it reads as the page did (DF1 in
//!   `super::flush`), and a snapshot that can read at all
//!   (`Tree::check_readable`) is at or above it. (The fault-in drops those
//!   versions again only to keep them out of memory and the GC counts.)
//! - R2 (a chain that moved). The chain at the stub's address may be
//!   relocated by the cleaner and its segment deleted by a checkpoint while
//!   the read runs. The read then fails; if the leaf's head is no longer the
//!   one read, the get falls back to the faulting descent, which looks
//!   again (the fault-in's own rule). A read that succeeds read an image
//!   the page store had not deleted, and segments are never reused, so its
//!   bytes are the chain's.
//! - R3 (a hint). The pressure flag, the use counts and the read-through
//!   counts are relaxed hints:
//!   a stale one only chooses a fault-in where a read-through would do, or
//!   the reverse. No answer depends on them.

use bytes::Bytes;
use crossbeam_epoch::Guard;

use super::chain::{Chain, Node};
use super::clock;
use super::cold::Cold;
use super::delta::Body;
use super::mapping_table::{Peek, Pid};
use super::tree::Tree;
use crate::sync::Ordering;
use crate::Result;

/// Read-throughs of an evicted leaf, net of the hand's passes, before the
/// next point read faults it in: the most the 5-bit count holds.
///
/// With the data many times the cache, a fault-in (decode the whole leaf,
/// install it, evict and free another) costs several read-throughs, and
/// under a scrambled zipfian load a page-grained cache holds few of the hot
/// keys, so leaves read often still earn little by coming in: fewer
/// fault-ins bought more than the hits they lost. Measured on the 2-bit
/// clock count (`bwtx bench --dir D --cache-size 64MiB --keys 5000000
/// --workload c --durability buffered --duration 15`, two runs each):
/// admitting after 1 read-through 117-122k txns/s, 2:
/// 147-155k, 3: 179-205k; never faulting in on a read 286-301k. With this
/// count (same command, 2026-12-05, alternating runs, `--value-size 100`):
/// after 3 read-throughs 198-220k, after 8 247-271k, after 15 254-317k,
/// after 31 234-350k, 63 and 127 within the same noise (269-403k, 255-353k);
/// YCSB B 196k after 3, 258-269k after 15, 231-290k after 31. A cap still
/// lets a cache filled with the wrong leaves (say, at a cold start) change.
const ADMIT: u64 = 31;

/// What a point read-through of a chain of several parts adds to its
/// leaf's count: such a leaf comes in on its seventh read (after six
/// read-throughs). Each read of it costs a positional read per part, and
/// only a leaf in memory can be written whole by its clean eviction once
/// its reads have worn it (P8 in `super::paging`, `design/storage.md`
/// §5.7). With every leaf at [`ADMIT`], YCSB B, C and E run after A on one
/// load (A's blind writes leave chains of several parts) read 3.2-3.5
/// records per page read and E ran at 26,601 transactions/s against 39,325
/// before. Steps measured in that sequence (`bwtx bench --compare --engines
/// bwtx`, one load, A then B, C, E, 15 s each, single runs, 2026-12-05
/// 09:50-09:58 UTC): 4 (eight read-throughs): B 176,633 txns/s at 8.18
/// disk bytes per user byte, C 217,958; 6: B 134,920-186,217 at
/// 12.30-13.04, C 237,782-250,461; 11 (three, as every leaf before):
/// B 117,368-136,878 at 22.57-26.86, C 234,622-265,784; 16: B 118,355 at
/// 24.27, C 226,749. E 45-48k in all. Fewer fault-ins of worn chains
/// rewrite fewer of them in B.
const MULTI_PART_STEP: u64 = 6;

impl Tree {
    /// Tell the tree whether its cache is under pressure: while it is,
    /// point reads of evicted leaves read through (see the module doc).
    #[cfg_attr(loom, allow(dead_code))] // the evictor's thread is not modelled
    pub(crate) fn set_read_through(&self, on: bool) {
        if let Some(p) = self.paging.as_deref() {
            if p.read_through.load(Ordering::Relaxed) != on {
                p.read_through.store(on, Ordering::Relaxed);
            }
        }
    }

    /// Force reads of evicted leaves to read through (`Some(true)`) or
    /// never to (`Some(false)`), or let [`Tree::set_read_through`] decide
    /// (`None`): the test hook `Db::force_read_through`.
    pub(crate) fn force_read_through(&self, on: Option<bool>) {
        if let Some(p) = self.paging.as_deref() {
            let mode = match on {
                None => super::paging::FORCE_NONE,
                Some(true) => super::paging::FORCE_ON,
                Some(false) => super::paging::FORCE_OFF,
            };
            p.forced.store(mode, Ordering::Relaxed);
        }
    }

    /// The admission rule: may a read of evicted leaf `pid` read through?
    /// If so, counts the read-through against the leaf: `step` more, at
    /// most `cap` (a point read: 1, or [`MULTI_PART_STEP`] for a chain of
    /// several parts, up to [`ADMIT`]; a scan: 1 up to [`clock::SCAN`], so
    /// scans alone never bring a leaf in). A leaf whose count reached
    /// [`ADMIT`] is refused and comes in through the caller's faulting
    /// descent at the clock's point level, a scan's too, so the evictor's
    /// probation queue (scans' leaves, at the scan level) does not put out
    /// first a leaf its point reads brought in.
    fn admit_through(paging: &super::paging::Paging, pid: Pid, step: u64, cap: u64) -> bool {
        let seen = paging.through.get(pid);
        let on = match paging.forced.load(Ordering::Relaxed) {
            super::paging::FORCE_ON => true,
            super::paging::FORCE_OFF => false,
            _ => paging.read_through.load(Ordering::Relaxed),
        };
        if !on {
            return false;
        }
        if seen >= ADMIT {
            paging.uses.touch(pid, clock::POINT);
            return false;
        }
        paging.through.touch(pid, (seen + step).min(cap));
        true
    }

    /// The evicted leaf `pid` (head `head`) read for a scan without being
    /// installed: the chain a fault-in would CAS in (its image decoded, GC
    /// applied, the stub's fences, the deltas over the stub rebuilt over
    /// it), owned by the caller and freed when it drops. `Ok(None)`: fault
    /// the leaf in instead (as for [`Tree::read_through`]).
    pub(crate) fn read_leaf_through<'g>(&'g self, pid: Pid, head: &'g Node, guard: &'g Guard) -> Result<Option<Chain>> {
        let Some(Body::Evicted {
            addr,
            range,
            watermark,
            hint,
            ..
        }) = super::blind::stub_of(head).map(|s| &s.body)
        else {
            return Ok(None);
        };
        let unchanged = || matches!(self.table.peek(pid, guard), Peek::Node(h) if std::ptr::eq(h, head));
        let base = self.read_base_at(pid, *addr, *hint, *watermark, unchanged)?;
        Ok(base.map(|mut base| {
            base.range = super::paging::detached(range);
            super::blind::rebuilt(head, Node::base(Body::Leaf(base)), |_, _| true)
        }))
    }

    /// [`Tree::read_leaf_through`] of a cold leaf (`super::cold`), which
    /// stays packed.
    pub(crate) fn read_leaf_through_cold(&self, pid: Pid, cold: &Cold) -> Result<Option<Chain>> {
        let unchanged = || {
            let guard = crossbeam_epoch::pin();
            matches!(self.table.peek(pid, &guard), Peek::Cold(c) if std::ptr::eq(c, cold))
        };
        let base = self.read_base_at(pid, cold.addr(), cold.hint(), cold.watermark(), unchanged)?;
        Ok(base.map(|mut base| {
            base.range = cold.range();
            Chain::base(Node::base(Body::Leaf(base)))
        }))
    }

    /// A scan's read-through of the chain at `addr` (read hint `hint`) of
    /// evicted leaf `pid`, built with GC watermark `watermark`, if the
    /// admission lets it: the base page a fault-in would build (its range
    /// left to the caller). A read error is the error if `unchanged()` says
    /// the leaf still names that chain, else `Ok(None)` (R2).
    fn read_base_at(
        &self,
        pid: Pid,
        addr: u64,
        hint: u32,
        watermark: u64,
        unchanged: impl FnOnce() -> bool,
    ) -> Result<Option<super::base::LeafBase>> {
        let Some(paging) = self.paging.as_deref() else {
            return Ok(None);
        };
        if !Self::admit_through(paging, pid, 1, clock::SCAN) {
            return Ok(None);
        }
        // With the stub's read hint, so a one-part chain's read looks
        // nothing up (as a point read-through's and a fault-in's); every
        // version is read (watermark 0), as the cursor may need any.
        match paging.io.read_leaf_at(pid, addr, hint, 0, &|_| 0) {
            Ok((base, _)) => {
                paging.counters.read_throughs.fetch_add(1, Ordering::Relaxed);
                Ok(Some(super::image::collect_base(base, watermark).with_disk(addr)))
            }
            Err(_) if !unchanged() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The value of `key` at `ts` read through the evicted leaf `pid`,
    /// whose head `head` holds no delta that answers it: `Ok(Some(value))`
    /// (`value` `None`: no version, or a tombstone). `Ok(None)`: fault the
    /// leaf in instead (no pressure, the leaf's read-through count at
    /// [`ADMIT`], or its chain
    /// moved while it was read, R2).
    pub(super) fn read_through<'g>(
        &'g self,
        pid: Pid,
        head: &'g Node,
        key: &[u8],
        ts: u64,
        guard: &'g Guard,
    ) -> Result<Option<Option<Bytes>>> {
        let Some(Body::Evicted { addr, hint, .. }) = super::blind::stub_of(head).map(|s| &s.body) else {
            return Ok(None);
        };
        self.read_version_at(
            pid,
            *addr,
            *hint,
            key,
            ts,
            || matches!(self.table.peek(pid, guard), Peek::Node(h) if std::ptr::eq(h, head)),
        )
    }

    /// [`Tree::read_through`] of a cold leaf (`super::cold`), which stays
    /// packed.
    pub(super) fn read_through_cold(
        &self,
        pid: Pid,
        cold: &Cold,
        key: &[u8],
        ts: u64,
    ) -> Result<Option<Option<Bytes>>> {
        self.read_version_at(pid, cold.addr(), cold.hint(), key, ts, || {
            let guard = crossbeam_epoch::pin();
            matches!(self.table.peek(pid, &guard), Peek::Cold(c) if std::ptr::eq(c, cold))
        })
    }

    /// The read-through of `key` at `ts` in the chain at `addr` (read hint
    /// `hint`) of evicted leaf `pid`, if the admission lets it. A read
    /// error is the error if `unchanged()` says the leaf still names that
    /// chain, else `Ok(None)` (R2: it moved while it was read).
    fn read_version_at(
        &self,
        pid: Pid,
        addr: u64,
        hint: u32,
        key: &[u8],
        ts: u64,
        unchanged: impl FnOnce() -> bool,
    ) -> Result<Option<Option<Bytes>>> {
        let Some(paging) = self.paging.as_deref() else {
            return Ok(None);
        };
        // A stub without a read hint names a chain of several parts, or
        // one the page store did not know when the stub was made (every
        // stub restored from a location table at open, until the leaf is
        // faulted in and evicted again): counted as several parts.
        let step = if hint == 0 { MULTI_PART_STEP } else { 1 };
        if !Self::admit_through(paging, pid, step, ADMIT) {
            return Ok(None);
        }
        match paging.io.read_version(pid, addr, hint, key, ts) {
            Ok(value) => {
                paging.counters.read_throughs.fetch_add(1, Ordering::Relaxed);
                Ok(Some(value))
            }
            Err(_) if !unchanged() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
