//! Structure modifications: consolidation (with split), index-entry posting,
//! the merge protocol, and growing and shrinking the root. Every step is one
//! CAS; any thread that meets an unfinished step finishes it (help-along).
//! The protocols, their invariants and hazards are in `design/bwtree.md`.

use bytes::Bytes;
use crossbeam_epoch::{Guard, Owned, Shared};

use super::consolidate::{collect_inner, collect_leaf, consolidate_simple};
use super::delta::{destroy_chain, owned, Body, ChainPtr, Itd, Node};
use super::mapping_table::Pid;
use super::node::{InnerBase, PageRange};
use super::search::{route, Target};
use super::tree::{deref, high_lt, next_root_word, root_pid, Step, Tree};
use crate::sync::{AtomicBool, Backoff, Ordering};

#[inline]
fn shared(n: &Node) -> Shared<'_, Node> {
    Shared::from(n as *const Node)
}

/// Free an unlinked chain after every thread pinned now has unpinned.
pub(crate) fn retire_chain(head: &Node, guard: &Guard) {
    let p = ChainPtr(head as *const Node as *mut Node);
    // SAFETY: the caller unlinked `head` (its slot no longer points to it and
    // no other node owns it), so after the grace period nobody can reach it.
    unsafe {
        guard.defer_unchecked(move || {
            let p = p;
            destroy_chain(p.0)
        })
    }
}

/// Turn an unpublished node into a raw chain head (for building chains).
fn into_raw(n: Owned<Node>) -> *const Node {
    Box::into_raw(n.into_box())
}

/// Free a delta that lost its CAS: only the delta, never the live chain
/// below it (`Node`'s drop does not follow `next`).
fn discard(n: Owned<Node>) {
    drop(n)
}

/// Free a whole chain that was never published (a split's new chain).
fn discard_chain(n: Owned<Node>) {
    // SAFETY: never published: we are its only owner.
    unsafe { destroy_chain(into_raw(n) as *mut Node) }
}

fn copy(k: Option<&[u8]>) -> Option<Bytes> {
    k.map(Bytes::copy_from_slice)
}

impl Tree {
    /// Finish every unfinished merge recorded in `head`'s chain. Returns
    /// false if there were none.
    fn finish_pending_merges(&self, head: &Node, guard: &Guard) -> bool {
        if !head.has_itd {
            return false;
        }
        let mut any = false;
        for itd in head.pending_itds() {
            self.complete_merge(itd, guard);
            any = true;
        }
        any
    }

    /// Replace `head`'s chain with a consolidated base page, splitting it if
    /// it is too large and then trying to merge it if it is too small.
    /// A lost CAS discards the work: someone else changed the page.
    pub(crate) fn consolidate<'g>(&self, pid: Pid, head: &'g Node, path: &[Step<'g>], guard: &'g Guard) {
        if head.is_frozen() || self.finish_pending_merges(head, guard) {
            return;
        }
        let range = head.range();
        let simple = if head.leaf {
            consolidate_simple(head, self.gc_watermark(), self.cfg.leaf_max, self.cfg.page_bytes)
        } else {
            None
        };
        let (new, len, dropped) = if let Some((base, n, dropped)) = simple {
            (Node::base(Body::Leaf(base)), n, dropped)
        } else if head.leaf {
            let view = collect_leaf(head, self.gc_watermark());
            let n = view.len();
            if n > self.cfg.leaf_max || (view.bytes > self.cfg.page_bytes && n >= 2) {
                // Fences are copied: a slice would keep the old page's blob alive.
                let sep = Bytes::copy_from_slice(view.keys[n / 2].as_slice());
                let right_range = PageRange::new(Some(sep.clone()), range.high.clone(), range.sibling);
                let right = Node::base(Body::Leaf(view.build(n / 2..n, right_range)));
                let q = self.table.alloc(guard);
                self.table.store_new(q, owned(right), guard);
                let left_range = PageRange::new(range.low.clone(), Some(sep), q);
                let left = Node::base(Body::Leaf(view.build(0..n / 2, left_range.clone())));
                self.install_split(pid, head, q, left, left_range, view.dropped, guard);
                return;
            }
            let base = view.build(0..n, range.clone());
            (Node::base(Body::Leaf(base)), n, view.dropped)
        } else {
            let view = collect_inner(head);
            let n = view.entries.len();
            if n > self.cfg.inner_max {
                let sep = Bytes::copy_from_slice(view.entries[n / 2].0.expect("not the first entry"));
                let right_range = PageRange::new(Some(sep.clone()), range.high.clone(), range.sibling);
                let right = Node::base(Body::Inner(view.build(n / 2..n, right_range)));
                let q = self.table.alloc(guard);
                self.table.store_new(q, owned(right), guard);
                let left_range = PageRange::new(range.low.clone(), Some(sep), q);
                let left = Node::base(Body::Inner(view.build(0..n / 2, left_range.clone())));
                self.install_split(pid, head, q, left, left_range, 0, guard);
                return;
            }
            (Node::base(Body::Inner(view.build(0..n, range.clone()))), n, 0)
        };
        let Ok(installed) = self.table.cas(pid, shared(head), owned(new), guard).map_err(discard) else {
            return;
        };
        retire_chain(head, guard);
        self.stats.consolidations.fetch_add(1, Ordering::Relaxed);
        self.stats.versions_dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        let installed = deref(installed).expect("just installed");
        if path.is_empty() {
            if !installed.leaf && len == 1 && pid == root_pid(self.root.load(Ordering::Acquire)) {
                self.shrink_root(pid, installed, guard);
            }
            return;
        }
        let min = if installed.leaf {
            self.cfg.leaf_min
        } else {
            self.cfg.inner_min
        };
        if len < min && range.low.is_some() {
            self.try_merge(pid, installed, path, guard);
        }
    }

