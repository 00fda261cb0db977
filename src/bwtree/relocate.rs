//! The tree's side of segment cleaning (`design/storage.md` §9): list the
//! page-store addresses the mapping table publishes, and move one page's
//! published image to a new address by CAS.
//!
//! The engine's cleaner (`engine/clean.rs`) copies a still-current image to
//! the head of the page store, then calls [`Tree::relocate`], which swaps the
//! address in:
//! - an evicted leaf (`Evicted { addr }`, alone or under blind writes'
//!   version deltas, P4 in `super::paging`) gets a new `Evicted` node with
//!   the new address, the same fences, `max_ts` and key set, under copies
//!   of the same deltas;
//! - a cold leaf (`super::cold`) gets a new cold stub with the new address;
//! - a clean resident leaf (a base page alone at the head, `disk` naming an
//!   image equal to it, §3) gets the image decoded from the new address as
//!   its new base, with `disk` the new address and its own fences.
//!
//! Either way the page's content is unchanged, so the swap needs neither the
//! commit gate nor the eviction mutex: a commit whose validated head changed
//! takes a fresh descent (`super::commit`), a fault-in or eviction whose
//! CAS loses looks again or leaves the page as it is. A lost CAS here means
//! the page changed (a write, a fault-in, an eviction): the relocation is
//! skipped, and the copy is garbage.

use crossbeam_epoch as epoch;

use super::chain::{Chain, Node};
use super::delta::Body;
use super::mapping_table::{Peek, Pid};
use super::paging::detached;
use super::tree::Tree;
use crate::Result;

impl Tree {
    /// Every page-store address the mapping table publishes now, with its
    /// page id: evicted leaves' images and clean resident bases' (`disk`).
    pub(crate) fn disk_refs(&self) -> Vec<(Pid, u64)> {
        let mut out = Vec::new();
        let high = self.table.high_water();
        let mut pid = 0;
        while pid < high {
            let guard = epoch::pin();
            for p in pid..(pid + 1024).min(high) {
                // An evicted leaf's stub, under its blind writes' deltas
                // too, or cold (peeked: it stays packed).
                let head = match self.table.peek(p, &guard) {
                    Peek::Node(h) => Some(h),
                    Peek::Cold(cold) => {
                        out.push((p, cold.addr()));
                        continue;
                    }
                    Peek::Free => None,
                };
                match head.map(|h| super::blind::stub_of(h).unwrap_or(h)).map(|h| &h.body) {
                    Some(Body::Evicted { addr, .. }) => out.push((p, *addr)),
                    // Clean only: a dirty page that builds on a chain
                    // (`disk` with `DIRTY`) keeps its chain where it is.
                    Some(Body::Leaf(b)) if b.is_clean() => out.push((p, b.disk)),
                    _ => {}
                }
            }
            pid += 1024;
        }
        out
    }

    /// If page `pid` publishes the image at `addr` now (evicted there, or
    /// clean resident with `disk` there), the GC watermark the page was
    /// built with: a rewrite of its chain drops by it what the page had
    /// dropped (`super::image::collect_base`, as a fault-in does).
    pub(crate) fn published_watermark(&self, pid: Pid, addr: u64) -> Option<u64> {
        let guard = epoch::pin();
        let head = match self.table.peek(pid, &guard) {
            Peek::Node(h) => Some(h),
            Peek::Cold(cold) => return (cold.addr() == addr).then(|| cold.watermark()),
            Peek::Free => None,
        };
        match head.map(|h| super::blind::stub_of(h).unwrap_or(h)).map(|h| &h.body) {
            Some(Body::Evicted { addr: a, watermark, .. }) if *a == addr => Some(*watermark),
            Some(Body::Leaf(b)) if b.is_clean() && b.disk == addr => Some(b.built_watermark),
            _ => None,
        }
    }

    /// Swap page `pid`'s published image address `from` for `to` (a copy of
    /// the same record, appended by the caller). `Ok(false)`: the page no
    /// longer publishes `from` or changed meanwhile (the copy is garbage).
    /// For a clean resident leaf the copy is read back and decoded (an
    /// error reading it is returned; nothing changed).
    pub(crate) fn relocate(&self, pid: Pid, from: u64, to: u64) -> Result<bool> {
        let Some(paging) = self.paging.as_deref() else {
            return Ok(false);
        };
        let guard = epoch::pin();
        let head = match self.table.peek(pid, &guard) {
            Peek::Node(h) => h,
            // A cold leaf moves packed (C2).
            Peek::Cold(cold) if cold.addr() == from => {
                let moved = cold.moved(to, paging.io.read_hint(to));
                return Ok(self.table.replace_cold(pid, cold, moved, &guard));
            }
            Peek::Cold(_) | Peek::Free => return Ok(false),
        };
        let stub = super::blind::stub_of(head).unwrap_or(head);
        let chain = match &stub.body {
            Body::Evicted {
                addr,
                range,
                max_ts,
                watermark,
                keys,
                ..
            } if *addr == from => {
                let stub = Node::base(Body::Evicted {
                    addr: to,
                    range: detached(range),
                    max_ts: *max_ts,
                    watermark: *watermark,
                    keys: keys.clone(),
                    hint: paging.io.read_hint(to),
                });
                super::blind::rebuilt(head, stub, |_, _| true)
            }
            Body::Leaf(b) if b.disk == from => {
                // As a fault-in builds it (`collect_base`: versions the page
                // had dropped stay dropped).
                let mut base =
                    super::image::collect_base(paging.io.read_leaf(pid, to)?, b.built_watermark).with_disk(to);
                base.range = detached(&b.range);
                base.built_watermark = b.built_watermark;
                Chain::base(Node::base(Body::Leaf(base)))
            }
            _ => return Ok(false),
        };
        Ok(self.table.replace(pid, head, chain, &guard).is_ok())
    }
}
