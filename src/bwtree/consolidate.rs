//! Consolidation: the logical content of a page's chain, gathered in key
//! order, garbage-collected against a watermark, and built into base pages.
//!
//! Leaf chains merge in O(n + d log d): the base segments are already sorted
//! and disjoint (the base, and the copies carried by node-merge deltas), only
//! the `d` version deltas are sorted.
//!
//! GC rule, per key, versions newest first: keep every version newer than the
//! watermark, plus the newest one at or below it unless that one is a
//! tombstone; drop the rest. Reads at any `ts >= watermark` are unchanged.

use bytes::Bytes;
use smallvec::SmallVec;

use super::base::{InnerBase, LeafBase, LeafBuilder, PageRange, ValRef, Ver, INLINE_MAX};
use super::chain::Node;
use super::delta::Body;
use super::keys::{key_cmp, key_eq, key_lt, KeyArray};
use super::mapping_table::Pid;

/// Bytes a value takes in a base page, as the view's size estimate counts them
/// (values over `INLINE_MAX` stay out of the page blob).
fn value_len(v: ValRef<'_>) -> usize {
    match v {
        ValRef::Tomb => 0,
        ValRef::Inline(b) => b.len(),
        ValRef::Shared(b) if b.len() <= INLINE_MAX => b.len(),
        ValRef::Shared(_) => 16,
    }
}

/// The GC rule for one key, `versions` newest first: keep every version newer
/// than the watermark, plus the newest one at or below it unless that is a
/// tombstone. `keep` receives the kept versions in order; returns how many
/// were dropped. (Reads at any `ts >= watermark` see the same value after.)
fn gc_rule<V: Copy>(
    versions: impl IntoIterator<Item = (u64, V)>,
    watermark: u64,
    is_tomb: impl Fn(&V) -> bool,
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
    /// Zero-copy owned key.
    pub(crate) fn to_bytes(self) -> Bytes {
        match self {
            KeyRef::Delta(b) => Bytes::copy_from_slice(b),
            KeyRef::Base(k, i) => k.key_bytes(i),
        }
    }
}

/// A value of a leaf view.
#[derive(Clone, Copy)]
pub(crate) enum VRef<'g> {
    Delta(ValRef<'g>),
    Page(&'g LeafBase, Ver),
}

impl<'g> VRef<'g> {
    pub(crate) fn is_tomb(&self) -> bool {
        match self {
            VRef::Page(_, v) => matches!(v.len, super::base::TOMBSTONE),
            VRef::Delta(v) => matches!(v, ValRef::Tomb),
        }
    }
    fn raw(self) -> ValRef<'g> {
        match self {
            VRef::Delta(v) => v,
            VRef::Page(p, v) => p.value_ref(&v),
        }
    }
    /// Bytes the value takes in a page's inline value blob.
    fn inline_len(&self) -> usize {
        match self.raw() {
            ValRef::Inline(b) if b.len() <= INLINE_MAX => b.len(),
            ValRef::Shared(b) if b.len() <= INLINE_MAX => b.len(),
            _ => 0,
        }
    }
    fn stored_len(&self) -> usize {
        match self.raw() {
            ValRef::Tomb => 0,
            ValRef::Inline(b) => b.len(),
            ValRef::Shared(b) if b.len() <= INLINE_MAX => b.len(),
            ValRef::Shared(_) => 16,
        }
    }
    /// Zero-copy owned value; `None` for a tombstone.
    pub(crate) fn to_bytes(self) -> Option<Bytes> {
        match self {
            VRef::Delta(ValRef::Tomb) => None,
            VRef::Delta(ValRef::Inline(b)) => Some(Bytes::copy_from_slice(b)),
            VRef::Delta(ValRef::Shared(b)) => Some(b.clone()),
            VRef::Page(p, v) => p.value(&v),
        }
    }
}

/// The logical content of a leaf chain, in key order.
pub(crate) struct LeafView<'g> {
    pub(crate) keys: Vec<KeyRef<'g>>,
    /// Versions of entry `i` are `vers[vstart[i]..vstart[i + 1]]`, newest first.
    pub(crate) vstart: Vec<u32>,
    pub(crate) vers: Vec<(u64, VRef<'g>)>,
    /// Estimated bytes of a base built from this view.
    pub(crate) bytes: usize,
    /// Versions the watermark let us drop.
    pub(crate) dropped: usize,
    /// The watermark the GC rule was applied with.
    pub(crate) watermark: u64,
}

