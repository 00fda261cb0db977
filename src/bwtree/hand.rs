//! The evictor's clock hand (`design/storage.md` §5.1): which resident
//! leaves an eviction batch takes ([`Tree::evict_to`]), first from the
//! probation queue (leaves a scan brought in), then from the faulted-in
//! leaves' queue, then by the hand over every page id, and what the hand
//! does to the evicted leaves it passes (their read-through counts, PK1's
//! packing). The eviction itself is `super::paging`'s [`Tree::evict`].
//! Split from `super::paging`.

use crossbeam_epoch as epoch;

use super::chain::{chain_bytes, Node};
use super::clock;
use super::mapping_table::Peek;
use super::paging::BATCH;
use super::tree::Tree;
use crate::sync::Ordering;
use crate::Result;

impl Tree {
    /// Evict leaves chosen by the clock until the resident bytes are at most
    /// `target`, at most `max_batches` batches of [`BATCH`] leaves. Returns
    /// how many leaves were evicted; a page-store error is returned.
    pub(crate) fn evict_to(&self, target: u64, max_batches: usize) -> Result<usize> {
        let Some(paging) = self.paging.as_deref() else {
            return Ok(0);
        };
        let mut total = 0;
        for _ in 0..max_batches {
            let resident_now = self.resident_bytes();
            if resident_now <= target {
                break;
            }
            // Take only what brings the resident bytes down to `target`, so
            // the hand turns no further than needed (each turn wears the
            // hot leaves' counts down).
            let need = resident_now - target;
            let high = self.table.high_water().max(1);
            let mut batch = Vec::with_capacity(BATCH);
            {
                let guard = epoch::pin();
                let mut freed = 0;
                // `pid`'s head if it is a resident leaf (deltas over a stub
                // count: P6 sheds them). Its bytes are summed only if it
                // joins the batch: the hand passes many more leaves than it
                // takes, and walking each chain for its size was 8% of a
                // profile of uniform updates.
                let resident = |pid| match self.table.peek(pid, &guard) {
                    Peek::Node(h) if h.leaf && !h.is_stub() && !h.is_frozen() => Some(h),
                    _ => None,
                };
                {
                    let mut q = crate::sync::lock(&paging.probation);
                    while batch.len() < BATCH && freed < need {
                        let Some(pid) = q.pop_front() else { break };
                        // Still at a scan's count: no point operation since.
                        if paging.uses.get(pid) <= clock::SCAN {
                            if let Some(head) = resident(pid) {
                                batch.push(pid);
                                freed += chain_bytes(head);
                            }
                        }
                    }
                }
                // The faulted-in leaves' clock, four turns at most (a
                // count of 3 reaches 0 on the fourth): evictable ones join
                // the batch, the others go back with their count lowered,
                // entries of leaves no longer resident drop out.
                {
                    let mut q = crate::sync::lock(&paging.faulted);
                    for _ in 0..q.len().saturating_mul(4) {
                        if batch.len() == BATCH || freed >= need {
                            break;
                        }
                        let Some(pid) = q.pop_front() else { break };
                        let Some(head) = resident(pid) else { continue };
                        if paging.uses.pass(pid) && !batch.contains(&pid) {
                            batch.push(pid);
                            freed += chain_bytes(head);
                        } else {
                            q.push_back(pid);
                        }
                    }
                }
                // Then the hand over every page id, for the leaves the
                // queues do not hold. Four turns at most, as above.
                for _ in 0..high.saturating_mul(4) {
                    if batch.len() == BATCH || freed >= need {
                        break;
                    }
                    let pid = paging.hand.fetch_add(1, Ordering::Relaxed) % high;
                    // Peeked: a cold leaf stays packed (`super::cold`).
                    let node = match self.table.peek(pid, &guard) {
                        Peek::Node(h) => Some(h),
                        Peek::Cold(_) | Peek::Free => None,
                    };
                    let head = node.filter(|&h| h.leaf && !h.is_stub() && !h.is_frozen());
                    if head.is_none_or(Node::is_evicted) {
                        // An evicted leaf (a stub, alone or under blind
                        // writes' deltas, or cold): its read-throughs count
                        // net of the hand's passes (`super::read_through`).
                        paging.through.pass(pid);
                        // A plain stub no write or fault-in used since the
                        // hand's last pass is packed (PK1); reads do not
                        // keep it (they read a cold leaf as they read a stub).
                        if let Some(stub) = node.filter(|h| h.is_stub()) {
                            if paging.uses.pass(pid) && self.table.pack(pid, stub, &guard) {
                                paging.counters.packs.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    let Some(head) = head else { continue };
                    if paging.uses.pass(pid) && !batch.contains(&pid) {
                        batch.push(pid);
                        freed += chain_bytes(head);
                    }
                }
            }
            if batch.is_empty() {
                break;
            }
            total += self.evict(&batch, false)?;
        }
        Ok(total)
    }
}
