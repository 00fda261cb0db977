//! Registered snapshots and the GC low watermark.
//!
//! Every live snapshot (transactions included) holds a *slot* with its
//! timestamp. The low watermark is the minimum over the slots and the read
//! timestamp; consolidation may drop what no snapshot at or above it can see.
//!
//! Slots live in segments of [`SEGMENT`] cache-padded atomics; a begin claims
//! a free one by CAS, starting where the thread's last snapshot was (so
//! threads do not contend on one line), and more segments are chained on when
//! all are busy. No lock is taken on either path.
//!
//! The registration race (a snapshot reads the read timestamp, a GC computes
//! a watermark above it before the slot is written) is closed by a
//! *proposal*: the GC publishes its candidate in `proposed`, then scans the
//! slots again; a begin writes its slot, then checks `proposed` and moves its
//! timestamp up if it is below. With sequentially consistent accesses, either
//! the GC's second scan sees the slot or the begin sees the proposal. See
//! `design/mvcc.md`, "GC watermark".
//!
//! Time travel ([`Registry::pin_at`]) registers a snapshot at an older
//! timestamp by the same handshake, except that it cannot move up: if the
//! proposal is above its timestamp it gives the slot back and fails. The
//! proposal never goes down and every watermark used is at or below the
//! proposal of its time, so a pin that saw a proposal at or below its
//! timestamp is safe from every GC, past and future. The horizons of
//! `super::horizon` enter as bounds of the candidate: the retention horizon
//! caps it, and slots below the age floor are ignored (those snapshots'
//! reads then fail, see `crate::Error::SnapshotTooOld`), except *held*
//! ones ([`Registry::pin_held`]): a checkpoint's, whose images must hold
//! every version its timestamp sees however long it takes. A held slot
//! carries [`HELD`] beside its timestamp; every access is the same as an
//! ordinary slot's, so the handshake is unchanged.

use crossbeam_utils::CachePadded;

use super::horizon::Bounds;
use super::oracle::Oracle;
use crate::sync::{fence, AtomicU64, OnceSlot, Ordering::SeqCst};

#[cfg(not(loom))]
const SEGMENT: usize = 64;
#[cfg(loom)]
const SEGMENT: usize = 4;

/// A free slot.
const FREE: u64 = u64::MAX;

/// The flag of a held slot (no timestamp reaches it: 2^63).
const HELD: u64 = 1 << 63;

/// A slot's timestamp, and whether the age floor passes over it; `None`
/// if free.
fn decode(slot: u64) -> Option<(u64, bool)> {
    (slot != FREE).then_some((slot & !HELD, slot & HELD == 0))
}

struct SlotSegment {
    slots: Box<[CachePadded<AtomicU64>]>,
    next: OnceSlot<SlotSegment>,
}

impl SlotSegment {
    fn new() -> Self {
        SlotSegment {
            slots: (0..SEGMENT).map(|_| CachePadded::new(AtomicU64::new(FREE))).collect(),
            next: OnceSlot::new(),
        }
    }
}

pub(crate) struct Registry {
    first: SlotSegment,
    proposed: CachePadded<AtomicU64>,
}

mod hint_slot {
    // Not `const`-initialised: loom's `thread_local!` does not take that form.
    #![allow(clippy::missing_const_for_thread_local)]
    crate::sync::thread_local! {
        /// Where this thread's last snapshot slot was: the first place to look.
        pub(super) static HINT: std::cell::Cell<usize> = std::cell::Cell::new(usize::MAX);
    }
}
use hint_slot::HINT;

fn hint() -> usize {
    let h = HINT.with(|h| h.get());
    if h != usize::MAX {
        return h;
    }
    // First snapshot on this thread: spread threads over the segment.
    #[cfg(not(loom))]
    let h = {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        NEXT.fetch_add(7, std::sync::atomic::Ordering::Relaxed) % SEGMENT
    };
    // (Under loom a static atomic would outlive the model: every thread
    // starts at slot 0, the most contended start, which suits a checker.)
    #[cfg(loom)]
    let h = 0;
    HINT.with(|c| c.set(h));
    h
}

fn set_hint(i: usize) {
    HINT.with(|h| h.set(i));
}

/// A registered snapshot: the slot that holds it, and its timestamp.
///
/// Not a guard: a `Pin` is owned by something that can reach the registry
/// when it is dropped (the handles' `Arc` of the engine, or a [`ScopedPin`])
/// and gives it back with [`Registry::unpin`]. A pin never given back holds
/// the GC watermark forever, hence `must_use`.
#[must_use]
#[derive(Debug)]
pub(crate) struct Pin {
    slot: usize,
    ts: u64,
}

impl Pin {
    /// The snapshot's timestamp.
    #[inline]
    pub(crate) fn ts(&self) -> u64 {
        self.ts
    }
}

