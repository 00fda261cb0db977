//! The time horizons of garbage collection: `Options::history_retention`
//! and `Options::max_snapshot_age`, turned from durations into timestamps.
//!
//! # Definitions
//! - `read_ts(t)`: the oracle's read timestamp at time `t`. It never goes
//!   down, so a snapshot pinned at time `p` has `ts = read_ts(p)`.
//! - A *sample* is a pair `(t, read_ts(t))`, taken whenever the watermark is
//!   refreshed (every 64 commits and every GC sweep), at most one per
//!   `spacing` (1/4096 of the shortest window, at least 10 ms). Older
//!   samples are thinned (each time 1,024 more were taken): one of age `a`
//!   is kept only `max(spacing, a / 1024)` after the one before it, so their number grows with the log of
//!   the longest window, not with it (before 2026-12-08 the spacing was
//!   1/4096 of the longest window: a `change_retention` of
//!   `Duration::MAX` left the first sample alone, and retention and
//!   expiry stopped).
//! - The *retention horizon* for a window `R` is `read_ts(t)` of the newest
//!   sample with `t <= now - R` (the *floor*, the oldest timestamp readable
//!   at open, if none is that old; no bound when `R` is zero).
//! - Samples survive a restart in the history file written with each
//!   checkpoint (`crate::wal::hist`), their times as wall-clock
//!   milliseconds: [`Horizon::persisted`] writes them out (rounded up),
//!   [`Horizon::restored`] takes them back in at open (read timestamps
//!   capped at the one recovered, since later ones may have been lost).
//! - The *age floor* for a limit `A` is `read_ts(t)` of the newest sample
//!   with `t <= now - A` (0 if none is that old, or without a limit).
//!
//! # Invariants
//! - Retention: a version that was the newest of its key at a moment
//!   `m >= now - R` is overwritten, if at all, by a commit above
//!   `read_ts(m) >= horizon`; GC at a watermark `<= horizon` keeps it.
//! - Age: a snapshot at `s < floor = read_ts(t)` was pinned before
//!   `t <= now - A`, so it is older than `A`; GC may ignore it. Both bounds
//!   err on the side of keeping more (a sample older than the exact instant).
//!
//! The samples sit behind a mutex: the sweeper takes it, the commit path
//! only tries it (and skips the refresh when it is taken). Nothing on a
//! read or a commit's critical path waits for it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::sync::{Mutex, TryLockError};

/// Samples are never closer than this.
const MIN_SPACING: Duration = Duration::from_millis(10);
/// How many samples a window is cut into (at most, plus one).
const SAMPLES_PER_WINDOW: u32 = 4096;
/// Samples are kept at least this long, so that `Stats` can give the age of
/// the oldest snapshot.
const MIN_WINDOW: Duration = Duration::from_secs(60);
/// An old sample is kept only if it is at least its age over this after
/// the one before it ([`thin`]).
const THIN: u32 = 1024;
/// Samples are thinned once this many more were taken since the last
/// thinning left them.
const THIN_EVERY: usize = 1024;

/// The samples, oldest first, and when to thin them next: plain data under
/// `Horizon::samples`' mutex (no atomic: whether a refresh takes a sample
/// depends on the clock, and an atomic there would make a loom model's
/// executions differ from run to run).
struct Samples {
    q: VecDeque<(Instant, u64)>,
    /// Thin once there are this many.
    thin_at: usize,
}

impl std::ops::Deref for Samples {
    type Target = VecDeque<(Instant, u64)>;
    fn deref(&self) -> &Self::Target {
        &self.q
    }
}

impl std::ops::DerefMut for Samples {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.q
    }
}

/// What a refresh of the GC watermark must respect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The watermark stays at or below this (`u64::MAX`: no retention).
    pub(crate) retain_from: u64,
    /// Snapshots below this are expired: GC does not wait for them (0: none).
    pub(crate) expire_below: u64,
    /// Log segments holding a commit above this are kept for the change
    /// stream (`u64::MAX`: no change retention).
    pub(crate) keep_changes_after: u64,
}

/// The samples and the two windows.
pub(crate) struct Horizon {
    retention: Duration,
    max_age: Option<Duration>,
    change_retention: Duration,
    window: Duration,
    spacing: Duration,
    samples: Mutex<Samples>,
    /// The retention horizon while no sample is old enough.
    floor: u64,
}

