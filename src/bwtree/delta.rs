//! Nodes of a delta chain: base pages and the delta records prepended to them.
//!
//! A page is the chain reachable from its mapping-table slot: newest delta
//! first, a base page last. Every node caches what a search needs so it does
//! not walk the chain for it: the chain length, whether the page is a leaf,
//! the page's current key range and sibling, an estimate of its logical size,
//! and whether an unfinished merge (index-term-delete) sits in the chain.

use bytes::Bytes;

use super::mapping_table::Pid;
use super::node::{InnerBase, LeafBase, PageRange};
use crate::sync::AtomicBool;

/// A node of a delta chain. Immutable once published, except `Itd::done`.
pub(crate) struct Node {
    /// The next older node; null for a base page. Owned by this chain.
    pub(crate) next: *const Node,
    /// Deltas above the base (0 for a base page).
    pub(crate) chain_len: u16,
    pub(crate) leaf: bool,
    /// The chain holds an `IndexTermDelete` (which may still be unfinished).
    pub(crate) has_itd: bool,
    /// Estimated logical entries (leaf: keys, inner: children), an upper bound.
    pub(crate) count: u32,
    /// Range of the page as of this node, for deltas that do not change it:
    /// points into an older node of the same chain.
    range: *const PageRange,
    /// Version deltas only: the first older node that is not a version
    /// delta, and a mask of [`key_bit`]s of every version delta from this node
    /// down to it. A lookup whose bit is clear jumps straight to `skip`.
    pub(crate) skip: *const Node,
    pub(crate) vmask: u64,
    pub(crate) body: Body,
}

// SAFETY: a published node is immutable (but for atomics); its raw pointers
// point to older nodes of the same chain, which are freed together with it.
unsafe impl Send for Node {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for Node {}

pub(crate) enum Body {
    Leaf(LeafBase),
    Inner(InnerBase),
    /// A new version of `key` committed at `ts`; `None` is a tombstone.
    Version {
        key: Bytes,
        ts: u64,
        value: Option<Bytes>,
    },
    /// The page now ends at `range.high`; keys above moved to `range.sibling`.
    Split {
        range: PageRange,
    },
    /// Parent: keys in `[sep, hi)` are routed to `child` (a split's right half).
    IndexEntry {
        sep: Bytes,
        hi: Option<Bytes>,
        child: Pid,
    },
    /// Parent: the right child of a merge is gone; see [`Itd`].
    IndexTermDelete(Box<Itd>),
    /// This page absorbed its right sibling: keys `>= sep` are in `content`
    /// (a copy of the removed page, consolidated); the range grew to `range`.
    NodeMerge {
        sep: Bytes,
        content: Box<Node>,
        range: PageRange,
    },
    /// The page is frozen: it is being merged into its left sibling (`itd`
    /// non-null) or it is a root being replaced by its only child (`itd` null).
    /// Every thread that meets it (reader or writer) helps finish the SMO and
    /// restarts its descent from the root.
    RemoveNode {
        itd: *const Itd,
    },
}

/// The record of a merge, posted on the parent first (the merge's commit point).
/// Keys in `[lo, hi)` are routed to `left`; `right` (which began at `right_low`)
/// will be frozen, copied into the page on its left, and unlinked.
pub(crate) struct Itd {
    pub(crate) left: Pid,
    pub(crate) right: Pid,
    pub(crate) lo: Option<Bytes>,
    pub(crate) right_low: Bytes,
    pub(crate) hi: Option<Bytes>,
    /// Set once `right` is unlinked; until then the parent may not be
    /// consolidated, split or frozen (whoever wants to, finishes the merge first).
    pub(crate) done: AtomicBool,
}

impl Node {
    /// A base page.
    pub(crate) fn base(body: Body) -> Self {
        let (leaf, count) = match &body {
            Body::Leaf(b) => (true, b.len()),
            Body::Inner(b) => (false, b.len() + 1), // children, not separators
            _ => unreachable!("base() takes a page body"),
        };
        counter::alloc();
        Node {
            next: std::ptr::null(),
            chain_len: 0,
            leaf,
            has_itd: false,
            count: count as u32,
            range: std::ptr::null(),
            skip: std::ptr::null(),
            vmask: 0,
            body,
        }
    }

    /// A delta on top of `next`.
    pub(crate) fn delta(body: Body, next: &Node) -> Self {
        let mut n = Self::unlinked(body);
        n.relink(next);
        n
    }

