//! Every tree on one page store (`design/keyspaces.md` §8,
//! `design/storage.md` §2.1, §2.5): the default keyspace's tree, the
//! catalog's and each named keyspace's read and write the one [`PageFile`],
//! each through its own [`TreePages`], and share one cache budget.
//!
//! A tree's *tag* is the `tree u16` of its records and of its location
//! table entry: 0 for the default keyspace, the keyspace id for a named
//! one (at most [`MAX_PAGED_ID`]), [`CATALOG_TAG`] for the catalog. Page ids
//! are per tree (each tree numbers its pages from 0), so a record names its
//! page by `(tag, id)`: a read checks both and the crc covers both, so an
//! image read for another tree or page is `Error::Corruption`, never another
//! tree's values (chosen over disjoint page-id ranges, which would need a
//! per-tree range in the mapping table and the table's `pid_high`, and would
//! still not tell a stray address of another tree from a damaged one).
//!
//! The cache budget spans every tree ([`Engine::evict_trees`]): the trees'
//! resident bytes are summed, and each evicts down to its share of the
//! target, in proportion to what it holds.

use bytes::Bytes;

use super::keyspaces::{KsTree, CATALOG};
use super::pages::PageFile;
use super::Engine;
use crate::bwtree::{CleanEviction, DeltaVersion, LeafBase, Over, PageIo, Tree, Unread};
use crate::sync::Arc;
use crate::Result;

/// Retired bytes below which nobody waits for the collector, whatever the
/// budget (a quarter of it; collection starts at a quarter of this): each
/// thread's epoch bag holds up to 64 retired chains anyway, so a tiny cache
/// (tests use a few KiB) would otherwise make every commit sleep.
pub(crate) const RETIRED_FLOOR: u64 = 1 << 20;

/// Most sleeps of [`Engine::wait_for_reclaim`] (200 µs each).
#[cfg(not(loom))]
const RECLAIM_WAITS: u32 = 100;

/// The catalog's tag (the largest, so it is listed last in a table).
pub(crate) const CATALOG_TAG: u16 = u16::MAX;

/// The largest keyspace id a database with a page store takes (ids above
/// it have no tag).
pub(crate) const MAX_PAGED_ID: u32 = CATALOG_TAG as u32 - 1;

/// The tag of the tree with keyspace id `id` (`CATALOG` for the catalog);
/// `None` if the id has none (above [`MAX_PAGED_ID`]).
pub(crate) fn tag(id: u32) -> Option<u16> {
    match id {
        CATALOG => Some(CATALOG_TAG),
        id if id <= MAX_PAGED_ID => Some(id as u16),
        _ => None,
    }
}

/// One tree's `PageIo`: the shared page file, its records tagged `tree`.
pub(crate) struct TreePages {
    pub(crate) file: Arc<PageFile>,
    pub(crate) tree: u16,
}

impl TreePages {
    /// The page I/O of the tree tagged `tree`, boxed for `Tree`.
    pub(crate) fn boxed(file: &Arc<PageFile>, tree: u16) -> Box<dyn PageIo> {
        Box::new(TreePages {
            file: file.clone(),
            tree,
        })
    }
}

