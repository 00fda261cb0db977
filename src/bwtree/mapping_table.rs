//! The mapping table: logical page id -> newest node of the page's delta chain.
//!
//! Definitions
//! - The table is a list of lazily allocated segments; segment `s` holds
//!   `BASE << s` slots, so page id `p` lives in segment `log2(p + BASE) - log2(BASE)`.
//!   Growing allocates one new segment and publishes it by CAS: readers never stop,
//!   and there is no fixed cap (48 segments address more ids than memory can hold).
//! - Each slot is a `crossbeam_epoch::Atomic<Node>`: null when the id is free,
//!   or tagged [`COLD`] when it holds a cold stub (T6).
//!
//! Invariants
//! - T1. A segment is published once, by CAS from null, and freed only in
//!   `Drop` (`&mut self`), so `&slot` is valid for the table's lifetime.
//! - T2. A slot is only written by CAS (`install`, `replace`, `unlink`,
//!   `replace_with_cold`, `pack`) on the node that was read, by CAS on the
//!   cold stub that was read (`replace_cold`, the unpacking in `load`), or
//!   by `store_new`/`store_new_cold`/`unpublish` on an id that no other
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
//! - T6. A slot whose tag is [`COLD`] holds a leaked `Box<Cold>`, not a
//!   node (a cold stub, `super::cold`). Only
//!   [`MappingTable::replace_with_cold`] (and `pack`, which calls it),
//!   [`MappingTable::store_new_cold`] and [`MappingTable::replace_cold`]
//!   publish one; it leaves its slot only by a CAS (an unpacking in
//!   [`MappingTable::load`], a `replace_cold`), by `unpublish`'s swap, or
//!   in `Drop`, and is then
//!   retired through the epoch as a chain is, so a `&Cold` loaded under a
//!   pinned guard stays valid as a node does.
//! - T7. No `&Node` is ever made from a cold slot: every read of a slot
//!   checks the tag first (`load`, `peek`, `unpublish`, `Drop`).
//! - T8. A CAS that expects a node (`install`, `replace`, `unlink`) fails on
//!   a cold slot, whose word differs from any node's: its caller looks
//!   again, and `load` unpacks the slot first, so every path that changes a
//!   page meets a node, as before cold stubs.
//!
//! Numbering follows `design/bwtree.md`, section 1.

use crate::sync::Arc;

use crossbeam_epoch::{Atomic, Guard, Owned, Shared};

use super::chain::{chain_bytes, destroy_chain, node_bytes, retire_chain, shared_bytes, Chain, Delta, Node};
use super::cold::Cold;
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

/// The tag of a cold slot (T6). Nodes and `Cold`s are 8-aligned, so the
/// slot's pointer has three tag bits.
const COLD: usize = 1;

