//! Segment cleaning (`design/storage.md` §9): live-byte accounting per page
//! segment, and the cleaner that moves the still-current images out of
//! mostly-dead segments so that a checkpoint can delete them.
//!
//! - **Live bytes.** A record is *live* while an address of it is published:
//!   named by the newest location table, or by the mapping table (an evicted
//!   leaf's image, a clean resident base's `disk`). The counts are recounted
//!   from those two sets ([`Engine::clean`], step 1): each address adds its
//!   record's bytes (header, payload, padding) to its segment, so every
//!   superseded image (a page rewritten, evicted again, or listed at a new
//!   address by a newer table) stops counting at the next recount. A
//!   record's length is remembered when this run writes or reads it, else
//!   read from its 40-byte header once.
//! - **The cleaner** ([`Engine::clean`]), numbered:
//!   1. Recount the live bytes (above) and store them per segment.
//!   2. Pick the victims, oldest first: every segment but the current one
//!      whose live fraction is below 1/[`CHEAP`]; then, while the disk bytes
//!      would still exceed [`TARGET_AMP`] x the live bytes after cleaning
//!      those, the least-live remaining segment.
//!   3. For each page the mapping table publishes with a part of its chain
//!      in a victim (grouped by the oldest victim each has a part in, so
//!      that victims empty in turn; at most `budget` bytes, in batches of
//!      [`BATCH`] under the cleaning mutex): append a copy at the
//!      head (`PageFile::copy_record`: not synced; a base image byte for
//!      byte, a delta chain whose base image stays as one delta flush on
//!      that base, any other chain as one whole image), and CAS the new address in
//!      (`Tree::relocate`); a lost CAS means the page changed, and the copy
//!      is garbage. Images only the newest table names are not moved: the
//!      next table names the pages' newer images. A victim a checkpoint
//!      deleted since the recount is skipped (none can be deleted during a
//!      batch: the deletion takes the same mutex).
//!      The pass reports as emptied the victims none of the pages it did
//!      not reach has a part in (a page's head is its newest part: a
//!      victim older than the first page left may still hold the bases of
//!      pages after it). A page it reached but found changed (dirty, or
//!      rewritten) counts as reached: its next flush writes it whole.
//!   4. Nothing is deleted here. The next checkpoint (forced even with no
//!      commit since the last, `CleanState::take_relocated`) syncs the page
//!      segment, writes a table naming the copies, and then (evictions held
//!      off and the cleaning mutex held) deletes every segment neither that
//!      table nor the mapping table names (`engine/checkpoint.rs`, step 6).
//!      So a segment is deleted only after a durable table no longer names
//!      it: a power loss at any point leaves the newest table's images in
//!      place.
//! - **Draining.** Each pass, after step 1, marks the oldest segments
//!   draining: those older than the newest ones that together hold
//!   [`TARGET_AMP`] times the live bytes ([`CleanState::set_drain`]). A
//!   flush does not extend a chain with a part in one
//!   (`PageFile::chain_to_extend`): the page is written whole at the head.
//!   Without it every chain kept parts in every segment under sustained
//!   writes, almost no segment emptied, and the page segments grew without
//!   bound (`design/storage.md` §9.1). The last pass's victims are avoided
//!   alike ([`CleanState::set_victims`]): a page the pass could not move
//!   (dirty) is written whole at its next flush instead of extending the
//!   chain that keeps its victim alive.
//! - **Faults.** A failed append poisons the page store (as every page
//!   write does); a failed read of a victim's record returns its error and
//!   changes nothing.
//! - **Where it runs.** The log thread ([`Engine::maybe_clean`]), at most
//!   every [`CLEAN_INTERVAL`], and after a pass that found nothing to clean
//!   only once a segment's bytes were appended or a table was written since
//!   (`CleanState::pass_due`: step 1 walks every page), with the value log's cleaner after it
//!   (`super::vlog_clean`), then a checkpoint once the emptied segments
//!   hold 1/[`DELETE_SHARE`] of the page segments' bytes, or the pass found
//!   nothing more to clean, or the value log's cleaner rewrote pages; it takes
//!   no lock a commit takes. [`crate::Db::clean_now`] runs both to the end
//!   (tests).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::addr_shards::{rebuild, shard_of, AddrShards, SHARDS};
use super::Engine;
use crate::pagestore::record::{addr_seq, SEGMENT_HEADER_LEN};
use crate::sync::{lock, AtomicBool, AtomicU64, Mutex, Ordering};
use crate::Result;

