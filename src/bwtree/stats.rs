//! Event counters (relaxed atomics; rare events only, never per read) and
//! [`Tree::stats`], their public snapshot.

use super::tree::Tree;
use crate::sync::{AtomicU64, Ordering};

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) consolidations: AtomicU64,
    pub(crate) splits: AtomicU64,
    pub(crate) merges: AtomicU64,
    pub(crate) root_grows: AtomicU64,
    pub(crate) root_shrinks: AtomicU64,
    pub(crate) versions_dropped: AtomicU64,
    pub(crate) cas_retries: AtomicU64,
}

/// A snapshot of a tree's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeStats {
    /// Delta chains replaced by a consolidated base page.
    pub consolidations: u64,
    /// Page splits (leaf and inner).
    pub splits: u64,
    /// Page merges (leaf and inner).
    pub merges: u64,
    /// Times the root split and a new root was put above it.
    pub root_grows: u64,
    /// Times a root with one child was replaced by that child.
    pub root_shrinks: u64,
    /// Versions dropped by garbage collection during consolidation.
    pub versions_dropped: u64,
    /// Lost compare-and-swap attempts on installs.
    pub cas_retries: u64,
    /// Page ids ever handed out (the mapping table's high-water mark); ids
    /// of removed pages are reused, so this stays bounded under churn.
    pub page_ids: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> TreeStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TreeStats {
            consolidations: r(&self.consolidations),
            splits: r(&self.splits),
            merges: r(&self.merges),
            root_grows: r(&self.root_grows),
            root_shrinks: r(&self.root_shrinks),
            versions_dropped: r(&self.versions_dropped),
            cas_retries: r(&self.cas_retries),
            page_ids: 0,
        }
    }
}

impl Tree {
    /// Counters of structure modifications and garbage collection.
    pub fn stats(&self) -> TreeStats {
        let mut s = self.stats.snapshot();
        s.page_ids = self.table.high_water();
        s
    }
}
