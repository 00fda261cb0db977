//! Serializable read validation (`design/mvcc.md`, section 10): between
//! taking the commit timestamp `c` and installing, a serializable committer
//! checks that no commit with a timestamp in `(snapshot, c)` wrote a key it
//! read or a key inside a range it scanned, and, if it counted the
//! keyspace's keys, that those commits left the count as it was. Keys whose latch stripes were
//! not stamped since the snapshot are cleared at once; for the rest and for
//! ranges it waits until every commit below `c` is installed and looks in
//! the tree. Snapshot-isolation commits never come here.

use std::ops::Bound;

use bytes::Bytes;

use super::commit::Part;
use super::Engine;
use crate::mvcc::readset::Reads;
use crate::{ConflictReason, Error, Result};

impl Engine {
    /// Validate `reads` (of keyspace `part`) of a transaction with snapshot
    /// `snapshot` and commit timestamp `commit` (allocated, not installed).
    /// Keys also in the part's writes are skipped: the write-write validation checked them under
    /// their latches, which are still held. Fails with [`Error::Conflict`]
    /// naming the key, the kind of read and the winning commit, or with the
    /// error of a leaf that could not be faulted in.
    pub(super) fn validate_reads(&self, snapshot: u64, commit: u64, part: &Part<'_>, reads: &Reads) -> Result<()> {
        let (writes, tree) = (part.writes, part.tree);
        let conflict = |key, winner, reason| Error::Conflict {
            key,
            winner,
            snapshot,
            reason: Box::new(reason),
        };
        // Keys first, by their stripes' stamps: a commit before ours that
        // wrote a key held its stripe from before its timestamp (so before
        // ours) until after its install, and stamped it when it let go. A
        // free stripe stamped at or below our snapshot clears the key
        // without a descent and without waiting; the others are suspects.
        let mut suspects: Vec<&[u8]> = reads
            .keys()
            .filter(|k| !writes.contains_key(*k) && !self.latches.unchanged_since(part.id, k, snapshot))
            .collect();
        let ranges: Vec<_> = reads.ranges.iter().flatten().collect();
        if suspects.is_empty() && ranges.is_empty() && !reads.counted {
            return Ok(());
        }
        // Every commit below ours is in the tree (or refused): whatever the
        // checks below do not find was not committed before us.
        self.oracle.wait_installed(commit - 1);
        suspects.sort_unstable();
        suspects.dedup();
        for k in suspects {
            let at = Bound::Included(k);
            if let Some((key, winner)) = tree.changed_in(at, at, snapshot, commit)? {
                return Err(conflict(key, winner, ConflictReason::Read));
            }
        }
        for (start, end) in ranges {
            if let Some((key, winner)) = tree.changed_in(borrow(start), borrow(end), snapshot, commit)? {
                let reason = ConflictReason::Range {
                    start: start.clone(),
                    end: end.clone(),
                };
                return Err(conflict(key, winner, reason));
            }
        }
        // A count: the keyspace's count at `commit - 1` (every commit up to
        // it installed, so its delta recorded: `mvcc::counts`, step 4)
        // against the count at the snapshot. Updates, and creations and
        // deletions that cancel out, leave it as it was. The floor is at
        // or below the snapshot, which is registered.
        if reads.counted {
            if let Some((winner, counted, now)) = part.counts.changed(snapshot, commit - 1, self.count_floor()) {
                return Err(conflict(Bytes::new(), winner, ConflictReason::Count { counted, now }));
            }
        }
        Ok(())
    }
}

fn borrow(b: &Bound<Bytes>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(&k[..]),
        Bound::Excluded(k) => Bound::Excluded(&k[..]),
        Bound::Unbounded => Bound::Unbounded,
    }
}
