//! The one merge of a leaf's delta chain with its base pages, which
//! consolidation (both its paths) and range cursors read a leaf through.
//!
//! A leaf chain is version deltas (and structure deltas that add no entries)
//! over a base page; each `NodeMerge` delta adds another base, the copy of the
//! right sibling it absorbed. The leaf's content in key order is the bases'
//! entries merged with the version deltas. Reading it takes two steps:
//!
//! 1. [`LeafChain::gather`] walks the chain once. It keeps the version deltas
//!    that pass the caller's filter (key bounds, newest timestamp) and clips
//!    each base to a segment: the entries within the bounds and below the
//!    separator of any newer `NodeMerge`. The segments are sorted and
//!    disjoint; nothing is sorted yet, and nothing allocated unless there
//!    are more than 32 deltas (they sit in a stack buffer).
//! 2. [`LeafChain::merge`] sorts the deltas (key ascending, newest first; one
//!    per `(key, ts)`, the later install kept, as reads do) and walks the
//!    segments once, handing a [`MergeSink`] each key that deltas hold, with
//!    its deltas and its base entry, and between those keys the runs of base
//!    entries that no delta touches. A short linear probe, then a binary
//!    search, finds each delta key's place
//!    ([`KeyArray::lower_bound_from`]), so the runs cost nothing per entry
//!    unless the sink looks at them: O(d log d + d log n) comparisons for
//!    `d` deltas over `n` entries.
//!
//! What differs between the readers is the filter and the sink: consolidation
//! keeps every version within the page's range and applies the GC rule
//! (`consolidate.rs`); a cursor keeps the versions visible at its snapshot
//! within its bounds and takes the newest of each key (`cursor.rs`).

use std::ops::Bound;

use smallvec::SmallVec;

use super::base::LeafBase;
use super::chain::Node;
use super::delta::{Body, Payload};
use super::keys::{key_cmp, key_eq, key_lt, KeyArray};

/// Which chains [`LeafChain::gather`] takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Version deltas, possibly over a `Split`, on one base: the common
    /// chain. Any other chain is refused.
    Simple,
    /// Every leaf chain, `NodeMerge` and a frozen head included.
    Any,
}

/// A version delta of the chain: its key, commit timestamp and payload.
#[derive(Clone, Copy)]
pub(crate) struct VersionDelta<'g> {
    pub(crate) key: &'g [u8],
    pub(crate) ts: u64,
    pub(crate) kv: &'g Payload,
}

/// Entries `start..end` of a base page.
#[derive(Clone, Copy)]
pub(crate) struct BaseRun<'g> {
    pub(crate) base: &'g LeafBase,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// What a leaf chain's merge hands its entries to, in key order.
