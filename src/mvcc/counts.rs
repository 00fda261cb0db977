//! Exact live-key counts per commit timestamp: `Snapshot::len` in
//! O(log n), never a scan.
//!
//! # Definitions
//! - `delta(t)`: the live keys commit `t` creates minus those it deletes (0
//!   for a commit refused after taking its timestamp). The commit's
//!   validation descent reads each written key's newest version under the
//!   key's latch, so it knows whether the key is live before the write.
//! - `count(t) = count(t0) + sum of delta(u) for t0 < u <= t`, where `t0` is
//!   the timestamp recovered at open and `count(t0)` what recovery counted.
//! - The *level* `L`: `count(L)` is known. The *history* holds
//!   `(t, count(t))` for every `t <= L` at which the count changed, from the
//!   newest entry at or below the *floor* on (the GC watermark, or an older
//!   registered snapshot, expired ones included).
//! - A *ring* of `RING` slots: slot `t % RING` holds `delta(t)` with tag `t`.
//!
//! # Protocol
//! 1. *Record.* Committer `t` writes `delta(t)` into its slot (value, then
//!    tag, release) after installing and before appending its log record,
//!    so before `t` can become visible (by its own publication or by a log
//!    group's). Before that it makes sure the slot's previous owner
//!    `t - RING` is folded (`L >= t - RING`), folding if it is not: the
//!    oracle made `t - RING` visible before handing out `t`, so it can be.
//! 2. *Fold* (under the fold mutex, never held while waiting for anything
//!    else): for each `t` from `L + 1` up to a visible timestamp, read the
//!    slot; its tag is `t` (a commit between allocation and recording that
//!    panicked leaves another tag: its delta counts as 0, and
//!    `anomalies` says so); add the delta; push `(t, count)` if it changed;
//!    `L = t`. Then drop history entries older than the floor's.
//! 3. *Count at `s`* (`s` visible and not below the floor): fold up to
//!    `s`, then binary-search the newest history entry at or below `s`.
//!
//! Costs: a commit writes two atomics and loads `L` (a fold about every
//! `RING` commits, of `RING` slots); a count is a mutex, the fold since the
//! last one, and a binary search. The history grows by 16 bytes per
//! count-changing commit while a snapshot holds the floor back.

use std::collections::VecDeque;

use crossbeam_utils::CachePadded;

use crate::sync::{lock, AtomicU64, Mutex, Ordering};

#[cfg(not(loom))]
const RING: u64 = 1024;
#[cfg(loom)]
const RING: u64 = 4;

/// A slot's tag before any commit used it.
const UNUSED: u64 = u64::MAX;

struct Folded {
    /// `(t, count(t))`, increasing `t`; never empty.
    history: VecDeque<(u64, u64)>,
    /// Slots found with the wrong tag (see the protocol, step 2).
    anomalies: u64,
}

pub(crate) struct Counts {
    level: CachePadded<AtomicU64>,
    deltas: Box<[AtomicU64]>,
    tags: Box<[AtomicU64]>,
    folded: Mutex<Folded>,
}

impl Counts {
    /// Counts starting at `count` live keys as of timestamp `ts`.
    pub(crate) fn new(ts: u64, count: u64) -> Self {
        Counts {
            level: CachePadded::new(AtomicU64::new(ts)),
            deltas: (0..RING).map(|_| AtomicU64::new(0)).collect(),
            tags: (0..RING).map(|_| AtomicU64::new(UNUSED)).collect(),
            folded: Mutex::new(Folded {
                history: VecDeque::from([(ts, count)]),
                anomalies: 0,
            }),
        }
    }

    /// Counts restored at open: `history` as defined above (increasing
    /// timestamps, at or below `level`, the recovered timestamp; an empty
    /// one is `(level, 0)`).
    pub(crate) fn with_history(level: u64, history: Vec<(u64, u64)>) -> Self {
        let c = Counts::new(level, 0);
        if !history.is_empty() {
            lock(&c.folded).history = history.into();
        }
        c
    }

    /// The history from the newest entry at or below `from` up to `to`
    /// (folded up to `to` already, by a count at `to`; every fold so far
    /// had its floor at or below `from`), for the history file of a
    /// checkpoint at `to`: counts at every timestamp from the first
    /// entry's on.
    pub(crate) fn history(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        let f = lock(&self.folded);
        let start = f.history.partition_point(|e| e.0 <= from).saturating_sub(1);
        let end = f.history.partition_point(|e| e.0 <= to);
        f.history.range(start..end.max(start + 1)).copied().collect()
    }

