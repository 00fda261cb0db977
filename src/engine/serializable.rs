//! Serializable read validation (`design/mvcc.md`, section 10): between
//! taking the commit timestamp `c` and installing, a serializable committer
//! waits until every commit below `c` is installed, then checks that no
//! version with a timestamp in `(snapshot, c)` landed on a key it read or
//! inside a range it scanned. Snapshot-isolation commits never come here.

use std::ops::Bound;

use bytes::Bytes;

use super::Engine;
use crate::mvcc::readset::Reads;
use crate::mvcc::WriteSet;
use crate::{ConflictReason, Error, Result};

impl Engine {
    /// Validate `reads` of a transaction with snapshot `snapshot` and
    /// commit timestamp `commit` (allocated, not installed). Keys also in
    /// `writes` are skipped: the write-write validation checked them under
    /// their latches, which are still held. Fails with [`Error::Conflict`]
    /// naming the key, the kind of read and the winning commit, or with the
    /// error of a leaf that could not be faulted in.
    pub(super) fn validate_reads(&self, snapshot: u64, commit: u64, writes: &WriteSet, reads: &Reads) -> Result<()> {
        let mut keys: Vec<&Bytes> = reads.keys.iter().filter(|k| !writes.contains_key(*k)).collect();
        let ranges: Vec<_> = reads.ranges.iter().flatten().collect();
        if keys.is_empty() && ranges.is_empty() {
            return Ok(());
        }
        // Every commit below ours is in the tree (or refused): whatever the
        // check below does not find was not committed before us.
        self.oracle.wait_installed(commit - 1);
        keys.sort_unstable();
        keys.dedup();
        let conflict = |key, winner, reason| Error::Conflict {
            key,
            winner,
            snapshot,
            reason: Box::new(reason),
        };
        for k in keys {
            let at = Bound::Included(&k[..]);
            if let Some((key, winner)) = self.tree.changed_in(at, at, snapshot, commit)? {
                return Err(conflict(key, winner, ConflictReason::Read));
            }
        }
        for (start, end) in ranges {
            if let Some((key, winner)) = self.tree.changed_in(borrow(start), borrow(end), snapshot, commit)? {
                let reason = ConflictReason::Range {
                    start: start.clone(),
                    end: end.clone(),
                };
                return Err(conflict(key, winner, reason));
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