pub(crate) trait MergeSink<'g> {
    /// Entries `from..to` (not empty) of `base`, which no gathered delta
    /// touches. Returns false to stop the merge.
    fn run(&mut self, base: &'g LeafBase, from: usize, to: usize) -> bool;

    /// A key that gathered deltas hold: `deltas` (not empty) newest first,
    /// one per timestamp, and the base entry with the same key, if any.
    /// Returns false to stop the merge.
    fn key(&mut self, key: &'g [u8], deltas: &[VersionDelta<'g>], base: Option<(&'g LeafBase, usize)>) -> bool;
}

/// The version deltas and base segments of one leaf chain, gathered by
/// [`LeafChain::gather`] and read by [`LeafChain::merge`].
pub(crate) struct LeafChain<'g> {
    /// In chain order (newest install first) until the merge sorts them.
    deltas: SmallVec<[VersionDelta<'g>; 32]>,
    /// In key order.
    segs: SmallVec<[BaseRun<'g>; 2]>,
}

fn above_lower(lo: Bound<&[u8]>, k: &[u8]) -> bool {
    match lo {
        Bound::Included(l) => !key_lt(k, l),
        Bound::Excluded(l) => key_lt(l, k),
        Bound::Unbounded => true,
    }
}

fn below_upper(hi: Bound<&[u8]>, k: &[u8]) -> bool {
    match hi {
        Bound::Included(h) => !key_lt(h, k),
        Bound::Excluded(h) => key_lt(k, h),
        Bound::Unbounded => true,
    }
}

/// The first index of `keys` at or above the lower bound `lo`.
fn lower_index(keys: &KeyArray, lo: Bound<&[u8]>) -> usize {
    match lo {
        Bound::Included(l) => keys.lower_bound(l),
        Bound::Excluded(l) => keys.upper_bound(l),
        Bound::Unbounded => 0,
    }
}

/// The first index of `keys` above the upper bound `hi`.
fn upper_index(keys: &KeyArray, hi: Bound<&[u8]>) -> usize {
    match hi {
        Bound::Included(h) => keys.upper_bound(h),
        Bound::Excluded(h) => keys.lower_bound(h),
        Bound::Unbounded => keys.len(),
    }
}

impl<'g> LeafChain<'g> {
    /// Walk the leaf chain at `head`: keep the version deltas with
    /// `ts <= max_ts` whose keys lie within `(lo, hi)`, and the base entries
    /// within the bounds (each base clipped below the separator of any newer
    /// `NodeMerge`, each merged copy from its separator on). `None` if
    /// `shape` is [`Shape::Simple`] and the chain is not.
    pub(crate) fn gather(
        head: &'g Node,
        shape: Shape,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        max_ts: u64,
    ) -> Option<Self> {
        let mut chain = LeafChain {
            deltas: SmallVec::new(),
            segs: SmallVec::new(),
        };
        // The separator of the newest-met (so lowest) `NodeMerge`: older
        // bases end below it.
        let mut limit: Option<&[u8]> = None;
        let mut node = head;
        loop {
            match &node.body {
                Body::Version { ts, kv } => {
                    let key = kv.key();
                    if *ts <= max_ts && above_lower(lo, key) && below_upper(hi, key) {
                        chain.deltas.push(VersionDelta { key, ts: *ts, kv });
                    }
                }
                // A split installs `Split -> left base` with the same range
                // in one CAS (D2): the delta adds nothing to the content.
                Body::Split { .. } => {}
                Body::Leaf(b) => {
                    chain.push_segment(b, lower_index(&b.keys, lo), limit, hi);
                    break;
                }
                Body::NodeMerge { sep, content, .. } if shape == Shape::Any => {
                    let Body::Leaf(b) = &content.body else {
                        unreachable!("leaf merge of an inner page")
                    };
                    let start = b.keys.lower_bound(sep).max(lower_index(&b.keys, lo));
                    chain.push_segment(b, start, limit, hi);
                    limit = Some(sep);
                }
                Body::RemoveNode { .. } if shape == Shape::Any => {}
                _ if shape == Shape::Simple => return None,
                _ => unreachable!("inner delta in a leaf chain"),
            }
            node = node.next().expect("chain ends in a base page");
        }
        chain.segs.reverse();
        Some(chain)
    }

    fn push_segment(&mut self, base: &'g LeafBase, start: usize, limit: Option<&[u8]>, hi: Bound<&[u8]>) {
        let end = upper_index(&base.keys, hi);
        let end = limit.map_or(end, |l| end.min(base.keys.lower_bound(l)));
        self.segs.push(BaseRun {
            base,
            start,
            end: end.max(start),
        });
    }

    /// The gathered deltas, in chain order (not yet sorted or deduplicated).
    pub(crate) fn deltas(&self) -> &[VersionDelta<'g>] {
        &self.deltas
    }

    /// The base segments, in key order.
    pub(crate) fn segments(&self) -> &[BaseRun<'g>] {
        &self.segs
    }

    /// An upper bound on the number of keys the merge produces.
    pub(crate) fn len_bound(&self) -> usize {
        self.deltas.len() + self.segs.iter().map(|s| s.end - s.start).sum::<usize>()
    }

    /// Merge the deltas into the segments, handing `sink` every key in key
    /// order (see the module doc), until the end or until `sink` stops it.
    pub(crate) fn merge(mut self, sink: &mut impl MergeSink<'g>) {
        // Newest install first among equal keys and timestamps: a stable sort
        // keeps chain order. One version per (key, ts): the later install
        // (first in chain order) wins, as it does for reads.
        self.deltas.sort_by(|a, b| key_cmp(a.key, b.key).then(b.ts.cmp(&a.ts)));
        self.deltas
            .dedup_by(|later, earlier| later.ts == earlier.ts && key_eq(later.key, earlier.key));
        let deltas = &self.deltas[..];
        let mut segs = self.segs.iter().copied();
        let mut cur = segs.next();
        let mut di = 0;
        while di < deltas.len() {
            let key = deltas[di].key;
            let first = di;
            while di < deltas.len() && key_eq(deltas[di].key, key) {
                di += 1;
            }
            // Hand over the base entries below `key`, segment by segment,
            // and find its own base entry.
            let mut base = None;
            while let Some(s) = cur.as_mut() {
                let pos = (s.start + s.base.keys.lower_bound_from(s.start, key)).min(s.end);
                if pos > s.start {
                    if !sink.run(s.base, s.start, pos) {
                        return;
                    }
                    s.start = pos;
                }
                if pos < s.end {
                    if key_eq(s.base.keys.key(pos), key) {
                        base = Some((s.base, pos));
                        s.start = pos + 1;
                    }
                    break;
                }
                cur = segs.next();
            }
            if !sink.key(key, &deltas[first..di], base) {
                return;
            }
        }
        while let Some(s) = cur {
            if s.start < s.end && !sink.run(s.base, s.start, s.end) {
                return;
            }
            cur = segs.next();
        }
    }
}