    /// Install `Split -> left base` as `pid`'s new chain; `q` already holds the
    /// right half. On a lost CAS the right half is taken back.
    #[allow(clippy::too_many_arguments)]
    fn install_split(
        &self,
        pid: Pid,
        head: &Node,
        q: Pid,
        left: Node,
        left_range: PageRange,
        dropped: usize,
        guard: &Guard,
    ) {
        let left = owned(left);
        let mut split = Node::delta(Body::Split { range: left_range }, &left);
        split.next = into_raw(left);
        match self.table.cas(pid, shared(head), owned(split), guard) {
            Ok(_) => {
                retire_chain(head, guard);
                self.stats.splits.fetch_add(1, Ordering::Relaxed);
                self.stats.consolidations.fetch_add(1, Ordering::Relaxed);
                self.stats.versions_dropped.fetch_add(dropped as u64, Ordering::Relaxed);
            }
            Err(split) => {
                discard_chain(split);
                if let Some(right) = self.table.unpublish(q, guard) {
                    discard(right);
                }
            }
        }
    }

    /// `child` (reached from `parent`, which routed keys up to `hi` to it) ends
    /// below `hi`: the parent lacks the separator `child.high -> child.sibling`.
    /// Post it, unless the parent changed or has a merge to finish first.
    pub(crate) fn post_index_entry(
        &self,
        parent: Step<'_>,
        child_pid: Pid,
        child: &Node,
        hi: Option<&[u8]>,
        guard: &Guard,
    ) {
        let ph = parent.head;
        if ph.is_frozen() || self.finish_pending_merges(ph, guard) {
            return;
        }
        // A merge recorded in `ph` may have finished after we read `child`
        // (finishing does not change the parent's head): it changed the
        // child's slot before publishing `done`, so re-read the slot. If the
        // child is unchanged, its sibling is in no parent and cannot be merged
        // away before our CAS on the unchanged parent lands.
        if self.table.load(child_pid, guard) != shared(child) {
            return;
        }
        let r = child.range();
        let Some(sep) = r.high.clone() else { return };
        let body = Body::IndexEntry {
            sep,
            hi: copy(hi),
            child: r.sibling,
        };
        let _ = self
            .table
            .cas(parent.pid, shared(ph), Owned::new(Node::delta(body, ph)), guard)
            .map_err(discard);
    }

    /// Begin merging the underfull page `pid` into its left sibling: post the
    /// index-term-delete on the parent (the merge's commit point), then finish.
    fn try_merge<'g>(&self, pid: Pid, head: &'g Node, path: &[Step<'g>], guard: &'g Guard) {
        let Some(parent) = path.last() else { return };
        let Some(ph) = deref(self.table.load(parent.pid, guard)) else {
            return;
        };
        if ph.is_frozen() || self.finish_pending_merges(ph, guard) {
            return;
        }
        let Some(low) = head.range().low() else { return };
        let pr = ph.range();
        if !Target::Key(low).within(pr.low(), pr.high()) || pr.low() == Some(low) {
            return; // not our parent any more, or we are its leftmost child
        }
        let right = route(ph, Target::Key(low));
        if right.child != pid || right.lo != Some(low) {
            return;
        }
        let left = route(ph, Target::Before(low));
        if left.hi != Some(low) || left.child == pid {
            return;
        }
        let itd = Itd {
            left: left.child,
            right: pid,
            lo: copy(left.lo),
            right_low: Bytes::copy_from_slice(low),
            hi: copy(right.hi),
            done: AtomicBool::new(false),
        };
        let node = Node::delta(Body::IndexTermDelete(Box::new(itd)), ph);
        if let Ok(installed) = self
            .table
            .cas(parent.pid, shared(ph), Owned::new(node), guard)
            .map_err(discard)
        {
            if let Body::IndexTermDelete(itd) = &deref(installed).expect("just installed").body {
                self.complete_merge(itd, guard);
            }
            // The parent lost a child: consolidate it now, so that an underfull
            // parent merges in turn and a root with one child shrinks.
            if let Some(ph) = deref(self.table.load(parent.pid, guard)) {
                self.consolidate(parent.pid, ph, &path[..path.len() - 1], guard);
            }
        }
    }

