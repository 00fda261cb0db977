//! The read set of a serializable transaction: the keys it read (found or
//! absent) and the key ranges it scanned, which its commit validates
//! (`design/mvcc.md`, section 10).
//!
//! - [`ReadSet`] lives in the transaction. `get` takes `&self`, and the
//!   transaction is `Send + Sync`, so the lists sit behind a mutex; it is
//!   uncontended (one transaction is used by one thread at a time in
//!   practice), a lock and an unlock per read.
//! - A count ([`ReadSet::count`]) is recorded as a flag, not as a range:
//!   commit checks that the count itself did not change, so updates, and
//!   inserts and deletes that cancel out, refuse nothing.
//! - [`Tracker`] rides in a range iterator: the full range is recorded when
//!   the iterator is created (so a leaked iterator stays covered), and when
//!   the iterator is dropped the range is narrowed to the part it yielded:
//!   `[start, last key yielded from the front]` and `[last key yielded from
//!   the back, end]`, or nothing if it yielded nothing. An iterator that
//!   ran out (or failed) keeps the whole range: it saw that no other key
//!   lies in it. Narrowing is sound because the transaction observed
//!   nothing outside those parts.
//!
//! Snapshot-isolation transactions record nothing: the transaction checks
//! its level before calling in here.

use std::ops::Bound;

use bytes::Bytes;

use crate::sync::{lock, Mutex};
use crate::Result;

/// A key range with owned bounds.
pub(crate) type OwnedRange = (Bound<Bytes>, Bound<Bytes>);

/// The keys and ranges a serializable transaction read.
#[derive(Default)]
pub(crate) struct ReadSet {
    reads: Mutex<Reads>,
}

/// The lists behind the mutex.
#[derive(Default, Debug)]
pub(crate) struct Reads {
    /// Keys read with `get` (not answered from the write set), in read
    /// order, possibly repeated (but never twice in a row): their bytes
    /// back to back (one buffer, not one allocation per key) ...
    key_bytes: Vec<u8>,
    /// ... and where each ends in `key_bytes`.
    key_ends: Vec<usize>,
    /// Past this many keys, the list is deduplicated (`compact`).
    compact_at: usize,
    /// Ranges scanned; `None` where an iterator that yielded nothing was
    /// dropped. An iterator's slot number stays valid until the
    /// transaction ends. [`ReadSet::take`] gives them merged: sorted,
    /// overlapping or touching ones joined.
    pub(crate) ranges: Vec<Option<OwnedRange>>,
    /// The keyspace's keys were counted ([`ReadSet::count`]): commit checks
    /// that the count at its timestamp is the count at the snapshot.
    /// (Before 2026-12-08 each count added a range of the whole key space,
    /// each walked again at commit; until 2026-12-09 a count was one such
    /// range, so an update anywhere refused the commit.)
    pub(crate) counted: bool,
}

impl Reads {
    /// Is there nothing to validate?
    pub(crate) fn is_empty(&self) -> bool {
        !self.counted && self.key_ends.is_empty() && self.ranges.iter().all(Option::is_none)
    }

