//! Consolidation: the logical content of a page's chain, gathered in key
//! order, garbage-collected against a watermark, and built into base pages.
//!
//! Leaf chains are read through the one leaf merge (`leaf_merge.rs`); this
//! module is its consolidation sinks. The fast path ([`consolidate_simple`])
//! builds the new base straight from the merge; the general path
//! ([`collect_leaf`]) builds a [`LeafView`] first, for chains with merged
//! pages and for results that must split. Both merge a key's versions the
//! same way: newest first, a base version losing to a delta with its
//! timestamp (the later install).
//!
//! GC rule, per key, versions newest first: keep every version newer than the
//! watermark, plus the newest one at or below it unless that one is a
//! tombstone; drop the rest. Reads at any `ts >= watermark` are unchanged.

use std::ops::Bound;

use smallvec::SmallVec;

use super::base::{InnerBase, LeafBase, LeafBuilder, PageRange, ValRef, Ver, INLINE_MAX};
use super::chain::Node;
use super::delta::Body;
use super::keys::KeyArray;
use super::leaf_merge::{LeafChain, MergeSink, Shape, VersionDelta};
use super::mapping_table::Pid;

/// Bytes a value takes in a base page, as the view's size estimate counts them
/// (values over `INLINE_MAX` stay out of the page blob).
fn value_len(v: ValRef<'_>) -> usize {
    match v {
        ValRef::Tomb => 0,
        ValRef::Inline(b) => b.len(),
        ValRef::Refcounted(b) if b.len() <= INLINE_MAX => b.len(),
        ValRef::Refcounted(_) => 16,
    }
}

/// The GC rule for one key, `versions` newest first: keep every version newer
/// than the watermark, plus the newest one at or below it unless that is a
/// tombstone. `keep` receives the kept versions in order; returns how many
/// were dropped, and adds the dropped tombstones to `tombs` (a page that
/// drops one no longer builds on its on-disk chain, `super::flush` DF1).
/// (Reads at any `ts >= watermark` see the same value after.)
fn gc_rule<V: Copy>(
    versions: impl IntoIterator<Item = (u64, V)>,
    watermark: u64,
    is_tomb: impl Fn(&V) -> bool,
    tombs: &mut usize,
    mut keep: impl FnMut(u64, V),
) -> usize {
    let mut dropped = 0;
    let mut floor = false;
    for (ts, v) in versions {
        if floor {
            dropped += 1; // older than the newest version at or below the watermark
            continue;
        }
        if ts <= watermark {
            floor = true;
            if is_tomb(&v) {
                dropped += 1;
                *tombs += 1;
                continue;
            }
        }
        keep(ts, v);
    }
    dropped
}

/// A key of a leaf view: a slice of a base page's key blob or a delta's key.
#[derive(Clone, Copy)]
pub(crate) enum KeyRef<'g> {
    Delta(&'g [u8]),
    Base(&'g KeyArray, usize),
}

impl<'g> KeyRef<'g> {
    #[inline]
    pub(crate) fn as_slice(&self) -> &'g [u8] {
        match *self {
            KeyRef::Delta(b) => b,
            KeyRef::Base(k, i) => k.key(i),
        }
    }
}

/// A value of a leaf view.
#[derive(Clone, Copy)]
pub(crate) enum ViewValue<'g> {
    Delta(ValRef<'g>),
    Page(&'g LeafBase, Ver),
}

impl<'g> ViewValue<'g> {
    pub(crate) fn is_tomb(&self) -> bool {
        match self {
            ViewValue::Page(_, v) => matches!(v.len, super::base::TOMBSTONE),
            ViewValue::Delta(v) => matches!(v, ValRef::Tomb),
        }
    }
    pub(crate) fn raw(self) -> ValRef<'g> {
        match self {
            ViewValue::Delta(v) => v,
            ViewValue::Page(p, v) => p.value_ref(&v),
        }
    }
    /// Bytes the value takes in a page's inline value blob.
    fn inline_len(&self) -> usize {
        match self.raw() {
            ValRef::Inline(b) if b.len() <= INLINE_MAX => b.len(),
            ValRef::Refcounted(b) if b.len() <= INLINE_MAX => b.len(),
            _ => 0,
        }
    }
    fn stored_len(&self) -> usize {
        match self.raw() {
            ValRef::Tomb => 0,
            ValRef::Inline(b) => b.len(),
            ValRef::Refcounted(b) if b.len() <= INLINE_MAX => b.len(),
            ValRef::Refcounted(_) => 16,
        }
    }
}