/// The space amplification the victim choice aims at (disk bytes of page
/// segments over live bytes; the target is 1.5).
pub(crate) const TARGET_AMP: f64 = 1.4;

/// A segment less than 1/`CHEAP` live is always a victim (moving its live
/// bytes costs at most a third of what it frees); above that, victims are
/// taken least live first only while the space amplification would stay
/// above [`TARGET_AMP`].
const CHEAP: u64 = 4;

/// The background cleaner asks for a checkpoint (which deletes the
/// segments it emptied) once the emptied segments hold 1/`DELETE_SHARE` of
/// the page segments' bytes, or when a pass finds nothing more to do: a
/// location table per emptied segment cost more than the pass moved.
const DELETE_SHARE: u64 = 8;

/// Pages relocated per hold of the cleaning mutex.
const BATCH: usize = 64;

/// The mark a recount sets on the remembered length of each record it
/// finds published (lengths are below 2^32: a segment's bound), and clears
/// as it prunes the others (`Engine::recount`).
const SEEN: u64 = 1 << 63;

/// The log thread cleans at most this often.
pub(crate) const CLEAN_INTERVAL: Duration = Duration::from_secs(1);

/// The cleaner's state, kept in the page file (`PageFile::clean`).
pub(crate) struct CleanState {
    /// Record bytes by address: the records this run wrote or read, and
    /// those whose header a recount read; pruned to the published ones at
    /// each recount.
    lens: AddrShards<u64>,
    /// The addresses the newest location table names.
    table: Mutex<Vec<u64>>,
    /// One cleaning batch at a time; a checkpoint holds it while it deletes
    /// segments (so no copy is appended and published meanwhile).
    pub(crate) running: Mutex<()>,
    /// Pages relocated since the last table was begun.
    relocated: AtomicBool,
    /// When the log thread last cleaned.
    last: Mutex<Option<Instant>>,
    /// The log thread's checkpoints that failed in a row: each doubles its
    /// wait before the next pass (up to 64 [`CLEAN_INTERVAL`]s), so that a
    /// persistent error (a full disk) is not met with a whole checkpoint a
    /// second.
    failed: AtomicU64,
    /// Bytes the cleaner moves per pass from the log thread.
    pub(crate) budget: u64,
    pub(crate) pages_relocated: AtomicU64,
    pub(crate) segments_cleaned: AtomicU64,
    /// Live record bytes at the last recount.
    pub(crate) live_bytes: AtomicU64,
    /// The page store's appended bytes before the last background pass, if
    /// it found nothing to clean and no table was written since (else
    /// `u64::MAX`): [`CleanState::pass_due`].
    idle_at: AtomicU64,
    /// Bytes appended after an idle pass before the next one (a segment's).
    idle_bytes: u64,
    /// Segments below this one are draining ([`CleanState::set_drain`]).
    drain_below: AtomicU64,
    /// The last pass's victims, sorted ([`CleanState::set_victims`]). A
    /// plain `std` lock even under loom: it holds a hint (which chains a
    /// flush should not extend), no protocol depends on it, and nothing in
    /// its critical sections is a loom operation, so it adds no scheduling
    /// point to the models' flushes and cannot block a loom thread.
    victims: std::sync::RwLock<Vec<u64>>,
    /// Segments the background passes emptied since the last table was
    /// written (the next checkpoint deletes them).
    emptied: AtomicU64,
}