impl Horizon {
    /// Horizons for `retention`, `max_age` and `change_retention`, with a
    /// first sample of `read_ts` (the read timestamp at open), also the
    /// floor unless [`Horizon::restored`] says otherwise.
    pub(crate) fn new(
        retention: Duration,
        max_age: Option<Duration>,
        change_retention: Duration,
        read_ts: u64,
    ) -> Self {
        let window = retention
            .max(max_age.unwrap_or_default())
            .max(change_retention)
            .max(MIN_WINDOW);
        let shortest = [retention, max_age.unwrap_or_default(), change_retention]
            .into_iter()
            .filter(|w| !w.is_zero())
            .fold(MIN_WINDOW, Duration::min);
        Horizon {
            retention,
            max_age,
            change_retention,
            window,
            spacing: (shortest / SAMPLES_PER_WINDOW).max(MIN_SPACING),
            samples: Mutex::new(Samples {
                q: VecDeque::from([(Instant::now(), read_ts)]),
                thin_at: THIN_EVERY,
            }),
            floor: read_ts,
        }
    }

    /// After a restart: `floor` is the oldest readable timestamp (the
    /// horizon until a sample is old enough), and `persisted` the samples
    /// of an earlier run, `(wall-clock ms, read_ts)`, older than every
    /// sample of this run. Their read timestamps are capped at the one at
    /// open: commits above it were lost, and their timestamps are reused.
    pub(crate) fn restored(mut self, floor: u64, persisted: &[(u64, u64)]) -> Self {
        let samples = self.samples.get_mut().unwrap_or_else(|p| p.into_inner());
        let (open, at_open) = samples[0];
        // The two clocks read together, so that a pause since `new` does
        // not shift the restored samples.
        let (now, wall) = (Instant::now(), wall_ms());
        let mut older: Vec<(Instant, u64)> = persisted
            .iter()
            .filter_map(|&(ms, ts)| {
                let t = now.checked_sub(Duration::from_millis(wall.saturating_sub(ms)))?;
                Some((t, ts.min(at_open)))
            })
            .collect();
        older.retain(|&(t, _)| t < open);
        for s in older.into_iter().rev() {
            samples.push_front(s);
        }
        self.floor = floor;
        self
    }

    /// The samples as `(wall-clock ms, read_ts)`, oldest first, for the
    /// history file. Each time is rounded up (a later time only keeps
    /// more history after a restart).
    pub(crate) fn persisted(&self) -> Vec<(u64, u64)> {
        let samples = crate::sync::lock(&self.samples);
        let (now, wall) = (Instant::now(), wall_ms());
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(samples.len());
        for &(t, ts) in samples.iter() {
            let ms = wall.saturating_sub(now.duration_since(t).as_millis() as u64) + 1;
            let ms = out.last().map_or(ms, |&(last, _)| ms.max(last + 1));
            out.push((ms, ts));
        }
        out
    }

    /// Sample `read_ts` now and return the bounds a refresh must respect.
    /// With `wait` false (the commit path), `None` if another thread holds
    /// the samples: skip this refresh.
    pub(crate) fn bounds(&self, read_ts: u64, wait: bool) -> Option<Bounds> {
        self.bounds_at(read_ts, wait, Instant::now)
    }

