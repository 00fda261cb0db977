//! Serializable read validation's side in the tree: did any version with a
//! timestamp in `(after, before)` land on a key of a range?
//!
//! The engine calls [`Tree::changed_in`] for each key and range a
//! serializable transaction read (a key is the range `[k, k]`), after every
//! commit below `before` is installed (`design/mvcc.md`, section 10). The
//! walk goes leaf by leaf from the range's start, continuing at each leaf's
//! high fence, and never scans a leaf that can tell nothing changed:
//!
//! - A leaf's *bound* is an upper bound on the timestamps of its versions:
//!   the largest of its version deltas' timestamps, its base's
//!   [`super::base::LeafBase::max_ts`] (computed when the base is built: consolidation,
//!   split, merge copy, image decode) and, for an absorbed right half, the
//!   bound of the `NodeMerge` copy. An evicted leaf's bound is its image's
//!   `max_ts` (`Body::Evicted`), so a leaf whose bound is at or below
//!   `after` is passed without being faulted in.
//! - Only leaves whose bound is above `after` are searched, and only their
//!   keys inside the range: version deltas are filtered by key, a base is
//!   binary-searched to the range and skipped whole when its own `max_ts`
//!   is at or below `after`.
//!
//! Soundness: every version with `ts < before` was installed before the walk
//! began. Splits and merges move versions between pages but never drop one
//! above the GC watermark (which is at most `after`, the validating
//! transaction's registered snapshot), and the leaf that covers a key when
//! the walk reads it holds every installed version of that key. So each key
//! in the range is examined in some leaf that holds all its versions below
//! `before`. A version found is a committed write (versions enter the tree
//! only by a commit's install).

use std::ops::Bound;

use bytes::Bytes;
use crossbeam_epoch as epoch;

use super::chain::Node;
use super::clock;
use super::delta::Body;
use super::keys::key_lt;
use super::search::Target;
use super::tree::{Leaf, Path, Tree};
use crate::Result;

impl Tree {
    /// The smallest key between `start` and `end` with a version whose
    /// timestamp is in `(after, before)`, and the newest such timestamp;
    /// `None` if there is none. The caller guarantees that every commit below `before`
    /// is installed and that the GC watermark stays at or below `after`.
    /// Fails only if a leaf that must be searched cannot be faulted in.
    pub(crate) fn changed_in(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        after: u64,
        before: u64,
    ) -> Result<Option<(Bytes, u64)>> {
        if before <= after + 1 {
            // No timestamp lies strictly between.
            return Ok(None);
        }
        let first: &[u8] = match start {
            Bound::Included(k) | Bound::Excluded(k) => k,
            Bound::Unbounded => &[],
        };
        let mut from: Option<Bytes> = None;
        loop {
            let guard = epoch::pin();
            let mut path = Path::new();
            let t = Target::Key(from.as_deref().unwrap_or(first));
            let mut head = match self.descend_leaf::<false, 0, true>(t, &guard, &mut path)? {
                (_, Leaf::Node(head)) => head,
                // A cold leaf whose newest version is at or below `after`
                // is skipped packed (`super::cold`); else faulted in.
                (_, Leaf::Cold(cold)) if cold.max_ts() <= after => match cold.high() {
                    Some(h) if below_end(h, end) => {
                        from = Some(Bytes::copy_from_slice(h));
                        continue;
                    }
                    _ => return Ok(None),
                },
                (_, Leaf::Cold(_)) => {
                    path.clear();
                    self.descend_to::<true, { clock::SCAN }>(t, &guard, &mut path)?.1
                }
            };
            if bound(head) > after {
                if head.is_evicted() {
                    path.clear();
                    head = self.descend_to::<true, { clock::SCAN }>(t, &guard, &mut path)?.1;
                }
                if let Some(hit) = search(head, start, end, after, before) {
                    return Ok(Some(hit));
                }
            }
            match &head.range().high {
                Some(h) if below_end(h, end) => from = Some(h.clone()),
                _ => return Ok(None),
            }
        }
    }
}

/// Is `key` before the range's end?
fn below_end(key: &[u8], end: Bound<&[u8]>) -> bool {
    match end {
        Bound::Included(e) => !key_lt(e, key),
        Bound::Excluded(e) => key_lt(key, e),
        Bound::Unbounded => true,
    }
}

/// Is `key` at or after the range's start?
fn above_start(key: &[u8], start: Bound<&[u8]>) -> bool {
    match start {
        Bound::Included(s) => !key_lt(key, s),
        Bound::Excluded(s) => key_lt(s, key),
        Bound::Unbounded => true,
    }
}

/// An upper bound on the timestamps of the versions in a leaf chain.
pub(crate) fn bound(head: &Node) -> u64 {
    let mut max = 0;
    let mut node = head;
    loop {
        match &node.body {
            Body::Version { ts, .. } => max = max.max(*ts),
            Body::NodeMerge { content, .. } => max = max.max(bound(content)),
            Body::Leaf(base) => return max.max(base.max_ts()),
            Body::Evicted { max_ts, .. } => return max.max(*max_ts),
            Body::Split { .. } | Body::RemoveNode { .. } => {}
            Body::Inner(_) | Body::IndexEntry { .. } | Body::IndexTermDelete(_) => {
                unreachable!("bound() on an inner page")
            }
        }
        match node.next() {
            Some(next) => node = next,
            None => return max,
        }
    }
}

/// A change found: the key and the newest commit in the window that wrote it.
type Hit = (Bytes, u64);