/// The logical content of a leaf chain, in key order.
pub(crate) struct LeafView<'g> {
    pub(crate) keys: Vec<KeyRef<'g>>,
    /// Versions of entry `i` are `vers[vstart[i]..vstart[i + 1]]`, newest first.
    pub(crate) vstart: Vec<u32>,
    pub(crate) vers: Vec<(u64, ViewValue<'g>)>,
    /// Estimated bytes of a base built from this view.
    pub(crate) bytes: usize,
    /// Versions the watermark let us drop.
    pub(crate) dropped: usize,
    /// Tombstones among them.
    pub(crate) tombs_dropped: usize,
    /// The watermark the GC rule was applied with.
    pub(crate) watermark: u64,
}

impl<'g> LeafView<'g> {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
    pub(crate) fn versions(&self, i: usize) -> &[(u64, ViewValue<'g>)] {
        &self.vers[self.vstart[i] as usize..self.vstart[i + 1] as usize]
    }
    /// Build a base page from entries `r`.
    pub(crate) fn build(&self, r: std::ops::Range<usize>, range: PageRange) -> LeafBase {
        let vers = self.vstart[r.end] as usize - self.vstart[r.start] as usize;
        let key_bytes = self.keys[r.clone()].iter().map(|k| k.as_slice().len()).sum();
        let val_bytes = self.vers[self.vstart[r.start] as usize..self.vstart[r.end] as usize]
            .iter()
            .map(|(_, v)| v.inline_len())
            .sum();
        let mut b = LeafBuilder::with_capacity(r.len(), key_bytes, vers, val_bytes);
        for i in r {
            b.push_key(self.keys[i].as_slice());
            for &(ts, v) in self.versions(i) {
                b.push_version(ts, v.raw());
            }
            b.end_key();
        }
        let mut base = b.finish(range);
        base.built_watermark = self.watermark;
        base
    }

    /// Build a base page of every entry, keeping only the versions at or
    /// below `upto` (a flush under the WAL rule W1, `design/storage.md` §5);
    /// a key left with no version is left out. The flag says whether nothing
    /// was left out (the page equals the whole view).
    pub(crate) fn build_upto(&self, range: PageRange, upto: u64) -> (LeafBase, bool) {
        let n = self.len();
        let mut b = LeafBuilder::with_capacity(n, 0, self.vers.len(), 0);
        let mut whole = true;
        for i in 0..n {
            let vers = self.versions(i);
            let keep = vers.iter().position(|&(ts, _)| ts <= upto).unwrap_or(vers.len());
            whole &= keep == 0;
            if keep == vers.len() {
                continue;
            }
            b.push_key(self.keys[i].as_slice());
            for &(ts, v) in &vers[keep..] {
                b.push_version(ts, v.raw());
            }
            b.end_key();
        }
        let mut base = b.finish(range);
        base.built_watermark = self.watermark;
        (base, whole)
    }
}

/// The versions of one key, newest first: its deltas (newest first, one per
/// timestamp) merged with its base entry's versions. A base version with a
/// delta's timestamp loses to the later install and counts as superseded.
struct KeyVersions<'a, 'g> {
    deltas: &'a [VersionDelta<'g>],
    base: Option<&'g LeafBase>,
    vers: &'g [Ver],
    superseded: usize,
}

impl<'a, 'g> KeyVersions<'a, 'g> {
    fn new(deltas: &'a [VersionDelta<'g>], base: Option<(&'g LeafBase, usize)>) -> Self {
        KeyVersions {
            deltas,
            base: base.map(|(b, _)| b),
            vers: base.map_or(&[], |(b, i)| b.versions(i)),
            superseded: 0,
        }
    }

    fn take_delta(&mut self) -> (u64, ViewValue<'g>) {
        let d = self.deltas[0];
        self.deltas = &self.deltas[1..];
        (d.ts, ViewValue::Delta(d.kv.value()))
    }

    fn take_base(&mut self) -> (u64, ViewValue<'g>) {
        let v = self.vers[0];
        self.vers = &self.vers[1..];
        (
            v.ts,
            ViewValue::Page(self.base.expect("base versions come from a base"), v),
        )
    }
}

impl<'g> Iterator for KeyVersions<'_, 'g> {
    type Item = (u64, ViewValue<'g>);

    fn next(&mut self) -> Option<Self::Item> {
        match (self.deltas.first(), self.vers.first()) {
            (Some(d), Some(b)) if b.ts > d.ts => Some(self.take_base()),
            (Some(d), Some(b)) => {
                if b.ts == d.ts {
                    self.vers = &self.vers[1..];
                    self.superseded += 1;
                }
                Some(self.take_delta())
            }
            (Some(_), None) => Some(self.take_delta()),
            (None, Some(_)) => Some(self.take_base()),
            (None, None) => None,
        }
    }
}

