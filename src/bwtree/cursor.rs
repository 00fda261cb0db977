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

use super::chain::Node;
use super::consolidate::collect_leaf;
use super::delta::{Body, Payload};
use super::keys::key_lt;
use super::keys::{key_cmp, key_eq};
use super::search::Target;
use super::tree::{Path, Tree};
use crate::Result;
use smallvec::SmallVec;

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
    /// Front buffer: the entries at `fpos..` are still to be taken (taken
    /// ones are left empty). Refills reuse its allocation.
    fbuf: Vec<(Bytes, Bytes)>,
    fpos: usize,
    bbuf: Vec<(Bytes, Bytes)>,
    /// Where the front refill continues once `fbuf` is drained (`None`: end).
    front_next: Option<Bound<Bytes>>,
    back_next: Option<Bound<Bytes>>,
    /// Most entries the next front refill takes from a leaf. It starts small
    /// and doubles with each refill: a short scan (`.take(10)`) does not copy
    /// out the rest of its leaf, and a long one soon takes whole leaves.
    front_batch: usize,
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
            fbuf: Vec::new(),
            fpos: 0,
            bbuf: Vec::new(),
            front_batch: FIRST_BATCH,
        }
    }

    /// Fill `out` with the first `limit` visible entries of the leaf holding
    /// `t` that lie between the two consumed bounds; return the leaf's fences.
    fn fetch(&self, t: Target<'_>, out: &mut Vec<(Bytes, Bytes)>, limit: usize) -> (Option<Bytes>, Option<Bytes>) {
        let guard = epoch::pin();
        let mut path = Path::new();
        let (_, head) = self.tree.descend(t, &guard, &mut path);
        let r = head.range();
        if self.merge_in_place(head, out, limit) {
            return (r.low.clone(), r.high.clone());
        }
        let view = collect_leaf(head, 0);
        for i in 0..view.len() {
            if out.len() >= limit {
                break;
            }
            let k = view.keys[i].as_slice();
            if !after(&self.front, k) || !before(&self.back, k) {
                continue;
            }
            if let Some(&(_, v)) = view.versions(i).iter().find(|(ts, _)| *ts <= self.ts) {
                if let Some(v) = v.to_bytes() {
                    out.push((view.keys[i].to_bytes(), v));
                }
            }
        }
        (r.low.clone(), r.high.clone())
    }

    /// The common leaf: version deltas (possibly none, possibly over a
    /// split's delta) over a base page. Merge
    /// the visible deltas, sorted, into the base's entries between the bounds
    /// as they are read, without building a view. False for other chains.
    fn merge_in_place(&self, head: &Node, out: &mut Vec<(Bytes, Bytes)>, limit: usize) -> bool {
        let in_bounds = |k: &[u8]| after(&self.front, k) && before(&self.back, k);
        let mut deltas: SmallVec<[(&[u8], u64, &Payload); 32]> = SmallVec::new();
        let mut node = head;
        let base = loop {
            match &node.body {
                Body::Version { ts, kv } => {
                    if *ts <= self.ts && in_bounds(kv.key()) {
                        deltas.push((kv.key(), *ts, kv));
                    }
                }
                // `Split -> left base` share one range (D2): nothing to merge.
                Body::Split { .. } => {}
                Body::Leaf(b) => break b,
                _ => return false,
            }
            node = node.next().expect("chain ends in a base page");
        };
        // Per key, the newest delta visible at the snapshot (a stable sort
        // keeps the later install first among equal timestamps).
        deltas.sort_by(|a, b| key_cmp(a.0, b.0).then(b.1.cmp(&a.1)));
        deltas.dedup_by(|later, earlier| key_eq(later.0, earlier.0));
        let start = match &self.front {
            Bound::Included(f) => base.keys.lower_bound(f),
            Bound::Excluded(f) => base.keys.upper_bound(f),
            Bound::Unbounded => 0,
        };
        let end = match &self.back {
            Bound::Included(b) => base.keys.upper_bound(b),
            Bound::Excluded(b) => base.keys.lower_bound(b),
            Bound::Unbounded => base.len(),
        };
        let visible = |i: usize| base.versions(i).iter().find(|v| v.ts <= self.ts).copied();
        let emit_base = |out: &mut Vec<(Bytes, Bytes)>, from: usize, to: usize| {
            for i in from..to {
                if out.len() >= limit {
                    return;
                }
                if let Some(v) = visible(i).and_then(|v| base.value(&v)) {
                    out.push((base.keys.key_bytes(i), v));
                }
            }
        };
        out.reserve((end.saturating_sub(start) + deltas.len()).min(limit));
        let mut i = start;
        for &(key, ts, kv) in &deltas {
            let pos = (i + base.keys.lower_bound_from(i, key)).min(end).max(i);
            emit_base(out, i, pos);
            if out.len() >= limit {
                return true;
            }
            i = pos;
            let base_ver = (i < end && key_eq(base.keys.key(i), key)).then(|| visible(i));
            if base_ver.is_some() {
                i += 1;
            }
            match base_ver.flatten() {
                Some(v) if v.ts > ts => {
                    if let Some(val) = base.value(&v) {
                        out.push((base.keys.key_bytes(i - 1), val));
                    }
                }
                _ => {
                    if let Some(val) = kv.value_bytes() {
                        out.push((Bytes::copy_from_slice(key), val));
                    }
                }
            }
        }
        emit_base(out, i, end);
        true
    }

    fn refill_front(&mut self) {
        let Some(pos) = self.front_next.take() else { return };
        let t = match &pos {
            Bound::Included(k) | Bound::Excluded(k) => Target::Key(k),
            Bound::Unbounded => Target::Key(&[]),
        };
        let mut out = std::mem::take(&mut self.fbuf);
        out.clear();
        self.fpos = 0;
        let limit = self.front_batch;
        self.front_batch = limit.saturating_mul(2);
        let (_, high) = self.fetch(t, &mut out, limit);
        self.front_next = match out.last() {
            // Cut short: continue after the last entry taken, in this leaf.
            Some((k, _)) if out.len() >= limit => Some(Bound::Excluded(k.clone())),
            // Continue at the leaf's high fence unless the back bound ends first.
            _ => high.filter(|h| before(&self.back, h)).map(Bound::Included),
        };
        self.fbuf = out;
    }

    /// Write out the front bound `next` leaves implicit while `fbuf` is not
    /// empty: `fbuf` holds the visible entries right after the last key
    /// taken from the front, so "from `fbuf[0]` on" equals "after that key".
    fn sync_front(&mut self) {
        if let Some((k, _)) = self.fbuf.get(self.fpos) {
            if !matches!(&self.front, Bound::Included(f) if f == k) {
                self.front = Bound::Included(k.clone());
            }
        }
    }

    fn refill_back(&mut self) {
        let Some(pos) = self.back_next.take() else { return };
        let t = match &pos {
            Bound::Included(k) => Target::Key(k),
            Bound::Excluded(k) => Target::Before(k),
            Bound::Unbounded => Target::Last,
        };
        let mut out = Vec::new();
        let (low, _) = self.fetch(t, &mut out, usize::MAX);
        self.bbuf = out;
        self.back_next = low
            .filter(|l| after(&self.front, l) || matches!(&self.front, Bound::Included(f) if f == l))
            .map(Bound::Excluded);
    }
}

