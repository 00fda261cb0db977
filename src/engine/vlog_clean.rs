//! The value log's cleaner (`design/storage.md` §10, "Cleaning"): values
//! still referenced in mostly-dead value-log segments are appended again at
//! the head and the pages referencing them repointed, so that the next
//! checkpoint's collection deletes those segments.
//!
//! One pass ([`Engine::clean_values`]), numbered as in the design note:
//! 1. The reachable images: every part of the chains the newest table lists
//!    and the mapping tables name. The record bytes their known references
//!    name, per segment ([`super::vlog::ValueLog::usage_by_segment`]).
//! 2. Victims: every segment but the current one (and but those an image of
//!    an earlier run not read yet may reference) whose referenced bytes
//!    are less than half its record bytes. They become the value log's
//!    *evacuating* set (it replaces the last pass's): from now on any flush
//!    appends again a version placed in one (`ValueLog::place`), and a
//!    delta flush on a chain referencing one is declined, so that page's
//!    next flush writes a whole image.
//! 3. For each page the mapping table publishes (an evicted leaf, a clean
//!    resident one) whose chain references a victim, oldest address
//!    first, at most `budget` bytes, in batches of [`BATCH`] under the
//!    cleaning mutex: the chain is read and merged, written as one whole
//!    image (`PageFile::rewrite`: its victim values appended anew; nothing
//!    synced) and CASed in (`Tree::relocate`, as the page cleaner's copies);
//!    a lost CAS means the page changed, and the image and values written
//!    are garbage. A read that fails while the page no longer publishes the
//!    address is skipped (a checkpoint deleted what it named); with the
//!    address still published it is the pass's error.
//! 4. Nothing is deleted here: the next checkpoint (forced, as for the page
//!    cleaner) syncs the value log, then the page segment, writes and syncs
//!    the table naming the new images, and only then collects: a victim no
//!    reachable image references any more is deleted (directory synced).
//!    Dirty resident pages whose chains reference a victim are rewritten
//!    whole by that checkpoint's own flushes (step 2's decline).
//!
//! It takes no lock a commit takes; it runs on the log thread beside the
//! page cleaner (`super::clean::Engine::maybe_clean`), and
//! [`crate::Db::clean_now`] runs it to the end.

use std::collections::BTreeSet;

use super::Engine;
use crate::sync::{lock, Ordering};
use crate::Result;

/// Pages rewritten per hold of the cleaning mutex.
const BATCH: usize = 64;

/// What one value-log cleaning pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ValueCleanReport {
    /// Pages rewritten (and repointed) off victim segments.
    pub(crate) pages: u64,
    /// Victim segments chosen.
    pub(crate) victims: u64,
}

impl Engine {
    /// One value-log cleaning pass (steps 1-3 of the module doc), writing
    /// at most about `budget` bytes. Without a page store, nothing.
    pub(crate) fn clean_values(&self, budget: u64) -> Result<ValueCleanReport> {
        let mut report = ValueCleanReport::default();
        let Some(pages) = &self.pages else { return Ok(report) };
        pages.check()?;
        let others = self.other_trees();
        let trees: Vec<(u16, &crate::bwtree::Tree)> = self.each_tree(&others).collect();
        // Step 1: the reachable images.
        let refs: Vec<(usize, u64, u64)> = trees
            .iter()
            .enumerate()
            .flat_map(|(i, (_, t))| t.disk_refs().into_iter().map(move |(pid, a)| (i, pid, a)))
            .collect();
        let images = pages.chain_parts(
            trees
                .iter()
                .flat_map(|(_, t)| t.disk_addrs())
                .chain(refs.iter().map(|&(_, _, a)| a))
                .chain(pages.clean.table_addrs()),
        );
        // Step 2: the victims.
        let victims: BTreeSet<u64> = pages
            .vlog
            .usage_by_segment(&images)
            .into_iter()
            .filter(|&(_, records, live)| live * 2 < records)
            .map(|(seq, _, _)| seq)
            .collect();
        report.victims = victims.len() as u64;
        pages.vlog.set_evacuating(victims);
        if report.victims == 0 {
            return Ok(report);
        }
        // Step 3: rewrite the published pages that reference a victim.
        let mut moving: Vec<(usize, u64, u64)> = refs
            .into_iter()
            .filter(|&(_, _, a)| {
                let parts = pages.parts_of(a);
                pages.vlog.references_evacuating(&parts)
            })
            .collect();
        moving.sort_unstable_by_key(|&(_, _, a)| a);
        let relocated_before = pages.vlog.bytes_relocated.load(Ordering::Relaxed);
        let mut written = 0;
        'batches: for batch in moving.chunks(BATCH) {
            // As the page cleaner: no prune of the image references while
            // an image is written but not published; no checkpoint deletes
            // a segment meanwhile.
            let _cycle = pages.vlog.checkpoint_cycle();
            let _one = lock(&pages.clean.running);
            for &(tree, pid, from) in batch {
                let moved = pages.vlog.bytes_relocated.load(Ordering::Relaxed) - relocated_before;
                if written + moved >= budget {
                    break 'batches;
                }
                let parts = pages.parts_of(from);
                // A victim a checkpoint deleted since step 1 is no longer
                // evacuating: a page still referencing it changed.
                if !pages.vlog.references_evacuating(&parts) {
                    continue;
                }
                let (tag, t) = trees[tree];
                let Some(watermark) = t.published_watermark(pid, from) else {
                    continue; // the page changed since step 1
                };
                let (to, bytes) = match pages.rewrite(tag, pid, from, Some(watermark)) {
                    Ok(r) => r,
                    Err(_) if t.published_watermark(pid, from).is_none() => continue,
                    Err(e) => return Err(e),
                };
                written += bytes;
                if t.relocate(pid, from, to)? {
                    report.pages += 1;
                    pages.clean.note_relocated();
                }
            }
        }
        pages.vlog.pages_rewritten.fetch_add(report.pages, Ordering::Relaxed);
        Ok(report)
    }
}
