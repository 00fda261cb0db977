//! Range cursors as of a snapshot timestamp, forward and reverse.
//!
//! A cursor holds no page pointer between refills: it remembers the next key
//! bound at each end and, to refill, descends from the root to the leaf that
//! holds that bound, takes the leaf's visible entries, and moves the bound to
//! the leaf's fence. Splits and merges underneath cannot make it skip or
//! repeat a key.

use std::ops::{Bound, RangeBounds};

use bytes::Bytes;
use crossbeam_epoch as epoch;

use super::base::LeafBase;
use super::clock;
use super::keys::key_lt;
use super::leaf_merge::{LeafChain, MergeSink, Shape, VersionDelta};
use super::search::Target;
use super::tree::{Leaf, Path, Tree};
use crate::Result;

/// An iterator over `(key, value)` pairs of a key range as seen at one
/// timestamp, in key order; [`DoubleEndedIterator`] for reverse order.
/// Keys and values are zero-copy slices of the tree's pages.
pub struct Cursor<'t> {
    tree: &'t Tree,
    ts: u64,
    /// Keys below this bound were consumed from the front.
    front: Bound<Bytes>,
    /// Keys above this bound were consumed from the back.
    back: Bound<Bytes>,
    /// Front buffer: the entries at `front_pos..` are still to be taken (taken
    /// ones are left empty). Refills reuse its allocation.
    front_entries: Vec<(Bytes, Bytes)>,
    front_pos: usize,
    back_entries: Vec<(Bytes, Bytes)>,
    /// Where the front refill continues once `front_entries` is drained (`None`: end).
    front_next: Option<Bound<Bytes>>,
    back_next: Option<Bound<Bytes>>,
    /// Most entries the next front refill takes from a leaf. It starts small
    /// and doubles with each refill: a short scan (`.take(10)`) does not copy
    /// out the rest of its leaf, and a long one soon takes whole leaves.
    front_batch: usize,
    /// Fail with `Error::SnapshotTooOld` once the GC watermark passes `ts`
    /// (the engine's cursors; see [`Cursor::checked`]).
    checked: bool,
}

/// The first front refill's [`Cursor::front_batch`].
const FIRST_BATCH: usize = 16;