impl PageIo for TreePages {
    fn read_leaf(&self, pid: u64, addr: u64) -> Result<LeafBase> {
        self.file.read_leaf(self.tree, pid, addr)
    }
    fn read_leaf_at(
        &self,
        pid: u64,
        addr: u64,
        hint: u32,
        watermark: u64,
        over: Over<'_>,
    ) -> Result<(LeafBase, Unread)> {
        self.file.read_leaf_at(self.tree, pid, addr, hint, watermark, over)
    }
    fn read_version(&self, pid: u64, addr: u64, hint: u32, key: &[u8], ts: u64) -> Result<Option<Bytes>> {
        self.file.read_version(self.tree, pid, addr, hint, key, ts)
    }
    fn key_set(&self, pid: u64, addr: u64) -> Result<(Box<[u64]>, u64)> {
        self.file.key_set(self.tree, pid, addr)
    }
    fn write_leaf(&self, pid: u64, base: &LeafBase) -> Result<u64> {
        self.file.write_leaf(self.tree, pid, base)
    }
    fn write_delta(&self, pid: u64, prev: u64, entries: &[DeltaVersion<'_>]) -> Result<Option<u64>> {
        self.file.write_delta(self.tree, pid, prev, entries)
    }
    fn write_delta_on(&self, pid: u64, prev: u64, entries: &[DeltaVersion<'_>]) -> Result<Option<u64>> {
        self.file.write_delta_on(self.tree, pid, prev, entries)
    }
    fn chain_upto(&self, head: u64) -> Option<u64> {
        self.file.chain_upto(head)
    }
    fn clean_eviction(&self, head: u64) -> CleanEviction {
        self.file.clean_eviction(head)
    }
    fn read_hint(&self, head: u64) -> u32 {
        self.file.read_hint(head)
    }
    fn sync(&self) -> Result<()> {
        self.file.sync()
    }
    fn durable_ts(&self) -> u64 {
        self.file.durable_ts()
    }
}

impl Engine {
    /// The named keyspaces' and the catalog's trees (the default one is
    /// `self.tree`): hold the result, then walk [`Engine::each_tree`].
    pub(crate) fn other_trees(&self) -> Vec<Arc<KsTree>> {
        self.ks.trees()
    }

    /// `(tag, tree)` of the default tree and of each of `others` (from
    /// [`Engine::other_trees`]).
    pub(crate) fn each_tree<'a>(&'a self, others: &'a [Arc<KsTree>]) -> impl Iterator<Item = (u16, &'a Tree)> + 'a {
        std::iter::once((0, &self.tree)).chain(others.iter().map(|k| (tag(k.id).unwrap_or(CATALOG_TAG), &k.tree)))
    }

    /// Resident and retired-not-yet-freed bytes (`Tree::resident_bytes`,
    /// `Tree::retired_bytes`) of every tree, under one read of the keyspace
    /// map. (No allocation: after-commit eviction asks on every commit.)
    pub(crate) fn paged_bytes(&self) -> (u64, u64) {
        let map = self.ks.map.read().unwrap_or_else(|e| e.into_inner());
        [&self.tree, &self.ks.catalog.tree]
            .into_iter()
            .chain(map.values().map(|k| &k.tree))
            .fold((0, 0), |(res, ret), t| {
                (res + t.resident_bytes(), ret + t.retired_bytes())
            })
    }

    /// Resident bytes of every tree.
    pub(crate) fn resident_all(&self) -> u64 {
        self.paged_bytes().0
    }

    /// Tell every tree whether the cache is under pressure: the trees hold
    /// at least three quarters of `budget`, so point reads and scans of
    /// evicted leaves read through (`bwtree/read_through.rs`).
    pub(crate) fn note_pressure(&self, budget: u64) {
        // `Db::force_read_through` overrides this in each tree
        // (`Paging::forced`), whenever this hint was computed.
        let on = self.resident_all() >= budget - budget / 4;
        let others = self.other_trees();
        for (_, t) in self.each_tree(&others) {
            t.set_read_through(on);
        }
    }

    /// Retired bytes of every tree not yet freed.
    pub(crate) fn retired_all(&self) -> u64 {
        self.paged_bytes().1
    }

    /// Estimated bytes of every tree's evicted leaves' stubs
    /// (`Tree::stub_bytes`; outside the budget).
    pub(crate) fn stubs_all(&self) -> u64 {
        let map = self.ks.map.read().unwrap_or_else(|e| e.into_inner());
        [&self.tree, &self.ks.catalog.tree]
            .into_iter()
            .chain(map.values().map(|k| &k.tree))
            .map(|t| t.stub_bytes())
            .sum()
    }

    /// Free retired chains whose grace period is over (the epoch collector,
    /// a few steps) until every tree's retired bytes are at most a
    /// sixteenth of `budget` (or [`RETIRED_FLOOR`] / 8).
    pub(crate) fn reclaim(&self, budget: u64) {
        crate::bwtree::reclaim_until(|| self.retired_all() <= (budget / 16).max(RETIRED_FLOOR / 8));
    }