    /// A delta not yet linked to a chain: `relink` it before publishing.
    pub(crate) fn unlinked(body: Body) -> Self {
        counter::alloc();
        Node {
            next: std::ptr::null(),
            chain_len: 0,
            leaf: false,
            has_itd: false,
            count: 0,
            range: std::ptr::null(),
            skip: std::ptr::null(),
            vmask: 0,
            body,
        }
    }

    /// Re-point an unpublished delta at a new `next` (after a lost CAS).
    pub(crate) fn relink(&mut self, next: &Node) {
        self.next = next as *const Node;
        self.leaf = next.leaf;
        self.chain_len = next.chain_len.saturating_add(1);
        self.has_itd = next.has_itd || matches!(self.body, Body::IndexTermDelete(_));
        self.count = match &self.body {
            Body::Version { .. } | Body::IndexEntry { .. } => next.count.saturating_add(1),
            Body::NodeMerge { content, .. } => next.count.saturating_add(content.count),
            _ => next.count,
        };
        self.range = next.range() as *const PageRange;
        if let Body::Version { key, .. } = &self.body {
            let run = matches!(next.body, Body::Version { .. });
            self.skip = if run { next.skip } else { next as *const Node };
            self.vmask = key_bit(key) | if run { next.vmask } else { 0 };
        }
    }

    /// The page's key range and sibling as of this node.
    #[inline]
    pub(crate) fn range(&self) -> &PageRange {
        match &self.body {
            Body::Leaf(b) => &b.range,
            Body::Inner(b) => &b.range,
            Body::Split { range } | Body::NodeMerge { range, .. } => range,
            // SAFETY: `range` points into an older node of this chain, which
            // lives at least as long as this node (chains are freed whole).
            _ => unsafe { &*self.range },
        }
    }

    /// The next older node.
    #[inline]
    pub(crate) fn next(&self) -> Option<&Node> {
        // SAFETY: `next` is null or an older node of the same chain, freed
        // together with (never before) this node.
        unsafe { self.next.as_ref() }
    }

    /// Is the page frozen (being removed)?
    #[inline]
    pub(crate) fn is_frozen(&self) -> bool {
        matches!(self.body, Body::RemoveNode { .. })
    }

    /// Unfinished merges recorded in this chain (parents only).
    pub(crate) fn pending_itds(&self) -> impl Iterator<Item = &Itd> {
        let mut cur = if self.has_itd { Some(self) } else { None };
        std::iter::from_fn(move || {
            while let Some(n) = cur {
                cur = if n.has_itd { n.next() } else { None };
                if let Body::IndexTermDelete(itd) = &n.body {
                    if !itd.done.load(crate::sync::Ordering::Acquire) {
                        return Some(&**itd);
                    }
                }
            }
            None
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        counter::free();
    }
}

/// One bit of a 64-bit key filter, from a hash of the key's head and length.
#[inline]
pub(crate) fn key_bit(key: &[u8]) -> u64 {
    let h = super::node::head_of(key) ^ (key.len() as u64).rotate_left(56);
    1 << (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
}

/// A raw chain pointer that may cross threads inside a deferred destructor.
pub(crate) struct ChainPtr(pub(crate) *mut Node);
// SAFETY: the chain is unreachable when the pointer is handed to the collector;
// only the deferred destructor, run once, touches it.
unsafe impl Send for ChainPtr {}

/// Free a whole chain, newest node first.
///
/// # Safety
/// `head` must be null or the unique owner of a chain that no thread can
/// reach any more (unlinked and past its grace period, or never published).
pub(crate) unsafe fn destroy_chain(head: *mut Node) {
    let mut p = head;
    while !p.is_null() {
        // SAFETY: by the contract, each node of the chain is owned here and
        // was allocated as a `Box` (through crossbeam's `Owned`).
        let node = unsafe { Box::from_raw(p) };
        p = node.next as *mut Node;
        drop(node);
    }
}

/// Live-node accounting for leak tests (feature `leak-check`).
#[cfg(feature = "leak-check")]
pub(crate) mod counter {
    use std::sync::atomic::{AtomicIsize, Ordering};
    static LIVE: AtomicIsize = AtomicIsize::new(0);
    pub(crate) fn alloc() {
        LIVE.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn free() {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
    /// Nodes (deltas and pages) allocated and not yet freed, process-wide.
    pub fn live_nodes() -> isize {
        LIVE.load(Ordering::Relaxed)
    }
}

#[cfg(not(feature = "leak-check"))]
pub(crate) mod counter {
    #[inline(always)]
    pub(crate) fn alloc() {}
    #[inline(always)]
    pub(crate) fn free() {}
}
