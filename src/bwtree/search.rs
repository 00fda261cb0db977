//! Searching one page's delta chain: leaf lookups and inner routing.
//! Nothing here allocates or clones until a value is returned.

use bytes::Bytes;

use super::base::LeafBase;
use super::chain::Node;
use super::delta::{key_bit, Body, Payload};
use super::keys::{head_of, key_eq, key_lt};
use super::mapping_table::Pid;

/// What a descent looks for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// The page with `low <= k < high`.
    Key(&'a [u8]),
    /// The page holding the keys just below `k`: `low < k <= high`.
    Before(&'a [u8]),
    /// The rightmost page.
    Last,
}

impl Target<'_> {
    /// Is the target at or above a lower fence (`None` = minus infinity)?
    #[inline]
    pub(crate) fn above_low(self, low: Option<&[u8]>) -> bool {
        match (low, self) {
            (None, _) | (_, Target::Last) => true,
            (Some(l), Target::Key(k)) => !key_lt(k, l),
            (Some(l), Target::Before(k)) => key_lt(l, k),
        }
    }

    /// Is the target below an upper fence (`None` = plus infinity)?
    #[inline]
    pub(crate) fn below_high(self, high: Option<&[u8]>) -> bool {
        match (high, self) {
            (None, _) => true,
            (Some(_), Target::Last) => false,
            (Some(h), Target::Key(k)) => key_lt(k, h),
            (Some(h), Target::Before(k)) => !key_lt(h, k),
        }
    }

    /// `above_low` against a page, using the fences cached in its header.
    #[inline]
    pub(crate) fn above(self, page: &Node) -> bool {
        match self {
            Target::Last => true,
            Target::Key(k) => page.cmp_low(k, head_of(k)).is_none_or(|o| o.is_ge()),
            Target::Before(k) => page.cmp_low(k, head_of(k)).is_none_or(|o| o.is_gt()),
        }
    }

    /// `below_high` against a page, using the fences cached in its header.
    #[inline]
    pub(crate) fn below(self, page: &Node) -> bool {
        match self {
            Target::Last => !page.has_high(),
            Target::Key(k) => page.cmp_high(k, head_of(k)).is_none_or(|o| o.is_lt()),
            Target::Before(k) => page.cmp_high(k, head_of(k)).is_none_or(|o| o.is_le()),
        }
    }

    #[inline]
    pub(crate) fn within(self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> bool {
        self.above_low(lo) && self.below_high(hi)
    }
}

/// Where an inner page sends a target: the child and the child's range as
/// the parent sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Route<'g> {
    pub(crate) child: Pid,
    pub(crate) lo: Option<&'g [u8]>,
    pub(crate) hi: Option<&'g [u8]>,
    /// `head_of(hi)` when `hi` is finite, taken from arrays already in cache.
    pub(crate) hi_head: u64,
}

impl<'g> Route<'g> {
    fn new(child: Pid, lo: Option<&'g [u8]>, hi: Option<&'g [u8]>) -> Self {
        Route {
            child,
            lo,
            hi,
            hi_head: hi.map_or(0, head_of),
        }
    }
}

/// Route `t` through an inner page's chain. The caller has checked that `t`
/// lies in the page's range.
pub(crate) fn route<'g>(head: &'g Node, t: Target<'_>) -> Route<'g> {
    // Separators posted above the target narrow the upper bound the older
    // part of the chain reports, so a descent sees the child's true range and
    // does not post the same index entry again.
    let mut cap: Option<&'g [u8]> = None;
    let narrow = |r: Route<'g>, cap: Option<&'g [u8]>| match cap {
        Some(c) if r.hi.is_none_or(|h| key_lt(c, h)) => Route::new(r.child, r.lo, Some(c)),
        _ => r,
    };
    let mut node = head;
    loop {
        match &node.body {
            Body::IndexEntry { sep, hi, child } => {
                if t.within(Some(sep), hi.as_deref()) {
                    return narrow(Route::new(*child, Some(sep), hi.as_deref()), cap);
                }
                if !t.above_low(Some(sep)) && cap.is_none_or(|c| key_lt(sep, c)) {
                    cap = Some(sep);
                }
            }
            Body::IndexTermDelete(merge) => {
                if t.within(merge.lo.as_deref(), merge.hi.as_deref()) {
                    return narrow(Route::new(merge.left, merge.lo.as_deref(), merge.hi.as_deref()), cap);
                }
            }
            Body::NodeMerge { sep, content, .. } => {
                if t.above_low(Some(sep)) {
                    node = content;
                    continue;
                }
            }
            Body::Inner(base) => {
                let n = base.len();
                let idx = match t {
                    Target::Key(k) => base.seps.upper_bound(k),
                    Target::Before(k) => base.seps.lower_bound(k),
                    Target::Last => n,
                };
                // Children: child0 for [low, sep0), children[i] for [sep_i, sep_{i+1}).
                let (child, lo) = if idx == 0 {
                    (base.child0, base.range.low())
                } else {
                    (base.children[idx - 1], Some(base.seps.key(idx - 1)))
                };
                let (hi, hi_head) = if idx < n {
                    (Some(base.seps.key(idx)), base.seps.full_head(idx))
                } else {
                    (base.range.high(), node.high_head())
                };
                return narrow(Route { child, lo, hi, hi_head }, cap);
            }
            Body::Leaf(_) | Body::Version { .. } | Body::Evicted { .. } => unreachable!("route() on a leaf"),
            Body::Split { .. } | Body::RemoveNode { .. } => {}
        }
        node = node.next().expect("chain ends in a base page");
    }
}