    /// What commit validates: the keys as recorded, the ranges sorted by
    /// start and merged where they overlap or touch, and the count flag. The union of what was read
    /// stays exactly the same, so validation refuses exactly the same
    /// commits, walking each key range once. (Keys inside a range stay:
    /// validation checks keys first, and a conflict on one names the key
    /// read, `ConflictReason::Read`.)
    fn normalized(mut self) -> Reads {
        let mut ranges: Vec<OwnedRange> = std::mem::take(&mut self.ranges).into_iter().flatten().collect();
        ranges.sort_by(|a, b| start_cmp(&a.0, &b.0));
        let mut merged: Vec<OwnedRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if reaches(&last.1, &r.0) => {
                    if end_cmp(&r.1, &last.1).is_gt() {
                        last.1 = r.1;
                    }
                }
                _ => merged.push(r),
            }
        }
        self.ranges = merged.into_iter().map(Some).collect();
        self
    }

    /// The keys read, in read order (possibly repeated).
    pub(crate) fn keys(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.key_ends.iter().copied());
        starts.zip(&self.key_ends).map(|(s, &e)| &self.key_bytes[s..e])
    }

    /// The key read last, if any.
    fn last_key(&self) -> Option<&[u8]> {
        let end = *self.key_ends.last()?;
        let start = self.key_ends.len().checked_sub(2).map_or(0, |i| self.key_ends[i]);
        self.key_bytes.get(start..end)
    }

    /// Keep each key once (in key order): a transaction that reads the
    /// same keys again and again keeps a list the size of its distinct
    /// keys, not of its reads. The next compaction comes when the list has
    /// doubled, so the cost per read stays constant on average.
    fn compact(&mut self) {
        let distinct: std::collections::BTreeSet<&[u8]> = self.keys().collect();
        let mut bytes = Vec::with_capacity(distinct.iter().map(|k| k.len()).sum());
        let mut ends = Vec::with_capacity(distinct.len());
        for k in distinct {
            bytes.extend_from_slice(k);
            ends.push(bytes.len());
        }
        self.key_bytes = bytes;
        self.key_ends = ends;
        self.compact_at = (2 * self.key_ends.len()).max(COMPACT_FROM);
    }
}

/// The fewest keys read before a read set is first deduplicated.
const COMPACT_FROM: usize = 1024;

impl ReadSet {
    /// Record a key read.
    pub(crate) fn key(&self, key: &[u8]) {
        let mut r = lock(&self.reads);
        if r.last_key() == Some(key) {
            return;
        }
        r.key_bytes.extend_from_slice(key);
        let end = r.key_bytes.len();
        r.key_ends.push(end);
        if r.key_ends.len() > r.compact_at.max(COMPACT_FROM) {
            r.compact();
        }
    }

    /// Record a range scanned; returns its slot for [`Tracker`].
    fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> usize {
        let mut r = lock(&self.reads);
        r.ranges.push(Some((owned(start), owned(end))));
        r.ranges.len() - 1
    }

    /// Record a count of the keyspace's keys: once, however often it is
    /// called.
    pub(crate) fn count(&self) {
        lock(&self.reads).counted = true;
    }

    /// A tracker that records `start..end` now and narrows it on drop.
    pub(crate) fn track(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Tracker<'_> {
        Tracker {
            set: self,
            slot: self.range(start, end),
            front: None,
            back: None,
            whole: false,
        }
    }

    /// The recorded reads, normalized ([`Reads::normalized`]), leaving the
    /// set empty. Called when no [`Tracker`] is alive (the transaction's
    /// commit).
    pub(crate) fn take(&self) -> Reads {
        std::mem::take(&mut *lock(&self.reads)).normalized()
    }
}

/// Orders range starts: unbounded first, then by key, an included key
/// before the same key excluded.
fn start_cmp(a: &Bound<Bytes>, b: &Bound<Bytes>) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (Bound::Unbounded, Bound::Unbounded) => Equal,
        (Bound::Unbounded, _) => Less,
        (_, Bound::Unbounded) => Greater,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => x
            .cmp(y)
            .then(matches!(a, Bound::Excluded(_)).cmp(&matches!(b, Bound::Excluded(_)))),
    }
}

/// Orders range ends: unbounded last, then by key, an excluded key before
/// the same key included.
fn end_cmp(a: &Bound<Bytes>, b: &Bound<Bytes>) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (Bound::Unbounded, Bound::Unbounded) => Equal,
        (Bound::Unbounded, _) => Greater,
        (_, Bound::Unbounded) => Less,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => x
            .cmp(y)
            .then(matches!(a, Bound::Included(_)).cmp(&matches!(b, Bound::Included(_)))),
    }
}

