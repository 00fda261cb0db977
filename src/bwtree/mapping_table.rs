//! The mapping table: logical page id -> newest node of the page's delta chain.
//!
//! Definitions
//! - The table is a list of lazily allocated segments; segment `s` holds
//!   `BASE << s` slots, so page id `p` lives in segment `log2(p + BASE) - log2(BASE)`.
//!   Growing allocates one new segment and publishes it by CAS: readers never stop,
//!   and there is no fixed cap (48 segments address more ids than memory can hold).
//! - Each slot is a `crossbeam_epoch::Atomic<Node>`: null when the id is free.
//!
//! Invariants
//! - T1. A segment is published once, by CAS from null, and freed only in
//!   `Drop` (`&mut self`), so `&slot` is valid for the table's lifetime.
//! - T2. A slot is only written by CAS (`install`, `replace`, `unlink`) on the
//!   node that was read, or by `store_new`/`unpublish` on an id that no other
//!   thread can know yet (fresh from `alloc`).
//! - T3. An id whose page was unlinked is pushed back to the free list only
//!   after a grace period (`Guard::defer`), so a thread that read the id from
//!   a stale parent while pinned never finds it reused for another page.
//! - T4. An id never published to another thread is taken back at once by
//!   `unpublish`, which retires its chain (through the epoch, like any other).
//! - T5. A slot owns its chain. The table is the only code that publishes a
//!   chain (`install` links a `Delta` to the head it replaces in the same
//!   step, so the delta owns exactly the chain the slot owned; `replace` and
//!   `store_new` publish a `Chain`), and the only code that retires one: the
//!   chain a successful `replace`, `unlink` or `unpublish` took out of its
//!   slot goes to the epoch (`chain::retire_chain`), and `Drop` destroys the
//!   chains left.
//!   Hence a node loaded under a pinned guard stays valid while the guard is
//!   pinned (and the table, whose `Drop` needs `&mut self`, lives).
//!
//! Numbering follows `design/bwtree.md`, section 1.

use crate::sync::Arc;

use crossbeam_epoch::{Atomic, Guard, Owned, Shared};

use super::chain::{chain_bytes, destroy_chain, node_bytes, retire_chain, shared_bytes, Chain, Delta, Node};
use super::resident::ResidentBytes;
use crate::sync::{AtomicPtr, AtomicU64, Ordering};

/// A logical page id.
pub(crate) type Pid = u64;
/// "No page": the sibling of the rightmost page on a level.
pub(crate) const NO_PID: Pid = u64::MAX;

const BASE_SHIFT: u32 = 6;
const BASE: u64 = 1 << BASE_SHIFT;
const SEGMENTS: usize = 48;

type Segment = Box<[Atomic<Node>]>;

pub(crate) struct MappingTable {
    segments: Box<[AtomicPtr<Segment>]>,
    next: AtomicU64,
    free: Arc<FreeList>,
    /// Resident-byte accounting, on for trees with paging only: estimated
    /// heap bytes of the chains published minus those retired
    /// ([`chain_bytes`]), sharded; an evicted leaf's stub (its `Evicted`
    /// node, alone or under blind writes' deltas) is counted apart, as a
    /// stub, the deltas over it as resident bytes.
    count_bytes: bool,
    pub(crate) resident: ResidentBytes,
}

/// The bytes of the chain at `head` counted as a stub (an evicted leaf's
/// `Evicted` node, under blind writes' deltas too: P4 in `super::paging`)
/// and as resident bytes (the rest).
fn split_bytes(head: &Node) -> (u64, u64) {
    let all = chain_bytes(head);
    match super::blind::stub_of(head) {
        Some(stub) => {
            let s = node_bytes(stub);
            (s, all - s)
        }
        None => (0, all),
    }
}

#[inline]
fn locate(pid: Pid) -> (usize, usize) {
    let n = pid + BASE;
    let seg = (63 - n.leading_zeros() - BASE_SHIFT) as usize;
    (seg, (n - (BASE << seg)) as usize)
}

impl MappingTable {
    pub(crate) fn new() -> Self {
        MappingTable {
            segments: (0..SEGMENTS).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect(),
            next: AtomicU64::new(0),
            free: Arc::new(FreeList::new()),
            count_bytes: false,
            resident: ResidentBytes::new(),
        }
    }

    /// Count resident bytes from now on (before the table is shared),
    /// starting from what it holds.
    pub(crate) fn count_bytes(&mut self) {
        let guard = crossbeam_epoch::pin();
        let (mut held, mut stubs) = (0, 0);
        for head in (0..self.high_water()).filter_map(|pid| self.load(pid, &guard)) {
            let (s, h) = split_bytes(head);
            stubs += s;
            held += h;
        }
        self.resident.set(held);
        self.resident.set_stubs(stubs);
        self.count_bytes = true;
    }