    /// Finish a merge whose index-term-delete is on the parent: freeze the right
    /// page, give a consolidated copy of it to the page on its left, unlink it.
    /// Idempotent; every step is decided from the current state.
    pub(crate) fn complete_merge(&self, itd: &Itd, guard: &Guard) {
        let backoff = Backoff::new();
        loop {
            if itd.done.load(Ordering::Acquire) {
                return;
            }
            let rs = self.table.load(itd.right, guard);
            let Some(rh) = deref(rs) else {
                itd.done.store(true, Ordering::Release);
                return;
            };
            match &rh.body {
                Body::RemoveNode { itd: p } if std::ptr::eq(*p, itd) => {}
                Body::RemoveNode { .. } => return, // cannot happen: one removal per page
                _ => {
                    // Freeze the right page, after finishing merges among its
                    // own children (its chain must be consolidatable).
                    if !self.finish_pending_merges(rh, guard) {
                        let freeze = Node::delta(Body::RemoveNode { itd: itd as *const Itd }, rh);
                        let _ = self
                            .table
                            .cas(itd.right, rs, Owned::new(freeze), guard)
                            .map_err(discard);
                    }
                    continue;
                }
            }
            // The right page is frozen. Find the page on its left and merge.
            let mut apid = itd.left;
            loop {
                let Some(ah) = deref(self.table.load(apid, guard)) else {
                    return;
                };
                let ar = ah.range();
                if ar.sibling == itd.right && ar.high() == Some(&itd.right_low[..]) {
                    if ah.is_frozen() || self.finish_pending_merges(ah, guard) {
                        backoff.snooze();
                        continue;
                    }
                    let rr = rh.range();
                    let content = if rh.leaf {
                        let view = collect_leaf(rh, 0);
                        Body::Leaf(view.build(0..view.len(), rr.clone()))
                    } else {
                        let view = collect_inner(rh);
                        Body::Inner(view.build(0..view.entries.len(), rr.clone()))
                    };
                    let merged_range = PageRange::new(ar.low.clone(), rr.high.clone(), rr.sibling);
                    let body = Body::NodeMerge {
                        sep: itd.right_low.clone(),
                        content: Box::new(Node::base(content)),
                        range: merged_range,
                    };
                    match self
                        .table
                        .cas(apid, shared(ah), Owned::new(Node::delta(body, ah)), guard)
                    {
                        Ok(_) => {
                            self.stats.merges.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(n) => {
                            discard(n);
                            backoff.snooze();
                            continue;
                        }
                    }
                }
                if Target::Key(&itd.right_low).within(ar.low(), ar.high()) {
                    break; // already merged
                }
                if ar.high() == Some(&itd.right_low[..]) && ar.sibling != itd.right {
                    break; // merged, and the absorber has since split at right_low
                }
                if high_lt(ar.high(), Some(&itd.right_low)) {
                    apid = ar.sibling;
                    continue;
                }
                // The absorber's range passed right_low without containing it:
                // impossible while the B-link invariant holds.
                debug_assert!(false, "absorber walk passed the merged range");
                return;
            }
            // Unlink the right page. Publish `done` before the id can be reused.
            if self.table.unlink(itd.right, rs, guard) {
                itd.done.store(true, Ordering::Release);
                retire_chain(rh, guard);
                self.table.retire_pid(itd.right, guard);
            }
        }
    }

    /// The root page split: put a new root above it.
    pub(crate) fn grow_root(&self, root_word: u64, pid: Pid, head: &Node, guard: &Guard) {
        let r = head.range();
        let Some(sep) = r.high() else { return };
        let base = InnerBase::new(PageRange::full(), pid, &[(sep, r.sibling)]);
        let new_root = self.table.alloc(guard);
        self.table
            .store_new(new_root, Owned::new(Node::base(Body::Inner(base))), guard);
        let next = next_root_word(root_word, new_root);
        if self
            .root
            .compare_exchange(root_word, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.stats.root_grows.fetch_add(1, Ordering::Relaxed);
        } else if let Some(n) = self.table.unpublish(new_root, guard) {
            discard(n);
        }
    }

    /// The root is an inner page with one child: freeze it, then make the
    /// child the root.
    fn shrink_root(&self, pid: Pid, head: &Node, guard: &Guard) {
        let freeze = Node::delta(Body::RemoveNode { itd: std::ptr::null() }, head);
        if let Ok(frozen) = self
            .table
            .cas(pid, shared(head), Owned::new(freeze), guard)
            .map_err(discard)
        {
            self.finish_root_shrink(pid, deref(frozen).expect("just installed"), guard);
        }
    }

    /// Help a frozen root hand over to its only child.
    pub(crate) fn finish_root_shrink(&self, pid: Pid, head: &Node, guard: &Guard) {
        let child = route(head, Target::Last).child;
        let word = self.root.load(Ordering::Acquire);
        if root_pid(word) != pid {
            return;
        }
        // `pid` cannot have been reused: we are pinned since we loaded its
        // frozen head, and its id is freed only after a grace period.
        if self
            .root
            .compare_exchange(word, next_root_word(word, child), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            && self.table.unlink(pid, shared(head), guard)
        {
            self.stats.root_shrinks.fetch_add(1, Ordering::Relaxed);
            retire_chain(head, guard);
            self.table.retire_pid(pid, guard);
        }
    }
}
