//! Version garbage collection: keeping the tree's watermark fresh, and the
//! background sweep that collects pages nobody writes.
//!
//! Consolidation (triggered by writers on the pages they write) drops
//! versions at or below the tree's GC watermark that no snapshot can see. The
//! watermark is raised to the registry's low watermark
//! (`crate::mvcc::registry`) every [`REFRESH_EVERY`] commits (by the
//! committer that gets such a timestamp) and by every sweep. The sweep walks
//! all leaves and consolidates those holding deltas or garbage, so versions
//! on pages that stopped being written are collected too.

#[cfg(not(loom))]
use std::sync::Weak;
#[cfg(not(loom))]
use std::time::{Duration, Instant};

use super::Engine;

/// Commits between watermark refreshes on the commit path.
pub(crate) const REFRESH_EVERY: u64 = 64;

#[cfg(not(loom))]
/// A sweep may use at most about `1 / SWEEP_DUTY` of one core: after a sweep
/// that took `d`, the sweeper sleeps at least `SWEEP_DUTY * d`.
const SWEEP_DUTY: u32 = 20;

impl Engine {
    /// Raise the tree's GC watermark to the current low watermark, within
    /// the horizons of `Options::history_retention` and
    /// `Options::max_snapshot_age`. With `wait` false (the commit path), a
    /// refresh that would wait for another one's horizon samples is skipped.
    /// Returns the tree's watermark.
    pub(crate) fn refresh_watermark(&self, wait: bool) -> u64 {
        if let Some(bounds) = self.horizon.bounds(self.oracle.read_ts(), wait) {
            let wm = self.registry.low_watermark(&self.oracle, bounds);
            self.tree.set_gc_watermark(wm);
            for ks in self.ks.trees() {
                ks.tree.set_gc_watermark(wm);
            }
            // Dropped keyspaces no snapshot can read any more are forgotten.
            self.ks.collect(wm);
        }
        self.tree.gc_watermark()
    }

    /// Called by every successful committer with its commit timestamp.
    #[inline]
    pub(crate) fn after_commit(&self, ts: u64) {
        if ts.is_multiple_of(REFRESH_EVERY) {
            self.refresh_watermark(false);
        }
    }

    /// The watermark GC would use now (nothing is changed but the horizon
    /// samples): the background sweeper's test for whether to sweep.
    #[cfg(not(loom))]
    fn next_watermark(&self) -> u64 {
        match self.horizon.bounds(self.oracle.read_ts(), true) {
            Some(bounds) => self.registry.low_watermark(&self.oracle, bounds),
            None => self.tree.gc_watermark(),
        }
    }

    /// Refresh the watermark and sweep every page; returns versions dropped.
    ///
    /// The sweep also counts the versions the oldest snapshot alone holds
    /// (`Stats::versions_held_by_oldest_snapshot`): those its leaves keep
    /// that the watermark without that snapshot (the next one, or the read
    /// timestamp, within the retention horizon) would drop. An estimate,
    /// refreshed by each sweep: resident leaves only.
    pub(crate) fn sweep(&self) -> u64 {
        let wm = self.refresh_watermark(true);
        let above = self.horizon.bounds(self.oracle.read_ts(), true).map_or(wm, |b| {
            let second = self.registry.second_oldest_from(b.expire_below);
            self.oracle.read_ts().min(b.retain_from).min(second.unwrap_or(u64::MAX))
        });
        self.counters.sweeps.add(1);
        let (mut dropped, mut held) = self.tree.collect_garbage_held(wm, above.max(wm));
        for ks in self.ks.trees().iter() {
            let (d, h) = ks.tree.collect_garbage_held(wm, above.max(wm));
            dropped += d;
            held += h;
        }
        self.held_by_oldest.store(held, crate::sync::Ordering::Relaxed);
        dropped
    }

    /// [`Engine::sweep`]'s count of the versions the oldest snapshot alone
    /// holds (every keyspace's).
    pub(crate) fn held_by_oldest(&self) -> u64 {
        self.held_by_oldest.load(crate::sync::Ordering::Relaxed)
    }
}

/// Start the background sweeper. It holds only a weak reference (upgraded
/// while it works), and exits when the database closes: dropping the last
/// `Db` handle wakes it and waits for it.
#[cfg(not(loom))]
pub(crate) fn spawn_sweeper(engine: Weak<Engine>, interval: Duration) -> std::io::Result<std::thread::JoinHandle<()>> {
    // A zero interval would spin the thread on a core.
    let interval = interval.max(super::workers::MIN_WAKE);
    let handle = std::thread::Builder::new().name("bwtx-gc".into()).spawn(move || {
        let mut last = None;
        let mut sleep = interval;
        loop {
            std::thread::park_timeout(sleep);
            let Some(db) = engine.upgrade() else { return };
            if db.closing() {
                return;
            }
            let wm = db.next_watermark();
            if last == Some(wm) {
                sleep = interval;
                continue;
            }
            let t = Instant::now();
            db.sweep();
            last = Some(wm);
            sleep = interval.max(t.elapsed() * SWEEP_DUTY);
        }
    })?;
    Ok(handle)
}