    /// Estimated heap bytes of the chains the table holds now (0 unless
    /// [`MappingTable::count_bytes`] was called).
    pub(crate) fn resident_bytes(&self) -> u64 {
        self.resident.get()
    }

    /// Estimated bytes of the evicted leaves' stubs the table holds (0
    /// unless [`MappingTable::count_bytes`] was called).
    pub(crate) fn stub_bytes(&self) -> u64 {
        self.resident.stubs()
    }

    #[inline]
    fn added(&self, bytes: impl FnOnce() -> u64) {
        if self.count_bytes {
            self.resident.add(bytes());
        }
    }

    /// Count the chain at `head`, just published whole: as a stub if it is
    /// an evicted leaf's, else as resident bytes.
    #[inline]
    fn added_chain(&self, head: &Node) {
        if self.count_bytes {
            let (stub, held) = split_bytes(head);
            if stub > 0 {
                self.resident.add_stub(stub);
            }
            if held > 0 {
                self.resident.add(held);
            }
        }
    }

    /// Retire the chain at `head`, which the caller's CAS or swap just took
    /// out of its slot (T5), through the epoch; counted as retired bytes
    /// until its destructor ran (`super::resident`).
    ///
    /// # Safety
    /// As [`retire_chain`]'s: no slot and no node owns the chain any more.
    #[inline]
    unsafe fn retire(&self, head: &Node, guard: &Guard) {
        if self.count_bytes {
            let (stub, held) = split_bytes(head);
            // Values the chain shares with its successor leave the resident
            // count with the chain but are not garbage (`shared_bytes`).
            let garbage = held.saturating_sub(shared_bytes(head));
            let stubs = (stub > 0).then(|| self.resident.retire_stub(stub));
            let retired = (held > 0).then(|| self.resident.retire(held, garbage, guard));
            // SAFETY: the caller's contract.
            unsafe {
                retire_chain(head, guard, move || {
                    if let Some(r) = stubs {
                        r.freed(stub);
                    }
                    if let Some(r) = retired {
                        r.freed(garbage);
                    }
                })
            };
        } else {
            // SAFETY: the caller's contract.
            unsafe { retire_chain(head, guard, || {}) };
        }
    }

    #[inline]
    fn slot(&self, pid: Pid) -> &Atomic<Node> {
        let (seg, off) = locate(pid);
        let mut p = self.segments[seg].load(Ordering::Acquire);
        if p.is_null() {
            p = self.grow(seg);
        }
        // SAFETY: segments are published once (CAS from null) and freed only in
        // `Drop`, which has `&mut self`; `off` is below the segment length by
        // construction of `locate`.
        unsafe { &(&*p)[off] }
    }

    #[cold]
    fn grow(&self, seg: usize) -> *mut Segment {
        let len = (BASE as usize) << seg;
        let fresh: Segment = (0..len).map(|_| Atomic::null()).collect();
        let fresh = Box::into_raw(Box::new(fresh));
        match self.segments[seg].compare_exchange(std::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => fresh,
            Err(won) => {
                // SAFETY: `fresh` was never published; we own it.
                drop(unsafe { Box::from_raw(fresh) });
                won
            }
        }
    }

    /// The page's newest node, or `None` if the id is free.
    ///
    /// The node stays valid while `guard` is pinned and the table lives (T5).
    #[inline]
    pub(crate) fn load<'g>(&'g self, pid: Pid, guard: &'g Guard) -> Option<&'g Node> {
        let head = self.slot(pid).load(Ordering::Acquire, guard);
        // SAFETY: loaded under `guard`; a chain leaves its slot only by a CAS
        // that then retires it through the epoch (T5), so it outlives `'g`.
        unsafe { head.as_ref() }
    }

