//! Reads at a snapshot timestamp, optionally merged with a transaction's
//! own writes; the read timestamp and waiting for it to pass a commit.

use std::ops::Bound;
use std::time::Duration;

use bytes::Bytes;

use super::Engine;
use crate::bwtree::Tree;
use crate::mvcc::iter::{bounds, prefix_end, Iter};
use crate::mvcc::WriteSet;
use crate::sync::Backoff;
use crate::Result;

/// A sleep of [`Engine::wait_visible_after`] once its waiter has waited
/// `waited` in all: 20 µs (well below one log sync: a conflict's retry
/// waits 10 ms at most for its winner, at this pace) for the first 20 ms,
/// then 1 ms (what is awaited is not imminent: an idle change stream's
/// tail then wakes about a thousand times a second).
fn nap(waited: Duration) -> Duration {
    if waited < Duration::from_millis(20) {
        Duration::from_micros(20)
    } else {
        Duration::from_millis(1)
    }
}

impl Engine {
    /// The read timestamp: the newest commit every new snapshot sees.
    #[inline]
    pub(crate) fn read_ts(&self) -> u64 {
        self.oracle.read_ts()
    }

    /// The exact number of live keys as of `ts` (a registered snapshot's, or
    /// at or above the oldest readable timestamp).
    pub(crate) fn live_keys(&self, ts: u64) -> u64 {
        self.counts.at(ts, self.count_floor())
    }

    /// Below this no count is asked for: the GC watermark, or an older
    /// registered snapshot (an expired one still counts).
    pub(crate) fn count_floor(&self) -> u64 {
        self.tree.gc_watermark().min(self.registry.oldest().unwrap_or(u64::MAX))
    }

    /// The tree (read-only use: diagnostics and tests).
    pub(crate) fn tree(&self) -> &Tree {
        &self.tree
    }

    /// [`crate::Db::wait_visible`]: wait until snapshots taken from now on
    /// include commit `ts` (at most `timeout`); whether they do.
    pub(crate) fn wait_visible(&self, ts: u64, timeout: Duration) -> bool {
        self.wait_visible_after(ts, timeout, Duration::ZERO)
    }

    /// [`Engine::wait_visible`] for a caller that has waited `waited`
    /// already (a change stream's earlier slices): its naps ([`nap`])
    /// lengthen with the whole wait.
    pub(crate) fn wait_visible_after(&self, ts: u64, timeout: Duration, waited: Duration) -> bool {
        let backoff = Backoff::new();
        let start = std::time::Instant::now();
        let mut polls = 0u32;
        while self.oracle.read_ts() < ts {
            // Spin and yield for about a commit's installation, then nap.
            polls = polls.saturating_add(1);
            if polls <= 32 {
                backoff.snooze();
                continue;
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return false;
            }
            std::thread::sleep(nap(waited.saturating_add(elapsed)).min(timeout - elapsed));
        }
        true
    }

    /// The value of `key` as of `ts`.
    #[inline]
    pub(crate) fn get(&self, key: &[u8], ts: u64) -> Result<Option<Bytes>> {
        self.get_in(&self.tree, key, ts)
    }

    /// The value of `key` as of `ts` in keyspace tree `tree`.
    #[inline]
    pub(crate) fn get_in(&self, tree: &Tree, key: &[u8], ts: u64) -> Result<Option<Bytes>> {
        let r = tree.get(key, ts);
        if self.cache_size.is_some() {
            self.help_read();
        }
        // A snapshot past `Options::max_snapshot_age` that GC has passed:
        // the answer may miss a version (`Tree::check_readable`).
        tree.check_readable(ts)?;
        r
    }

