//! A node of a delta chain: its header caches and its raw links (which are
//! read only in `mem`, the one file of `chain` with unsafe code).
//!
//! A page is the chain reachable from its mapping-table slot: newest delta
//! first, a base page last. Every node caches what a search needs so it does
//! not walk the chain for it: the chain length, whether the page is a leaf,
//! the page's current key range and sibling, an estimate of its logical size,
//! and whether an index-term-delete (a merge record) sits in the chain.
//!
//! Definitions
//! - A node's *links* are `next` (the next older node), `range` (the page
//!   range of an older node, for deltas that do not change it) and `skip`
//!   (version deltas: the first older node that is not a version delta).
//! - A node is *linked* when its links point into another node's chain, and
//!   *published* when a mapping-table slot (or a newer published node) points
//!   to it. A chain is *owned* by what points to its head: its slot, or the
//!   newer node linked to it.
//!
//! Invariants
//! - N1. The link fields are private to `chain`. They are written only by
//!   [`Node::link`] (which points them into the chain of the node it is given,
//!   recomputing every cached header field from it) and cleared by
//!   [`Node::clear_links`]; a [`Node`] built by value ([`Node::base`]) has
//!   none. Outside `chain`, a linked node is reachable only as `&Node`: the
//!   unpublished handles (`mem::Delta`, `mem::Chain`) never hand out a node.
//! - N2. A published node's links point only to older nodes of its own chain,
//!   which that node owns (`mem::Delta::link`'s contract: the node is
//!   published only by a CAS that replaces exactly the node it was linked
//!   to, or by `mem::Chain`, which owns what it links). A chain is freed
//!   whole, head first ([`super::destroy_chain`]), so the targets of a node's
//!   links live at least as long as the node.
//! - N3. A published node is immutable except for atomics (the merge
//!   record's `done` flag): `&Node` is all that safe code ever holds of one.
//! - N4. `range` is non-null on every linked node whose body does not define
//!   its own range (anything but a base, `Split` or `NodeMerge`); unlinked
//!   such nodes live only inside `mem::Delta`, which never lets them be read.
//!   [`Node::range`] still checks, and panics rather than read a null link.

use std::cmp::Ordering;

use super::super::base::PageRange;
use super::super::delta::{key_bit, Body, MergeRecord};
use super::super::keys::{bytes_cmp, head_of};
use super::mem::counter;

/// A node of a delta chain. Immutable once published, except
/// [`MergeRecord::done`].
///
/// The 64-byte header holds nearly all a descent checks on its way through
/// the page: the fence heads and lengths, the flags, the chain length and the
/// version-delta key filter; the fences' second words follow it, before
/// `body`.
///
/// Not `align(64)`: an over-aligned `Box` goes through glibc's
/// `posix_memalign`, which skips the thread cache and takes the arena lock;
/// with two writer threads that lock's futex was 5% of a YCSB-A profile, and
/// dropping the alignment measured 7-17% more transactions/s there (point
/// reads unchanged).
#[repr(C)]
pub(crate) struct Node {
    /// The next older node; null for a base page. Owned by this node once it
    /// is published (N2).
    pub(super) next: *const Node,
    /// Range of the page as of this node, for deltas that do not change it:
    /// points into an older node of the same chain.
    pub(super) range: *const PageRange,
    /// Version deltas only: the first older node that is not a version
    /// delta; `key_filter` is the union of the [`key_bit`]s of every version
    /// delta from this node down to it. A lookup whose bit is clear jumps
    /// straight to `skip`.
    pub(super) skip: *const Node,
    pub(super) key_filter: u64,
    /// Heads (first 8 bytes, big-endian) and lengths of the range's fences.
    low_head: u64,
    high_head: u64,
    /// Estimated logical entries (leaf: keys, inner: children), an upper bound.
    pub(crate) count: u32,
    /// Deltas above the base (0 for a base page).
    pub(crate) chain_len: u16,
    low_len: u16,
    high_len: u16,
    pub(crate) leaf: bool,
    /// The chain holds an `IndexTermDelete` (whose merge may be unfinished).
    pub(crate) has_merge_record: bool,
    /// The body is `RemoveNode`.
    frozen: bool,
    has_low: bool,
    has_high: bool,
    /// The chain's base is `Evicted` (this node, or version deltas over it:
    /// blind writes, `super::super::blind`); the header's last free byte, so
    /// a descent tests it at the leaf without touching the body.
    evicted: bool,
    /// The fences' next 8 bytes (bytes 8..16, big-endian, zero padded), just
    /// past the header line: keys with a common prefix tie on the heads, and
    /// these settle the comparison without a miss on the fence's own bytes
    /// (the adjacent-line prefetch usually brings this line with the header).
    low_word2: u64,
    high_word2: u64,
    pub(crate) body: Body,
}

