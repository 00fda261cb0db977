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
//!    `t - RING` is folded (`L >= t - RING`), folding if it is not, up to
//!    the read timestamp (at least `t - RING`: the oracle made `t - RING`
//!    visible before handing out `t`), so the next fold is about `RING`
//!    commits away.
//! 2. *Fold* (under the fold mutex, never held while waiting for anything
//!    else) up to a visible timestamp `v`. At most `RING` timestamps: for
//!    each `t` from `L + 1` to `v`, read the slot; its tag is `t` (a commit
//!    between allocation and recording that panicked leaves another tag:
//!    its delta counts as 0, and `anomalies` says so; in a named keyspace's
//!    counts so does every commit into other keyspaces); add the delta;
//!    push `(t, count)` if it changed; `L = t`. More (a keyspace not
//!    written for a while): read each slot once, apply the non-zero deltas
//!    whose tags are in `L + 1..=v` in tag order, then `L = v` (after the
//!    reads: a slot is reused by `t + RING` only once `L >= t`). Then drop
//!    history entries older than the floor's.
//! 3. *Count at `s`* (`s` visible and not below the floor): fold up to
//!    `s`, then binary-search the newest history entry at or below `s`.
//! 4. *A serializable count's check* ([`Counts::changed`]): a committer
//!    with timestamp `c` that counted at its snapshot `s` compares
//!    `count(s)` with `count(c - 1)`. `c - 1` need not be visible: the
//!    committer has waited until every commit up to it is *installed*
//!    (`Oracle::wait_installed`), and each records its delta (step 1)
//!    before it marks itself installed, so the fold up to `c - 1` reads
//!    every one of them. (The level may then pass the visible timestamp;
//!    step 3 only searches below it.)
//!
//! Costs: a commit writes two atomics and loads `L` (a fold about every
//! `RING` commits, of `RING` slots); a count is a mutex, the fold since the
//! last one (at most `RING` slots read, however many commits ago), and a
//! binary search. The history grows by 16 bytes per
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
    /// `now` is asked for only if a fold is needed: `(visible, floor)`, a
    /// visible timestamp (the read timestamp) and the floor. The fold goes
    /// up to the visible one, so the next is about `RING` commits away.
    pub(crate) fn record(&self, ts: u64, delta: i64, now: impl FnOnce() -> (u64, u64)) {
        if self.level.load(Ordering::Acquire) + RING < ts {
            let (visible, floor) = now();
            self.fold(visible.max(ts - RING), floor);
        }
        let i = (ts % RING) as usize;
        self.deltas[i].store(delta as u64, Ordering::Relaxed);
        self.tags[i].store(ts, Ordering::Release);
    }

    /// Step 2: fold every timestamp up to `to` (visible) into the history.
    pub(crate) fn fold(&self, to: u64, floor: u64) {
        let mut f = lock(&self.folded);
        let level = self.level.load(Ordering::Acquire);
        if to > level + RING {
            self.fold_sparse(&mut f, level, to);
        } else {
            self.fold_each(&mut f, level, to);
        }
        while f.history.len() > 1 && f.history[1].0 <= floor {
            f.history.pop_front();
        }
    }

    /// Step 2b: fold `(level, to]`, more than `RING` timestamps, reading
    /// each slot once: only the slots whose tag is in that interval hold
    /// an unfolded delta (a slot is reused by `t + RING` only after `t` is
    /// folded), every other timestamp of it counts 0 (no record: a commit
    /// into other keyspaces). A missing record cannot be told apart here.
    fn fold_sparse(&self, f: &mut Folded, level: u64, to: u64) {
        let mut count = f.history.back().map_or(0, |e| e.1);
        let mut found: Vec<(u64, i64)> = Vec::new();
        for (tag, delta) in self.tags.iter().zip(self.deltas.iter()) {
            let t = tag.load(Ordering::Acquire);
            if t != UNUSED && t > level && t <= to {
                let d = delta.load(Ordering::Relaxed) as i64;
                if d != 0 {
                    found.push((t, d));
                }
            }
        }
        found.sort_unstable_by_key(|e| e.0);
        for (t, d) in found {
            count = count.saturating_add_signed(d);
            f.history.push_back((t, count));
        }
        self.level.store(to, Ordering::Release);
    }

    /// Step 2a: fold `(level, to]`, at most `RING` timestamps, one by one.
    fn fold_each(&self, f: &mut Folded, mut level: u64, to: u64) {
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
    }

    /// Step 3: the number of live keys as of `ts`, which must be visible
    /// and at or above the floor passed to every fold so far.
    pub(crate) fn at(&self, ts: u64, floor: u64) -> u64 {
        self.fold(ts, floor.min(ts));
        let f = lock(&self.folded);
        let i = f.history.partition_point(|e| e.0 <= ts);
        f.history[i.saturating_sub(1)].1
    }

    /// Step 4: if the count at `to` differs from the count at `from`
    /// (`from <= to`, both at or above the floor; every commit up to `to`
    /// installed), the newest timestamp in `(from, to]` at which it changed,
    /// and both counts. `None`: the same count (no commit changed it, or
    /// their changes cancel out).
    pub(crate) fn changed(&self, from: u64, to: u64, floor: u64) -> Option<(u64, u64, u64)> {
        self.fold(to, floor.min(from));
        let f = lock(&self.folded);
        let i = f.history.partition_point(|e| e.0 <= from);
        let j = f.history.partition_point(|e| e.0 <= to);
        let (was, now) = (f.history[i.saturating_sub(1)].1, f.history[j.saturating_sub(1)].1);
        (was != now).then(|| (f.history[j - 1].0, was, now))
    }

    /// The oldest timestamp the counts know: [`Counts::at`] below it would
    /// answer with this timestamp's count, which may be wrong there.
    pub(crate) fn first_ts(&self) -> u64 {
        lock(&self.folded).history.front().map_or(0, |e| e.0)
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
        c.record(12, -1, || (0, 0));
        c.record(11, 3, || (0, 0));
        c.record(13, 0, || (0, 0));
        assert_eq!(c.at(10, 0), 5);
        assert_eq!(c.at(11, 0), 8);
        assert_eq!(c.at(12, 0), 7);
        assert_eq!(c.at(13, 0), 7);
        assert_eq!(c.anomalies(), 0);
    }

    #[test]
    fn changed_names_the_last_change_and_ignores_changes_that_cancel() {
        let c = Counts::new(10, 5);
        c.record(11, 1, || (0, 0));
        c.record(12, 0, || (0, 0));
        c.record(13, -1, || (0, 0));
        c.record(14, 2, || (0, 0));
        c.record(15, 0, || (0, 0));
        // (10, 13]: +1 then -1.
        assert_eq!(c.changed(10, 13, 10), None);
        assert_eq!(c.changed(10, 12, 10), Some((11, 5, 6)));
        // Past the last change: it is named, not `to`.
        assert_eq!(c.changed(10, 15, 10), Some((14, 5, 7)));
        assert_eq!(c.changed(11, 13, 10), Some((13, 6, 5)));
        assert_eq!(c.changed(14, 15, 10), None);
        assert_eq!(c.changed(15, 15, 10), None);
        // Folded past what was asked before: the same answers.
        assert_eq!(c.changed(10, 12, 10), Some((11, 5, 6)));
        assert_eq!(c.at(13, 10), 5);
    }

    #[test]
    fn the_ring_wraps_and_the_floor_prunes() {
        let c = Counts::new(0, 0);
        let mut want = vec![0u64];
        for t in 1..=5 * RING {
            let d = if t % 3 == 0 { -1 } else { 1 };
            c.record(t, d, || (t - 1, t.saturating_sub(2 * RING)));
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
        c.record(10, -1, || (0, 0));
        assert_eq!((c.at(4, 3), c.at(7, 3), c.at(9, 3), c.at(10, 3)), (1, 2, 4, 3));
        // Folded to 10 by the counts above.
        assert_eq!(c.history(6, 9), vec![(5, 2), (9, 4)]);
        assert_eq!(c.history(5, 10), vec![(5, 2), (9, 4), (10, 3)]);
    }

    /// A keyspace's counts: records at sparse timestamps (the others are
    /// commits into other keyspaces), gaps up to three rings long, so folds
    /// go both one by one and by one read of the ring; every count agrees
    /// with the sums of the deltas.
    #[test]
    fn sparse_records_count_like_the_model() {
        use proptest::prelude::*;
        let step = (1..3 * RING, -2i64..=2, any::<bool>());
        proptest!(ProptestConfig::with_cases(300), |(steps in prop::collection::vec(step, 1..40))| {
            let c = Counts::new(0, 10);
            let mut model = std::collections::BTreeMap::from([(0u64, 10u64)]);
            let (mut t, mut count) = (0u64, 10u64);
            for (gap, d, ask) in steps {
                t += gap;
                // Every earlier timestamp is visible, this one not yet.
                c.record(t, d, || (t - 1, 0));
                count = count.saturating_add_signed(d);
                model.insert(t, count);
                if ask {
                    let q = t - gap / 2;
                    let want = *model.range(..=q).next_back().unwrap().1;
                    prop_assert_eq!(c.at(q, 0), want, "at {}", q);
                }
            }
            for (&ts, &want) in &model {
                prop_assert_eq!(c.at(ts, 0), want, "at {}", ts);
            }
        });
    }

    #[test]
    fn a_missing_record_is_an_anomaly_not_a_wrong_count() {
        let c = Counts::new(0, 0);
        c.record(1, 1, || (0, 0));
        c.record(3, 1, || (0, 0));
        assert_eq!(c.at(3, 0), 2);
        assert_eq!(c.anomalies(), 1);
    }
}