    /// [`Horizon::bounds`] with the time read by `clock` once the samples
    /// are held (tests pass a fixed time).
    fn bounds_at(&self, read_ts: u64, wait: bool, clock: impl FnOnce() -> Instant) -> Option<Bounds> {
        let mut samples = match self.samples.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock) if !wait => return None,
            Err(TryLockError::WouldBlock) => crate::sync::lock(&self.samples),
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        };
        let now = clock();
        if samples
            .back()
            .is_none_or(|&(t, _)| now.duration_since(t) >= self.spacing)
        {
            samples.push_back((now, read_ts));
            // Not at every multiple of a count (a thinned set just below
            // one would be thinned again at almost every sample).
            if samples.len() >= samples.thin_at {
                thin(&mut samples, now, self.spacing);
                samples.thin_at = samples.len() + THIN_EVERY;
            }
        }
        // Drop samples older than the newest one at or before the window's start.
        if let Some(start) = now.checked_sub(self.window) {
            while samples.len() > 1 && samples[1].0 <= start {
                samples.pop_front();
            }
        }
        let retain_from = if self.retention.is_zero() {
            u64::MAX
        } else {
            at_or_before(&samples, now.checked_sub(self.retention)).unwrap_or(self.floor)
        };
        let expire_below = match self.max_age {
            Some(age) => at_or_before(&samples, now.checked_sub(age)).unwrap_or(0),
            None => 0,
        };
        // Commits before open have no time: keep them until the database
        // has been open for the whole window.
        let keep_changes_after = if self.change_retention.is_zero() {
            u64::MAX
        } else {
            at_or_before(&samples, now.checked_sub(self.change_retention)).unwrap_or(0)
        };
        Some(Bounds {
            retain_from,
            expire_below,
            keep_changes_after,
        })
    }

    /// Whether `Options::history_retention` is set.
    pub(crate) fn retains_history(&self) -> bool {
        !self.retention.is_zero()
    }

    /// The retention horizon and the read timestamps a quarter, half and
    /// three quarters of the window ago (each from the samples, as the
    /// horizon is), for the checkpoints a version-1 database keeps
    /// (`crate::wal::store::kept`); empty without retention.
    pub(crate) fn retention_marks(&self) -> Vec<u64> {
        if self.retention.is_zero() {
            return Vec::new();
        }
        let samples = crate::sync::lock(&self.samples);
        let now = Instant::now();
        (1..=4)
            .map(|i| at_or_before(&samples, now.checked_sub(self.retention / 4 * i)).unwrap_or(self.floor))
            .collect()
    }

    /// About how long ago a snapshot at `ts` was pinned: the time since the
    /// last sample whose read timestamp was still below `ts` (the pin came
    /// after it), so at most one sampling interval too long (or a 1,024th
    /// of its age, among thinned samples); for a snapshot
    /// older than every kept sample, the time since the oldest (so at least
    /// the sample window). `None` if the samples are busy or none has
    /// reached `ts` yet (a snapshot younger than the last sample).
    pub(crate) fn age_of(&self, ts: u64) -> Option<std::time::Duration> {
        let samples = self.samples.try_lock().ok()?;
        let i = samples.iter().position(|&(_, r)| r >= ts)?;
        Some(samples[i.saturating_sub(1)].0.elapsed())
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Thin `samples`: keep the oldest and the newest, and between them each
/// one at least `max(spacing, its age / THIN)` after the last one kept.
/// Every lookup ([`at_or_before`]) then finds the same sample or an older
/// one, which errs on the side of keeping more (history, snapshots, log),
/// by at most about a `THIN`th of the window it looks back.
fn thin(samples: &mut VecDeque<(Instant, u64)>, now: Instant, spacing: Duration) {
    let n = samples.len();
    if n < 3 {
        return;
    }
    let mut kept = VecDeque::with_capacity(n);
    kept.push_back(samples[0]);
    for &(t, r) in samples.iter().skip(1).take(n - 2) {
        let gap = (now.saturating_duration_since(t) / THIN).max(spacing);
        if kept
            .back()
            .is_some_and(|&(last, _)| t.saturating_duration_since(last) >= gap)
        {
            kept.push_back((t, r));
        }
    }
    kept.push_back(samples[n - 1]);
    *samples = kept;
}

/// The read timestamp of the newest sample taken at or before `t`.
/// (Samples are in time order: a binary search.)
fn at_or_before(samples: &VecDeque<(Instant, u64)>, t: Option<Instant>) -> Option<u64> {
    let t = t?;
    let after = samples.partition_point(|&(s, _)| s <= t);
    after.checked_sub(1).map(|i| samples[i].1)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn no_windows_bound_nothing() {
        let h = Horizon::new(Duration::ZERO, None, Duration::ZERO, 5);
        assert_eq!(
            h.bounds(9, true),
            Some(Bounds {
                retain_from: u64::MAX,
                expire_below: 0,
                keep_changes_after: u64::MAX,
            })
        );
    }

    /// The time of the sample `Horizon::new` took, and times after it.
    fn opened(h: &Horizon) -> impl Fn(u64) -> Instant {
        let open = h.samples.lock().unwrap()[0].0;
        move |ms| open + Duration::from_millis(ms)
    }

    #[test]
    fn retention_keeps_the_read_ts_of_the_window_start() {
        let h = Horizon::new(Duration::from_millis(30), None, Duration::ZERO, 5);
        let at = opened(&h);
        // Within the first 30 ms nothing is old enough: the first sample
        // holds; 9, taken within the spacing after open, is not kept.
        assert!(h.spacing > Duration::from_millis(1));
        assert_eq!(h.bounds_at(9, true, || at(1)).unwrap().retain_from, 5);
        // The sample at open (5) is now 40 ms old; 20's is kept.
        assert_eq!(h.bounds_at(20, true, || at(40)).unwrap().retain_from, 5);
        // 20's sample is 40 ms old at 80 ms: the newest at or before 50 ms.
        assert_eq!(h.bounds_at(30, true, || at(80)).unwrap().retain_from, 20);
    }

    #[test]
    fn restored_samples_bound_the_horizon_after_a_restart() {
        let wall = wall_ms();
        // An earlier run: read_ts 10 an hour ago, 20 ten minutes ago, 99
        // (lost in a crash: capped at 50, the timestamp recovered) just now.
        let persisted = [(wall - 3_600_000, 10), (wall - 600_000, 20), (wall - 5, 99)];
        let h = Horizon::new(Duration::from_secs(1800), None, Duration::ZERO, 50).restored(5, &persisted);
        assert_eq!(h.bounds(50, true).unwrap().retain_from, 10);
        let back = h.persisted();
        assert!(back.windows(2).all(|w| w[0].0 < w[1].0), "{back:?}");
        assert_eq!(back.iter().map(|s| s.1).collect::<Vec<_>>()[..3], [10, 20, 50]);
        // Within the time this test took (a loaded machine may pause it).
        assert!(
            back[1].0 >= wall - 600_000 && back[1].0 <= wall_ms() - 600_000 + 1,
            "{back:?}"
        );
        let h = Horizon::new(Duration::from_secs(300), None, Duration::ZERO, 50).restored(5, &persisted);
        assert_eq!(h.bounds(50, true).unwrap().retain_from, 20);
        // Nothing old enough: the floor, not the read timestamp at open.
        let h = Horizon::new(Duration::from_secs(60), None, Duration::ZERO, 50).restored(5, &[]);
        assert_eq!(h.bounds(50, true).unwrap().retain_from, 5);
    }

    /// `restored` reads both clocks together: a pause between `new` and
    /// `restored` (recovery runs between them) does not move the restored
    /// samples in time. (Anchored at the `Instant` taken by `new` against
    /// the wall clock read later, every restored sample comes out older by
    /// the pause, and this fails: 499 ms off.)
    #[test]
    fn restored_samples_keep_their_times_across_a_pause_at_open() {
        let wall = wall_ms();
        let persisted = [(wall - 600_000, 20)];
        let h = Horizon::new(Duration::from_secs(300), None, Duration::ZERO, 50);
        std::thread::sleep(Duration::from_millis(500));
        let back = h.restored(5, &persisted).persisted();
        assert_eq!(back[0].1, 20, "{back:?}");
        // Rounded up by a millisecond; the slack is for a loaded machine
        // pausing the test between two clock reads (the bug is off by the
        // whole pause).
        let off = back[0].0 as i64 - (wall - 600_000) as i64;
        assert!(off.abs() < 250, "{back:?}: {off} ms off");
    }

    /// A window far longer than another (here `change_retention` of
    /// `Duration::MAX`) no longer spaces the samples out past the shorter
    /// one's use: retention keeps 50 ms of history, not everything since
    /// open, and the age limit expires. (Before 2026-12-08 the spacing was
    /// about 142 million years: no sample after open, and both stopped.)
    #[test]
    fn a_very_long_window_leaves_the_short_ones_working() {
        let h = Horizon::new(
            Duration::from_millis(50),
            Some(Duration::from_millis(50)),
            Duration::MAX,
            5,
        );
        let at = opened(&h);
        assert_eq!(h.spacing, MIN_SPACING);
        for (ms, ts) in [(20, 10), (40, 20), (60, 25)] {
            h.bounds_at(ts, true, || at(ms)).unwrap();
        }
        let b = h.bounds_at(30, true, || at(100)).unwrap();
        assert_eq!((b.retain_from, b.expire_below), (20, 20));
        assert_eq!(b.keep_changes_after, 0, "nothing is that old");
    }

    /// Samples over a long run stay few (thinned by their age), and every
    /// bound is the exact one or older: never newer.
    #[test]
    fn thinned_samples_stay_few_and_bounds_only_err_old() {
        let h = Horizon::new(Duration::from_secs(1), Some(Duration::from_secs(600)), Duration::MAX, 0);
        let at = opened(&h);
        // A sample every 10 ms for 2 hours; read_ts = the ms since open.
        let end = 2 * 3600 * 1000;
        let mut ms = 0;
        while ms < end {
            ms += 10;
            h.bounds_at(ms, true, || at(ms)).unwrap();
        }
        let len = h.samples.lock().unwrap().len();
        assert!(len < 12_000, "{len} samples after 720,000");
        let b = h.bounds_at(end, true, || at(end)).unwrap();
        // Exact: end - 1 s and end - 600 s (read_ts is in ms).
        assert!(
            b.retain_from <= end - 1_000 && b.retain_from >= end - 1_000 - 20,
            "{b:?}"
        );
        assert!(
            b.expire_below <= end - 600_000 && b.expire_below >= end - 600_000 - 1_000,
            "{b:?}"
        );
    }

    #[test]
    fn age_limit_expires_snapshots_below_the_floor() {
        let h = Horizon::new(
            Duration::ZERO,
            Some(Duration::from_millis(20)),
            Duration::from_millis(20),
            5,
        );
        let at = opened(&h);
        assert!(h.spacing > Duration::from_millis(1));
        let b = h.bounds_at(7, true, || at(1)).unwrap();
        assert_eq!((b.expire_below, b.keep_changes_after), (0, 0));
        let b = h.bounds_at(50, true, || at(30)).unwrap();
        assert_eq!((b.expire_below, b.keep_changes_after), (5, 5));
        std::thread::sleep(Duration::from_millis(20));
        assert!(h.age_of(5).unwrap() >= Duration::from_millis(20));
    }
}