    /// Backpressure on garbage: while more than a quarter of `budget` (and
    /// more than [`RETIRED_FLOOR`]) is retired and not yet freed, sleep a little and collect again, at most
    /// [`RECLAIM_WAITS`] times. Garbage piles up when a thread stays pinned
    /// (an eviction batch or a large commit, descheduled on a loaded
    /// machine: the epoch cannot advance past it) while writers go on
    /// retiring consolidated chains at hundreds of megabytes a second; the
    /// writer that waits here gives the pinned thread the processor and
    /// stops adding garbage meanwhile. Bounded: a thread pinned for longer
    /// (a caller's long operation) costs memory, never a hang.
    pub(crate) fn wait_for_reclaim(&self, budget: u64) {
        #[cfg(not(loom))]
        for _ in 0..RECLAIM_WAITS {
            if self.retired_all() <= (budget / 4).max(RETIRED_FLOOR) {
                return;
            }
            let t = std::time::Instant::now();
            std::thread::sleep(std::time::Duration::from_micros(200));
            self.counters.reclaim_waits.add(1);
            self.counters.reclaim_wait_micros.add(t.elapsed().as_micros() as u64);
            self.reclaim(budget);
        }
        #[cfg(loom)]
        let _ = budget;
    }

    /// Evict (at most `max_batches` batches per tree) until the trees
    /// together hold about `target` resident bytes: each tree down to its
    /// share, in proportion to what it holds. Returns the leaves evicted.
    pub(crate) fn evict_trees(&self, target: u64, max_batches: usize) -> Result<usize> {
        let others = self.other_trees();
        let sizes: Vec<u64> = self.each_tree(&others).map(|(_, t)| t.resident_bytes()).collect();
        let total: u64 = sizes.iter().sum();
        if total <= target {
            return Ok(0);
        }
        let mut evicted = 0;
        for ((_, t), size) in self.each_tree(&others).zip(sizes) {
            let share = (u128::from(size) * u128::from(target) / u128::from(total)) as u64;
            if size > share {
                evicted += t.evict_to(share, max_batches)?;
            }
        }
        Ok(evicted)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bytes::Bytes;

    use super::*;
    use crate::bwtree::Config;
    use crate::fs::FaultFs;
    use crate::pagestore::store::SegmentInfo;
    use crate::sync::{AtomicU64, Ordering};
    use crate::Error;

    /// A tree of tag `tag` paged through a new page file on a `FaultFs`
    /// (segments of `segment_bytes`, value-log threshold `vlog`), the log
    /// taken as durable at every timestamp.
    fn paged_tree(segment_bytes: u64, vlog: u64, config: Config, tag: u16) -> (Arc<PageFile>, Tree) {
        let fs: std::sync::Arc<dyn crate::fs::Fs> = std::sync::Arc::new(FaultFs::new());
        let durable = Arc::new(AtomicU64::new(u64::MAX));
        let file = Arc::new(PageFile::open(fs, Path::new("/d"), segment_bytes, durable, vlog).unwrap());
        let mut tree = Tree::with_config(config).unwrap();
        tree.set_page_io(TreePages::boxed(&file, tag));
        (file, tree)
    }

    /// Install keys `0..n` (4-byte big-endian) at timestamp 1, key `i`
    /// holding `len` bytes of `i`.
    fn fill(tree: &Tree, n: u32, len: usize) {
        for i in 0..n {
            tree.install(
                Bytes::copy_from_slice(&i.to_be_bytes()),
                1,
                Some(Bytes::from(vec![i as u8; len])),
            )
            .unwrap();
        }
    }

    /// One of the tree's paging counters, as `field` picks it.
    fn counter(tree: &Tree, field: impl Fn(&crate::bwtree::PagingCounters) -> &AtomicU64) -> u64 {
        field(&tree.paging.as_deref().expect("paged").counters).load(Ordering::Relaxed)
    }

    /// An evicted leaf's stub carries its one-part chain's record length
    /// (`Body::Evicted::hint`, from `PageIo::read_hint` at the eviction):
    /// its read-throughs and its fault-in read with it and look nothing up
    /// in the chain map (a mutex and two cache misses a read, 4.9% of the
    /// CPU of YCSB C at 5M keys and a 64 MiB cache). A chain of two parts
    /// has no hint: its reads look it up (they count its extra reads, P8;
    /// `two_part_chains_read_with_known_lengths` counts those look-ups).
    /// Scans' reads take the hint too.
    #[test]
    fn stubs_of_one_part_chains_read_without_a_look_up() {
        let (file, tree) = paged_tree(1 << 20, 64, Config::tiny(), 0);
        let key = |i: u32| i.to_be_bytes();
        fill(&tree, 40, 8);
        let lookups = || file.read_lookups.load(Ordering::Relaxed);
        let faults = |t: &Tree| counter(t, |c| &c.faults);
        // Whole images: every chain one part.
        assert!(tree.evict_all().unwrap() > 1);
        tree.force_read_through(Some(true));
        let before = lookups();
        for i in 0..40u32 {
            assert_eq!(tree.get(key(i), 1).unwrap().as_deref(), Some(&[i as u8; 8][..]));
        }
        assert_eq!(
            lookups() - before,
            0,
            "read-throughs of one-part chains look nothing up"
        );
        tree.force_read_through(Some(false));
        let (before, faulted) = (lookups(), faults(&tree));
        for i in 0..40u32 {
            assert_eq!(tree.get(key(i), 1).unwrap().as_deref(), Some(&[i as u8; 8][..]));
        }
        assert!(faults(&tree) > faulted, "the leaves faulted in");
        assert_eq!(lookups() - before, 0, "fault-ins of one-part chains look nothing up");
        // Evicted again, clean this time (`PageIo::clean_eviction` keeps the
        // chains and gives the hint from its one look-up): still no look-up.
        assert!(tree.evict_all().unwrap() > 1);
        tree.force_read_through(Some(true));
        let before = lookups();
        for i in 0..40u32 {
            assert_eq!(tree.get(key(i), 1).unwrap().as_deref(), Some(&[i as u8; 8][..]));
        }
        assert_eq!(lookups() - before, 0, "clean evictions' stubs carry the hint too");
        // Scans read through with the hint too.
        tree.evict_all().unwrap();
        let before = lookups();
        let (throughs, faulted) = (counter(&tree, |c| &c.read_throughs), faults(&tree));
        assert_eq!(tree.range::<&[u8], _>(.., 1).count(), 40);
        assert!(counter(&tree, |c| &c.read_throughs) > throughs, "the scan read through");
        assert_eq!(faults(&tree), faulted, "and faulted nothing in");
        assert_eq!(
            lookups() - before,
            0,
            "a scan's reads of one-part chains look nothing up"
        );
    }

    /// A chain of two parts (a delta flush on a base image) is read with
    /// both parts' lengths from the one chain-map look-up its read makes
    /// anyway (`ChainLens`): no part's length is looked up among the record
    /// lengths, by read-throughs or by fault-ins.
    #[test]
    fn two_part_chains_read_with_known_lengths() {
        let (file, tree) = paged_tree(1 << 20, 1 << 20, Config::default(), 0);
        let key = |i: u32| i.to_be_bytes();
        fill(&tree, 60, 100);
        assert_eq!(tree.evict_all().unwrap(), 1, "one leaf, written whole");
        // A blind write, flushed by the eviction as a delta on the chain.
        tree.install(Bytes::copy_from_slice(&key(7)), 2, Some(Bytes::from(vec![77u8; 100])))
            .unwrap();
        let deltas = |t: &Tree| counter(t, |c| &c.delta_flushes);
        let before = deltas(&tree);
        tree.evict_all().unwrap();
        assert_eq!(deltas(&tree) - before, 1, "a two-part chain");
        let lens = || file.len_lookups.load(Ordering::Relaxed);
        let reads = || file.read_lookups.load(Ordering::Relaxed);
        tree.force_read_through(Some(true));
        let (l0, r0) = (lens(), reads());
        assert_eq!(tree.get(key(7), 2).unwrap().as_deref(), Some(&[77u8; 100][..]));
        assert_eq!(tree.get(key(8), 2).unwrap().as_deref(), Some(&[8u8; 100][..]));
        assert_eq!(reads() - r0, 2, "each read looks the chain up once");
        assert_eq!(lens() - l0, 0, "and no part's length");
        tree.force_read_through(Some(false));
        let l0 = lens();
        assert_eq!(tree.get(key(7), 1).unwrap().as_deref(), Some(&[7u8; 100][..]));
        assert_eq!(lens() - l0, 0, "the fault-in looks no part's length up");
    }

    /// `Db::force_read_through` holds against the evictor's pressure hint
    /// whenever that hint is stored: the evictor computes it from the
    /// cache's fill and stores it later, and a hint computed before the
    /// hook and stored after it once turned reads back to read-through
    /// for the rest of a test (the final GC check of `tests/tx_model`
    /// then found nothing faulted in and nothing collected).
    #[test]
    fn forced_read_through_survives_a_stale_pressure_hint() {
        let (_file, tree) = paged_tree(1 << 20, 64, Config::tiny(), 0);
        let key = |i: u32| i.to_be_bytes();
        fill(&tree, 40, 8);
        let counters = |t: &Tree| (counter(t, |c| &c.faults), counter(t, |c| &c.read_throughs));
        // Forced off, then a stale "under pressure" hint: reads fault in.
        tree.force_read_through(Some(false));
        assert!(tree.evict_all().unwrap() > 1);
        tree.set_read_through(true);
        let before = counters(&tree);
        assert_eq!(tree.get(key(3), 1).unwrap().as_deref(), Some(&[3u8; 8][..]));
        let after = counters(&tree);
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (1, 0),
            "faulted in, not read through"
        );
        // Forced on, then a stale "no pressure" hint: reads read through.
        tree.force_read_through(Some(true));
        assert_eq!(tree.evict_all().unwrap(), 1, "the leaf faulted in");
        tree.set_read_through(false);
        let before = counters(&tree);
        assert_eq!(tree.get(key(3), 1).unwrap().as_deref(), Some(&[3u8; 8][..]));
        let after = counters(&tree);
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (0, 1),
            "read through, not faulted in"
        );
        // Not forced: the hint decides again.
        tree.force_read_through(None);
        tree.set_read_through(false);
        let before = counters(&tree);
        assert!(tree.get(key(30), 1).unwrap().is_some());
        assert_eq!(counters(&tree).0 - before.0, 1, "the hint says no pressure: faulted in");
    }

    /// A page image read for another tree, or for another page of its
    /// tree, is corruption; read for its own, it comes back (its large
    /// values through the value log).
    #[test]
    fn an_image_read_for_another_tree_or_page_is_corruption() {
        let (file, tree) = paged_tree(1 << 20, 64, Config::tiny(), 7);
        for i in 0..40u32 {
            let v = if i.is_multiple_of(5) {
                vec![i as u8; 300]
            } else {
                vec![i as u8]
            };
            tree.install(Bytes::from(i.to_be_bytes().to_vec()), 1, Some(Bytes::from(v)))
                .unwrap();
        }
        assert!(tree.evict_all().unwrap() > 1);
        let refs = tree.disk_refs();
        assert!(refs.len() > 1, "several leaves: {refs:?}");
        let mut large = 0;
        for &(pid, addr) in &refs {
            let base = file.read_leaf(7, pid, addr).unwrap();
            large += usize::from(!base.big_values().is_empty());
            for (tag, id) in [(8, pid), (0, pid), (CATALOG_TAG, pid), (7, pid + 1)] {
                let e = file.read_leaf(tag, id, addr).unwrap_err();
                assert!(matches!(e, Error::Corruption { .. }), "tree {tag} page {id}: {e:?}");
            }
        }
        assert!(large > 0, "some leaf holds a value-log reference");
        // The tree reads its own pages back.
        for i in 0..40u32 {
            assert!(tree.get(i.to_be_bytes(), 1).unwrap().is_some());
        }
    }

    /// The record header of a delta flush of tree 0's page `pid` on `prev`,
    /// its newest version at timestamp 2.
    #[cfg(not(loom))]
    fn delta_meta(pid: u64, prev: u64, flags: u8) -> crate::pagestore::record::Meta {
        crate::pagestore::record::Meta {
            rkind: crate::pagestore::record::RecordKind::Delta,
            flags,
            tree: 0,
            id: pid,
            prev,
            max_ts: 2,
        }
    }

    /// A delta flush in the fixed encoding (record flags 0, as builds
    /// before the compact one wrote them) reads as its compact twin: a
    /// fault-in's merge, read-throughs and a key-set read give the same
    /// versions. A delta flush whose flags name no encoding is corruption.
    #[test]
    #[cfg(not(loom))]
    fn fixed_delta_flushes_of_earlier_builds_still_read() {
        use crate::bwtree::{encode_delta, encode_delta_fixed, COMPACT_DELTA};
        let (file, tree) = paged_tree(1 << 20, 1 << 20, Config::default(), 0);
        let key = |i: u32| i.to_be_bytes();
        fill(&tree, 60, 100);
        assert_eq!(tree.evict_all().unwrap(), 1, "one leaf, written whole");
        let (pid, base) = tree.disk_refs()[0];
        let new = [99u8; 100];
        let (k7, k8) = (key(7), key(8));
        let entries = [(&k7[..], 2, Some(&new[..])), (&k8[..], 2, None)];
        let mut compact = Vec::new();
        assert_eq!(encode_delta(entries, &mut compact, None).unwrap(), 2);
        let mut fixed = Vec::new();
        encode_delta_fixed(entries, &mut fixed, None).unwrap();
        assert!(
            compact.len() + 20 < fixed.len(),
            "{} against {}",
            compact.len(),
            fixed.len()
        );
        let meta = |flags| delta_meta(pid, base, flags);
        for (flags, payload) in [(COMPACT_DELTA, &compact), (0, &fixed)] {
            let head = file.store.append(&meta(flags), payload).unwrap();
            assert_eq!(
                file.read_leaf(0, pid, head).unwrap().version_count(),
                62,
                "flags {flags}"
            );
            let read = |k: &[u8], ts| file.read_version(0, pid, head, 0, k, ts).unwrap();
            assert_eq!(read(&k7, 2).as_deref(), Some(&new[..]));
            assert_eq!(read(&k7, 1).as_deref(), Some(&[7u8; 100][..]));
            assert_eq!(read(&k8, 2), None, "the tombstone");
            assert_eq!(read(&k8, 1).as_deref(), Some(&[8u8; 100][..]));
            assert_eq!(read(&key(9), 2).as_deref(), Some(&[9u8; 100][..]));
            let (set, max_ts) = file.key_set(0, pid, head).unwrap();
            assert_eq!((set.len(), max_ts), (60, 2));
        }
        let bad = file.store.append(&meta(2), &compact).unwrap();
        let e = file.read_leaf(0, pid, bad).unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e:?}");
        let e = file.read_version(0, pid, bad, 0, &k7, 2).unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e:?}");
        let e = file.key_set(0, pid, bad).unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e:?}");
    }

    /// A directory of an earlier build: a page segment of version 1 holding
    /// a base image and a fixed delta flush opens and reads; one of a
    /// version no build wrote is refused at the open.
    #[test]
    #[cfg(not(loom))]
    fn a_version_1_page_segment_opens_and_reads() {
        use crate::bwtree::encode_delta_fixed;
        use crate::fs::Fs;
        let fault = FaultFs::new();
        let fs: std::sync::Arc<dyn Fs> = std::sync::Arc::new(fault.clone());
        let dir = Path::new("/d");
        let open = || {
            let durable = Arc::new(AtomicU64::new(u64::MAX));
            PageFile::open(fs.clone(), dir, 1 << 20, durable, 1 << 20)
        };
        let file = Arc::new(open().unwrap());
        let mut tree = Tree::with_config(Config::default()).unwrap();
        tree.set_page_io(TreePages::boxed(&file, 0));
        fill(&tree, 60, 100);
        assert_eq!(tree.evict_all().unwrap(), 1, "one leaf, written whole");
        let (pid, base) = tree.disk_refs()[0];
        let key = 7u32.to_be_bytes();
        let mut fixed = Vec::new();
        encode_delta_fixed([(&key[..], 2, Some(&[99u8; 100][..]))], &mut fixed, None).unwrap();
        let head = file.store.append(&delta_meta(pid, base, 0), &fixed).unwrap();
        file.store.sync().unwrap();
        drop((tree, file));
        let seg = dir.join(crate::pagestore::segment::name(
            crate::pagestore::record::Kind::Pages,
            1,
        ));
        let with_version = |v: u32| {
            let mut b = fs.read(&seg).unwrap();
            assert_eq!(b[8..12], 2u32.to_le_bytes(), "written at version 2");
            b[8..12].copy_from_slice(&v.to_le_bytes());
            let crc = crc32c::crc32c(&b[..24]);
            b[24..28].copy_from_slice(&crc.to_le_bytes());
            b
        };
        let (v1, v3) = (with_version(1), with_version(3));
        let write = |b: &[u8]| {
            let mut f = fs.create(&seg).unwrap();
            f.write_all(b).unwrap();
            f.sync().unwrap();
        };
        write(&v1);
        let file = open().unwrap();
        assert_eq!(file.read_leaf(0, pid, head).unwrap().version_count(), 61);
        let got = file.read_version(0, pid, head, 0, &key, 2).unwrap();
        assert_eq!(got.as_deref(), Some(&[99u8; 100][..]));
        drop(file);
        write(&v3);
        let e = open().map(|_| ()).unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e:?}");
    }

    /// The chain map holds an entry per page write until pruned: pruned to
    /// the heads the mapping table names, it keeps one per leaf, and every
    /// delta chain the table names stays known, so that a checkpoint's
    /// segment deletion afterwards keeps every part and every page reads
    /// back (with a prune that forgot the delta heads too, the deletion
    /// drops the segments of their base images and the reads fail).
    #[test]
    fn pruned_chains_keep_what_the_mapping_table_names() {
        let (file, tree) = paged_tree(4096, 1 << 20, Config::default(), 0);
        let key = |i: u32| Bytes::from(i.to_be_bytes().to_vec());
        let val = |i: u32, round: u64| Bytes::from(vec![(i as u64 + round) as u8; 40]);
        const KEYS: u32 = 3000;
        // Round 1 writes whole images; rounds 2-4 one key in every 20 (a
        // delta flush on each leaf's image, in newer segments; a paged
        // leaf holds up to 64 keys here).
        let touched = |i: u32, round: u64| round == 1 || i % 20 == round as u32;
        for round in 1..=4 {
            for i in (0..KEYS).filter(|&i| touched(i, round)) {
                tree.install(key(i), round, Some(val(i, round))).unwrap();
            }
            tree.evict_all().unwrap();
        }
        let heads: crate::engine::chain_parts::AddrSet = tree.disk_addrs().into_iter().collect();
        let before = file.chains_len();
        assert!(
            before > 2 * heads.len(),
            "writes added entries: {before} for {} heads",
            heads.len()
        );
        file.prune_chains(&heads);
        assert!(file.chains_len() <= heads.len(), "{} entries kept", file.chains_len());
        // A checkpoint's deletion with what the mapping table names (every
        // part of every chain is live: nothing may go).
        assert_eq!(file.delete_unreferenced(heads.iter().copied()).unwrap(), 0);
        for i in 0..KEYS {
            let last = (1..=4).rev().find(|&r| touched(i, r)).unwrap();
            assert_eq!(tree.get(key(i), 4).unwrap(), Some(val(i, last)), "key {i}");
        }
    }

    /// A chain with a part in a draining segment is not extended: its page's
    /// next flush writes a whole image at the head instead of a delta flush
    /// on it, so that old segments empty as their pages are written (without
    /// the check, the last round writes deltas only).
    #[test]
    fn a_chain_in_a_draining_segment_is_written_whole() {
        // Every segment but the newest drains (no live bytes to keep).
        chains_over_marked_segments_are_written_whole(|file, segs| {
            file.clean.set_drain(segs, 0);
            assert!(file.clean.draining(segs[0].seq) && !file.clean.draining(segs[segs.len() - 1].seq));
        });
    }

    /// Alike for a chain with a part in one of the last cleaning pass's
    /// victims, none draining: a page the pass could not move is written
    /// whole at its next flush (without the check, deltas only).
    #[test]
    fn a_chain_in_a_victim_segment_is_written_whole() {
        chains_over_marked_segments_are_written_whole(|file, segs| {
            file.clean
                .set_victims(&segs.iter().map(|s| s.seq).take(segs.len() - 1).collect());
            assert!(!file.clean.draining(segs[0].seq));
        });
    }

    /// Images, then delta flushes on them; then `mark` the segments, and
    /// another round of the same updates writes whole images.
    fn chains_over_marked_segments_are_written_whole(mark: impl Fn(&PageFile, &[SegmentInfo])) {
        let (file, tree) = paged_tree(4096, 1 << 20, Config::default(), 0);
        let key = |i: u32| Bytes::from(i.to_be_bytes().to_vec());
        const KEYS: u32 = 2000;
        let round = |r: u64, every: u32| {
            for i in (0..KEYS).filter(|i| i % every == 0) {
                tree.install(key(i), r, Some(Bytes::from(vec![r as u8; 40]))).unwrap();
            }
            tree.evict_all().unwrap();
            let w = &file.written;
            (w.images.load(Ordering::Relaxed), w.deltas.load(Ordering::Relaxed))
        };
        let (images, deltas) = round(1, 1);
        assert!(images > 0 && deltas == 0);
        // One key in 16 of each leaf: delta flushes on the images.
        let (images2, deltas2) = round(2, 16);
        assert_eq!(images2, images, "no whole image while nothing is marked");
        assert!(deltas2 > deltas);
        let segs = file.store.segments();
        assert!(segs.len() > 2, "several segments: {}", segs.len());
        mark(&file, &segs);
        let (images3, _) = round(3, 16);
        assert!(images3 > images2, "the pages over marked segments are written whole");
        for i in 0..KEYS {
            let want = if i % 16 == 0 { 3 } else { 1 };
            assert_eq!(
                tree.get(key(i), 3).unwrap(),
                Some(Bytes::from(vec![want; 40])),
                "key {i}"
            );
        }
    }

    /// A prune and a checkpoint's deletion give the chain map's table back:
    /// after many page writes per leaf the table is sized for what the map
    /// keeps (plus the growth allowed before the next prune), not for every
    /// write since (without the shrink it keeps its largest size), and the
    /// deletion keeps exactly the heads it is given that the map knows.
    #[test]
    fn pruned_chain_map_gives_its_table_back() {
        let (file, tree) = paged_tree(1 << 20, 1 << 20, Config::default(), 0);
        let key = |i: u32| Bytes::from(i.to_be_bytes().to_vec());
        const KEYS: u32 = 4000;
        // Every round writes one key in every 8 and evicts every leaf: an
        // entry per leaf per round (a delta flush or a whole image).
        for round in 0..64u32 {
            for i in (0..KEYS).filter(|i| i % 8 == round % 8) {
                tree.install(key(i), u64::from(round) + 1, Some(Bytes::from(vec![round as u8; 24])))
                    .unwrap();
            }
            tree.evict_all().unwrap();
        }
        let heads: crate::engine::chain_parts::AddrSet = tree.disk_addrs().into_iter().collect();
        let (before, cap_before) = (file.chains_len(), file.chains_capacity());
        assert!(before > 40 * heads.len(), "{before} entries for {} heads", heads.len());
        file.prune_chains(&heads);
        let kept = file.chains_len();
        assert!(kept <= heads.len(), "{kept} entries kept");
        let room = kept + (kept / 4).max(1024);
        assert!(
            file.chains_capacity() <= 2 * room && file.chains_capacity() < cap_before,
            "table for {} entries after the prune ({cap_before} before), {kept} kept",
            file.chains_capacity()
        );
        // The deletion (given each head twice) keeps what the prune kept.
        file.delete_unreferenced(heads.iter().copied().chain(heads.iter().copied()))
            .unwrap();
        assert_eq!(file.chains_len(), kept);
        for i in 0..KEYS {
            assert!(tree.get(key(i), 64).unwrap().is_some(), "key {i}");
        }
    }
}
