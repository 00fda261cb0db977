//! Structure modifications: consolidation (with split), index-entry posting,
//! the merge protocol, and growing and shrinking the root. Every step is one
//! CAS; any thread that meets an unfinished step finishes it (help-along).
//! The protocols, their invariants and hazards are in `design/bwtree.md`.

use crate::sync::Arc;

use bytes::Bytes;
use crossbeam_epoch::Guard;

use super::base::{InnerBase, PageRange};
use super::chain::{Chain, Delta, Node};
use super::consolidate::{collect_inner, collect_leaf, consolidate_simple};
use super::delta::{Body, MergeRecord};
use super::mapping_table::Pid;
use super::search::{route, Target};
use super::tree::{high_lt, next_root_word, root_pid, Step, Tree};
use crate::sync::{AtomicBool, Backoff, Ordering};
use crate::Result;

/// Where a page of `n >= 2` entries splits: the index of the right page's
/// first entry.
///
/// In the middle, unless `skew` (the split is for the entry count, not the
/// bytes) and the chain's newest delta (`newest`: a version's key, an index
/// entry's separator) is the page's last entry, as keys arriving in
/// ascending order make it (a bulk load, YCSB's inserts, time-ordered keys).
/// Then the left page, which will see no more of those inserts, keeps all but
/// `max(n / 8, min)` entries (at most half go right), so such a load leaves
/// its pages about 7/8 full instead of half full: half the leaves, and so
/// half the per-leaf part of the memory outside the cache budget
/// (mapping-table slots, index entries, cold stubs; not the key sets, which
/// are per key; `design/storage.md` §12). A newest delta that is `first`
/// (keys arriving in descending order: a leaf's first key, an inner page's
/// second entry, the first one posted) splits alike, near the start.
#[allow(clippy::too_many_arguments)]
fn split_at(
    n: usize,
    skew: bool,
    newest: Option<&[u8]>,
    first: Option<&[u8]>,
    last: &[u8],
    min: usize,
    max: usize,
) -> usize {
    let half = n / 2;
    let Some(newest) = newest.filter(|_| skew) else {
        return half;
    };
    let moved = (n / 8).max(min).max(1).min(half);
    // Neither page may come out over `max` (a chain consolidates every few
    // deltas, so `n` may be well over it).
    if newest == last {
        (n - moved).min(max).max(half)
    } else if Some(newest) == first {
        moved.max(n.saturating_sub(max)).min(half)
    } else {
        half
    }
}

fn copy(k: Option<&[u8]>) -> Option<Bytes> {
    k.map(Bytes::copy_from_slice)
}

impl Tree {
    /// Finish every unfinished merge recorded in `head`'s chain. Returns
    /// false if there were none.
    fn finish_pending_merges(&self, head: &Node, guard: &Guard) -> bool {
        if !head.has_merge_record {
            return false;
        }
        let mut any = false;
        for merge in head.pending_merges() {
            // A failed fault-in leaves the merge for the next helper.
            let _ = self.complete_merge(merge, guard);
            any = true;
        }
        any
    }

