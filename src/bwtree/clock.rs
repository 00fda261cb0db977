//! The eviction clock's use counts (`design/storage.md` §5.1): two bits per
//! page id, packed 32 to a word, in lazily grown segments (like the mapping
//! table's, so page ids need no fixed cap). The same structure with five
//! bits a count ([`ThroughCounts`], 12 to a word) counts evicted leaves'
//! read-throughs for `super::read_through`'s admission.
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

type Segment = Box<[AtomicU64]>;

/// Counts of `BITS` bits by page id, `64 / BITS` to a word. A segment is
/// set once (`OnceSlot`: racing growers each build one, one
/// compare-and-swap keeps it) and lives as long as this.
pub(crate) struct Counts<const BITS: u32> {
    segments: Box<[OnceSlot<Segment>]>,
}

/// The clock's use counts: 2 bits, at most [`POINT`].
pub(crate) type UseCounts = Counts<2>;

/// Evicted leaves' read-through counts (`super::read_through`): 5 bits,
/// at most 31.
pub(crate) type ThroughCounts = Counts<5>;

/// Segment and offset of word `w` (segment `s` holds `BASE << s` words).
#[inline]
fn locate(w: u64) -> (usize, usize) {
    let n = w + BASE;
    let seg = (63 - n.leading_zeros() - BASE_SHIFT) as usize;
    (seg, (n - (BASE << seg)) as usize)
}

impl<const BITS: u32> Counts<BITS> {
    const PER_WORD: u64 = 64 / BITS as u64;
    const MASK: u64 = (1 << BITS) - 1;

    pub(crate) fn new() -> Self {
        Counts {
            segments: (0..SEGMENTS).map(|_| OnceSlot::new()).collect(),
        }
    }

    /// The word holding `pid`'s count, and the count's shift in it.
    #[inline]
    fn word(&self, pid: u64) -> (&AtomicU64, u32) {
        let (seg, off) = locate(pid / Self::PER_WORD);
        let segment = match self.segments[seg].get() {
            Some(segment) => segment,
            None => self.grow(seg),
        };
        (&segment[off], ((pid % Self::PER_WORD) * u64::from(BITS)) as u32)
    }

    #[cold]
    fn grow(&self, seg: usize) -> &Segment {
        let len = (BASE as usize) << seg;
        self.segments[seg].get_or_init(|| Box::new((0..len).map(|_| AtomicU64::new(0)).collect()))
    }

    /// Raise `pid`'s count to at least `level` ([`POINT`] or [`SCAN`];
    /// at most the count's largest value); no write if it is there already
    /// (the common case for a hot page).
    #[inline]
    pub(crate) fn touch(&self, pid: u64, level: u64) {
        let level = level.min(Self::MASK);
        let (word, shift) = self.word(pid);
        let cur = (word.load(Ordering::Relaxed) >> shift) & Self::MASK;
        if cur < level {
            // Racing touches and decrements: a lost update only shifts a
            // page's eviction by one pass.
            let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                let c = (w >> shift) & Self::MASK;
                (c < level).then_some((w & !(Self::MASK << shift)) | (level << shift))
            });
        }
    }

    /// The hand passes `pid`: decrement its count; true if it was 0 (evict).
    pub(crate) fn pass(&self, pid: u64) -> bool {
        let (word, shift) = self.word(pid);
        let r = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
            let c = (w >> shift) & Self::MASK;
            (c > 0).then(|| w - (1 << shift))
        });
        r.is_err()
    }

    /// Set `pid`'s count to 0 (a leaf just evicted: its clock count, and
    /// its read-throughs, count from 0, `super::read_through`).
    pub(crate) fn clear(&self, pid: u64) {
        let (word, shift) = self.word(pid);
        if (word.load(Ordering::Relaxed) >> shift) & Self::MASK != 0 {
            word.fetch_and(!(Self::MASK << shift), Ordering::Relaxed);
        }
    }

    /// `pid`'s count.
    pub(crate) fn get(&self, pid: u64) -> u64 {
        let (word, shift) = self.word(pid);
        (word.load(Ordering::Relaxed) >> shift) & Self::MASK
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
    fn wide_counts_stay_in_their_bits() {
        let u = ThroughCounts::new();
        // 12 counts a word: pids 11 and 12 sit in different words.
        for pid in [1, 11, 12, 13, 5000] {
            u.touch(pid - 1, 5);
            u.touch(pid + 1, 9);
            for n in 1..=31 {
                u.touch(pid, n);
            }
            assert_eq!(u.get(pid), 31);
            u.touch(pid, 40);
            assert_eq!(
                (u.get(pid - 1), u.get(pid), u.get(pid + 1)),
                (5, 31, 9),
                "capped at 31, neighbours untouched"
            );
            for _ in 0..31 {
                assert!(!u.pass(pid));
            }
            assert!(u.pass(pid), "31 passes bring the count to 0");
            assert_eq!((u.get(pid - 1), u.get(pid + 1)), (5, 9));
            u.clear(pid - 1);
            u.clear(pid + 1);
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
