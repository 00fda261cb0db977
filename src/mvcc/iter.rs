//! Range iteration over a snapshot merged with a transaction's own writes.
//!
//! Two sorted, double-ended sources: the tree's cursor at the snapshot
//! timestamp and the range of the write buffer. Each end keeps one peeked
//! item per source. When a source is exhausted from one end, its last item
//! may still sit in the other end's peek slot, so that end takes it from
//! there: every item is yielded once, whichever directions are mixed. Equal
//! keys are consumed together and the transaction's write wins (a buffered
//! delete hides the key).

use std::cmp::Ordering;
use std::collections::{btree_map, BTreeMap};
use std::ops::{Bound, RangeBounds};

use bytes::Bytes;

use super::readset::Tracker;
use crate::bwtree::Cursor;
use crate::Result;

/// A transaction's buffered writes: the newest value per key, `None` for a
/// delete. Ordered, so that scans merge it and commits latch and log it in
/// key order.
pub(crate) type WriteSet = BTreeMap<Bytes, Option<Bytes>>;

type BufferedWrite<'a> = (&'a Bytes, &'a Option<Bytes>);

/// An iterator over `(key, value)` pairs in key order, as a transaction or a
/// snapshot sees them; [`DoubleEndedIterator`] for reverse order. Keys and
/// values are zero-copy [`Bytes`].
///
/// Returned by [`crate::Transaction::range`], [`crate::Transaction::prefix`],
/// [`crate::Snapshot::range`] and [`crate::Snapshot::prefix`] (and their
/// `*_in` forms). An item is an error, after which the iterator ends, for a
/// snapshot garbage collection passed (`SnapshotTooOld`), a keyspace
/// dropped before the snapshot or a handle of another database
/// (`KeyspaceNotFound`, `InvalidArgument`), or an evicted page that cannot
/// be read back (`Io`, `Corruption`): never a wrong or missing item
/// instead.
pub struct Iter<'a> {
    tree: Option<Cursor<'a>>,
    buf: Option<btree_map::Range<'a, Bytes, Option<Bytes>>>,
    front_tree: Option<(Bytes, Bytes)>,
    back_tree: Option<(Bytes, Bytes)>,
    front_buf: Option<BufferedWrite<'a>>,
    back_buf: Option<BufferedWrite<'a>>,
    /// A serializable transaction's scan: follows what is yielded, to
    /// narrow the recorded range on drop.
    track: Option<Tracker<'a>>,
    /// Yielded first, then nothing ([`Iter::failed`]).
    error: Option<crate::Error>,
    /// An error was yielded: nothing more (before 2026-12-08 the next call
    /// tried again, so `count()` or `flatten()` over a scan that kept
    /// failing, an expired snapshot's, never returned).
    done: bool,
}

impl<'a> Iter<'a> {
    pub(crate) fn new(tree: Cursor<'a>, buf: Option<btree_map::Range<'a, Bytes, Option<Bytes>>>) -> Self {
        Iter {
            tree: Some(tree),
            buf,
            front_tree: None,
            back_tree: None,
            front_buf: None,
            back_buf: None,
            track: None,
            error: None,
            done: false,
        }
    }

    /// An iterator that yields `e` once (a scan of a keyspace that cannot
    /// be read), then ends.
    pub(crate) fn failed(e: crate::Error) -> Self {
        let mut it = Self::empty();
        it.error = Some(e);
        it
    }

    pub(crate) fn empty() -> Self {
        Iter {
            tree: None,
            buf: None,
            front_tree: None,
            back_tree: None,
            front_buf: None,
            back_buf: None,
            track: None,
            error: None,
            done: false,
        }
    }
}

impl<'a> Iter<'a> {
    /// Report what this iterator yields to `tracker` (a serializable
    /// transaction's read set).
    pub(crate) fn tracked(mut self, tracker: Tracker<'a>) -> Self {
        self.track = Some(tracker);
        self
    }
}

/// Yield a buffered write: `None` (skip) for a buffered delete.
fn own(b: BufferedWrite<'_>) -> Option<(Bytes, Bytes)> {
    b.1.as_ref().map(|v| (b.0.clone(), v.clone()))
}

impl Iterator for Iter<'_> {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(false)
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.step(true)
    }
}

/// `None` for good once it ended, by running out or by an error.
impl std::iter::FusedIterator for Iter<'_> {}

