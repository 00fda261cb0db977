//! Node memory: allocation, the unpublished-node handles, retiring and
//! destroying chains, and the per-thread pool of node-sized blocks.
//!
//! Definitions
//! - Every node of a chain is a `Box<Node>` allocation (made by [`alloc`],
//!   perhaps in a block from the [`pool`]); crossbeam's `Owned<Node>` and
//!   `Shared<Node>` are that box's pointer.
//! - A [`Delta`] is one unpublished node without links; a [`Chain`] is an
//!   unpublished chain it owns whole (a base page, or a `Split` over the new
//!   base it owns). Neither hands out the node: only the mapping table turns
//!   them into a published chain, through the `unsafe` functions below.
//!
//! Invariants (with N1-N4 of [`super::node`])
//! - A1. A chain is freed only by [`destroy_chain`], head first, each node
//!   exactly once: when its owner drops it unpublished ([`Chain`]'s `Drop`),
//!   after its grace period once unlinked ([`retire_chain`]), or when the
//!   mapping table that owns it is dropped.
//! - A2. A pooled block is the memory of a dropped `Box<Node>` that nothing
//!   refers to; the pool hands it out once, to [`alloc`].

use crossbeam_epoch::{Guard, Owned};

use super::super::base::PageRange;
use super::super::delta::Body;
use super::node::Node;

/// A new heap node, in memory from this thread's [`pool`] when it has some.
fn alloc(node: Node) -> Owned<Node> {
    match pool::take() {
        // SAFETY: `p` is an unused block of `Layout::new::<Node>()` from the
        // global allocator (the memory of a dropped `Box<Node>`, A2), so
        // writing a node into it makes a valid `Box<Node>`, which is what
        // `Owned` is.
        Some(p) => unsafe {
            p.write(node);
            Owned::from_raw(p)
        },
        None => Owned::new(node),
    }
}

/// An unpublished delta, not linked to any chain: the mapping table links it
/// to the head it replaces, in the same step as the CAS that publishes it.
pub(crate) struct Delta(Owned<Node>);

impl Delta {
    /// A delta holding `body` (anything but a base page's body).
    pub(crate) fn new(body: Body) -> Self {
        debug_assert!(!matches!(body, Body::Leaf(_) | Body::Inner(_)), "a delta body");
        Delta(alloc(Node::unlinked(body)))
    }

    /// What the delta records.
    pub(crate) fn body(&self) -> &Body {
        &self.0.body
    }

    /// The delta linked on top of `next` (N1), ready for the CAS that
    /// replaces `next` in its slot.
    ///
    /// # Safety
    /// The caller either publishes the result by a CAS that succeeds only if
    /// the slot holds `next` (the delta then owns `next`'s chain, N2), or
    /// passes it back to [`Delta::lost`]; it never reads the result's links
    /// meanwhile without `next` being protected (pinned guard).
    pub(in crate::bwtree) unsafe fn link(mut self, next: &Node) -> Owned<Node> {
        self.0.link(next);
        self.0
    }

    /// A linked delta whose CAS lost, unlinked again for another try.
    pub(in crate::bwtree) fn lost(mut node: Owned<Node>) -> Self {
        node.clear_links();
        Delta(node)
    }
}

/// An unpublished chain, owned whole: dropped, it frees every node.
pub(crate) struct Chain(*mut Node);

// SAFETY: a `Chain` is the unique owner of nodes no other thread can reach
// (unpublished); `Node` is `Send`.
unsafe impl Send for Chain {}

impl Chain {
    /// A one-node chain: a base page.
    pub(crate) fn base(page: Node) -> Self {
        debug_assert!(
            page.next().is_none() && matches!(page.body, Body::Leaf(_) | Body::Inner(_) | Body::Evicted { .. })
        );
        Chain(Box::into_raw(alloc(page).into_box()))
    }

    /// `Split{range} -> left`: the left half of a split over its new base
    /// (whose range is `range`), both owned by the chain.
    pub(crate) fn split(range: PageRange, left: Node) -> Self {
        let left = Box::into_raw(alloc(left).into_box());
        let mut split = alloc(Node::unlinked(Body::Split { range }));
        // SAFETY: `left` was just boxed and is owned by no one else; the
        // chain now owns it through `split` (N2), and frees it with `split`.
        split.link(unsafe { &*left });
        Chain(Box::into_raw(split.into_box()))
    }

    /// Prepend a version delta holding `body` (a chain over an evicted base
    /// or a base page, being rebuilt with the deltas it had: fault-in,
    /// relocation, eviction of blind writes). The chain owns it after.
    pub(crate) fn push_version(&mut self, body: Body) {
        debug_assert!(matches!(body, Body::Version { .. }), "a version delta");
        let mut node = alloc(Node::unlinked(body));
        // SAFETY: `self.0` heads a whole chain `self` owns and no other thread
        // can reach (type invariant); the new node takes it over (N2) and
        // `self` owns the new node instead.
        node.link(unsafe { &*self.0 });
        self.0 = Box::into_raw(node.into_box());
    }