/// A [`Pin`] that unregisters itself when dropped, for snapshots that live
/// within one borrow of the registry (a checkpoint's, a listing's).
pub(crate) struct ScopedPin<'r> {
    registry: &'r Registry,
    pin: Option<Pin>,
}

impl ScopedPin<'_> {
    /// The snapshot's timestamp.
    pub(crate) fn ts(&self) -> u64 {
        self.pin.as_ref().map_or(0, Pin::ts)
    }
}

impl Drop for ScopedPin<'_> {
    fn drop(&mut self) {
        if let Some(pin) = self.pin.take() {
            self.registry.unpin(pin);
        }
    }
}

impl Registry {
    /// A registry whose oldest readable timestamp is `floor` (the
    /// checkpoint a database was recovered from: no history below it).
    pub(crate) fn new(floor: u64) -> Self {
        Registry {
            first: SlotSegment::new(),
            proposed: CachePadded::new(AtomicU64::new(floor)),
        }
    }

    /// Register a snapshot at `ts`, at or below the read timestamp (the
    /// caller checks that). `Err(oldest)` if a GC may already have used a
    /// watermark above `ts`: `oldest` is the lowest timestamp that could
    /// still be pinned.
    pub(crate) fn pin_at(&self, ts: u64) -> Result<Pin, u64> {
        let (index, slot) = self.claim(ts);
        // As in `pin`: the slot's store, then the proposal's load.
        fence(SeqCst);
        let p = self.proposed.load(SeqCst);
        if ts >= p {
            return Ok(Pin { slot: index, ts });
        }
        slot.store(FREE, SeqCst);
        Err(p)
    }

    /// The lowest timestamp [`Registry::pin_at`] could pin now.
    pub(crate) fn oldest_readable(&self) -> u64 {
        self.proposed.load(SeqCst)
    }

    /// Register a snapshot at the current read timestamp. Give it back with
    /// [`Registry::unpin`].
    pub(crate) fn pin(&self, oracle: &Oracle) -> Pin {
        self.pin_flagged(oracle, 0)
    }

    /// [`Registry::pin`], the slot holding `flag` (0 or [`HELD`]) beside
    /// the timestamp.
    fn pin_flagged(&self, oracle: &Oracle, flag: u64) -> Pin {
        let mut ts = oracle.read_ts();
        let (index, slot) = self.claim(ts | flag);
        loop {
            // Store (the slot) then load (the proposal), against the GC's
            // store (proposal) then load (slots): the fences order each pair
            // (Dekker), so at least one side sees the other's store.
            fence(SeqCst);
            let p = self.proposed.load(SeqCst);
            if ts >= p {
                return Pin { slot: index, ts };
            }
            // A GC may be about to use `p`, which it computed without our
            // slot: move up to a read timestamp at or above it (the read
            // timestamp never trails a proposal).
            ts = oracle.read_ts();
            slot.store(ts | flag, SeqCst);
        }
    }