impl Iter<'_> {
    fn next_front(&mut self) -> Option<Result<(Bytes, Bytes)>> {
        if self.buf.is_none() && self.front_tree.is_none() && self.back_tree.is_none() {
            // No writes to merge (a snapshot, or a transaction that has not
            // written in the range): the cursor's items as they come.
            return self.tree.as_mut().and_then(Iterator::next);
        }
        self.merge_next(false)
    }

    /// The next item from the front (`back` false) or the back: a failed
    /// iterator's error first, then the merged items, each reported to the
    /// tracker of a serializable transaction's scan.
    fn step(&mut self, back: bool) -> Option<Result<(Bytes, Bytes)>> {
        if self.done {
            return None;
        }
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        let item = if back { self.merge_next(true) } else { self.next_front() };
        if matches!(item, Some(Err(_))) {
            // The error ends the iterator: its sources go (the tracker,
            // told below, keeps the whole range).
            self.done = true;
            self.tree = None;
            self.buf = None;
            (self.front_tree, self.back_tree, self.front_buf, self.back_buf) = (None, None, None, None);
        }
        if let Some(t) = &mut self.track {
            if back {
                t.back(item.as_ref());
            } else {
                t.front(item.as_ref());
            }
        }
        item
    }

    /// The next merged item from the front (`back` false) or the back: this
    /// end's peek slots are refilled from their sources, or, when a source
    /// is exhausted, from the other end's slot; the item that comes first in
    /// this direction is yielded, a buffered write winning an equal key.
    fn merge_next(&mut self, back: bool) -> Option<Result<(Bytes, Bytes)>> {
        let Iter {
            tree,
            buf,
            front_tree,
            back_tree,
            front_buf,
            back_buf,
            ..
        } = self;
        let (near_tree, far_tree, near_buf, far_buf) = if back {
            (back_tree, front_tree, back_buf, front_buf)
        } else {
            (front_tree, back_tree, front_buf, back_buf)
        };
        // The order of the item yielded first in this direction.
        let first = if back { Ordering::Greater } else { Ordering::Less };
        loop {
            if near_tree.is_none() {
                let next = tree.as_mut().and_then(|c| if back { c.next_back() } else { c.next() });
                *near_tree = match next {
                    Some(Ok(kv)) => Some(kv),
                    Some(Err(e)) => return Some(Err(e)),
                    None => far_tree.take(),
                };
            }
            if near_buf.is_none() {
                let next = buf.as_mut().and_then(|r| if back { r.next_back() } else { r.next() });
                *near_buf = next.or_else(|| far_buf.take());
            }
            let order = match (&*near_tree, &*near_buf) {
                (None, None) => return None,
                (Some(_), None) => first,
                (None, Some(_)) => first.reverse(),
                (Some(t), Some(b)) => t.0[..].cmp(&b.0[..]),
            };
            if order == first {
                return near_tree.take().map(Ok);
            }
            if order == Ordering::Equal {
                *near_tree = None;
            }
            if let Some(kv) = own(near_buf.take().expect("compared above")) {
                return Some(Ok(kv));
            }
        }
    }
}

/// `range`'s bounds as byte slices.
pub(crate) fn byte_bounds<'r, K: AsRef<[u8]> + 'r, R: RangeBounds<K>>(range: &'r R) -> KeyRange<'r> {
    fn as_bytes<K: AsRef<[u8]>>(b: Bound<&K>) -> Bound<&[u8]> {
        match b {
            Bound::Included(k) => Bound::Included(k.as_ref()),
            Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
            Bound::Unbounded => Bound::Unbounded,
        }
    }
    (as_bytes(range.start_bound()), as_bytes(range.end_bound()))
}

/// A range of byte-string keys.
pub(crate) type KeyRange<'k> = (Bound<&'k [u8]>, Bound<&'k [u8]>);

/// `(start, end)` as byte bounds, `None` if the range is empty (which
/// `BTreeMap::range` would panic on).
pub(crate) fn bounds<'k>(start: Bound<&'k [u8]>, end: Bound<&'k [u8]>) -> Option<KeyRange<'k>> {
    use Bound::*;
    let empty = match (start, end) {
        (Included(s), Included(e)) => s > e,
        (Included(s), Excluded(e)) | (Excluded(s), Included(e)) | (Excluded(s), Excluded(e)) => s >= e,
        _ => false,
    };
    (!empty).then_some((start, end))
}

/// The smallest key above every key that starts with `prefix`, `None` if
/// there is none (the prefix is empty or all `0xff`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