impl CleanState {
    pub(crate) fn new(segment_bytes: u64) -> Self {
        CleanState {
            lens: AddrShards::default(),
            table: Mutex::new(Vec::new()),
            running: Mutex::new(()),
            relocated: AtomicBool::new(false),
            last: Mutex::new(None),
            failed: AtomicU64::new(0),
            budget: segment_bytes.max(16 << 20),
            pages_relocated: AtomicU64::new(0),
            segments_cleaned: AtomicU64::new(0),
            live_bytes: AtomicU64::new(0),
            idle_at: AtomicU64::new(u64::MAX),
            idle_bytes: segment_bytes,
            drain_below: AtomicU64::new(0),
            victims: std::sync::RwLock::new(Vec::new()),
            emptied: AtomicU64::new(0),
        }
    }

    /// Remember that the record at `addr` has `bytes` bytes.
    pub(crate) fn note_len(&self, addr: u64, bytes: u64) {
        self.lens.shard(addr).insert(addr, bytes);
    }

    /// Forget the record lengths of the addresses `keep` rejects
    /// (`PageFile::prune_chains`; a forgotten one is read from its header).
    pub(crate) fn retain_lens(&self, keep: impl Fn(u64) -> bool) {
        self.lens.prune(|a, _| keep(a), |n| n / 4);
    }

    /// The record bytes of the record at `addr`, if remembered (a read's
    /// hint: `SegmentStore::read_hinted`).
    pub(crate) fn len_of(&self, addr: u64) -> Option<u64> {
        self.lens.shard(addr).get(&addr).copied()
    }

    /// Is a background pass due, `appended` page bytes appended so far?
    /// Not while the last pass found nothing to clean, no table was written
    /// since, and less than a segment was appended since it: only appends
    /// supersede images, and a new table unpublishes the old table's, so
    /// the recount (a walk over every page) would find the same.
    fn pass_due(&self, appended: u64) -> bool {
        let at = self.idle_at.load(Ordering::Relaxed);
        at == u64::MAX || appended.saturating_sub(at) >= self.idle_bytes
    }

    /// Mark the oldest segments draining: those beyond the newest ones that
    /// together hold [`TARGET_AMP`] times the live bytes (none while the
    /// segments hold less). A flush does not extend a chain with a part in
    /// a draining segment (`PageFile::chain_to_extend`): the page is written
    /// whole, so that sustained writes empty old segments as they touch
    /// their pages, instead of spreading every chain over every segment.
    pub(crate) fn set_drain(&self, segs: &[crate::pagestore::store::SegmentInfo], live: u64) {
        let keep = (TARGET_AMP * live as f64) as u64;
        let mut newer = 0;
        let mut below = 0;
        for s in segs.iter().rev() {
            newer += s.bytes;
            if newer > keep {
                below = s.seq;
                break;
            }
        }
        self.drain_below.store(below, Ordering::Relaxed);
    }

    /// Whether the segment `seq` is draining ([`CleanState::set_drain`]).
    #[cfg(test)]
    pub(crate) fn draining(&self, seq: u64) -> bool {
        seq < self.drain_below.load(Ordering::Relaxed)
    }

    /// The segments the last pass chose to empty. A flush does not extend
    /// a chain with a part in one either: a page the pass could not move
    /// (resident and dirty, or changed under its copy) would otherwise
    /// keep its victim alive through every delta flush on its chain, and
    /// the checkpoint after the pass would delete nothing.
    pub(crate) fn set_victims(&self, victims: &BTreeSet<u64>) {
        *self.victims.write().unwrap_or_else(|p| p.into_inner()) = victims.iter().copied().collect();
    }

    /// Whether a flush should write a page whose chain has parts in the
    /// segments `seqs` whole: one of them draining or a victim.
    pub(crate) fn avoided(&self, mut seqs: impl Iterator<Item = u64>) -> bool {
        let below = self.drain_below.load(Ordering::Relaxed);
        let victims = self.victims.read().unwrap_or_else(|p| p.into_inner());
        seqs.any(|s| s < below || victims.binary_search(&s).is_ok())
    }