impl Node {
    /// A base page.
    pub(crate) fn base(body: Body) -> Self {
        let (leaf, count) = match &body {
            Body::Leaf(b) => (true, b.len()),
            Body::Inner(b) => (false, b.len() + 1), // children, not separators
            Body::Evicted { .. } => (true, 0),
            _ => unreachable!("base() takes a page body"),
        };
        let mut n = Self::unlinked(body);
        n.leaf = leaf;
        n.count = count as u32;
        n.cache_fences();
        n
    }

    /// Copy the hot part of `range()` into the header (for bodies that
    /// define their own range).
    fn cache_fences(&mut self) {
        let r = self.range();
        let (has_low, low_head, low_word2, low_len) = fence_summary(r.low());
        let (has_high, high_head, high_word2, high_len) = fence_summary(r.high());
        (self.has_low, self.low_head, self.low_word2, self.low_len) = (has_low, low_head, low_word2, low_len);
        (self.has_high, self.high_head, self.high_word2, self.high_len) = (has_high, high_head, high_word2, high_len);
    }

    /// A node without links: a base page, or a delta to be linked before it
    /// is read ([`Node::link`]).
    pub(super) fn unlinked(body: Body) -> Self {
        counter::alloc();
        Node {
            next: std::ptr::null(),
            range: std::ptr::null(),
            skip: std::ptr::null(),
            key_filter: 0,
            low_head: 0,
            high_head: 0,
            count: 0,
            chain_len: 0,
            low_len: 0,
            high_len: 0,
            leaf: false,
            has_merge_record: false,
            frozen: matches!(body, Body::RemoveNode { .. }),
            has_low: false,
            has_high: false,
            evicted: matches!(body, Body::Evicted { .. }),
            low_word2: 0,
            high_word2: 0,
            body,
        }
    }

    /// Point this (unpublished) delta at `next` and recompute every cached
    /// header field from it; linking again after a lost CAS starts afresh.
    ///
    /// Safe in itself (it only stores pointers), but reading the links is
    /// sound only under N2, which `mem::Delta::link`'s and `mem::Chain`'s
    /// contracts uphold: hence `pub(super)`.
    pub(super) fn link(&mut self, next: &Node) {
        self.next = next as *const Node;
        self.leaf = next.leaf;
        self.chain_len = next.chain_len.saturating_add(1);
        self.has_merge_record = next.has_merge_record || matches!(self.body, Body::IndexTermDelete(_));
        self.evicted = next.evicted;
        self.count = match &self.body {
            Body::Version { .. } | Body::IndexEntry { .. } => next.count.saturating_add(1),
            Body::NodeMerge { content, .. } => next.count.saturating_add(content.count),
            _ => next.count,
        };
        if matches!(self.body, Body::Split { .. } | Body::NodeMerge { .. }) {
            self.cache_fences(); // defines its own range
        } else {
            // Same range as `next`: copy its header, never touch the fences.
            self.range = if next.range.is_null() { next.range() } else { next.range };
            (self.has_low, self.low_head, self.low_word2, self.low_len) =
                (next.has_low, next.low_head, next.low_word2, next.low_len);
            (self.has_high, self.high_head, self.high_word2, self.high_len) =
                (next.has_high, next.high_head, next.high_word2, next.high_len);
        }
        if let Body::Version { kv, .. } = &self.body {
            let run = matches!(next.body, Body::Version { .. });
            self.skip = if run { next.skip } else { next as *const Node };
            self.key_filter = key_bit(kv.key()) | if run { next.key_filter } else { 0 };
        }
    }

    /// Forget the links (a delta whose CAS lost: its `next` is no longer
    /// protected by anything it holds).
    pub(super) fn clear_links(&mut self) {
        self.next = std::ptr::null();
        self.range = std::ptr::null();
        self.skip = std::ptr::null();
    }

    /// The raw `next` link, for destroying a chain (`mem::destroy_chain`).
    pub(super) fn next_ptr(&self) -> *const Node {
        self.next
    }

    /// The page's key range and sibling as of this node.
    #[inline]
    pub(crate) fn range(&self) -> &PageRange {
        match &self.body {
            Body::Leaf(b) => &b.range,
            Body::Inner(b) => &b.range,
            Body::Split { range } | Body::NodeMerge { range, .. } | Body::Evicted { range, .. } => range,
            _ => self.linked_range(),
        }
    }

    /// Is the page frozen (being removed)?
    #[inline]
    pub(crate) fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Is the chain's base evicted (an `Evicted` stub, alone or under
    /// version deltas: P4 in `super::super::paging`)? Such a chain's content
    /// is not all in memory: whoever needs more than its deltas faults it in.
    #[inline]
    pub(crate) fn is_evicted(&self) -> bool {
        self.evicted
    }

    /// Is the chain one `Evicted` stub and nothing else?
    #[inline]
    pub(crate) fn is_stub(&self) -> bool {
        self.evicted && self.chain_len == 0
    }

    /// Does the page have a finite high fence?
    #[inline]
    pub(crate) fn has_high(&self) -> bool {
        self.has_high
    }