fn owned(b: Bound<&[u8]>) -> Bound<Bytes> {
    match b {
        Bound::Included(k) => Bound::Included(Bytes::copy_from_slice(k)),
        Bound::Excluded(k) => Bound::Excluded(Bytes::copy_from_slice(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The cursor's sink for the leaf merge: each key's value as of `ts`, up to
/// `limit` entries in `out`. Tombstoned keys are skipped.
struct Visible<'o> {
    out: &'o mut Vec<(Bytes, Bytes)>,
    limit: usize,
    ts: u64,
}

impl<'g> MergeSink<'g> for Visible<'_> {
    fn run(&mut self, base: &'g LeafBase, from: usize, to: usize) -> bool {
        for i in from..to {
            if self.out.len() >= self.limit {
                return false;
            }
            let visible = base.versions(i).iter().find(|v| v.ts <= self.ts);
            if let Some(v) = visible.and_then(|v| base.value(v)) {
                self.out.push((base.keys.key_bytes(i), v));
            }
        }
        self.out.len() < self.limit
    }

    /// The deltas were gathered visible at `ts`: the first is the newest. A
    /// base version wins only if it is newer still (on a tie, the delta is
    /// the later install).
    fn key(&mut self, key: &'g [u8], deltas: &[VersionDelta<'g>], base: Option<(&'g LeafBase, usize)>) -> bool {
        if self.out.len() >= self.limit {
            return false;
        }
        let newest = deltas[0];
        let in_base = base.and_then(|(b, i)| b.versions(i).iter().find(|v| v.ts <= self.ts).map(|v| (b, i, v)));
        match in_base {
            Some((b, i, v)) if v.ts > newest.ts => {
                if let Some(val) = b.value(v) {
                    self.out.push((b.keys.key_bytes(i), val));
                }
            }
            _ => {
                if let Some(val) = newest.kv.value_bytes() {
                    self.out.push((Bytes::copy_from_slice(key), val));
                }
            }
        }
        self.out.len() < self.limit
    }
}

fn after(front: &Bound<Bytes>, k: &[u8]) -> bool {
    match front {
        Bound::Included(f) => !key_lt(k, f),
        Bound::Excluded(f) => key_lt(f, k),
        Bound::Unbounded => true,
    }
}

fn before(back: &Bound<Bytes>, k: &[u8]) -> bool {
    match back {
        Bound::Included(b) => !key_lt(b, k),
        Bound::Excluded(b) => key_lt(k, b),
        Bound::Unbounded => true,
    }
}

impl<'t> Cursor<'t> {
    pub(crate) fn new(tree: &'t Tree, lo: Bound<&[u8]>, hi: Bound<&[u8]>, ts: u64) -> Self {
        let (front, back) = (owned(lo), owned(hi));
        Cursor {
            tree,
            ts,
            front_next: Some(front.clone()),
            back_next: Some(back.clone()),
            front,
            back,
            front_entries: Vec::new(),
            front_pos: 0,
            back_entries: Vec::new(),
            front_batch: FIRST_BATCH,
            checked: false,
        }
    }

    /// This cursor fails with [`crate::Error::SnapshotTooOld`] (on each
    /// call, from the leaf where it was found) once garbage collection has
    /// passed its timestamp, rather than return what might be missing
    /// versions: for snapshots that can expire (`Options::max_snapshot_age`).
    pub(crate) fn checked(mut self) -> Self {
        self.checked = true;
        self
    }

    /// Fill `out` with the first `limit` visible entries of the leaf holding
    /// `t` that lie between the two consumed bounds; return the leaf's
    /// fences and the limit applied (`usize::MAX` for a leaf read through:
    /// its entries are taken whole).
    /// The leaf merge takes the deltas visible at the snapshot within the
    /// bounds and merges them into the base entries as it reads them; no
    /// view is built.
    /// A leaf that cannot be faulted in is the error.
    fn fetch(
        &self,
        t: Target<'_>,
        out: &mut Vec<(Bytes, Bytes)>,
        mut limit: usize,
    ) -> Result<(Option<Bytes>, Option<Bytes>, usize)> {
        let guard = epoch::pin();
        let mut path = Path::new();
        // A scan raises the leaf's use count to at most SCAN: one long scan
        // does not push the hot set out (design/storage.md §5.1). An
        // evicted leaf is read without being installed while the cache is
        // under pressure (read-through, §5.4), else faulted in.
        let (through, through_cold);
        let (pid, mut head) = match self
            .tree
            .descend_leaf::<false, { clock::PROBE | clock::SCAN }, true>(t, &guard, &mut path)?
        {
            (pid, Leaf::Node(head)) => (pid, head),
            // A cold leaf is read through packed (`super::cold`), or
            // faulted in (which unpacks it).
            (pid, Leaf::Cold(cold)) => match self.tree.read_leaf_through_cold(pid, cold)? {
                Some(chain) => {
                    through_cold = chain;
                    limit = usize::MAX;
                    (pid, through_cold.head())
                }
                None => {
                    path.clear();
                    self.tree.descend_to::<true, { clock::SCAN }>(t, &guard, &mut path)?
                }
            },
        };
        if head.is_evicted() {
            match self.tree.read_leaf_through(pid, head, &guard)? {
                Some(chain) => {
                    // Decoded already: take the whole leaf, so that the
                    // next refill does not read it again.
                    through = chain;
                    head = through.head();
                    limit = usize::MAX;
                }
                None => {
                    path.clear();
                    head = self.tree.descend_to::<true, { clock::SCAN }>(t, &guard, &mut path)?.1;
                }
            }
        }
        let r = head.range();
        let (lo, hi) = (self.front.as_ref().map(|k| &k[..]), self.back.as_ref().map(|k| &k[..]));
        let chain = LeafChain::gather(head, Shape::Any, lo, hi, self.ts).expect("every leaf chain has the shape Any");
        out.reserve(chain.len_bound().min(limit));
        chain.merge(&mut Visible {
            out,
            limit,
            ts: self.ts,
        });
        if self.checked {
            // After the read: a consolidation that could have dropped a
            // version this leaf showed us raised the watermark first.
            if let Err(e) = self.tree.check_readable(self.ts) {
                out.clear();
                return Err(e);
            }
        }
        Ok((r.low.clone(), r.high.clone(), limit))
    }

    /// On an error the cursor is unchanged: the next call tries again.
    fn refill_front(&mut self) -> Result<()> {
        let Some(pos) = self.front_next.take() else {
            return Ok(());
        };
        let t = match &pos {
            Bound::Included(k) | Bound::Excluded(k) => Target::Key(k),
            Bound::Unbounded => Target::Key(&[]),
        };
        let mut out = std::mem::take(&mut self.front_entries);
        out.clear();
        self.front_pos = 0;
        let limit = self.front_batch;
        self.front_batch = limit.saturating_mul(2);
        let (_, high, taken) = match self.fetch(t, &mut out, limit) {
            Ok(fetched) => fetched,
            Err(e) => {
                self.front_batch = limit;
                self.front_entries = out;
                self.front_next = Some(pos);
                return Err(e);
            }
        };
        self.front_next = match out.last() {
            // Cut short: continue after the last entry taken, in this leaf.
            Some((k, _)) if out.len() >= taken => Some(Bound::Excluded(k.clone())),
            // Continue at the leaf's high fence unless the back bound ends first.
            _ => high.filter(|h| before(&self.back, h)).map(Bound::Included),
        };
        self.front_entries = out;
        Ok(())
    }

    /// Write out the front bound `next` leaves implicit while `front_entries` is not
    /// empty: `front_entries` holds the visible entries right after the last key
    /// taken from the front, so "from `front_entries[0]` on" equals "after that key".
    fn sync_front(&mut self) {
        if let Some((k, _)) = self.front_entries.get(self.front_pos) {
            if !matches!(&self.front, Bound::Included(f) if f == k) {
                self.front = Bound::Included(k.clone());
            }
        }
    }

    /// On an error the cursor is unchanged: the next call tries again.
    fn refill_back(&mut self) -> Result<()> {
        let Some(pos) = self.back_next.take() else {
            return Ok(());
        };
        let t = match &pos {
            Bound::Included(k) => Target::Key(k),
            Bound::Excluded(k) => Target::Before(k),
            Bound::Unbounded => Target::Last,
        };
        let mut out = Vec::new();
        let (low, _, _) = match self.fetch(t, &mut out, usize::MAX) {
            Ok(fetched) => fetched,
            Err(e) => {
                self.back_next = Some(pos);
                return Err(e);
            }
        };
        self.back_entries = out;
        self.back_next = low
            .filter(|l| after(&self.front, l) || matches!(&self.front, Bound::Included(f) if f == l))
            .map(Bound::Excluded);
        Ok(())
    }
}

impl Iterator for Cursor<'_> {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(slot) = self.front_entries.get_mut(self.front_pos) {
                let (k, v) = std::mem::take(slot);
                self.front_pos += 1;
                if !before(&self.back, &k) {
                    // Met the back end: `k` and all above it were taken from
                    // the back, all below it from the front.
                    self.front = Bound::Included(k);
                    self.front_entries.clear();
                    self.front_pos = 0;
                    self.front_next = None;
                    return None;
                }
                // While `front_entries` holds more, the front bound is "before
                // `front_entries[0]`" and is written only when needed (`sync_front`):
                // a clone per item is two atomic operations on a page's
                // shared key blob, which scanning threads contend on.
                if self.front_pos == self.front_entries.len() {
                    self.front = Bound::Excluded(k.clone());
                }
                return Some(Ok((k, v)));
            }
            self.front_next.as_ref()?;
            if let Err(e) = self.refill_front() {
                return Some(Err(e));
            }
        }
    }
}