    /// Step 1: record `delta` for commit `ts` (allocated by the oracle, so
    /// `ts - RING` is visible).
    /// `floor` is asked for only if a fold is needed.
    pub(crate) fn record(&self, ts: u64, delta: i64, floor: impl FnOnce() -> u64) {
        if self.level.load(Ordering::Acquire) + RING < ts {
            self.fold(ts - RING, floor());
        }
        let i = (ts % RING) as usize;
        self.deltas[i].store(delta as u64, Ordering::Relaxed);
        self.tags[i].store(ts, Ordering::Release);
    }

    /// Step 2: fold every timestamp up to `to` (visible) into the history.
    pub(crate) fn fold(&self, to: u64, floor: u64) {
        let mut f = lock(&self.folded);
        let mut level = self.level.load(Ordering::Acquire);
        let mut count = f.history.back().map_or(0, |e| e.1);
        while level < to {
            let t = level + 1;
            let i = (t % RING) as usize;
            if self.tags[i].load(Ordering::Acquire) == t {
                let d = self.deltas[i].load(Ordering::Relaxed) as i64;
                if d != 0 {
                    count = count.saturating_add_signed(d);
                    f.history.push_back((t, count));
                }
            } else {
                f.anomalies += 1;
            }
            level = t;
            self.level.store(level, Ordering::Release);
        }
        while f.history.len() > 1 && f.history[1].0 <= floor {
            f.history.pop_front();
        }
    }

    /// Step 3: the number of live keys as of `ts`, which must be visible
    /// and at or above the floor passed to every fold so far.
    pub(crate) fn at(&self, ts: u64, floor: u64) -> u64 {
        self.fold(ts, floor.min(ts));
        let f = lock(&self.folded);
        let i = f.history.partition_point(|e| e.0 <= ts);
        f.history[i.saturating_sub(1)].1
    }

    /// Commits whose delta was not recorded (0 but after a panic mid-commit).
    #[cfg(test)]
    pub(crate) fn anomalies(&self) -> u64 {
        lock(&self.folded).anomalies
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_deltas_in_timestamp_order() {
        let c = Counts::new(10, 5);
        // Recorded out of order, folded in order.
        c.record(12, -1, || 0);
        c.record(11, 3, || 0);
        c.record(13, 0, || 0);
        assert_eq!(c.at(10, 0), 5);
        assert_eq!(c.at(11, 0), 8);
        assert_eq!(c.at(12, 0), 7);
        assert_eq!(c.at(13, 0), 7);
        assert_eq!(c.anomalies(), 0);
    }

    #[test]
    fn the_ring_wraps_and_the_floor_prunes() {
        let c = Counts::new(0, 0);
        let mut want = vec![0u64];
        for t in 1..=5 * RING {
            let d = if t % 3 == 0 { -1 } else { 1 };
            c.record(t, d, || t.saturating_sub(2 * RING));
            want.push(want[t as usize - 1].saturating_add_signed(d));
        }
        let top = 5 * RING;
        assert_eq!(c.at(top, top - 50), want[top as usize]);
        // Entries older than the floor's are gone; the floor's own stays.
        assert!(lock(&c.folded).history.len() <= 51);
        for t in top - 50..=top {
            assert_eq!(c.at(t, top - 50), want[t as usize], "at {t}");
        }
    }

    #[test]
    fn a_restored_history_answers_and_is_given_back() {
        let c = Counts::with_history(9, vec![(3, 1), (5, 2), (9, 4)]);
        c.record(10, -1, || 0);
        assert_eq!((c.at(4, 3), c.at(7, 3), c.at(9, 3), c.at(10, 3)), (1, 2, 4, 3));
        // Folded to 10 by the counts above.
        assert_eq!(c.history(6, 9), vec![(5, 2), (9, 4)]);
        assert_eq!(c.history(5, 10), vec![(5, 2), (9, 4), (10, 3)]);
    }

    #[test]
    fn a_missing_record_is_an_anomaly_not_a_wrong_count() {
        let c = Counts::new(0, 0);
        c.record(1, 1, || 0);
        c.record(3, 1, || 0);
        assert_eq!(c.at(3, 0), 2);
        assert_eq!(c.anomalies(), 1);
    }
}
