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

use std::sync::OnceLock;

use crossbeam_utils::CachePadded;

use super::oracle::Oracle;
use crate::sync::{fence, AtomicU64, Ordering::SeqCst};

#[cfg(not(loom))]
const SEGMENT: usize = 64;
#[cfg(loom)]
const SEGMENT: usize = 4;

/// A free slot.
const FREE: u64 = u64::MAX;

struct Segment {
    slots: Box<[CachePadded<AtomicU64>]>,
    next: OnceLock<Box<Segment>>,
}

impl Segment {
    fn new() -> Self {
        Segment {
            slots: (0..SEGMENT).map(|_| CachePadded::new(AtomicU64::new(FREE))).collect(),
            next: OnceLock::new(),
        }
    }
}

pub(crate) struct Registry {
    first: Segment,
    proposed: CachePadded<AtomicU64>,
}

#[cfg(not(loom))]
std::thread_local! {
    /// Where this thread's last snapshot slot was: the first place to look.
    static HINT: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

fn hint() -> usize {
    #[cfg(not(loom))]
    {
        let h = HINT.with(|h| h.get());
        if h != usize::MAX {
            return h;
        }
        // First snapshot on this thread: spread threads over the segment.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let h = NEXT.fetch_add(7, std::sync::atomic::Ordering::Relaxed) % SEGMENT;
        HINT.with(|c| c.set(h));
        h
    }
    #[cfg(loom)]
    0
}

fn set_hint(_i: usize) {
    #[cfg(not(loom))]
    HINT.with(|h| h.set(_i));
}

/// A claimed slot; dropping it unregisters the snapshot.
pub(crate) struct Pin<'r> {
    slot: &'r AtomicU64,
    ts: u64,
}

impl Pin<'_> {
    /// The snapshot's timestamp.
    #[inline]
    pub(crate) fn ts(&self) -> u64 {
        self.ts
    }
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        self.slot.store(FREE, SeqCst);
    }
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            first: Segment::new(),
            proposed: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// Register a snapshot at the current read timestamp.
    pub(crate) fn pin(&self, oracle: &Oracle) -> Pin<'_> {
        let mut ts = oracle.read_ts();
        let slot = self.claim(ts);
        loop {
            // Store (the slot) then load (the proposal), against the GC's
            // store (proposal) then load (slots): the fences order each pair
            // (Dekker), so at least one side sees the other's store.
            fence(SeqCst);
            let p = self.proposed.load(SeqCst);
            if ts >= p {
                return Pin { slot, ts };
            }
            // A GC may be about to use `p`, which it computed without our
            // slot: move up to a read timestamp at or above it (the read
            // timestamp never trails a proposal).
            ts = oracle.read_ts();
            slot.store(ts, SeqCst);
        }
    }

    fn claim(&self, ts: u64) -> &AtomicU64 {
        let start = hint();
        let mut seg = &self.first;
        let mut base = 0;
        loop {
            for j in 0..SEGMENT {
                let i = (start + j) % SEGMENT;
                let slot = &*seg.slots[i];
                if slot.load(SeqCst) == FREE && slot.compare_exchange(FREE, ts, SeqCst, SeqCst).is_ok() {
                    set_hint(base + i);
                    return slot;
                }
            }
            seg = seg.next.get_or_init(|| Box::new(Segment::new()));
            base += SEGMENT;
        }
    }

    /// The oldest registered snapshot, `None` if there is none.
    pub(crate) fn oldest(&self) -> Option<u64> {
        let mut min = FREE;
        let mut seg = Some(&self.first);
        while let Some(s) = seg {
            for slot in s.slots.iter() {
                min = min.min(slot.load(SeqCst));
            }
            seg = s.next.get().map(|b| &**b);
        }
        (min != FREE).then_some(min)
    }

    /// Registered snapshots right now.
    pub(crate) fn active(&self) -> usize {
        let mut n = 0;
        let mut seg = Some(&self.first);
        while let Some(s) = seg {
            n += s.slots.iter().filter(|x| x.load(SeqCst) != FREE).count();
            seg = s.next.get().map(|b| &**b);
        }
        n
    }

    /// A watermark safe for GC: at or below every snapshot registered now or
    /// registering concurrently, and at or below the read timestamp.
    pub(crate) fn low_watermark(&self, oracle: &Oracle) -> u64 {
        let candidate = oracle.read_ts().min(self.oldest().unwrap_or(FREE));
        self.proposed.fetch_max(candidate, SeqCst);
        fence(SeqCst);
        candidate.min(self.oldest().unwrap_or(FREE))
    }
}