    /// The head, to read a chain that is never published (a leaf read
    /// through for a scan, `super::super::read_through`).
    pub(crate) fn head(&self) -> &Node {
        // SAFETY: `self.0` heads a whole chain `self` owns (type invariant);
        // the borrow ends before `self` can be dropped or published.
        unsafe { &*self.0 }
    }

    /// The head, for the CAS that publishes the chain.
    ///
    /// # Safety
    /// On a successful CAS the slot owns the chain; on a lost one the caller
    /// takes it back with [`Chain::from_owned`].
    pub(in crate::bwtree) unsafe fn into_owned(self) -> Owned<Node> {
        let p = std::mem::ManuallyDrop::new(self).0;
        // SAFETY: `p` came from `Box::into_raw` in a constructor, and `self`
        // gives up ownership without dropping.
        unsafe { Owned::from_raw(p) }
    }

    /// Take back a chain whose publication failed.
    ///
    /// # Safety
    /// `head` heads a whole chain that no thread can reach and nothing else
    /// owns (N2, A1).
    pub(in crate::bwtree) unsafe fn from_owned(head: Owned<Node>) -> Self {
        Chain(Box::into_raw(head.into_box()))
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        // SAFETY: the chain is unpublished and owned by `self` (type invariant).
        unsafe { destroy_chain(self.0) }
    }
}

/// A raw chain pointer that may cross threads inside a deferred destructor.
struct ChainPtr(*mut Node);
// SAFETY: the chain is unreachable when the pointer is handed to the collector;
// only the deferred destructor, run once, touches it.
unsafe impl Send for ChainPtr {}

/// Free an unlinked chain after every thread pinned now has unpinned, then
/// call `then` (the paging layer's retired-byte count: the memory is gone).
/// `then` should capture at most two words, so that the deferred call fits
/// crossbeam's inline storage with the chain pointer (no allocation).
///
/// # Safety
/// `head` was just unlinked from its slot by the caller's CAS: no slot and no
/// node owns it any more (A1), so after the grace period nobody can reach it.
pub(in crate::bwtree) unsafe fn retire_chain(head: &Node, guard: &Guard, then: impl FnOnce() + Send + 'static) {
    let p = ChainPtr(head as *const Node as *mut Node);
    // SAFETY: by the contract, the chain is unreachable for threads that pin
    // from now on; the collector runs the destructor once, after every thread
    // pinned now has unpinned.
    unsafe {
        guard.defer_unchecked(move || {
            let p = p;
            destroy_chain(p.0);
            then()
        })
    }
}