    /// With a cache size, after a commit: past 1.25 x the budget, the
    /// committer evicts up to one batch itself (readers fault pages in too,
    /// and on a busy machine the evictor thread alone falls behind). Before
    /// that, past an eighth of the budget in retired chains not yet freed
    /// (at least 256 KiB), it runs the epoch collector (`Engine::reclaim`),
    /// and past a quarter (at least 1 MiB) it waits for the collector
    /// ([`Engine::wait_for_reclaim`]). A page-store error poisons the store;
    /// commits report it.
    #[cold]
    pub(crate) fn help_evict(&self) {
        self.help(true);
    }

    /// [`Engine::help_evict`] for a read (a get or the start of a scan):
    /// the same collection and eviction, but never the wait. A reader adds
    /// garbage only through the evictions its fault-ins cause, which it
    /// runs the collector for; sleeping would only take it off the
    /// processor (the throttle exists for committers, whose consolidations
    /// retire chains at hundreds of megabytes a second).
    #[cold]
    pub(crate) fn help_read(&self) {
        self.help(false);
    }

    /// [`Engine::help_evict`] (`wait`) or [`Engine::help_read`].
    fn help(&self, wait: bool) {
        if let Some(budget) = self.cache_size {
            let (resident, retired) = self.paged_bytes();
            if retired > (budget / 8).max(super::tree_pages::RETIRED_FLOOR / 4) {
                self.reclaim(budget);
                if wait {
                    self.wait_for_reclaim(budget);
                }
            }
            if resident > budget + budget / 4 {
                self.before_evict();
                let _ = self.evict_trees(budget, 1);
            }
        }
    }

    /// The keys between `start` and `end` as of `ts`, merged with `writes`.
    pub(crate) fn scan<'a>(
        &'a self,
        ts: u64,
        writes: Option<&'a WriteSet>,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Iter<'a> {
        self.scan_in(&self.tree, ts, writes, start, end)
    }

    /// [`Engine::scan`] in keyspace tree `tree`.
    pub(crate) fn scan_in<'a>(
        &self,
        tree: &'a Tree,
        ts: u64,
        writes: Option<&'a WriteSet>,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Iter<'a> {
        let Some(b) = bounds(start, end) else {
            return Iter::empty();
        };
        if self.cache_size.is_some() {
            self.help_read();
        }
        let buf = writes.filter(|w| !w.is_empty()).map(|w| w.range::<[u8], _>(b));
        Iter::new(tree.range::<&[u8], _>(b, ts).checked(), buf)
    }

    /// [`Engine::scan`] over the keys that start with `prefix`.
    pub(crate) fn scan_prefix<'a>(&'a self, ts: u64, writes: Option<&'a WriteSet>, prefix: &[u8]) -> Iter<'a> {
        self.scan_prefix_in(&self.tree, ts, writes, prefix)
    }

    /// [`Engine::scan_prefix`] in keyspace tree `tree`.
    pub(crate) fn scan_prefix_in<'a>(
        &self,
        tree: &'a Tree,
        ts: u64,
        writes: Option<&'a WriteSet>,
        prefix: &[u8],
    ) -> Iter<'a> {
        match prefix_end(prefix) {
            Some(end) => self.scan_in(tree, ts, writes, Bound::Included(prefix), Bound::Excluded(&end[..])),
            None => self.scan_in(tree, ts, writes, Bound::Included(prefix), Bound::Unbounded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::nap;
    use std::time::Duration;

    /// A waiter naps 20 µs for its first 20 ms (a conflict's retry, which
    /// waits 10 ms at most, keeps that pace), then 1 ms, however long it
    /// waits. (Before: 20 µs forever, tens of thousands of wake-ups a
    /// second for an idle change-stream tail, and a `u32` count that
    /// overflowed after a day of waiting.)
    #[test]
    fn naps_lengthen_after_20_ms() {
        let ms = Duration::from_millis;
        assert_eq!(nap(Duration::ZERO), Duration::from_micros(20));
        assert_eq!(nap(ms(10)), Duration::from_micros(20));
        assert_eq!(nap(ms(20)), ms(1));
        assert_eq!(nap(Duration::MAX), ms(1));
    }
}