    /// [`Registry::pin`] for a snapshot that lives within this borrow.
    pub(crate) fn pin_scoped(&self, oracle: &Oracle) -> ScopedPin<'_> {
        ScopedPin {
            registry: self,
            pin: Some(self.pin(oracle)),
        }
    }

    /// [`Registry::pin_scoped`] for a snapshot the age floor never passes
    /// over (`Bounds::expire_below`): a checkpoint's, whose listed images
    /// must hold every version its timestamp sees, however long it takes
    /// (before 2026-12-07 a checkpoint slower than
    /// `Options::max_snapshot_age` let GC drop them).
    pub(crate) fn pin_held(&self, oracle: &Oracle) -> ScopedPin<'_> {
        ScopedPin {
            registry: self,
            pin: Some(self.pin_flagged(oracle, HELD)),
        }
    }

    /// Unregister a snapshot.
    pub(crate) fn unpin(&self, pin: Pin) {
        self.slot(pin.slot).store(FREE, SeqCst);
    }

    /// Slot number `i` (segments are only ever added, so it exists for as
    /// long as the registry if a pin named it).
    fn slot(&self, i: usize) -> &AtomicU64 {
        let mut seg = &self.first;
        for _ in 0..i / SEGMENT {
            seg = seg.next.get().expect("a pinned slot's segment exists");
        }
        &seg.slots[i % SEGMENT]
    }

    /// Claim a free slot for `ts`: its number and the slot.
    fn claim(&self, ts: u64) -> (usize, &AtomicU64) {
        let start = hint();
        let mut seg = &self.first;
        let mut base = 0;
        loop {
            for j in 0..SEGMENT {
                let i = (start + j) % SEGMENT;
                let slot = &*seg.slots[i];
                if slot.load(SeqCst) == FREE && slot.compare_exchange(FREE, ts, SeqCst, SeqCst).is_ok() {
                    set_hint(base + i);
                    return (base + i, slot);
                }
            }
            seg = seg.next.get_or_init(|| Box::new(SlotSegment::new()));
            base += SEGMENT;
        }
    }

    /// The oldest registered snapshot, `None` if there is none.
    pub(crate) fn oldest(&self) -> Option<u64> {
        self.oldest_from(0)
    }

    /// The oldest registered snapshot at or above `floor`, or held.
    fn oldest_from(&self, floor: u64) -> Option<u64> {
        let mut min = FREE;
        let mut seg = Some(&self.first);
        while let Some(s) = seg {
            for slot in s.slots.iter() {
                match decode(slot.load(SeqCst)) {
                    Some((ts, expires)) if ts >= floor || !expires => min = min.min(ts),
                    _ => {}
                }
            }
            seg = s.next.get();
        }
        (min != FREE).then_some(min)
    }

    /// The oldest registered snapshot at or above `floor` once one
    /// snapshot at the oldest timestamp is left out (the second smallest,
    /// which equals the smallest if two snapshots share it): the watermark
    /// GC would have without the oldest snapshot (`Stats`' versions it
    /// alone holds). `None` if fewer than two are registered.
    pub(crate) fn second_oldest_from(&self, floor: u64) -> Option<u64> {
        let (mut min, mut second) = (FREE, FREE);
        let mut seg = Some(&self.first);
        while let Some(s) = seg {
            for slot in s.slots.iter() {
                match decode(slot.load(SeqCst)) {
                    Some((ts, expires)) if (ts >= floor || !expires) && ts < second => {
                        second = ts.max(min);
                        min = min.min(ts);
                    }
                    _ => {}
                }
            }
            seg = s.next.get();
        }
        (second != FREE).then_some(second)
    }

    /// Registered snapshots right now.
    pub(crate) fn active(&self) -> usize {
        let mut n = 0;
        let mut seg = Some(&self.first);
        while let Some(s) = seg {
            n += s.slots.iter().filter(|x| x.load(SeqCst) != FREE).count();
            seg = s.next.get();
        }
        n
    }

    /// A watermark safe for GC: at or below every snapshot registered now or
    /// registering concurrently (but those below `bounds.expire_below` not
    /// held), at
    /// or below `bounds.retain_from`, and at or below the read timestamp.
    pub(crate) fn low_watermark(&self, oracle: &Oracle, bounds: Bounds) -> u64 {
        let floor = bounds.expire_below;
        let candidate = oracle
            .read_ts()
            .min(bounds.retain_from)
            .min(self.oldest_from(floor).unwrap_or(FREE));
        self.proposed.fetch_max(candidate, SeqCst);
        fence(SeqCst);
        candidate.min(self.oldest_from(floor).unwrap_or(FREE))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The age floor passes over an ordinary pin below it, never over a
    /// held one; both count as registered snapshots.
    #[test]
    fn the_age_floor_passes_over_pins_but_not_held_ones() {
        let r = Registry::new(0);
        let oracle = Oracle::new(10);
        let bounds = |expire_below| Bounds {
            retain_from: u64::MAX,
            expire_below,
            keep_changes_after: u64::MAX,
        };
        let pin = r.pin(&oracle);
        assert_eq!(r.low_watermark(&oracle, bounds(0)), 10);
        oracle.advance_to(20);
        assert_eq!(
            r.low_watermark(&oracle, bounds(15)),
            20,
            "an expired pin is passed over"
        );
        let held = r.pin_held(&oracle);
        assert_eq!(held.ts(), 20);
        oracle.advance_to(30);
        assert_eq!(r.low_watermark(&oracle, bounds(25)), 20, "a held pin is not");
        assert_eq!((r.active(), r.oldest(), r.second_oldest_from(25)), (2, Some(10), None));
        assert_eq!(r.second_oldest_from(0), Some(20));
        drop(held);
        r.unpin(pin);
        assert_eq!(r.low_watermark(&oracle, bounds(25)), 30);
        assert_eq!(r.active(), 0);
    }

    #[test]
    fn second_oldest_leaves_out_one_oldest() {
        let r = Registry::new(0);
        assert_eq!(r.second_oldest_from(0), None);
        let a = r.pin_at(9).unwrap();
        assert_eq!(r.second_oldest_from(0), None);
        let b = r.pin_at(4).unwrap();
        let c = r.pin_at(7).unwrap();
        assert_eq!(r.second_oldest_from(0), Some(7));
        assert_eq!(r.second_oldest_from(5), Some(9));
        let d = r.pin_at(4).unwrap();
        assert_eq!(r.second_oldest_from(0), Some(4));
        for p in [a, b, c, d] {
            r.unpin(p);
        }
        assert_eq!(r.second_oldest_from(0), None);
    }
}
