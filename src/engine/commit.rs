//! The commit protocol (`design/mvcc.md`, "Commit"): validate the write set
//! against the snapshot (first committer wins), take a commit timestamp,
//! install the versions, log them, and publish.

use super::Engine;
use crate::mvcc::latches::Latches;
use crate::mvcc::WriteSet;
use crate::{Error, Result};

impl Engine {
    /// Commit `writes` made on the snapshot at `snapshot_ts`; returns the
    /// commit timestamp, once every snapshot taken afterwards sees the
    /// commit. `writes` must not be empty.
    ///
    /// Fails with [`Error::Conflict`] if a transaction that committed after
    /// `snapshot_ts` wrote one of the keys; then nothing is installed.
    pub(crate) fn commit(&self, snapshot_ts: u64, writes: &WriteSet) -> Result<u64> {
        debug_assert!(!writes.is_empty());
        let start = snapshot_ts;
        let log = self.store.as_ref().filter(|s| s.logs());
        if let Some(store) = log {
            // A poisoned log takes no more commits.
            store.check()?;
        }
        // 1. Latch the write set's stripes (ascending: no deadlock).
        let held = self.latches.lock(Latches::stripes(writes.keys().map(|k| &k[..])));
        // 2. Validate: no write newer than our snapshot. A version installed
        //    by a commit still being published counts: that commit won. The
        //    leaves found are kept (by the tree, under one epoch guard) for
        //    step 4.
        let prepared = match self.tree.prepare(writes.iter(), start) {
            Ok(prepared) => prepared,
            Err(conflict) => {
                drop(held);
                self.counters.conflicts.add(1);
                return Err(Error::Conflict {
                    key: conflict.key.clone(),
                    winner: conflict.winner,
                    snapshot: start,
                });
            }
        };
        // 3. Commit timestamp: one fetch_add. It is above the read timestamp
        //    and so above every GC watermark.
        let ts = self.oracle.allocate();
        // 4. Install every version at that timestamp, on the leaf validation
        //    found if it did not change since (else by a fresh descent).
        //    Consolidation of the leaves this fills up waits until after
        //    publication (step 8): later commits wait for this one.
        let installed = prepared.install(ts.ts);
        // 5. Append the log record (a memory copy into the pending buffer).
        let appended = log.map(|store| store.log(ts.ts, writes.iter()));
        // 6. Unlatch, then 7. wait for the log (group commit: one sync
        //    covers every committer waiting), holding no lock.
        drop(held);
        let logged = match (log, appended) {
            (Some(store), Some(Ok(()))) => {
                let r = store.wait(ts.ts);
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
        // 8. Publish: visible once every earlier commit is. Done even if the
        //    log failed (later commits wait on it); the error is returned,
        //    the database is poisoned, and recovery keeps the commit whole
        //    or drops it whole.
        let ts = ts.publish();
        installed.consolidate();
        logged?;
        self.counters.commits.add(1);
        self.counters.versions_installed.add(writes.len() as u64);
        self.after_commit(ts);
        Ok(ts)
    }
}