    /// Prepend `delta` to the page if its newest node is still `head`: the
    /// delta is linked to `head` and published by one CAS. On a lost CAS the
    /// delta comes back, unlinked, for another try.
    #[inline]
    pub(crate) fn install<'g>(
        &self,
        pid: Pid,
        head: &'g Node,
        delta: Delta,
        guard: &'g Guard,
    ) -> Result<&'g Node, Delta> {
        // SAFETY: the linked node is published only by the CAS below, which
        // succeeds only if the slot holds `head`; the delta then owns
        // `head`'s chain, which the slot owned (N2). On a lost CAS it goes
        // straight back to `Delta::lost`; `guard` protects `head` meanwhile.
        let linked = unsafe { delta.link(head) };
        match self
            .slot(pid)
            .compare_exchange(shared(head), linked, Ordering::AcqRel, Ordering::Acquire, guard)
        {
            Ok(new) => {
                // SAFETY: just published under `guard` (as in `load`).
                let new = unsafe { new.deref() };
                self.added(|| node_bytes(new));
                Ok(new)
            }
            Err(e) => Err(Delta::lost(e.new)),
        }
    }

    /// Replace the page's chain by `chain` if its newest node is still
    /// `head`, and retire the old chain. On a lost CAS `chain` comes back.
    pub(crate) fn replace<'g>(
        &self,
        pid: Pid,
        head: &'g Node,
        chain: Chain,
        guard: &'g Guard,
    ) -> Result<&'g Node, Chain> {
        // SAFETY: published by the CAS below (the slot then owns it) or taken
        // back at once by `Chain::from_owned`.
        let new = unsafe { chain.into_owned() };
        match self
            .slot(pid)
            .compare_exchange(shared(head), new, Ordering::AcqRel, Ordering::Acquire, guard)
        {
            Ok(new) => {
                // SAFETY: our CAS just unlinked `head`; its chain was owned by
                // the slot alone (nodes own only the older nodes of their own
                // chain, N2).
                unsafe { self.retire(head, guard) };
                // SAFETY: just published under `guard` (as in `load`).
                let new = unsafe { new.deref() };
                self.added_chain(new);
                Ok(new)
            }
            // SAFETY: never published: the chain is still ours alone.
            Err(e) => Err(unsafe { Chain::from_owned(e.new) }),
        }
    }

    /// Unlink a page: null its slot if it still holds `head`, then retire
    /// its chain and, after a grace period, its id (T3).
    pub(crate) fn unlink(&self, pid: Pid, head: &Node, guard: &Guard) -> bool {
        let unlinked = self
            .slot(pid)
            .compare_exchange(shared(head), Shared::null(), Ordering::AcqRel, Ordering::Acquire, guard)
            .is_ok();
        if unlinked {
            // SAFETY: our CAS just unlinked `head`, whose chain only the slot owned.
            unsafe { self.retire(head, guard) };
            self.retire_pid(pid, guard);
        }
        unlinked
    }

    /// A page id no thread can know: from the free list, or a new one.
    pub(crate) fn alloc(&self, guard: &Guard) -> Pid {
        if let Some(pid) = self.free.pop(guard) {
            return pid;
        }
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Publish the first chain of a page id fresh from `alloc`.
    pub(crate) fn store_new(&self, pid: Pid, chain: Chain) {
        // SAFETY: stored right away; the slot owns the chain from now on.
        let new = unsafe { chain.into_owned() };
        self.added_chain(&new);
        self.slot(pid).store(new, Ordering::Release);
    }

    /// Take back a page id that was never published to another thread (its
    /// `store_new` was for a split or root grow whose CAS lost): null its slot,
    /// retire its chain and return the id to the free list at once (T4).
    ///
    /// The chain goes through the epoch rather than being freed here, so even
    /// an id that did leak to a reader costs no memory safety.
    pub(crate) fn unpublish(&self, pid: Pid, guard: &Guard) {
        let old = self.slot(pid).swap(Shared::null(), Ordering::AcqRel, guard);
        self.free.push(pid);
        // SAFETY: `old` is null or the chain our swap took out of the slot,
        // which owned it alone (T5); readers that loaded it are pinned.
        if let Some(old) = unsafe { old.as_ref() } {
            // SAFETY: as above: unlinked by our swap, owned by no one else.
            unsafe { self.retire(old, guard) };
        }
    }

    /// Whether a freed page id is waiting for reuse (tests).
    #[cfg(test)]
    pub(crate) fn has_free_pid(&self) -> bool {
        let guard = crossbeam_epoch::pin();
        !self.free.head.load(Ordering::Acquire, &guard).is_null()
    }

    /// Return an unlinked page id to the free list after a grace period.
    fn retire_pid(&self, pid: Pid, guard: &Guard) {
        let free = self.free.clone();
        guard.defer(move || free.push(pid));
    }

    /// Restoring a tree from a location table (before the table is
    /// shared): ids below `high` are taken (`listed`) or free; new ids start
    /// at `high`.
    pub(crate) fn restore_ids(&self, high: u64, listed: impl Fn(Pid) -> bool) {
        self.next.store(high, Ordering::Relaxed);
        for pid in (0..high).rev().filter(|&p| !listed(p)) {
            self.free.push(pid);
        }
    }

    /// Number of ids ever handed out (the table's high-water mark).
    pub(crate) fn high_water(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }
}

/// `head` as the pointer its slot holds.
#[inline]
fn shared(head: &Node) -> Shared<'_, Node> {
    Shared::from(head as *const Node)
}

