//! The commit protocol (`design/mvcc.md`, "Commit"): validate the write set
//! against the snapshot (first committer wins), take a commit timestamp,
//! validate a serializable transaction's reads (section 10), install the
//! versions, log them, and publish.

use super::Engine;
use crate::bwtree::PrepareError;
use crate::mvcc::latches::Latches;
use crate::mvcc::readset::Reads;
use crate::mvcc::WriteSet;
use crate::{ConflictReason, Error, Result};

impl Engine {
    /// Commit `writes` made on the snapshot at `snapshot_ts`; returns the
    /// commit timestamp, once every snapshot taken afterwards sees the
    /// commit. `writes` must not be empty. `reads`: a serializable
    /// transaction's read set, validated after the timestamp is taken.
    ///
    /// Fails with [`Error::Conflict`] if a transaction that committed after
    /// `snapshot_ts` wrote one of the keys (or, with `reads`, a key read or
    /// a key in a range scanned); then nothing is installed.
    pub(crate) fn commit(&self, snapshot_ts: u64, writes: &WriteSet, reads: Option<&Reads>) -> Result<u64> {
        debug_assert!(!writes.is_empty());
        let log = self.store.as_ref().filter(|s| s.logs());
        if let Some(store) = log {
            // A poisoned log takes no more commits.
            store.check()?;
        }
        if let Some(pages) = &self.pages {
            // A failed page write or sync poisons the database like the log's.
            pages.check()?;
        }
        // 1. Latch the write set's stripes (ascending: no deadlock).
        let mut held = self.latches.lock(Latches::stripes(writes.keys().map(|k| &k[..])));
        // 2. Validate: no write newer than our snapshot. A version installed
        //    by a commit still being published counts: that commit won. The
        //    leaves found are kept (by the tree, under one epoch guard) for
        //    step 4.
        let prepared = match self.tree.prepare(writes.iter(), snapshot_ts) {
            Ok(prepared) => prepared,
            Err(PrepareError::Page(e)) => {
                drop(held);
                return Err(e);
            }
            Err(PrepareError::Conflict(conflict)) => {
                drop(held);
                self.counters.conflicts.add(1);
                return Err(Error::Conflict {
                    key: conflict.key.clone(),
                    winner: conflict.winner,
                    snapshot: snapshot_ts,
                    reason: Box::new(ConflictReason::Write),
                });
            }
        };
        // 3. Commit timestamp: one fetch_add. It is above the read timestamp
        //    and so above every GC watermark.
        let mut commit = self.oracle.allocate();
        // 3a. Serializable: wait until every earlier commit is installed,
        //     then validate the reads against the versions committed in
        //     (snapshot, commit). A refused commit installs nothing, logs an
        //     empty record (the log has no gaps) and publishes its
        //     timestamp like any other, then returns the conflict.
        let validated = match reads {
            Some(reads) => self.validate_reads(snapshot_ts, commit.ts, writes, reads),
            None => Ok(()),
        };
        // 4. Install every version at that timestamp, on the leaf validation
        //    found if it did not change since (else by a fresh descent), and
        //    mark the timestamp installed (one atomic instruction; what a
        //    serializable committer waits for in 3a). Consolidation of the
        //    leaves this fills up waits until after publication (step 7):
        //    later commits wait for this one.
        let installed = match validated {
            Ok(()) => {
                // Unlatching stamps the stripes with the commit timestamp.
                held.stamp(commit.ts);
                Some(prepared.install(commit.ts))
            }
            Err(_) => {
                drop(prepared);
                None
            }
        };
        commit.mark_installed();
        // 5. Durable databases: append the log record (a memory copy into
        //    the pending buffer), unlatch, then wait for the log (group
        //    commit: one sync covers every committer waiting), holding no
        //    lock.
        let appended = log.map(|store| match installed {
            Some(_) => store.log(commit.ts, writes.iter()),
            None => store.log(commit.ts, std::iter::empty()),
        });
        drop(held);
        let logged = match (log, appended) {
            (Some(store), Some(Ok(()))) => {
                let r = store.wait(commit.ts);
                if r.is_ok() {
                    // Every commit the log holds is installed: the whole
                    // group becomes visible at once, not one by one.
                    self.oracle.advance_to(store.logged_ts());
                }
                r
            }
            (_, Some(Err(e))) => Err(e),
            _ => Ok(()),
        };
        // 6. Publish: visible once every earlier commit is. Done even if the
        //    log failed (later commits wait on it); the error is returned,
        //    the database is poisoned, and recovery keeps the commit whole
        //    or drops it whole.
        let ts = commit.publish();
        // 7. Consolidate the leaves step 4 listed, off the window in which
        //    later commits wait for this one.
        if let Some(installed) = installed {
            installed.consolidate();
        }
        logged?;
        if let Err(e) = validated {
            if e.is_conflict() {
                self.counters.conflicts.add(1);
            }
            return Err(e);
        }
        self.counters.commits.add(1);
        self.counters.versions_installed.add(writes.len() as u64);
        // 8. Every 64th timestamp refreshes the GC watermark.
        self.after_commit(ts);
        // 9. With a cache size: past 1.25 x the budget, the committer helps
        //    the evictor (`Engine::help_evict`), so memory stays bounded
        //    under a write burst.
        if self.cache_size.is_some() {
            self.help_evict();
        }
        Ok(ts)
    }
}