/// Whether a range ending at `end` and one starting at `start` (no earlier
/// than the first's start) overlap or touch, so that their union is one
/// range: no key lies between them.
fn reaches(end: &Bound<Bytes>, start: &Bound<Bytes>) -> bool {
    match (end, start) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => true,
        // `..=e` and `s..`: s <= e; `..=e` and `(s..`: s <= e (s == e: e is
        // in the first, everything after it in the second).
        (Bound::Included(e), Bound::Included(s) | Bound::Excluded(s)) => s <= e,
        // `..e` and `s..`: s <= e (s == e: the second starts at e).
        (Bound::Excluded(e), Bound::Included(s)) => s <= e,
        // `..e` and `(s..`: s < e (s == e leaves e itself out of both).
        (Bound::Excluded(e), Bound::Excluded(s)) => s < e,
    }
}

fn owned(b: Bound<&[u8]>) -> Bound<Bytes> {
    match b {
        Bound::Included(k) => Bound::Included(Bytes::copy_from_slice(k)),
        Bound::Excluded(k) => Bound::Excluded(Bytes::copy_from_slice(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Follows what a range iterator yields, to narrow its recorded range when
/// it is dropped (see the module doc).
pub(crate) struct Tracker<'a> {
    set: &'a ReadSet,
    slot: usize,
    /// The last key yielded from the front.
    front: Option<Bytes>,
    /// The last key yielded from the back.
    back: Option<Bytes>,
    /// The iterator ran out or failed: keep the whole range.
    whole: bool,
}

impl Tracker<'_> {
    /// The iterator's front yielded `item`.
    #[inline]
    pub(crate) fn front(&mut self, item: Option<&Result<(Bytes, Bytes)>>) {
        match item {
            Some(Ok((k, _))) => self.front = Some(k.clone()),
            _ => self.whole = true,
        }
    }

    /// The iterator's back yielded `item`.
    #[inline]
    pub(crate) fn back(&mut self, item: Option<&Result<(Bytes, Bytes)>>) {
        match item {
            Some(Ok((k, _))) => self.back = Some(k.clone()),
            _ => self.whole = true,
        }
    }
}

impl Drop for Tracker<'_> {
    fn drop(&mut self) {
        if self.whole {
            return;
        }
        let mut r = lock(&self.set.reads);
        let Some((start, end)) = r.ranges.get_mut(self.slot).and_then(Option::take) else {
            return;
        };
        if let Some(f) = self.front.take() {
            r.ranges[self.slot] = Some((start, Bound::Included(f)));
        }
        if let Some(b) = self.back.take() {
            r.ranges.push(Some((Bound::Included(b), end)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn kv(s: &str) -> Result<(Bytes, Bytes)> {
        Ok((b(s), Bytes::new()))
    }

    /// Keys read again and again are kept about once each: not twice in
    /// a row, and the list is deduplicated as it doubles. (Before, a loop
    /// of `get`s grew it without bound, and commit validated every read.)
    #[test]
    fn repeated_reads_keep_a_bounded_list() {
        let set = ReadSet::default();
        for _ in 0..10 {
            set.key(b"flag");
        }
        assert_eq!(lock(&set.reads).key_ends.len(), 1);
        for i in 0..100_000u32 {
            set.key(format!("k{}", i % 50).as_bytes());
        }
        let r = lock(&set.reads);
        assert!(r.key_ends.len() <= COMPACT_FROM + 1, "{}", r.key_ends.len());
        let distinct: std::collections::BTreeSet<&[u8]> = r.keys().collect();
        assert_eq!(distinct.len(), 51, "every key read is still there");
        assert!(distinct.contains(&b"flag"[..]) && distinct.contains(&b"k49"[..]));
    }

    #[test]
    fn narrowing_keeps_what_was_yielded() {
        let set = ReadSet::default();
        // Yielded nothing: nothing recorded.
        drop(set.track(Bound::Included(b"a"), Bound::Unbounded));
        // Front only.
        let mut t = set.track(Bound::Included(b"a"), Bound::Unbounded);
        t.front(Some(&kv("b")));
        t.front(Some(&kv("c")));
        drop(t);
        // Both ends.
        let mut t = set.track(Bound::Excluded(b"a"), Bound::Excluded(b"z"));
        t.front(Some(&kv("b")));
        t.back(Some(&kv("y")));
        drop(t);
        // Ran out: the whole range.
        let mut t = set.track(Bound::Unbounded, Bound::Excluded(b"m"));
        t.front(Some(&kv("b")));
        t.front(None);
        drop(t);
        // Leaked: the whole range stays.
        std::mem::forget(set.track(Bound::Included(b"p"), Bound::Included(b"q")));
        set.key(b"k1");
        set.key(b"");
        set.key(b"k1");
        // As recorded (`take` merges them: `take_merges_ranges`).
        let r = std::mem::take(&mut *lock(&set.reads));
        assert_eq!(r.keys().collect::<Vec<_>>(), vec![&b"k1"[..], b"", b"k1"]);
        let got: Vec<_> = r.ranges.into_iter().flatten().collect();
        assert_eq!(
            got,
            vec![
                (Bound::Included(b("a")), Bound::Included(b("c"))),
                (Bound::Excluded(b("a")), Bound::Included(b("b"))),
                (Bound::Included(b("y")), Bound::Excluded(b("z"))),
                (Bound::Unbounded, Bound::Excluded(b("m"))),
                (Bound::Included(b("p")), Bound::Included(b("q"))),
            ]
        );
        assert!(set.take().is_empty());
    }

    fn range(s: Option<&str>, si: bool, e: Option<&str>, ei: bool) -> OwnedRange {
        let bound = |k: Option<&str>, inc: bool| match k {
            None => Bound::Unbounded,
            Some(k) if inc => Bound::Included(b(k)),
            Some(k) => Bound::Excluded(b(k)),
        };
        (bound(s, si), bound(e, ei))
    }

    fn record(set: &ReadSet, r: &OwnedRange) {
        std::mem::forget(set.track(r.0.as_ref().map(|k| &k[..]), r.1.as_ref().map(|k| &k[..])));
    }

    /// Commit validates the ranges merged where they overlap or touch: the
    /// same union, each part walked once; the keys stay as read.
    /// (Before 2026-12-08 every scan's range was walked, however often the
    /// same one was scanned.)
    #[test]
    fn take_merges_ranges() {
        let set = ReadSet::default();
        for r in [
            range(Some("p"), true, Some("q"), true),
            range(Some("c"), true, Some("f"), false),
            range(Some("a"), true, Some("c"), false), // touches [c, f)
            range(Some("c"), true, Some("f"), false), // the same again
            range(Some("f"), false, Some("h"), true), // (f..: f itself in neither
            range(Some("h"), false, Some("j"), true), // (h..: touches ..=h
            range(Some("x"), true, None, true),
            range(Some("y"), true, Some("z"), true), // inside [x..
        ] {
            record(&set, &r);
        }
        set.key(b"b");
        let r = set.take();
        let got: Vec<_> = r.ranges.iter().flatten().cloned().collect();
        assert_eq!(
            got,
            vec![
                range(Some("a"), true, Some("f"), false),
                range(Some("f"), false, Some("j"), true),
                range(Some("p"), true, Some("q"), true),
                range(Some("x"), true, None, true),
            ]
        );
        assert_eq!(r.keys().collect::<Vec<_>>(), vec![&b"b"[..]]);
    }

    /// A count is a flag, however many counts: the ranges and keys read
    /// before and after it are kept as they are.
    #[test]
    fn a_count_is_a_flag() {
        let set = ReadSet::default();
        assert!(set.take().is_empty());
        set.count();
        assert!(!set.take().is_empty(), "a count alone is a read");
        let mut t = set.track(Bound::Included(b"a"), Bound::Unbounded);
        t.front(Some(&kv("b")));
        set.key(b"k");
        for _ in 0..1000 {
            set.count();
        }
        set.key(b"later");
        record(&set, &range(Some("m"), true, None, true));
        drop(t);
        let r = set.take();
        assert!(r.counted);
        assert_eq!(r.keys().collect::<Vec<_>>(), [&b"k"[..], b"later"], "keys stay");
        let got: Vec<_> = r.ranges.iter().flatten().cloned().collect();
        assert_eq!(
            got,
            vec![
                range(Some("a"), true, Some("b"), true),
                range(Some("m"), true, None, true)
            ]
        );
    }
}