impl DoubleEndedIterator for Cursor<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.sync_front();
        loop {
            if let Some((k, v)) = self.back_entries.pop() {
                if !after(&self.front, &k) {
                    self.back_entries.clear();
                    self.back_next = None;
                    return None;
                }
                self.back = Bound::Excluded(k.clone());
                return Some(Ok((k, v)));
            }
            self.back_next.as_ref()?;
            if let Err(e) = self.refill_back() {
                return Some(Err(e));
            }
        }
    }
}

impl Tree {
    /// Every key with its value as of snapshot `ts`, in key order.
    pub fn iter(&self, ts: u64) -> Cursor<'_> {
        Cursor::new(self, Bound::Unbounded, Bound::Unbounded, ts)
    }

    /// The keys in `range` with their values as of snapshot `ts`, in key order
    /// (reverse with `.rev()`). Tombstoned keys are skipped.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R, ts: u64) -> Cursor<'_> {
        fn map<K: AsRef<[u8]>>(b: Bound<&K>) -> Bound<&[u8]> {
            match b {
                Bound::Included(k) => Bound::Included(k.as_ref()),
                Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
                Bound::Unbounded => Bound::Unbounded,
            }
        }
        Cursor::new(self, map(range.start_bound()), map(range.end_bound()), ts)
    }
}