/// Free a whole chain, newest node first. Node memory goes back to this
/// thread's [`pool`] (while it has room) rather than to the allocator.
///
/// # Safety
/// `head` must be null or the unique owner of a chain that no thread can
/// reach any more (unlinked and past its grace period, or never published).
pub(in crate::bwtree) unsafe fn destroy_chain(head: *mut Node) {
    let mut p = head;
    while !p.is_null() {
        // SAFETY: by the contract, each node of the chain is owned here and
        // was allocated as a `Box<Node>` (through `alloc`); we read `next`
        // before dropping the node in place, then release its memory exactly
        // once.
        unsafe {
            let next = (*p).next_ptr() as *mut Node;
            std::ptr::drop_in_place(p);
            pool::release(p);
            p = next;
        }
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
                    // SAFETY: each block came from a `Box<Node>` and is unused (A2).
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

/// Give the allocator's free memory back to the operating system.
///
/// Under glibc, memory freed inside an arena's heap (not at its top) stays
/// in the process's RSS, and every thread that allocates under contention
/// gets an arena of its own: a paged tree, whose fault-ins, consolidations
/// and evictions allocate and free leaf-sized blocks on several threads,
/// measured 2.8x its live heap in RSS (283 MB held for 105 MB in use over
/// 7 arenas). glibc's `malloc_trim` releases every whole free page in every
/// arena (`madvise`), at a cost that grows with the free chunks it walks
/// (a few milliseconds over a few hundred megabytes). Elsewhere (another C
/// library, or under loom) this does nothing.
pub(crate) fn trim_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu", not(loom)))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: `malloc_trim` takes no pointer and only walks the
        // allocator's own free lists, under each arena's lock (glibc
        // documents it MT-Safe); it frees nothing that is in use.
        unsafe {
            malloc_trim(0);
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
    /// Nodes (deltas and pages) and cold stubs allocated and not yet freed,
    /// process-wide.
    pub fn live_nodes() -> isize {
        LIVE.load(Ordering::Relaxed)
    }
}

/// Live-node accounting: nothing without the `leak-check` feature.
#[cfg(not(feature = "leak-check"))]
pub(crate) mod counter {
    #[inline(always)]
    pub(crate) fn alloc() {}
    #[inline(always)]
    pub(crate) fn free() {}
}

// SAFETY: a published node is immutable but for atomics (N3); its raw links
// point to older nodes of the same chain, which it owns and which are freed
// together with it (N2), so moving it to another thread moves nothing shared.
unsafe impl Send for Node {}
// SAFETY: as above; shared access only reads, through `&Node` (N3).
unsafe impl Sync for Node {}

/// Reading a node's raw links: the only dereferences of them.
impl Node {
    /// The range an older node of this chain holds (`range()` for a delta
    /// that does not define its own).
    #[inline]
    pub(super) fn linked_range(&self) -> &PageRange {
        assert!(!self.range.is_null(), "range() on an unlinked delta");
        // SAFETY: non-null, so set by `link` to a range inside an older node
        // of this chain, which lives at least as long as this node (N2:
        // chains are freed whole).
        unsafe { &*self.range }
    }

    /// The next older node.
    #[inline]
    pub(crate) fn next(&self) -> Option<&Node> {
        // SAFETY: `next` is null or an older node of the same chain, freed
        // together with (never before) this node (N2).
        unsafe { self.next.as_ref() }
    }

    /// For a lookup of a key whose [`key_bit`](super::super::delta::key_bit) is `bit`: the first older node
    /// that is not a version delta, if no version delta from this node down
    /// to it can hold the key; `None` if this node must be checked.
    #[inline]
    pub(crate) fn skip_versions(&self, bit: u64) -> Option<&Node> {
        if self.key_filter & bit != 0 {
            return None;
        }
        // SAFETY: `skip` is null or an older node of the same chain (set by
        // `link` from `next`'s own links), freed together with this node (N2).
        unsafe { self.skip.as_ref() }
    }
}

/// Resident-byte accounting (`Options::cache_size`): a cheap estimate of
/// the heap bytes a node keeps alive: the node itself plus what its body
/// owns (arrays, blobs, shared values; a value shared with a caller's
/// `Bytes` counts whole). Counted by the mapping table when it publishes a
/// node and when it retires one (the memory is freed a grace period later).
pub(crate) mod bytes {
    use super::super::super::delta::{Body, Payload};
    use super::Node;

    /// Estimated heap bytes of `node` alone (not the older nodes it links).
    pub(crate) fn node_bytes(node: &Node) -> u64 {
        let fences = |r: &super::super::super::base::PageRange| {
            r.low.as_ref().map_or(0, |k| k.len()) + r.high.as_ref().map_or(0, |k| k.len())
        };
        let body = match &node.body {
            Body::Leaf(b) => b.byte_size() + b.big_values().iter().map(|v| v.len()).sum::<usize>() + fences(&b.range),
            Body::Inner(b) => b.seps.byte_len() + b.len() * 24 + fences(&b.range),
            Body::Version { kv, .. } => match kv {
                Payload::Inline { .. } => 0,
                Payload::Refcounted { key, value } => key.len() + value.as_ref().map_or(0, |v| v.len()),
            },
            Body::Split { range } => fences(range),
            Body::Evicted { range, keys, .. } => fences(range) + keys.as_ref().map_or(0, |k| k.len() * 8),
            Body::IndexEntry { sep, hi, .. } => sep.len() + hi.as_ref().map_or(0, |k| k.len()),
            Body::IndexTermDelete(_) | Body::RemoveNode { .. } => 64,
            Body::NodeMerge { sep, content, range } => sep.len() + fences(range) + node_bytes(content) as usize,
        };
        (std::mem::size_of::<Node>() + body) as u64
    }

    /// Bytes of the values in the chain from `head` down that something
    /// else still holds (a `Bytes` not unique right now): counted in
    /// [`chain_bytes`], but freeing the chain does not free them. At a
    /// retire that is mostly the chain that replaced it: a consolidation's
    /// new base shares every large value of the old chain, so counting them
    /// as garbage would count a leaf's large values again at each
    /// consolidation (`design/storage.md` §5.1, "Shared values are not
    /// garbage"). Read at one instant: a reader's clone taken or dropped
    /// meanwhile moves it, which only moves the retired estimate.
    pub(crate) fn shared_bytes(head: &Node) -> u64 {
        let shared = |b: &::bytes::Bytes| if b.is_unique() { 0 } else { b.len() as u64 };
        let mut sum = 0;
        let mut node = Some(head);
        while let Some(n) = node {
            sum += match &n.body {
                Body::Leaf(b) => b.big_values().iter().map(shared).sum(),
                Body::Version {
                    kv: Payload::Refcounted { value: Some(v), .. },
                    ..
                } => shared(v),
                _ => 0,
            };
            node = n.next();
        }
        sum
    }

    /// Estimated heap bytes of the chain from `head` down.
    pub(crate) fn chain_bytes(head: &Node) -> u64 {
        let mut sum = 0;
        let mut node = Some(head);
        while let Some(n) = node {
            sum += node_bytes(n);
            node = n.next();
        }
        sum
    }
}