impl<'g> LeafView<'g> {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
    pub(crate) fn versions(&self, i: usize) -> &[(u64, VRef<'g>)] {
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
        base.gc_wm = self.watermark;
        base
    }
}

/// Gather the content of a leaf chain, applying the GC rule for `watermark`
/// (0 keeps everything: timestamps start at 1).
pub(crate) fn collect_leaf(head: &Node, watermark: u64) -> LeafView<'_> {
    let range = head.range();
    let (lo, hi) = (range.low(), range.high());
    let in_range = |k: &[u8]| lo.is_none_or(|l| !key_lt(k, l)) && hi.is_none_or(|h| key_lt(k, h));
    let mut deltas: SmallVec<[(&[u8], u64, VRef<'_>); 32]> = SmallVec::new();
    let mut segs: SmallVec<[(&LeafBase, usize, usize); 2]> = SmallVec::new();
    let mut limit = hi;
    let mut node = head;
    loop {
        match &node.body {
            Body::Version { ts, kv } => {
                if in_range(kv.key()) {
                    deltas.push((kv.key(), *ts, VRef::Delta(kv.value())));
                }
            }
            Body::NodeMerge { sep, content, .. } => {
                let Body::Leaf(b) = &content.body else {
                    unreachable!("leaf merge of an inner page")
                };
                let end = limit.map_or(b.len(), |l| b.keys.lower_bound(l));
                segs.push((b, b.keys.lower_bound(sep), end));
                limit = Some(sep);
            }
            Body::Leaf(b) => {
                let start = lo.map_or(0, |l| b.keys.lower_bound(l));
                let end = limit.map_or(b.len(), |l| b.keys.lower_bound(l));
                segs.push((b, start, end.max(start)));
                break;
            }
            Body::Split { .. } | Body::RemoveNode { .. } => {}
            _ => unreachable!("inner delta in a leaf chain"),
        }
        node = node.next().expect("chain ends in a base page");
    }
    segs.reverse();
    // Newest install first among equal keys: a stable sort keeps chain order.
    deltas.sort_by(|a, b| key_cmp(a.0, b.0).then(b.1.cmp(&a.1)));
    // One version per (key, ts): the later install (first in chain order) wins,
    // as it does for reads.
    deltas.dedup_by(|later, earlier| later.1 == earlier.1 && key_eq(later.0, earlier.0));

    let base_len: usize = segs.iter().map(|s| s.2 - s.1).sum();
    let mut view = LeafView {
        keys: Vec::with_capacity(base_len + deltas.len()),
        vstart: Vec::with_capacity(base_len + deltas.len() + 1),
        vers: Vec::with_capacity(base_len + deltas.len()),
        bytes: 0,
        dropped: 0,
        watermark,
    };
    view.vstart.push(0);
    let mut base = segs
        .iter()
        .flat_map(|&(b, s, e)| (s..e).map(move |i| (b, i)))
        .peekable();
    let mut di = 0;
    loop {
        let dk = deltas.get(di).map(|d| d.0);
        let bk = base.peek().map(|&(b, i)| (b, i, b.keys.key(i)));
        let (key_ref, from_base) = match (dk, bk) {
            (None, None) => break,
            (Some(_), None) => (KeyRef::Delta(deltas[di].0), None),
            (None, Some((b, i, _))) => (KeyRef::Base(&b.keys, i), Some((b, i))),
            (Some(d), Some((b, i, k))) => {
                if !key_lt(d, k) {
                    (KeyRef::Base(&b.keys, i), Some((b, i)))
                } else {
                    (KeyRef::Delta(deltas[di].0), None)
                }
            }
        };
        let key = key_ref.as_slice();
        let d_start = di;
        while di < deltas.len() && key_eq(deltas[di].0, key) {
            di += 1;
        }
        let d_vers = &deltas[d_start..di];
        let b_vers: &[Ver] = match from_base {
            Some((b, i)) => {
                base.next();
                b.versions(i)
            }
            None => &[],
        };
        // Merge the two newest-first lists; a timestamp present in both keeps
        // the delta (the later install), the base's copy counts as dropped.
        let mark = view.vers.len();
        let (mut x, mut y, mut dups) = (0, 0, 0usize);
        let merged = std::iter::from_fn(|| {
            let take_delta = match (d_vers.get(x), b_vers.get(y)) {
                (Some(d), Some(b)) => {
                    if d.1 == b.ts {
                        y += 1;
                        dups += 1;
                    }
                    d.1 >= b.ts
                }
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            Some(if take_delta {
                x += 1;
                (d_vers[x - 1].1, d_vers[x - 1].2)
            } else {
                y += 1;
                let (b, _) = from_base.expect("base versions come from a base");
                (b_vers[y - 1].ts, VRef::Page(b, b_vers[y - 1]))
            })
        });
        let dropped = gc_rule(merged, watermark, VRef::is_tomb, |ts, v| {
            view.bytes += 16 + v.stored_len();
            view.vers.push((ts, v));
        });
        view.dropped += dropped + dups;
        if view.vers.len() > mark {
            view.bytes += key.len() + 16;
            view.keys.push(key_ref);
            view.vstart.push(view.vers.len() as u32);
        }
    }
    view
}

/// Fast consolidation for the common chain: version deltas on a base page
/// whose keys hold one version each. Runs of base entries without deltas are
/// copied entry by entry into the new page without building a view; only the
/// deltas are sorted. Returns `None` (use [`collect_leaf`]) for any other
/// chain, or when the result might need a split (`max_entries`).
///
/// Returns the new base, its key count and the versions GC dropped.
pub(crate) fn consolidate_simple(
    head: &Node,
    watermark: u64,
    max_entries: usize,
    max_bytes: usize,
) -> Option<(LeafBase, usize, usize)> {
    let mut deltas: SmallVec<[(&[u8], u64, ValRef<'_>); 32]> = SmallVec::new();
    let mut node = head;
    let base = loop {
        match &node.body {
            Body::Version { ts, kv } => deltas.push((kv.key(), *ts, kv.value())),
            // A split installs `Split -> left base` with the same range in
            // one CAS (D2): the delta adds nothing to the content.
            Body::Split { .. } => {}
            Body::Leaf(b) => break b,
            _ => return None,
        }
        node = node.next()?;
    };
    // An upper bound on the result's size decides before any work is done.
    let delta_bytes: usize = deltas.iter().map(|d| d.0.len() + value_len(d.2) + 32).sum();
    if !base.single_version() || base.len() + deltas.len() > max_entries || base.byte_size() + delta_bytes > max_bytes {
        return None;
    }
    deltas.sort_by(|a, b| key_cmp(a.0, b.0).then(b.1.cmp(&a.1)));
    deltas.dedup_by(|later, earlier| later.1 == earlier.1 && key_eq(later.0, earlier.0));

    let n = base.len() + deltas.len();
    let key_bytes = base.keys.byte_len() + deltas.iter().map(|d| d.0.len()).sum::<usize>();
    let val_bytes = base.inline_value_bytes() + deltas.iter().map(|d| value_len(d.2)).sum::<usize>();
    let mut out = LeafBuilder::with_capacity(n, key_bytes, n, val_bytes);
    let (mut n, mut dropped) = (0usize, 0usize);
    // A lone base version survives GC unless it is a tombstone at or below the watermark.
    let copy_run = |out: &mut LeafBuilder, from: usize, to: usize, n: &mut usize, dropped: &mut usize| {
        for i in from..to {
            let v = base.versions(i)[0];
            if v.len == super::base::TOMBSTONE && v.ts <= watermark {
                *dropped += 1;
                continue;
            }
            out.push_base_entry(base, i);
            *n += 1;
        }
    };
    let mut bi = 0;
    let mut di = 0;
    let mut kept: SmallVec<[(u64, ValRef<'_>); 8]> = SmallVec::new();
    while di < deltas.len() {
        let key = deltas[di].0;
        let pos = bi + base.keys.lower_bound_from(bi, key);
        copy_run(&mut out, bi, pos, &mut n, &mut dropped);
        bi = pos;
        let start = di;
        while di < deltas.len() && key_eq(deltas[di].0, key) {
            di += 1;
        }
        let base_ver = (bi < base.len() && key_eq(base.keys.key(bi), key)).then(|| base.versions(bi)[0]);
        if base_ver.is_some() {
            bi += 1;
        }
        // Versions newest first: the deltas (sorted), then the base's, unless
        // a delta has the same timestamp (the later install wins).
        let mut all = deltas[start..di]
            .iter()
            .map(|d| (d.1, d.2))
            .collect::<SmallVec<[(u64, ValRef<'_>); 8]>>();
        // A base version with a delta's timestamp loses to the later install.
        all.extend(
            base_ver
                .filter(|b| deltas[start..di].iter().all(|d| d.1 != b.ts))
                .map(|b| (b.ts, base.value_ref(&b))),
        );
        all.sort_by_key(|a| std::cmp::Reverse(a.0));
        kept.clear();
        dropped += gc_rule(
            all,
            watermark,
            |v| matches!(v, ValRef::Tomb),
            |ts, v| kept.push((ts, v)),
        );
        if !kept.is_empty() {
            out.push_key(key);
            for &(ts, v) in &kept {
                out.push_version(ts, v);
            }
            out.end_key();
            n += 1;
        }
    }
    copy_run(&mut out, bi, base.len(), &mut n, &mut dropped);
    let mut page = out.finish(base.range.clone());
    page.gc_wm = watermark;
    Some((page, n, dropped))
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