    /// Replace `head`'s chain with a consolidated base page, splitting it if
    /// it is too large and then trying to merge it if it is too small.
    /// A lost CAS discards the work: someone else changed the page.
    pub(crate) fn consolidate<'g>(&self, pid: Pid, head: &'g Node, path: &[Step<'g>], guard: &'g Guard) {
        if head.is_evicted() || head.is_frozen() || self.finish_pending_merges(head, guard) {
            return;
        }
        let range = head.range();
        let simple = if head.leaf {
            consolidate_simple(head, self.gc_watermark(), self.cfg.leaf_max, self.cfg.page_bytes)
        } else {
            None
        };
        let (new, len, dropped) = if let Some((mut base, n, dropped, tombs)) = simple {
            base.disk = super::flush::builds_on(head, tombs);
            (Node::base(Body::Leaf(base)), n, dropped)
        } else if head.leaf {
            let view = collect_leaf(head, self.gc_watermark());
            let n = view.len();
            // A split does not wait for a checkpoint's listing of the
            // leaves (F2 in `super::flush`); a merge start does.
            if n > self.cfg.leaf_max || (view.bytes > self.cfg.page_bytes && n >= 2) {
                let newest = match &head.body {
                    Body::Version { kv, .. } => Some(kv.key()),
                    _ => None,
                };
                let (first, last) = (view.keys[0].as_slice(), view.keys[n - 1].as_slice());
                let skew = n > self.cfg.leaf_max && view.bytes <= self.cfg.page_bytes;
                let at = split_at(n, skew, newest, Some(first), last, self.cfg.leaf_min, self.cfg.leaf_max);
                // Fences are copied: a slice would keep the old page's blob alive.
                let sep = Bytes::copy_from_slice(view.keys[at].as_slice());
                let right_range = PageRange::new(Some(sep.clone()), range.high.clone(), range.sibling);
                let right = Node::base(Body::Leaf(view.build(at..n, right_range)));
                let right_pid = self.table.alloc(guard);
                self.table.store_new(right_pid, Chain::base(right));
                let left_range = PageRange::new(range.low.clone(), Some(sep), right_pid);
                let left = Node::base(Body::Leaf(view.build(0..at, left_range.clone())));
                self.install_split(pid, head, right_pid, left, left_range, view.dropped, guard);
                return;
            }
            let mut base = view.build(0..n, range.clone());
            base.disk = super::flush::builds_on(head, view.tombs_dropped);
            (Node::base(Body::Leaf(base)), n, view.dropped)
        } else {
            let view = collect_inner(head);
            let n = view.entries.len();
            if n > self.cfg.inner_max {
                let newest = match &head.body {
                    Body::IndexEntry { sep, .. } => Some(&sep[..]),
                    _ => None,
                };
                let last = view.entries[n - 1].0.expect("not the first entry");
                // The first entry's separator is the low fence, never posted:
                // a descending load posts each new entry second, after the
                // leftmost child it split from.
                let first = view.entries[1].0;
                let at = split_at(n, true, newest, first, last, self.cfg.inner_min, self.cfg.inner_max);
                let sep = Bytes::copy_from_slice(view.entries[at].0.expect("not the first entry"));
                let right_range = PageRange::new(Some(sep.clone()), range.high.clone(), range.sibling);
                let right = Node::base(Body::Inner(view.build(at..n, right_range)));
                let right_pid = self.table.alloc(guard);
                self.table.store_new(right_pid, Chain::base(right));
                let left_range = PageRange::new(range.low.clone(), Some(sep), right_pid);
                let left = Node::base(Body::Inner(view.build(0..at, left_range.clone())));
                self.install_split(pid, head, right_pid, left, left_range, 0, guard);
                return;
            }
            (Node::base(Body::Inner(view.build(0..n, range.clone()))), n, 0)
        };
        // A lost CAS drops the new chain: someone else changed the page.
        let Ok(installed) = self.table.replace(pid, head, Chain::base(new), guard) else {
            return;
        };
        self.stats.consolidations.fetch_add(1, Ordering::Relaxed);
        self.stats.versions_dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        if path.is_empty() {
            // Only a root that still covers the whole key space: one that
            // split and has not grown yet (a high fence) has its right half
            // reachable through its sibling link alone, which a shrink
            // would unlink with it (the half leaked, never reached again).
            if !installed.leaf
                && len == 1
                && !installed.has_high()
                && pid == root_pid(self.root.load(Ordering::Acquire))
            {
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

    /// Install `Split -> left base` as `pid`'s new chain; `right_pid` already
    /// holds the right half. On a lost CAS the right half is taken back, and
    /// both halves are freed.
    #[allow(clippy::too_many_arguments)]
    fn install_split(
        &self,
        pid: Pid,
        head: &Node,
        right_pid: Pid,
        left: Node,
        left_range: PageRange,
        dropped: usize,
        guard: &Guard,
    ) {
        let split = Chain::split(left_range, left);
        if self.table.replace(pid, head, split, guard).is_ok() {
            self.stats.splits.fetch_add(1, Ordering::Relaxed);
            self.stats.consolidations.fetch_add(1, Ordering::Relaxed);
            self.stats.versions_dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        } else {
            self.table.unpublish(right_pid, guard);
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
        let parent_head = parent.head;
        if parent_head.is_frozen() || self.finish_pending_merges(parent_head, guard) {
            return;
        }
        // A merge recorded in `parent_head` may have finished after we read `child`
        // (finishing does not change the parent's head): it changed the
        // child's slot before publishing `done`, so re-read the slot. If the
        // child is unchanged, its sibling is in no parent and cannot be merged
        // away before our CAS on the unchanged parent lands.
        if !self
            .table
            .load(child_pid, guard)
            .is_some_and(|h| std::ptr::eq(h, child))
        {
            return;
        }
        let child_range = child.range();
        let Some(sep) = child_range.high.clone() else { return };
        let body = Body::IndexEntry {
            sep,
            hi: copy(hi),
            child: child_range.sibling,
        };
        // A lost CAS drops the delta: the parent changed.
        let _ = self.table.install(parent.pid, parent_head, Delta::new(body), guard);
    }

    /// Begin merging the underfull page `pid` into its left sibling: post the
    /// index-term-delete on the parent (the merge's commit point), then finish.
    fn try_merge<'g>(&self, pid: Pid, head: &'g Node, path: &[Step<'g>], guard: &'g Guard) {
        let Some(parent) = path.last() else { return };
        // Not while a checkpoint lists the leaves (`super::flush`).
        let Some(_pass) = (if head.leaf { self.smo_pass() } else { Some(None) }) else {
            return;
        };
        let Some(parent_head) = self.table.load(parent.pid, guard) else {
            return;
        };
        if parent_head.is_frozen() || self.finish_pending_merges(parent_head, guard) {
            return;
        }
        let Some(low) = head.range().low() else { return };
        let parent_range = parent_head.range();
        if !Target::Key(low).within(parent_range.low(), parent_range.high()) || parent_range.low() == Some(low) {
            return; // not our parent any more, or we are its leftmost child
        }
        let right = route(parent_head, Target::Key(low));
        if right.child != pid || right.lo != Some(low) {
            return;
        }
        let left = route(parent_head, Target::Before(low));
        if left.hi != Some(low) || left.child == pid {
            return;
        }
        let merge = MergeRecord {
            left: left.child,
            right: pid,
            lo: copy(left.lo),
            right_low: Bytes::copy_from_slice(low),
            hi: copy(right.hi),
            done: AtomicBool::new(false),
        };
        let delta = Delta::new(Body::IndexTermDelete(Arc::new(merge)));
        if let Ok(installed) = self.table.install(parent.pid, parent_head, delta, guard) {
            if let Body::IndexTermDelete(merge) = &installed.body {
                // A failed fault-in leaves the merge for the next helper.
                let _ = self.complete_merge(merge, guard);
            }
            // The parent lost a child: consolidate it now, so that an underfull
            // parent merges in turn and a root with one child shrinks.
            if let Some(parent_head) = self.table.load(parent.pid, guard) {
                self.consolidate(parent.pid, parent_head, &path[..path.len() - 1], guard);
            }
        }
    }

    /// Finish a merge whose index-term-delete is on the parent: freeze the right
    /// page, give a consolidated copy of it to the page on its left, unlink it.
    /// Idempotent; every step is decided from the current state. Either page
    /// may be an evicted leaf: it is faulted in first, and a failed read is
    /// the error (the merge is left for the next helper).
    pub(crate) fn complete_merge(&self, merge: &Arc<MergeRecord>, guard: &Guard) -> Result<()> {
        let backoff = Backoff::new();
        loop {
            if merge.done.load(Ordering::Acquire) {
                return Ok(());
            }
            let Some(right_head) = self.table.load(merge.right, guard) else {
                merge.done.store(true, Ordering::Release);
                return Ok(());
            };
            if right_head.is_evicted() {
                self.fault_in(merge.right, right_head, guard, false)?;
                continue;
            }
            // The id unlinked and reused: this helper read `done` before the
            // unlinker set it, and the id was freed since (possible while it
            // stays pinned, if the unlinker retired the id an epoch before
            // this pin) and handed to a new page, which must not be frozen.
            // The new page's low fence is not the merged page's (a page's
            // low fence never changes); were it the same, `done` reads true
            // now: this load of the slot synchronizes with the new page's
            // store, which came after the id's release, after `done`.
            if right_head.range().low() != Some(&merge.right_low[..]) || merge.done.load(Ordering::Acquire) {
                return Ok(());
            }
            match &right_head.body {
                Body::RemoveNode { merge: Some(m) } if Arc::ptr_eq(m, merge) => {}
                Body::RemoveNode { .. } => return Ok(()), // cannot happen: one removal per page
                _ => {
                    // Freeze the right page, after finishing merges among its
                    // own children (its chain must be consolidatable). A lost
                    // CAS drops the delta; the loop looks again.
                    if !self.finish_pending_merges(right_head, guard) {
                        let freeze = Delta::new(Body::RemoveNode {
                            merge: Some(merge.clone()),
                        });
                        let _ = self.table.install(merge.right, right_head, freeze, guard);
                    }
                    continue;
                }
            }
            // The right page is frozen. Find the page on its left (the
            // absorber) and merge.
            let mut absorber = merge.left;
            loop {
                let Some(absorber_head) = self.table.load(absorber, guard) else {
                    return Ok(());
                };
                if absorber_head.is_evicted() {
                    self.fault_in(absorber, absorber_head, guard, false)?;
                    continue;
                }
                let absorber_range = absorber_head.range();
                if absorber_range.sibling == merge.right && absorber_range.high() == Some(&merge.right_low[..]) {
                    if absorber_head.is_frozen() || self.finish_pending_merges(absorber_head, guard) {
                        backoff.snooze();
                        continue;
                    }
                    let right_range = right_head.range();
                    let content = if right_head.leaf {
                        let view = collect_leaf(right_head, 0);
                        Body::Leaf(view.build(0..view.len(), right_range.clone()))
                    } else {
                        let view = collect_inner(right_head);
                        Body::Inner(view.build(0..view.entries.len(), right_range.clone()))
                    };
                    let merged_range = PageRange::new(
                        absorber_range.low.clone(),
                        right_range.high.clone(),
                        right_range.sibling,
                    );
                    let body = Body::NodeMerge {
                        sep: merge.right_low.clone(),
                        content: Box::new(Node::base(content)),
                        range: merged_range,
                    };
                    match self.table.install(absorber, absorber_head, Delta::new(body), guard) {
                        Ok(_) => {
                            self.stats.merges.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(_) => {
                            backoff.snooze();
                            continue;
                        }
                    }
                }
                if Target::Key(&merge.right_low).within(absorber_range.low(), absorber_range.high()) {
                    break; // already merged
                }
                if absorber_range.high() == Some(&merge.right_low[..]) && absorber_range.sibling != merge.right {
                    break; // merged, and the absorber has since split at right_low
                }
                if high_lt(absorber_range.high(), Some(&merge.right_low)) {
                    absorber = absorber_range.sibling;
                    continue;
                }
                // The absorber's range passed right_low without containing it:
                // impossible while the B-link invariant holds.
                debug_assert!(false, "absorber walk passed the merged range");
                return Ok(());
            }
            // Unlink the right page (which retires its chain, and its id after
            // a grace period). `done` is published before the id can be
            // reused: that happens only once every thread pinned now,
            // this one included, has unpinned.
            if self.table.unlink(merge.right, right_head, guard) {
                merge.done.store(true, Ordering::Release);
            }
        }
    }

    /// The root page split: put a new root above it.
    pub(crate) fn grow_root(&self, root_word: u64, pid: Pid, head: &Node, guard: &Guard) {
        let range = head.range();
        let Some(sep) = range.high() else { return };
        let base = InnerBase::new(PageRange::full(), pid, &[(sep, range.sibling)]);
        let new_root = self.table.alloc(guard);
        self.table
            .store_new(new_root, Chain::base(Node::base(Body::Inner(base))));
        let next = next_root_word(root_word, new_root);
        if self
            .root
            .compare_exchange(root_word, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.stats.root_grows.fetch_add(1, Ordering::Relaxed);
        } else {
            self.table.unpublish(new_root, guard);
        }
    }

    /// The root is an inner page with one child: freeze it, then make the
    /// child the root.
    fn shrink_root(&self, pid: Pid, head: &Node, guard: &Guard) {
        let freeze = Delta::new(Body::RemoveNode { merge: None });
        if let Ok(frozen) = self.table.install(pid, head, freeze, guard) {
            self.finish_root_shrink(pid, frozen, guard);
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
            && self.table.unlink(pid, head, guard)
        {
            self.stats.root_shrinks.fetch_add(1, Ordering::Relaxed);
        }
    }
}