impl<'g> LeafView<'g> {
    /// Append the entry `key` with the versions GC keeps of `versions`
    /// (newest first); no entry if none is kept.
    fn push_entry(&mut self, key: KeyRef<'g>, versions: impl Iterator<Item = (u64, ViewValue<'g>)>) {
        let mark = self.vers.len();
        let dropped = gc_rule(
            versions,
            self.watermark,
            ViewValue::is_tomb,
            &mut self.tombs_dropped,
            |ts, v| {
                self.bytes += 16 + v.stored_len();
                self.vers.push((ts, v));
            },
        );
        self.dropped += dropped;
        if self.vers.len() > mark {
            self.bytes += key.as_slice().len() + 16;
            self.keys.push(key);
            self.vstart.push(self.vers.len() as u32);
        }
    }
}

/// The view is built from the leaf merge, entry by entry.
impl<'g> MergeSink<'g> for LeafView<'g> {
    fn run(&mut self, base: &'g LeafBase, from: usize, to: usize) -> bool {
        for i in from..to {
            let versions = base.versions(i).iter().map(|&v| (v.ts, ViewValue::Page(base, v)));
            self.push_entry(KeyRef::Base(&base.keys, i), versions);
        }
        true
    }

    fn key(&mut self, key: &'g [u8], deltas: &[VersionDelta<'g>], base: Option<(&'g LeafBase, usize)>) -> bool {
        let key = base.map_or(KeyRef::Delta(key), |(b, i)| KeyRef::Base(&b.keys, i));
        let mut versions = KeyVersions::new(deltas, base);
        self.push_entry(key, versions.by_ref());
        self.dropped += versions.superseded;
        true
    }
}

/// The key bounds of a page's range.
fn range_bounds(range: &PageRange) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        range.low().map_or(Bound::Unbounded, Bound::Included),
        range.high().map_or(Bound::Unbounded, Bound::Excluded),
    )
}

/// Gather the content of a leaf chain, applying the GC rule for `watermark`
/// (0 keeps everything: timestamps start at 1).
pub(crate) fn collect_leaf(head: &Node, watermark: u64) -> LeafView<'_> {
    let (lo, hi) = range_bounds(head.range());
    let chain = LeafChain::gather(head, Shape::Any, lo, hi, u64::MAX).expect("every leaf chain has the shape Any");
    let cap = chain.len_bound();
    let mut view = LeafView {
        keys: Vec::with_capacity(cap),
        vstart: Vec::with_capacity(cap + 1),
        vers: Vec::with_capacity(cap),
        bytes: 0,
        dropped: 0,
        tombs_dropped: 0,
        watermark,
    };
    view.vstart.push(0);
    chain.merge(&mut view);
    view
}

/// The fast consolidation's output: entries go straight into the new page.
struct SimpleBuild<'g> {
    out: LeafBuilder,
    watermark: u64,
    /// Keys pushed.
    n: usize,
    dropped: usize,
    /// Tombstones among `dropped`.
    tombs: usize,
    /// The versions GC keeps of the current key, newest first.
    kept: SmallVec<[(u64, ViewValue<'g>); 8]>,
}

impl<'g> MergeSink<'g> for SimpleBuild<'g> {
    /// Copy a run of a single-version base entry by entry: a lone version
    /// survives GC unless it is a tombstone at or below the watermark.
    fn run(&mut self, base: &'g LeafBase, from: usize, to: usize) -> bool {
        for i in from..to {
            let v = base.versions(i)[0];
            if v.len == super::base::TOMBSTONE && v.ts <= self.watermark {
                self.dropped += 1;
                self.tombs += 1;
                continue;
            }
            self.out.push_base_entry(base, i);
            self.n += 1;
        }
        true
    }

    fn key(&mut self, key: &'g [u8], deltas: &[VersionDelta<'g>], base: Option<(&'g LeafBase, usize)>) -> bool {
        let mut versions = KeyVersions::new(deltas, base);
        self.kept.clear();
        let kept = &mut self.kept;
        self.dropped += gc_rule(
            versions.by_ref(),
            self.watermark,
            ViewValue::is_tomb,
            &mut self.tombs,
            |ts, v| kept.push((ts, v)),
        );
        self.dropped += versions.superseded;
        if !self.kept.is_empty() {
            self.out.push_key(key);
            for &(ts, v) in &self.kept {
                self.out.push_version(ts, v.raw());
            }
            self.out.end_key();
            self.n += 1;
        }
        true
    }
}