/// What a slot holds, read without unpacking it ([`MappingTable::peek`]).
pub(crate) enum Peek<'g> {
    /// A free id.
    Free,
    /// A chain's newest node.
    Node(&'g Node),
    /// A cold stub.
    Cold(&'g Cold),
}

/// `cold` as the word its slot holds (T6).
fn cold_shared<'g>(cold: *const Cold) -> Shared<'g, Node> {
    Shared::from(cold.cast::<Node>()).with_tag(COLD)
}

/// Makes a `*mut Cold` movable into a deferred destructor.
struct ColdPtr(*mut Cold);

// SAFETY: the pointer is the unique owner of a `Box<Cold>` that no thread
// reaches any more (T6); `Cold` is plain data (`Send`), and the destructor
// that receives the pointer is the only code that uses it.
unsafe impl Send for ColdPtr {}

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
        for pid in 0..self.high_water() {
            match self.peek(pid, &guard) {
                Peek::Node(head) => {
                    let (s, h) = split_bytes(head);
                    stubs += s;
                    held += h;
                }
                Peek::Cold(cold) => stubs += cold.bytes(),
                Peek::Free => {}
            }
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

    /// The page's newest node, or `None` if the id is free. A cold slot is
    /// unpacked first: its stub is rebuilt and CASed in (T8).
    ///
    /// The node stays valid while `guard` is pinned and the table lives (T5).
    #[inline]
    pub(crate) fn load<'g>(&'g self, pid: Pid, guard: &'g Guard) -> Option<&'g Node> {
        let head = self.slot(pid).load(Ordering::Acquire, guard);
        if head.tag() == COLD {
            return self.unpack(pid, guard);
        }
        // SAFETY: untagged, so a node or null (T7); loaded under `guard`; a
        // chain leaves its slot only by a CAS that then retires it through
        // the epoch (T5), so it outlives `'g`.
        unsafe { head.as_ref() }
    }

    /// What the slot of `pid` holds, a cold stub left packed: for the
    /// walks over every page id (the clock's hand, a checkpoint's flushes,
    /// the cleaner's list of addresses), which must not unpack every cold
    /// leaf they pass.
    #[inline]
    pub(crate) fn peek<'g>(&'g self, pid: Pid, guard: &'g Guard) -> Peek<'g> {
        let head = self.slot(pid).load(Ordering::Acquire, guard);
        if head.tag() == COLD {
            // SAFETY: a cold slot's pointer is a `Box<Cold>`'s (T6), which
            // outlives `'g` as a node would (T6: retired through the epoch).
            return Peek::Cold(unsafe { &*head.as_raw().cast::<Cold>() });
        }
        // SAFETY: as in `load`.
        match unsafe { head.as_ref() } {
            Some(node) => Peek::Node(node),
            None => Peek::Free,
        }
    }

    /// Unpack the cold slot of `pid`: CAS the stub its `Cold` describes in
    /// (C1), retire the `Cold`. Returns the page's head, whoever installed
    /// it (a lost CAS means another thread unpacked the slot or changed the
    /// page: its head is returned, after unpacking again if need be).
    #[cold]
    fn unpack<'g>(&'g self, pid: Pid, guard: &'g Guard) -> Option<&'g Node> {
        let slot = self.slot(pid);
        loop {
            let cur = slot.load(Ordering::Acquire, guard);
            if cur.tag() != COLD {
                // Unpacked by another thread meanwhile (and maybe changed
                // since, or even unlinked: then `None`, as `load` reports a
                // free id).
                // SAFETY: as in `load`.
                return unsafe { cur.as_ref() };
            }
            // SAFETY: as in `peek`.
            let cold = unsafe { &*cur.as_raw().cast::<Cold>() };
            // SAFETY: published by the CAS below (the slot then owns it) or
            // taken back at once by `Chain::from_owned`.
            let new = unsafe { cold.stub().into_owned() };
            match slot.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire, guard) {
                Ok(new) => {
                    // SAFETY: our CAS took the `Cold` out of its slot (T6).
                    unsafe { self.retire_cold(cur.as_raw().cast::<Cold>().cast_mut(), guard) };
                    // SAFETY: just published under `guard` (as in `load`).
                    let new = unsafe { new.deref() };
                    self.added_chain(new);
                    return Some(new);
                }
                // SAFETY: never published: the chain is still ours alone.
                Err(e) => drop(unsafe { Chain::from_owned(e.new) }),
            }
        }
    }

    /// Pack the page `pid` if its head is still `head`, a plain stub (T6):
    /// CAS its [`Cold`] in and retire the stub. `false`: `head` is not a
    /// plain stub, or the page changed (the caller leaves it).
    pub(crate) fn pack(&self, pid: Pid, head: &Node, guard: &Guard) -> bool {
        Cold::of(head).is_some_and(|cold| self.replace_with_cold(pid, head, cold, guard))
    }

    /// Replace the page's chain by the cold stub `cold` if its newest node
    /// is still `head` (an eviction: T6), and retire the old chain.
    /// `false`: the page changed (`cold` is dropped).
    pub(crate) fn replace_with_cold(&self, pid: Pid, head: &Node, cold: Box<Cold>, guard: &Guard) -> bool {
        let bytes = cold.bytes();
        let raw = Box::into_raw(cold);
        match self.slot(pid).compare_exchange(
            shared(head),
            cold_shared(raw),
            Ordering::AcqRel,
            Ordering::Acquire,
            guard,
        ) {
            Ok(_) => {
                // SAFETY: our CAS just unlinked `head`, whose chain the slot
                // alone owned.
                unsafe { self.retire(head, guard) };
                if self.count_bytes {
                    self.resident.add_stub(bytes);
                }
                true
            }
            Err(_) => {
                // SAFETY: never published: `raw` is still ours alone.
                drop(unsafe { Box::from_raw(raw) });
                false
            }
        }
    }

    /// Publish a cold stub at a page id fresh from `alloc` (a tree restored
    /// from a location table, before it is shared).
    pub(crate) fn store_new_cold(&self, pid: Pid, cold: Box<Cold>) {
        if self.count_bytes {
            self.resident.add_stub(cold.bytes());
        }
        let raw = Box::into_raw(cold);
        self.slot(pid).store(cold_shared(raw), Ordering::Release);
    }

    /// Replace the cold stub `old` of `pid` by `new` if the slot still
    /// holds `old` (a relocation, C2), and retire `old`. `false`: the slot
    /// changed (`new` is dropped).
    pub(crate) fn replace_cold(&self, pid: Pid, old: &Cold, new: Box<Cold>, guard: &Guard) -> bool {
        let bytes = new.bytes();
        let raw = Box::into_raw(new);
        let old_raw = std::ptr::from_ref(old);
        match self.slot(pid).compare_exchange(
            cold_shared(old_raw),
            cold_shared(raw),
            Ordering::AcqRel,
            Ordering::Acquire,
            guard,
        ) {
            Ok(_) => {
                if self.count_bytes {
                    self.resident.add_stub(bytes);
                }
                // SAFETY: our CAS took `old` out of its slot (T6).
                unsafe { self.retire_cold(old_raw.cast_mut(), guard) };
                true
            }
            Err(_) => {
                // SAFETY: never published: `raw` is still ours alone.
                drop(unsafe { Box::from_raw(raw) });
                false
            }
        }
    }

    /// Retire a `Cold` that the caller's CAS just took out of its slot,
    /// through the epoch, counted as retired stub bytes until freed.
    ///
    /// # Safety
    /// `cold` is a `Box<Cold>` that was published in a slot (T6) and that
    /// the caller's successful CAS unlinked: no slot holds it any more.
    unsafe fn retire_cold(&self, cold: *mut Cold, guard: &Guard) {
        // SAFETY: valid until retired (T6), and only read here.
        let bytes = unsafe { &*cold }.bytes();
        let retired = self.count_bytes.then(|| self.resident.retire_stub(bytes));
        let p = ColdPtr(cold);
        // SAFETY: by the contract no slot holds `cold`; threads that loaded
        // it are pinned, and the collector runs this after they unpin, once.
        unsafe {
            guard.defer_unchecked(move || {
                let p = p;
                drop(Box::from_raw(p.0));
                if let Some(r) = retired {
                    r.freed(bytes);
                }
            });
        }
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
        if old.tag() == COLD {
            // SAFETY: our swap took the `Cold` out of its slot (T6).
            unsafe { self.retire_cold(old.as_raw().cast::<Cold>().cast_mut(), guard) };
            return;
        }
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
            if head.tag() == COLD {
                // SAFETY: `&mut self`: no thread can reach the slot; a cold
                // slot owns its `Box<Cold>` alone (T6).
                drop(unsafe { Box::from_raw(head.as_raw().cast::<Cold>().cast_mut()) });
                continue;
            }
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
mod tests;
