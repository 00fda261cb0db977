//! The eviction clock's use counts (`design/storage.md` §5.1): two bits per
//! page id, packed 32 to a word, in lazily grown segments (like the mapping
//! table's, so page ids need no fixed cap).
//!
//! A point operation sets its leaf's count to [`POINT`] (3); a scan raises it
//! to at most [`SCAN`] (1); the evictor's hand decrements it and evicts the
//! leaf at 0. A leaf touched once by a long scan is evicted on the hand's
//! next pass, while a hot leaf survives three: one scan does not flush the
//! hot set.

use crate::sync::{AtomicU64, OnceSlot, Ordering};

/// The use count a point operation sets.
pub(crate) const POINT: u64 = 3;
/// The use count a scan raises a leaf to (at most).
pub(crate) const SCAN: u64 = 1;
/// Not a count: a flag on a descent's use level (`PROBE | POINT` for a
/// point read, `PROBE | SCAN` for a scan) for a read that may read an
/// evicted leaf through (`super::read_through`): a resident leaf's count is
/// raised to the level, an evicted one's is left for the read to decide.
pub(crate) const PROBE: u64 = 4;

const BASE_SHIFT: u32 = 4;
const BASE: u64 = 1 << BASE_SHIFT;
const SEGMENTS: usize = 48;
const PER_WORD: u64 = 32;

type Segment = Box<[AtomicU64]>;

/// Use counts by page id. A segment is set once (`OnceSlot`: racing growers
/// each build one, one compare-and-swap keeps it) and lives as long as this.
pub(crate) struct UseCounts {
    segments: Box<[OnceSlot<Segment>]>,
}

/// Segment and offset of word `w` (segment `s` holds `BASE << s` words).
#[inline]
fn locate(w: u64) -> (usize, usize) {
    let n = w + BASE;
    let seg = (63 - n.leading_zeros() - BASE_SHIFT) as usize;
    (seg, (n - (BASE << seg)) as usize)
}

impl UseCounts {
    pub(crate) fn new() -> Self {
        UseCounts {
            segments: (0..SEGMENTS).map(|_| OnceSlot::new()).collect(),
        }
    }

    /// The word holding `pid`'s count, and the count's shift in it.
    #[inline]
    fn word(&self, pid: u64) -> (&AtomicU64, u32) {
        let (seg, off) = locate(pid / PER_WORD);
        let segment = match self.segments[seg].get() {
            Some(segment) => segment,
            None => self.grow(seg),
        };
        (&segment[off], ((pid % PER_WORD) * 2) as u32)
    }

    #[cold]
    fn grow(&self, seg: usize) -> &Segment {
        let len = (BASE as usize) << seg;
        self.segments[seg].get_or_init(|| Box::new((0..len).map(|_| AtomicU64::new(0)).collect()))
    }

    /// Raise `pid`'s count to at least `level` ([`POINT`] or [`SCAN`]);
    /// no write if it is there already (the common case for a hot page).
    #[inline]
    pub(crate) fn touch(&self, pid: u64, level: u64) {
        let (word, shift) = self.word(pid);
        let cur = (word.load(Ordering::Relaxed) >> shift) & 3;
        if cur < level {
            // Racing touches and decrements: a lost update only shifts a
            // page's eviction by one pass.
            let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                let c = (w >> shift) & 3;
                (c < level).then_some((w & !(3 << shift)) | (level << shift))
            });
        }
    }

    /// The hand passes `pid`: decrement its count; true if it was 0 (evict).
    pub(crate) fn pass(&self, pid: u64) -> bool {
        let (word, shift) = self.word(pid);
        let r = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
            let c = (w >> shift) & 3;
            (c > 0).then(|| w - (1 << shift))
        });
        r.is_err()
    }

    /// Set `pid`'s count to 0 (a leaf just evicted: its read-throughs
    /// count from 0, `super::read_through`).
    pub(crate) fn clear(&self, pid: u64) {
        let (word, shift) = self.word(pid);
        if (word.load(Ordering::Relaxed) >> shift) & 3 != 0 {
            word.fetch_and(!(3 << shift), Ordering::Relaxed);
        }
    }

    /// `pid`'s count.
    pub(crate) fn get(&self, pid: u64) -> u64 {
        let (word, shift) = self.word(pid);
        (word.load(Ordering::Relaxed) >> shift) & 3
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_rise_and_fall() {
        let u = UseCounts::new();
        for pid in [0, 1, 31, 32, 5000, 1 << 20] {
            assert!(u.pass(pid), "a fresh count is 0");
            u.touch(pid, SCAN);
            assert_eq!(u.get(pid), 1);
            u.touch(pid, POINT);
            u.touch(pid, SCAN);
            assert_eq!(u.get(pid), 3);
            assert!(!u.pass(pid) && !u.pass(pid) && !u.pass(pid));
            assert!(u.pass(pid));
            assert_eq!(u.get(pid + 1), 0, "neighbours untouched");
        }
    }

    #[test]
    fn clear_zeroes_one_count() {
        let u = UseCounts::new();
        for pid in [0, 31, 32, 5000] {
            u.touch(pid, SCAN);
            u.touch(pid + 1, POINT);
            u.clear(pid);
            assert_eq!((u.get(pid), u.get(pid + 1)), (0, POINT));
            u.clear(pid + 1);
            assert_eq!(u.get(pid + 1), 0);
        }
    }
}