/// The outcome of looking a key up in a leaf chain.
pub(crate) enum Hit<'g> {
    Delta { ts: u64, kv: &'g Payload },
    Base { base: &'g LeafBase, idx: usize, ver: usize },
}

impl Hit<'_> {
    pub(crate) fn ts(&self) -> u64 {
        match self {
            Hit::Delta { ts, .. } => *ts,
            Hit::Base { base, idx, ver } => base.versions(*idx)[*ver].ts,
        }
    }
    /// Whether the version is a value (not a tombstone).
    pub(crate) fn is_live(&self) -> bool {
        match self {
            Hit::Delta { kv, .. } => !matches!(kv.value(), super::base::ValRef::Tomb),
            Hit::Base { base, idx, ver } => base.versions(*idx)[*ver].len != super::base::TOMBSTONE,
        }
    }

    pub(crate) fn value(&self) -> Option<Bytes> {
        match self {
            Hit::Delta { kv, .. } => kv.value_bytes(),
            Hit::Base { base, idx, ver } => base.value(&base.versions(*idx)[*ver]),
        }
    }
}

/// [`leaf_find`] on a chain whose base may be evicted: `Some` if the
/// answer is known without the image (a resident chain, or a version delta
/// over the stub holds a version `<= ts`: delta versions are newer than
/// every version on disk, P5 in `super::paging`), `None`: fault the leaf in.
pub(crate) fn delta_find<'g>(head: &'g Node, key: &[u8], ts: u64) -> Option<Option<Hit<'g>>> {
    if !head.is_evicted() {
        return Some(leaf_find(head, key, ts));
    }
    let bit = key_bit(key);
    let mut node = head;
    let mut best: Option<Hit<'g>> = None;
    loop {
        if let Some(older) = node.skip_versions(bit) {
            node = older;
            continue;
        }
        match &node.body {
            Body::Version { ts: t, kv } => {
                if *t <= ts && key_eq(kv.key(), key) && best.as_ref().is_none_or(|b| *t > b.ts()) {
                    best = Some(Hit::Delta { ts: *t, kv });
                }
            }
            // Only version deltas are over a stub (P4).
            _ => return best.map(Some),
        }
        node = node.next()?;
    }
}

/// The newest version of `key` with timestamp `<= ts` in a leaf chain.
/// (`ts = u64::MAX` finds the newest version of all.)
pub(crate) fn leaf_find<'g>(head: &'g Node, key: &[u8], ts: u64) -> Option<Hit<'g>> {
    let mut best: Option<Hit<'g>> = None;
    let bit = key_bit(key);
    let mut node = head;
    loop {
        if let Some(older) = node.skip_versions(bit) {
            // No version delta from here down to `older` holds this key.
            node = older;
            continue;
        }
        match &node.body {
            Body::Version { ts: t, kv } => {
                if *t <= ts && key_eq(kv.key(), key) && best.as_ref().is_none_or(|b| *t > b.ts()) {
                    best = Some(Hit::Delta { ts: *t, kv });
                }
            }
            Body::NodeMerge { sep, content, .. } => {
                if !key_lt(key, sep) {
                    node = content;
                    continue;
                }
            }
            Body::Leaf(base) => {
                if let Some(idx) = base.keys.find(key) {
                    // Versions are newest first: the first one at or below ts.
                    if let Some(ver) = base.versions(idx).iter().position(|v| v.ts <= ts) {
                        let t = base.versions(idx)[ver].ts;
                        if best.as_ref().is_none_or(|b| t > b.ts()) {
                            best = Some(Hit::Base { base, idx, ver });
                        }
                    }
                }
                return best;
            }
            Body::Inner(_) | Body::IndexEntry { .. } | Body::IndexTermDelete(_) => {
                unreachable!("leaf_find() on an inner page")
            }
            // Descents fault an evicted leaf in before searching it.
            Body::Evicted { .. } => unreachable!("leaf_find() on an evicted leaf"),
            Body::Split { .. } | Body::RemoveNode { .. } => {}
        }
        node = node.next().expect("chain ends in a base page");
    }
}