    /// `key` (whose head is `key_head`) against the low fence; `None`: minus
    /// infinity.
    #[inline]
    pub(crate) fn cmp_low(&self, key: &[u8], key_head: u64) -> Option<Ordering> {
        if !self.has_low {
            return None;
        }
        Some(cmp_fence(
            key,
            key_head,
            (self.low_head, self.low_word2),
            self.low_len,
            || self.range().low.as_deref(),
        ))
    }

    /// `key` (whose head is `key_head`) against the high fence; `None`: plus
    /// infinity.
    #[inline]
    pub(crate) fn cmp_high(&self, key: &[u8], key_head: u64) -> Option<Ordering> {
        if !self.has_high {
            return None;
        }
        Some(cmp_fence(
            key,
            key_head,
            (self.high_head, self.high_word2),
            self.high_len,
            || self.range().high.as_deref(),
        ))
    }

    /// Does the page end before `hi` (whose head is `hi_head`; `None`: plus
    /// infinity)?
    #[inline]
    pub(crate) fn high_below(&self, hi: Option<&[u8]>, hi_head: u64) -> bool {
        match hi {
            None => self.has_high,
            Some(b) => self.has_high && self.cmp_high(b, hi_head) == Some(Ordering::Greater),
        }
    }

    /// Head of the high fence (0 if plus infinity).
    #[inline]
    pub(crate) fn high_head(&self) -> u64 {
        self.high_head
    }

    /// Unfinished merges recorded in this chain (parents only).
    pub(crate) fn pending_merges(&self) -> impl Iterator<Item = &crate::sync::Arc<MergeRecord>> {
        let mut cur = if self.has_merge_record { Some(self) } else { None };
        std::iter::from_fn(move || {
            while let Some(n) = cur {
                cur = if n.has_merge_record { n.next() } else { None };
                if let Body::IndexTermDelete(merge) = &n.body {
                    if !merge.done.load(crate::sync::Ordering::Acquire) {
                        return Some(merge);
                    }
                }
            }
            None
        })
    }
}

impl Drop for Node {
    /// Drops the body only: the chain below is freed by `mem::destroy_chain`.
    fn drop(&mut self) {
        counter::free();
    }
}

/// A fence's presence, first two 8-byte words and length, as the header
/// caches them.
fn fence_summary(f: Option<&[u8]>) -> (bool, u64, u64, u16) {
    match f {
        None => (false, 0, 0, 0),
        Some(f) => (
            true,
            head_of(f),
            head_of(f.get(8..).unwrap_or_default()),
            f.len().min(u16::MAX as usize) as u16,
        ),
    }
}

/// Key order against a fence known by its first two 8-byte words and its
/// length; the fence's bytes are read only when both words tie and both keys
/// are longer than 16 bytes. (A word is zero padded, so on a tie a key of at
/// most that many bytes is a prefix of the other: the lengths decide.)
#[inline]
fn cmp_fence<'a>(
    key: &[u8],
    key_head: u64,
    (fence_head, fence_word2): (u64, u64),
    fence_len: u16,
    fence_bytes: impl FnOnce() -> Option<&'a [u8]>,
) -> Ordering {
    if key_head != fence_head {
        return key_head.cmp(&fence_head);
    }
    if key.len() <= 8 || fence_len <= 8 {
        return key.len().cmp(&(fence_len as usize));
    }
    let key_word2 = head_of(&key[8..]);
    if key_word2 != fence_word2 {
        return key_word2.cmp(&fence_word2);
    }
    if key.len() <= 16 || fence_len <= 16 {
        return key.len().cmp(&(fence_len as usize));
    }
    let f = fence_bytes().expect("a fence with a length has bytes");
    bytes_cmp(&key[16..], &f[16..])
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The header is 64 bytes, the fences' second words follow it, and a
    /// node of any kind is 320 bytes (a small write's one allocation).
    #[test]
    fn node_layout() {
        assert_eq!(std::mem::offset_of!(Node, low_word2), 64);
        assert_eq!(std::mem::offset_of!(Node, body), 80);
        assert_eq!(std::mem::size_of::<Node>(), 320);
    }

    /// Fence comparisons through the cached words agree with slice order.
    #[test]
    fn fence_comparisons_agree_with_slice_order() {
        let keys: Vec<&[u8]> = vec![
            b"",
            b"a",
            b"user0000",
            b"user0000\0",
            b"user000000001234",
            b"user000000001235",
            b"user0000000012345",
            b"user000000001234\0",
            b"user00000000123",
            b"user000000001234zz",
            b"user000000001234zy",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ];
        for f in &keys {
            let (_, fence_head, fence_word2, fence_len) = fence_summary(Some(f));
            for k in &keys {
                let got = cmp_fence(k, head_of(k), (fence_head, fence_word2), fence_len, || Some(f));
                assert_eq!(got, k.cmp(f), "{k:?} vs {f:?}");
            }
        }
    }
}