    /// The newest table names `addrs` (at open, and after each checkpoint).
    pub(crate) fn set_table(&self, addrs: Vec<u64>) {
        *lock(&self.table) = addrs;
        self.idle_at.store(u64::MAX, Ordering::Relaxed);
        self.emptied.store(0, Ordering::Relaxed);
    }

    /// The addresses the newest table names.
    pub(crate) fn table_addrs(&self) -> Vec<u64> {
        lock(&self.table).clone()
    }

    /// Pages were relocated (a value-log cleaning pass rewrote some): the
    /// next checkpoint writes a table even with no commit.
    pub(crate) fn note_relocated(&self) {
        self.relocated.store(true, Ordering::Release);
    }

    /// A checkpoint that took the "relocated" mark failed, or deleted less
    /// than it should have: give the mark back, and count the cleaner's
    /// work as not yet deleted, so that the log thread's next pass
    /// checkpoints again (after its back-off).
    pub(crate) fn retry_deletions(&self) {
        self.note_relocated();
        self.emptied.fetch_max(1, Ordering::Relaxed);
    }

    /// A checkpoint succeeded (whoever took it): the log thread's back-off
    /// after its own failed ones ends.
    pub(crate) fn checkpoint_succeeded(&self) {
        self.failed.store(0, Ordering::Relaxed);
    }

    /// Whether pages were relocated since the last call (a checkpoint asks,
    /// so that it writes a table naming the copies even with no commit).
    pub(crate) fn take_relocated(&self) -> bool {
        self.relocated.swap(false, Ordering::AcqRel)
    }
}

/// What one cleaning pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CleanReport {
    /// Pages whose image was moved to the head.
    pub(crate) relocated: u64,
    /// Segments left with no page the mapping table publishes (deleted by
    /// the next checkpoint).
    pub(crate) segments: u64,
}