impl Iterator for Cursor<'_> {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(slot) = self.fbuf.get_mut(self.fpos) {
                let (k, v) = std::mem::take(slot);
                self.fpos += 1;
                if !before(&self.back, &k) {
                    // Met the back end: `k` and all above it were taken from
                    // the back, all below it from the front.
                    self.front = Bound::Included(k);
                    self.fbuf.clear();
                    self.fpos = 0;
                    self.front_next = None;
                    return None;
                }
                // While `fbuf` holds more, the front bound is "before
                // `fbuf[0]`" and is written only when needed (`sync_front`):
                // a clone per item is two atomic operations on a page's
                // shared key blob, which scanning threads contend on.
                if self.fpos == self.fbuf.len() {
                    self.front = Bound::Excluded(k.clone());
                }
                return Some(Ok((k, v)));
            }
            self.front_next.as_ref()?;
            self.refill_front();
        }
    }
}

impl DoubleEndedIterator for Cursor<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.sync_front();
        loop {
            if let Some((k, v)) = self.bbuf.pop() {
                if !after(&self.front, &k) {
                    self.bbuf.clear();
                    self.back_next = None;
                    return None;
                }
                self.back = Bound::Excluded(k.clone());
                return Some(Ok((k, v)));
            }
            self.back_next.as_ref()?;
            self.refill_back();
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