/// Fast consolidation for the common chain: version deltas on a base page
/// whose keys hold one version each. Runs of base entries without deltas are
/// copied entry by entry into the new page without building a view; only the
/// deltas are sorted. Returns `None` (use [`collect_leaf`]) for any other
/// chain, or when the result might need a split (`max_entries`).
///
/// Returns the new base, its key count, the versions GC dropped and how
/// many of them were tombstones.
pub(crate) fn consolidate_simple(
    head: &Node,
    watermark: u64,
    max_entries: usize,
    max_bytes: usize,
) -> Option<(LeafBase, usize, usize, usize)> {
    let chain = LeafChain::gather(head, Shape::Simple, Bound::Unbounded, Bound::Unbounded, u64::MAX)?;
    let base = chain.segments()[0].base;
    let deltas = chain.deltas();
    // An upper bound on the result's size decides before any work is done.
    let delta_bytes: usize = deltas.iter().map(|d| d.key.len() + value_len(d.kv.value()) + 32).sum();
    if !base.single_version() || base.len() + deltas.len() > max_entries || base.byte_size() + delta_bytes > max_bytes {
        return None;
    }
    let n = base.len() + deltas.len();
    let key_bytes = base.keys.byte_len() + deltas.iter().map(|d| d.key.len()).sum::<usize>();
    let val_bytes = base.inline_value_bytes() + deltas.iter().map(|d| value_len(d.kv.value())).sum::<usize>();
    let mut build = SimpleBuild {
        out: LeafBuilder::with_capacity(n, key_bytes, n, val_bytes),
        watermark,
        n: 0,
        dropped: 0,
        tombs: 0,
        kept: SmallVec::new(),
    };
    chain.merge(&mut build);
    let mut page = build.out.finish(base.range.clone());
    page.built_watermark = watermark;
    Some((page, build.n, build.dropped, build.tombs))
}

/// The logical entries of an inner chain: `(separator, child)`, where the
/// first separator is the page's low fence (`None` is minus infinity).
pub(crate) struct InnerView<'g> {
    pub(crate) entries: Vec<(Option<&'g [u8]>, Pid)>,
}

impl<'g> InnerView<'g> {
    pub(crate) fn build(&self, r: std::ops::Range<usize>, range: PageRange) -> InnerBase {
        let child0 = self.entries[r.start].1;
        let rest: Vec<(&[u8], Pid)> = self.entries[r.start + 1..r.end]
            .iter()
            .map(|&(k, c)| (k.expect("only the first separator is open"), c))
            .collect();
        InnerBase::new(range, child0, &rest)
    }
}

/// An inner base clipped to `[from, to)` (`None`: unbounded).
type InnerSegment<'g> = (&'g InnerBase, Option<&'g [u8]>, Option<&'g [u8]>);

/// Gather the routing entries of an inner chain. The caller has finished any
/// pending merge recorded in it.
pub(crate) fn collect_inner(head: &Node) -> InnerView<'_> {
    let range = head.range();
    let (lo, hi) = (range.low(), range.high());
    let mut deltas: SmallVec<[&Body; 8]> = SmallVec::new();
    let mut segs: SmallVec<[InnerSegment<'_>; 2]> = SmallVec::new();
    let mut limit = hi;
    let mut node = head;
    loop {
        match &node.body {
            b @ (Body::IndexEntry { .. } | Body::IndexTermDelete(_)) => deltas.push(b),
            Body::NodeMerge { sep, content, .. } => {
                let Body::Inner(b) = &content.body else {
                    unreachable!("inner merge of a leaf")
                };
                segs.push((b, Some(&sep[..]), limit));
                limit = Some(sep);
            }
            Body::Inner(b) => {
                segs.push((b, lo, limit));
                break;
            }
            Body::Split { .. } | Body::RemoveNode { .. } => {}
            _ => unreachable!("leaf delta in an inner chain"),
        }
        node = node.next().expect("chain ends in a base page");
    }
    let below = |k: &[u8], h: Option<&[u8]>| h.is_none_or(|h| k < h);
    let mut entries: Vec<(Option<&[u8]>, Pid)> = Vec::new();
    for &(b, from, to) in segs.iter().rev() {
        entries.push((from, b.child0));
        for i in 0..b.len() {
            let k = b.seps.key(i);
            if from.is_none_or(|f| f < k) && below(k, to) {
                entries.push((Some(k), b.children[i]));
            }
        }
    }
    for body in deltas.iter().rev() {
        match body {
            Body::IndexEntry { sep, child, .. } => {
                let k = Some(&sep[..]);
                match entries.binary_search_by(|e| e.0.cmp(&k)) {
                    Ok(i) => entries[i].1 = *child,
                    Err(i) => entries.insert(i, (k, *child)),
                }
            }
            Body::IndexTermDelete(itd) => {
                let (ilo, ihi) = (itd.lo.as_deref(), itd.hi.as_deref());
                entries.retain(|e| !(e.0 > ilo && e.0.is_none_or(|k| below(k, ihi))));
                if let Ok(i) = entries.binary_search_by(|e| e.0.cmp(&ilo)) {
                    entries[i].1 = itd.left;
                }
            }
            _ => unreachable!(),
        }
    }
    entries.retain(|e| e.0.is_none_or(|k| below(k, hi)));
    InnerView { entries }
}