impl Engine {
    /// One cleaning pass (steps 1-3 of the module doc), moving at most
    /// `budget` bytes. A database without a page store does nothing.
    pub(crate) fn clean(&self, budget: u64) -> Result<CleanReport> {
        let mut report = CleanReport::default();
        let Some(pages) = &self.pages else { return Ok(report) };
        pages.check()?;
        // Every tree's pages share the segments (`super::tree_pages`).
        let others = self.other_trees();
        let trees: Vec<&crate::bwtree::Tree> = self.each_tree(&others).map(|(_, t)| t).collect();
        let refs = self.recount(&trees)?;
        let segs = pages.store.segments();
        let Some((_current, old)) = segs.split_last() else {
            return Ok(report);
        };
        // Step 2: the victims.
        let records = |s: &crate::pagestore::store::SegmentInfo| s.bytes.saturating_sub(SEGMENT_HEADER_LEN as u64);
        let live: u64 = segs.iter().map(|s| s.live).sum();
        let mut disk: u64 = segs.iter().map(|s| s.bytes).sum();
        pages.clean.set_drain(&segs, live);
        let mut victims = BTreeSet::new();
        for s in old.iter().filter(|s| s.live * CHEAP < records(s)) {
            victims.insert(s.seq);
            disk -= s.bytes - s.live;
        }
        let mut rest: Vec<_> = old.iter().filter(|s| !victims.contains(&s.seq)).collect();
        rest.sort_by_key(|s| (u128::from(s.live) << 64) / u128::from(s.bytes.max(1)));
        for s in rest {
            if (disk as f64) <= TARGET_AMP * live as f64 || s.live >= s.bytes {
                break;
            }
            victims.insert(s.seq);
            disk -= s.bytes - s.live;
        }
        pages.clean.set_victims(&victims);
        if victims.is_empty() {
            return Ok(report);
        }
        // Step 3: move the published images out of them, oldest victim
        // first. A page moves if any part of its on-disk chain is in a
        // victim (a chain moves whole, merged into one image); it goes with
        // the oldest victim it has a part in, so that victims empty in turn
        // and a pass its budget cuts short leaves whole victims for the
        // next one, not a part of each. Each page's victims are kept for
        // the report below (a prune between the batches may forget a
        // chain's parts).
        let in_victims = |a: u64| {
            let mut v: SmallVec<[u64; 2]> = pages
                .parts_of(a)
                .iter()
                .map(|&p| addr_seq(p))
                .filter(|s| victims.contains(s))
                .collect();
            v.sort_unstable();
            v.dedup();
            (!v.is_empty()).then_some(v)
        };
        let mut moving: Vec<(SmallVec<[u64; 2]>, usize, u64, u64)> = refs
            .into_iter()
            .filter_map(|(tree, pid, a)| Some((in_victims(a)?, tree, pid, a)))
            .collect();
        moving.sort_unstable_by(|x, y| (x.0[0], x.3).cmp(&(y.0[0], y.3)));
        let mut moved_bytes = 0;
        let mut done = 0;
        'batches: for batch in moving.chunks(BATCH) {
            // No prune of the value log's image references while a copy is
            // written but not yet published (its references are noted at
            // the copy, `PageFile::copy_record`); taken before `running`,
            // as a checkpoint takes them.
            let _cycle = pages.vlog.checkpoint_cycle();
            let _one = lock(&pages.clean.running);
            // No checkpoint deletes a segment while the mutex is held; one
            // deleted since the recount held no image its page still
            // publishes.
            let alive: BTreeSet<u64> = pages.store.segments().iter().map(|s| s.seq).collect();
            for &(_, tree, pid, from) in batch {
                if moved_bytes >= budget {
                    break 'batches;
                }
                done += 1;
                if !alive.contains(&addr_seq(from)) {
                    continue;
                }
                // (A delta chain is moved as one delta flush on its base
                // image, or, if that moves too, as one whole image.)
                let moving = |a: u64| victims.contains(&addr_seq(a));
                // A part of the chain under `from` in a segment a checkpoint
                // deleted since the recount (the page changed and was
                // flushed whole meanwhile: nothing references it): skipped,
                // as the page value-log cleaning skips one.
                let copied = match pages.copy_record(from, &moving) {
                    Ok(c) => c,
                    Err(crate::Error::Corruption { .. }) if trees[tree].published_watermark(pid, from).is_none() => {
                        continue
                    }
                    Err(e) => return Err(e),
                };
                let Some((to, bytes)) = copied else {
                    continue;
                };
                moved_bytes += bytes;
                if trees[tree].relocate(pid, from, to)? {
                    report.relocated += 1;
                    pages.clean.relocated.store(true, Ordering::Release);
                }
            }
        }
        // Victims all of whose published pages were looked at (moved, or
        // found changed: a changed page's next flush writes it whole,
        // `CleanState::avoided`): none of the pages left has a part in them.
        let left: BTreeSet<u64> = moving[done..].iter().flat_map(|m| m.0.iter().copied()).collect();
        report.segments = victims.difference(&left).count() as u64;
        pages
            .clean
            .pages_relocated
            .fetch_add(report.relocated, Ordering::Relaxed);
        pages
            .clean
            .segments_cleaned
            .fetch_add(report.segments, Ordering::Relaxed);
        Ok(report)
    }

    /// Step 1: recount every segment's live bytes from the published
    /// addresses of every tree in `trees`; returns the mapping tables'
    /// `(tree index in trees, pid, addr)`.
    fn recount(&self, trees: &[&crate::bwtree::Tree]) -> Result<Vec<(usize, u64, u64)>> {
        let Some(pages) = &self.pages else {
            return Ok(Vec::new());
        };
        let refs: Vec<(usize, u64, u64)> = trees
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.disk_refs().into_iter().map(move |(pid, a)| (i, pid, a)))
            .collect();
        let table = lock(&pages.clean.table).clone();
        // Every part of every chain a page or the table names (dirty pages
        // that build on a chain included): what deletion keeps.
        let published = pages.chain_parts(
            trees
                .iter()
                .flat_map(|t| t.disk_addrs())
                .chain(refs.iter().map(|&(_, _, a)| a))
                .chain(table),
        );
        // The lengths are taken out (records written meanwhile go to new
        // maps, merged back below) and pruned shard by shard, each into a
        // fresh table (`super::addr_shards`): neither a second map of the
        // kept ones nor a table grown by tombstones doubles their memory.
        let mut lens = pages.clean.lens.take_all();
        let mut live: BTreeMap<u64, u64> = BTreeMap::new();
        let mut read = Vec::new();
        let mut total = 0;
        let mut result = Ok(());
        for &a in &published {
            let bytes = match lens[shard_of(a)].get_mut(&a) {
                // Marked as published, for the prune below.
                Some(b) => {
                    *b |= SEEN;
                    *b & !SEEN
                }
                None => match pages.store.record_bytes_at(a) {
                    Ok(b) => {
                        read.push((a, b));
                        b
                    }
                    // A segment deleted meanwhile (by a checkpoint): nothing
                    // is live there.
                    Err(crate::Error::Corruption { .. }) => continue,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                },
            };
            *live.entry(addr_seq(a)).or_default() += bytes;
            total += bytes;
        }
        let read_share = read.len() / SHARDS;
        for map in &mut lens {
            if result.is_ok() {
                // Keep the lengths of published records: those the walk
                // marked (a bit test each, where a binary search of
                // `published` per entry was 3% of a profile of uniform
                // updates).
                map.retain(|_, b| {
                    let seen = *b & SEEN != 0;
                    *b &= !SEEN;
                    seen
                });
                let room = map.len() / 4 + read_share;
                rebuild(map, room);
            } else {
                map.values_mut().for_each(|b| *b &= !SEEN);
            }
        }
        for (a, b) in read {
            lens[shard_of(a)].insert(a, b);
        }
        // Records written since the walk began stay remembered.
        pages.clean.lens.put_back(lens);
        result?;
        pages.store.set_live(&live);
        pages.clean.live_bytes.store(total, Ordering::Relaxed);
        Ok(refs)
    }

    /// The log thread's cleaning: at most every [`CLEAN_INTERVAL`] (longer
    /// after its checkpoints failed: `CleanState::failed`), one pass
    /// of the page file's budget over the page segments and one over the
    /// value log, then a checkpoint (which deletes the segments they
    /// emptied) when [`DELETE_SHARE`] says so or the value log's cleaner
    /// rewrote pages.
    pub(crate) fn maybe_clean(&self) -> Result<()> {
        let Some(pages) = &self.pages else { return Ok(()) };
        {
            let mut last = lock(&pages.clean.last);
            let wait = CLEAN_INTERVAL * (1 << pages.clean.failed.load(Ordering::Relaxed).min(6));
            if last.is_some_and(|t| t.elapsed() < wait) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let appended = pages.store.appended_bytes();
        let mut idle = true;
        if pages.clean.pass_due(appended) {
            let report = self.clean(pages.clean.budget)?;
            // A pass that moved nothing finds the same next time until a
            // segment's worth of appends or a table: its victims (if any)
            // wait for a checkpoint's deletion, or hold images of an earlier
            // run this one has not read (their chains' parts unknown). Idle
            // then, or it recounted every page every second.
            idle = report.relocated == 0;
            let at = if idle { appended } else { u64::MAX };
            pages.clean.idle_at.store(at, Ordering::Relaxed);
            pages.clean.emptied.fetch_add(report.segments, Ordering::Relaxed);
        }
        let emptied = pages.clean.emptied.load(Ordering::Relaxed);
        let due = emptied > 0 && (idle || emptied * pages.clean.idle_bytes * DELETE_SHARE >= pages.disk_bytes());
        // The value log's cleaner (`super::vlog_clean`) with the same budget,
        // when the last collection saw garbage enough.
        let rewritten = if pages.vlog.worth_cleaning() {
            self.clean_values(pages.clean.budget)?.pages
        } else {
            0
        };
        // A checkpoint deletes what was emptied (`DELETE_SHARE`). Until
        // then the mapping table names the copies and the old images stay
        // where the newest table names them.
        if due || rewritten > 0 {
            if let Err(e) = self.checkpoint() {
                pages.clean.failed.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    }

    /// [`crate::Db::clean_now`]: clean the page segments and the value log
    /// (`super::vlog_clean`) until no segment qualifies (at most 16 passes
    /// of each), each pass followed by a checkpoint, then recount. The
    /// report counts the page cleaner's work.
    pub(crate) fn clean_now(&self) -> Result<CleanReport> {
        let mut total = CleanReport::default();
        for _ in 0..16 {
            let r = self.clean(u64::MAX)?;
            let v = self.clean_values(u64::MAX)?;
            total.relocated += r.relocated;
            total.segments += r.segments;
            if self.store.is_some() {
                self.checkpoint()?;
            }
            if r.relocated == 0 && v.pages == 0 {
                break;
            }
        }
        let others = self.other_trees();
        let trees: Vec<&crate::bwtree::Tree> = self.each_tree(&others).map(|(_, t)| t).collect();
        self.recount(&trees)?;
        Ok(total)
    }

    /// Step 3 for every page the mapping tables publish, whatever its
    /// segment's live fraction: copy its image to the head and CAS the new
    /// address in (a test hook, [`crate::Db::relocate_all`], so that a
    /// model can race the relocation CAS against writes, fault-ins and
    /// evictions). Nothing is deleted. Returns how many pages moved.
    pub(crate) fn relocate_all(&self) -> Result<u64> {
        let Some(pages) = &self.pages else { return Ok(0) };
        pages.check()?;
        let others = self.other_trees();
        let mut moved = 0;
        let mut pass = || -> Result<()> {
            for (_, tree) in self.each_tree(&others) {
                for (pid, from) in tree.disk_refs() {
                    // As a cleaning batch holds them (step 3).
                    let _cycle = pages.vlog.checkpoint_cycle();
                    let _one = lock(&pages.clean.running);
                    // A part of the chain in a segment a checkpoint deleted
                    // since the listing: the page changed and no longer
                    // publishes `from` (step 3 skips it alike).
                    let copied = match pages.copy_record(from, &|_| true) {
                        Ok(c) => c,
                        Err(crate::Error::Corruption { .. }) if tree.published_watermark(pid, from).is_none() => {
                            continue
                        }
                        Err(e) => return Err(e),
                    };
                    let Some((to, _)) = copied else {
                        continue;
                    };
                    if tree.relocate(pid, from, to)? {
                        moved += 1;
                        pages.clean.relocated.store(true, Ordering::Release);
                    }
                }
            }
            Ok(())
        };
        let r = pass();
        // The pages moved before an error count too.
        pages.clean.pages_relocated.fetch_add(moved, Ordering::Relaxed);
        r.map(|()| moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pagestore::store::SegmentInfo;

    /// The newest segments that hold `TARGET_AMP` times the live bytes
    /// stay; every older one drains; none while they all fit.
    #[test]
    fn the_oldest_segments_beyond_the_target_drain() {
        let c = CleanState::new(1 << 20);
        let segs: Vec<SegmentInfo> = (1..=10)
            .map(|seq| SegmentInfo {
                seq,
                bytes: 100,
                live: 0,
            })
            .collect();
        // Live 500: keep 700 bytes, the newest 7 segments (4..=10) and a part of 3.
        c.set_drain(&segs, 500);
        assert!(c.draining(1) && c.draining(2));
        assert!(!c.draining(3) && !c.draining(10));
        // Everything fits: nothing drains.
        c.set_drain(&segs, 1000);
        assert!((1..=10).all(|s| !c.draining(s)));
    }
}