impl Drop for MappingTable {
    fn drop(&mut self) {
        let guard = crossbeam_epoch::pin();
        for pid in 0..self.high_water() {
            let head = self.slot(pid).load(Ordering::Acquire, &guard);
            // SAFETY: `&mut self`: no thread can reach any page any more; each
            // live chain is owned by exactly one slot (retired chains were
            // unlinked first and are freed by their deferred destructors).
            unsafe { destroy_chain(head.as_raw() as *mut Node) };
        }
        for seg in self.segments.iter() {
            let p = seg.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: `&mut self`: no reader remains; each segment was boxed once.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

/// A Treiber stack of free page ids. Nodes are reclaimed through the epoch,
/// which also rules out ABA on `head`.
struct FreeList {
    head: Atomic<FreeNode>,
}

struct FreeNode {
    pid: Pid,
    next: Atomic<FreeNode>,
}

impl FreeList {
    fn new() -> Self {
        FreeList { head: Atomic::null() }
    }

    fn push(&self, pid: Pid) {
        // SAFETY: push never dereferences a pointer it loads (it only stores it
        // as `next` and CASes), so no epoch protection is needed. Not pinning
        // also keeps this callable from a deferred destructor.
        let guard = unsafe { crossbeam_epoch::unprotected() };
        let mut node = Owned::new(FreeNode {
            pid,
            next: Atomic::null(),
        });
        let backoff = crate::sync::Backoff::new();
        loop {
            let head = self.head.load(Ordering::Acquire, guard);
            node.next.store(head, Ordering::Relaxed);
            match self
                .head
                .compare_exchange(head, node, Ordering::AcqRel, Ordering::Acquire, guard)
            {
                Ok(_) => return,
                Err(e) => {
                    node = e.new;
                    backoff.snooze();
                }
            }
        }
    }

    fn pop(&self, guard: &Guard) -> Option<Pid> {
        let backoff = crate::sync::Backoff::new();
        loop {
            let head = self.head.load(Ordering::Acquire, guard);
            // SAFETY: nodes are freed only through `defer_destroy` below, after
            // every thread pinned now has unpinned.
            let node = unsafe { head.as_ref() }?;
            let next = node.next.load(Ordering::Acquire, guard);
            if self
                .head
                .compare_exchange(head, next, Ordering::AcqRel, Ordering::Acquire, guard)
                .is_ok()
            {
                let pid = node.pid;
                // SAFETY: `head` is now unreachable from the list; readers that
                // loaded it are pinned and keep it alive until they unpin.
                unsafe { guard.defer_destroy(head) };
                return Some(pid);
            }
            backoff.snooze();
        }
    }
}

impl Drop for FreeList {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can reach the list.
        let guard = unsafe { crossbeam_epoch::unprotected() };
        let mut p = self.head.load(Ordering::Relaxed, guard);
        while !p.is_null() {
            // SAFETY: as above; each node is owned by the list exactly once.
            let node = unsafe { p.into_owned() };
            p = node.next.load(Ordering::Relaxed, guard);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::bwtree::base::{LeafBuilder, PageRange, ValRef};
    use crate::bwtree::delta::Body;
    use bytes::Bytes;

    /// A leaf of one key whose value is `value` (large: kept as its own
    /// `Bytes`, shared with the caller's).
    fn leaf(value: &Bytes) -> Chain {
        let mut b = LeafBuilder::new(1);
        b.push_key(b"k");
        b.push_version(1, ValRef::Refcounted(value));
        b.end_key();
        Chain::base(Node::base(Body::Leaf(b.finish(PageRange::full()))))
    }

    /// A retired chain's garbage leaves out the values its successor still
    /// holds, and counts them once nothing else does (`shared_bytes`).
    #[test]
    fn values_shared_with_the_successor_are_not_retired_garbage() {
        let mut table = MappingTable::new();
        table.count_bytes();
        let guard = crossbeam_epoch::pin();
        let pid = table.alloc(&guard);
        table.store_new(pid, leaf(&Bytes::from(vec![7u8; 10_000])));
        let head = table.load(pid, &guard).unwrap();
        let whole = chain_bytes(head);
        assert!(whole > 10_000);
        // Nothing else holds the old value: all of the chain is garbage
        // (the pinned guard keeps the destructor from running meanwhile).
        let big = Bytes::from(vec![8u8; 10_000]);
        let head = table.replace(pid, head, leaf(&big), &guard).ok().unwrap();
        assert_eq!(table.resident.retired(), whole);
        // The successor shares the value: only the node is garbage.
        let head = table.replace(pid, head, leaf(&big), &guard).ok().unwrap();
        assert_eq!(table.resident.retired(), 2 * whole - 10_000);
        assert_eq!(shared_bytes(head), 10_000);
        drop(big);
    }

    #[test]
    fn locate_covers_ids_without_gaps() {
        let mut expect = (0usize, 0usize);
        for pid in 0..10_000u64 {
            let got = locate(pid);
            assert_eq!(got, expect, "pid {pid}");
            expect.1 += 1;
            if expect.1 == (BASE as usize) << expect.0 {
                expect = (expect.0 + 1, 0);
            }
        }
    }
}
