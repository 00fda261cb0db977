//! Nodes of a delta chain: base pages and the delta records prepended to them.
//!
//! A page is the chain reachable from its mapping-table slot: newest delta
//! first, a base page last. Every node caches what a search needs so it does
//! not walk the chain for it: the chain length, whether the page is a leaf,
//! the page's current key range and sibling, an estimate of its logical size,
//! and whether an unfinished merge (index-term-delete) sits in the chain.

use std::cmp::Ordering;

use bytes::Bytes;

use super::mapping_table::Pid;
use super::node::{head_of, InnerBase, LeafBase, PageRange, ValRef};
use crate::sync::AtomicBool;

/// A node of a delta chain. Immutable once published, except `Itd::done`.
///
/// The 64-byte header holds nearly all a descent checks on its way through
/// the page: the fence heads and lengths, the flags, the chain length and the
/// version-delta skip filter; the fences' second words follow it, before
/// `body`.
///
/// Not `align(64)`: an over-aligned `Box` goes through glibc's
/// `posix_memalign`, which skips the thread cache and takes the arena lock;
/// with two writer threads that lock's futex was 5% of a YCSB-A profile, and
/// dropping the alignment measured 7-17% more transactions/s there (point
/// reads unchanged).
#[repr(C)]
pub(crate) struct Node {
    /// The next older node; null for a base page. Owned by this chain.
    pub(crate) next: *const Node,
    /// Range of the page as of this node, for deltas that do not change it:
    /// points into an older node of the same chain.
    range: *const PageRange,
    /// Version deltas only: the first older node that is not a version
    /// delta, and a mask of [`key_bit`]s of every version delta from this node
    /// down to it. A lookup whose bit is clear jumps straight to `skip`.
    pub(crate) skip: *const Node,
    pub(crate) vmask: u64,
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
    /// The chain holds an `IndexTermDelete` (which may still be unfinished).
    pub(crate) has_itd: bool,
    /// The body is `RemoveNode`.
    frozen: bool,
    has_low: bool,
    has_high: bool,
    /// The fences' next 8 bytes (bytes 8..16, big-endian, zero padded), just
    /// past the header line: keys with a common prefix tie on the heads, and
    /// these settle the comparison without a miss on the fence's own bytes
    /// (the adjacent-line prefetch usually brings this line with the header).
    low_head2: u64,
    high_head2: u64,
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
    /// A new version of a key committed at `ts`.
    Version {
        ts: u64,
        kv: Payload,
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

/// Bytes of key plus value a version delta stores inside its node. The
/// `Version` body then uses no more room than the largest body (a leaf base),
/// so a small write costs one allocation: the node.
pub(crate) const INLINE_KV: usize = 192;
const INLINE_TOMB: u16 = u16::MAX;

/// A version delta's key and value (or tombstone).
pub(crate) enum Payload {
    /// Copied in, when key and value together fit [`INLINE_KV`].
    Inline { klen: u16, vlen: u16, buf: [u8; INLINE_KV] },
    /// Shared `Bytes`, kept as given (zero-copy installs and large values).
    Shared { key: Bytes, value: Option<Bytes> },
}

impl Payload {
    /// Copy `key` and `value` (`None`: tombstone) in if they fit, else share them.
    pub(crate) fn copy(key: &[u8], value: Option<&[u8]>) -> Self {
        let vlen = value.map_or(0, <[u8]>::len);
        if key.len() + vlen <= INLINE_KV {
            let mut buf = [0u8; INLINE_KV];
            buf[..key.len()].copy_from_slice(key);
            if let Some(v) = value {
                buf[key.len()..key.len() + vlen].copy_from_slice(v);
            }
            let vlen = if value.is_some() { vlen as u16 } else { INLINE_TOMB };
            return Payload::Inline {
                klen: key.len() as u16,
                vlen,
                buf,
            };
        }
        Payload::Shared {
            key: Bytes::copy_from_slice(key),
            value: value.map(Bytes::copy_from_slice),
        }
    }

    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        match self {
            Payload::Inline { klen, buf, .. } => &buf[..*klen as usize],
            Payload::Shared { key, .. } => key,
        }
    }

    /// The value, borrowed.
    #[inline]
    pub(crate) fn value(&self) -> ValRef<'_> {
        match self {
            Payload::Inline { vlen: INLINE_TOMB, .. } | Payload::Shared { value: None, .. } => ValRef::Tomb,
            Payload::Inline { klen, vlen, buf } => ValRef::Inline(&buf[*klen as usize..(*klen + *vlen) as usize]),
            Payload::Shared { value: Some(v), .. } => ValRef::Shared(v),
        }
    }