/// Keep the smaller key; on the same key, the newer commit.
fn better(best: Option<Hit>, key: &[u8], ts: u64) -> Option<Hit> {
    match best {
        Some((k, t)) if key_lt(&k, key) || (k[..] == *key && t >= ts) => Some((k, t)),
        _ => Some((Bytes::copy_from_slice(key), ts)),
    }
}

/// In a (resident) leaf chain, the smallest key between `start` and `end`
/// with a version whose timestamp is in `(after, before)`, with the newest
/// such timestamp. (The walk visits leaves in key order, so the first leaf
/// with a hit holds the range's smallest changed key: the conflict reported
/// does not depend on the page layout.)
fn search(head: &Node, start: Bound<&[u8]>, end: Bound<&[u8]>, after: u64, before: u64) -> Option<Hit> {
    let within = |ts: u64| ts > after && ts < before;
    let in_range = |key: &[u8]| above_start(key, start) && below_end(key, end);
    let mut best: Option<Hit> = None;
    let mut node = head;
    loop {
        match &node.body {
            Body::Version { ts, kv } => {
                if within(*ts) && in_range(kv.key()) {
                    best = better(best, kv.key(), *ts);
                }
            }
            Body::NodeMerge { content, .. } => {
                if let Some((k, t)) = search(content, start, end, after, before) {
                    best = better(best, &k, t);
                }
            }
            Body::Leaf(base) => {
                if base.max_ts() <= after {
                    return best;
                }
                let lo = match start {
                    Bound::Included(s) => base.keys.lower_bound(s),
                    Bound::Excluded(s) => base.keys.upper_bound(s),
                    Bound::Unbounded => 0,
                };
                let hi = match end {
                    Bound::Included(e) => base.keys.upper_bound(e),
                    Bound::Excluded(e) => base.keys.lower_bound(e),
                    Bound::Unbounded => base.len(),
                };
                for i in lo..hi.max(lo) {
                    // Versions are newest first: the first in the window is the newest.
                    if let Some(v) = base.versions(i).iter().find(|v| within(v.ts)) {
                        return better(best, base.keys.key(i), v.ts);
                    }
                    if best.as_ref().is_some_and(|(k, _)| !key_lt(base.keys.key(i), k)) {
                        break;
                    }
                }
                return best;
            }
            // The caller faults an evicted leaf in before searching it.
            Body::Evicted { .. } => unreachable!("search() on an evicted leaf"),
            Body::Split { .. } | Body::RemoveNode { .. } => {}
            Body::Inner(_) | Body::IndexEntry { .. } | Body::IndexTermDelete(_) => {
                unreachable!("search() on an inner page")
            }
        }
        match node.next() {
            Some(next) => node = next,
            None => return best,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::BTreeMap;
    use std::ops::Bound::{self, Excluded, Included, Unbounded};

    use super::*;
    use crate::bwtree::tree::Config;

    fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
        b.as_ref().map(|k| &k[..])
    }

    /// Is `k` in `lo..hi`? (Slice order, independent of the tree's.)
    fn within(k: &[u8], lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
        let above = match lo {
            Included(l) => k >= &l[..],
            Excluded(l) => k > &l[..],
            Unbounded => true,
        };
        let below = match hi {
            Included(h) => k <= &h[..],
            Excluded(h) => k < &h[..],
            Unbounded => true,
        };
        above && below
    }

    /// `changed_in` against a reference (every version ever installed, per
    /// key), on tiny pages: versions in deltas, consolidated bases, split
    /// halves and merge copies; with GC at a watermark below the window.
    #[test]
    fn changed_in_matches_a_reference() {
        let tree = Tree::with_config(Config::tiny()).unwrap();
        let mut history: BTreeMap<Vec<u8>, Vec<u64>> = BTreeMap::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let key = |i: u64| format!("k{i:03}").into_bytes();
        let bound = |r: u64, i: u64| match r % 3 {
            0 => Unbounded,
            1 => Included(key(i)),
            _ => Excluded(key(i)),
        };
        let mut checks = 0;
        for ts in 1..=600u64 {
            let k = key(next(120));
            if next(5) == 0 {
                tree.delete(&k, ts).unwrap();
            } else {
                tree.put(&k, ts, b"v").unwrap();
            }
            history.entry(k).or_default().push(ts);
            if ts % 50 == 0 {
                // Versions at or below 300 may go; windows start at 300 or later.
                tree.collect_garbage(ts.min(300) - 1);
            }
            if ts < 300 || ts % 7 != 0 {
                continue;
            }
            for _ in 0..20 {
                let after = 300 + next(ts - 300 + 1);
                let before = after + next(ts - after + 2);
                let (lo, hi) = (bound(next(9), next(130)), bound(next(9), next(130)));
                let want = history.iter().filter(|(k, _)| within(k, &lo, &hi)).find_map(|(k, v)| {
                    let newest = v.iter().filter(|&&t| t > after && t < before).max()?;
                    Some((k.clone(), *newest))
                });
                let got = tree
                    .changed_in(as_ref(&lo), as_ref(&hi), after, before)
                    .unwrap()
                    .map(|(k, t)| (k.to_vec(), t));
                assert_eq!(got, want, "{lo:?}..{hi:?} in ({after}, {before})");
                checks += 1;
            }
        }
        assert!(checks > 800);
        assert!(tree.stats().splits > 10, "{:?}", tree.stats());
    }
}