    /// The value as owned `Bytes` (a copy for inline payloads, which are small).
    pub(crate) fn value_bytes(&self) -> Option<Bytes> {
        match self.value() {
            ValRef::Tomb => None,
            ValRef::Inline(b) => Some(Bytes::copy_from_slice(b)),
            ValRef::Shared(b) => Some(b.clone()),
        }
    }
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
        let mut n = Self::unlinked(body);
        n.leaf = leaf;
        n.count = count as u32;
        n.cache_fences();
        n
    }

    /// Copy the hot part of `range()` into the header.
    fn cache_fences(&mut self) {
        let r = self.range();
        let (has_low, low_head, low_head2, low_len) = fence_summary(r.low());
        let (has_high, high_head, high_head2, high_len) = fence_summary(r.high());
        (self.has_low, self.low_head, self.low_head2, self.low_len) = (has_low, low_head, low_head2, low_len);
        (self.has_high, self.high_head, self.high_head2, self.high_len) = (has_high, high_head, high_head2, high_len);
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
            range: std::ptr::null(),
            skip: std::ptr::null(),
            vmask: 0,
            low_head: 0,
            high_head: 0,
            count: 0,
            chain_len: 0,
            low_len: 0,
            high_len: 0,
            leaf: false,
            has_itd: false,
            frozen: matches!(body, Body::RemoveNode { .. }),
            has_low: false,
            has_high: false,
            low_head2: 0,
            high_head2: 0,
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
        if matches!(self.body, Body::Split { .. } | Body::NodeMerge { .. }) {
            self.cache_fences(); // defines its own range
        } else {
            // Same range as `next`: copy its header, never touch the fences.
            self.range = if next.range.is_null() { next.range() } else { next.range };
            (self.has_low, self.low_head, self.low_head2, self.low_len) =
                (next.has_low, next.low_head, next.low_head2, next.low_len);
            (self.has_high, self.high_head, self.high_head2, self.high_len) =
                (next.has_high, next.high_head, next.high_head2, next.high_len);
        }
        if let Body::Version { kv, .. } = &self.body {
            let run = matches!(next.body, Body::Version { .. });
            self.skip = if run { next.skip } else { next as *const Node };
            self.vmask = key_bit(kv.key()) | if run { next.vmask } else { 0 };
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
        self.frozen
    }

    /// Does the page have a finite high fence?
    #[inline]
    pub(crate) fn has_high(&self) -> bool {
        self.has_high
    }

    /// `key` (whose head is `kh`) against the low fence; `None`: minus infinity.
    #[inline]
    pub(crate) fn cmp_low(&self, key: &[u8], kh: u64) -> Option<Ordering> {
        if !self.has_low {
            return None;
        }
        Some(cmp_fence(
            key,
            kh,
            (self.low_head, self.low_head2),
            self.low_len,
            || self.range().low.as_deref(),
        ))
    }

    /// `key` (whose head is `kh`) against the high fence; `None`: plus infinity.
    #[inline]
    pub(crate) fn cmp_high(&self, key: &[u8], kh: u64) -> Option<Ordering> {
        if !self.has_high {
            return None;
        }
        Some(cmp_fence(
            key,
            kh,
            (self.high_head, self.high_head2),
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
    kh: u64,
    (fh, fh2): (u64, u64),
    flen: u16,
    bytes: impl FnOnce() -> Option<&'a [u8]>,
) -> Ordering {
    if kh != fh {
        return kh.cmp(&fh);
    }
    if key.len() <= 8 || flen <= 8 {
        return key.len().cmp(&(flen as usize));
    }
    let kh2 = head_of(&key[8..]);
    if kh2 != fh2 {
        return kh2.cmp(&fh2);
    }
    if key.len() <= 16 || flen <= 16 {
        return key.len().cmp(&(flen as usize));
    }
    let f = bytes().expect("a fence with a length has bytes");
    super::node::bytes_cmp(&key[16..], &f[16..])
}

/// One bit of a 64-bit key filter, from a hash of the key's head, its last
/// 8 bytes and its length (keys with a common prefix differ in their tails).
#[inline]
pub(crate) fn key_bit(key: &[u8]) -> u64 {
    let tail = match key.last_chunk::<8>() {
        Some(t) => u64::from_le_bytes(*t),
        None => 0,
    };
    let h = super::node::head_of(key) ^ tail.rotate_left(29) ^ (key.len() as u64).rotate_left(56);
    1 << (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
}

/// A raw chain pointer that may cross threads inside a deferred destructor.
pub(crate) struct ChainPtr(pub(crate) *mut Node);
// SAFETY: the chain is unreachable when the pointer is handed to the collector;
// only the deferred destructor, run once, touches it.
unsafe impl Send for ChainPtr {}

/// Free a whole chain, newest node first. Node memory goes back to this
/// thread's [`pool`] (while it has room) rather than to the allocator.
///
/// # Safety
/// `head` must be null or the unique owner of a chain that no thread can
/// reach any more (unlinked and past its grace period, or never published).
pub(crate) unsafe fn destroy_chain(head: *mut Node) {
    let mut p = head;
    while !p.is_null() {
        // SAFETY: by the contract, each node of the chain is owned here and
        // was allocated as a `Box<Node>` (through crossbeam's `Owned`); we
        // read `next` before dropping the node in place, then release its
        // memory exactly once.
        unsafe {
            let next = (*p).next as *mut Node;
            std::ptr::drop_in_place(p);
            pool::release(p);
            p = next;
        }
    }
}

/// A new heap node, in memory from this thread's [`pool`] when it has some.
pub(crate) fn owned(node: Node) -> crossbeam_epoch::Owned<Node> {
    match pool::take() {
        // SAFETY: `p` is an unused block of `Layout::new::<Node>()` from the
        // global allocator (the memory of a dropped `Box<Node>`), so writing a
        // node into it makes a valid `Box<Node>`, which is what `Owned` is.
        Some(p) => unsafe {
            p.write(node);
            crossbeam_epoch::Owned::from_raw(p)
        },
        None => crossbeam_epoch::Owned::new(node),
    }
}

/// Per-thread caches of node-sized memory blocks.
///
/// Every write allocates a node and every consolidation frees a chain of
/// them, usually on another thread (whichever runs the deferred destructor).
/// With glibc's allocator those cross-thread frees contend on arena locks and
/// kept two writer threads slower than one. Recycling the blocks within the
/// thread that frees them removes that traffic. Bounded, so a thread holds at
/// most `CAP` idle blocks; they are returned to the allocator at thread exit.
mod pool {
    use super::Node;
    use std::alloc::{dealloc, Layout};

    #[cfg(not(loom))]
    mod imp {
        use super::*;
        use std::cell::RefCell;

        const CAP: usize = 256;

        struct Pool(Vec<*mut Node>);

        impl Drop for Pool {
            fn drop(&mut self) {
                for p in self.0.drain(..) {
                    // SAFETY: each block came from a `Box<Node>` and is unused.
                    unsafe { dealloc(p.cast(), Layout::new::<Node>()) }
                }
            }
        }

        thread_local! {
            static POOL: RefCell<Pool> = const { RefCell::new(Pool(Vec::new())) };
        }

        pub(crate) fn take() -> Option<*mut Node> {
            POOL.try_with(|p| p.borrow_mut().0.pop()).ok().flatten()
        }

        /// Keep `p` for reuse; false if the pool is full or gone (thread exit).
        pub(crate) fn keep(p: *mut Node) -> bool {
            POOL.try_with(|pool| {
                let mut pool = pool.borrow_mut();
                if pool.0.len() < CAP {
                    if pool.0.capacity() == 0 {
                        pool.0.reserve_exact(CAP);
                    }
                    pool.0.push(p);
                    true
                } else {
                    false
                }
            })
            .unwrap_or(false)
        }
    }

    // Under loom every model thread shares one OS thread: no pooling.
    #[cfg(loom)]
    mod imp {
        use super::*;
        pub(crate) fn take() -> Option<*mut Node> {
            None
        }
        pub(crate) fn keep(_: *mut Node) -> bool {
            false
        }
    }

    pub(crate) use imp::take;

    /// Return the memory of a node already dropped in place.
    ///
    /// # Safety
    /// `p` was allocated as a `Box<Node>`, its node has been dropped, and
    /// nothing refers to it.
    pub(crate) unsafe fn release(p: *mut Node) {
        if !imp::keep(p) {
            // SAFETY: by the contract, a `Box<Node>` allocation nobody uses.
            unsafe { dealloc(p.cast(), Layout::new::<Node>()) }
        }
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

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The header is 64 bytes, the fences' second words follow it, and a
    /// node of any kind is 320 bytes (a small write's one allocation).
    #[test]
    fn node_layout() {
        assert_eq!(std::mem::offset_of!(Node, low_head2), 64);
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
            let (_, fh, fh2, flen) = fence_summary(Some(f));
            for k in &keys {
                let got = cmp_fence(k, head_of(k), (fh, fh2), flen, || Some(f));
                assert_eq!(got, k.cmp(f), "{k:?} vs {f:?}");
            }
        }
    }
}
