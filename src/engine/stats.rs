//! [`Stats`]: the counters and gauges of `Db::stats`, gathered from every
//! part of the engine.

use super::Engine;
use crate::sync::Ordering;

/// Database statistics ([`crate::Db::stats`]). Counters count since open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Transactions committed with at least one write.
    pub commits: u64,
    /// Commits refused with [`crate::Error::Conflict`].
    pub conflicts: u64,
    /// Versions written by commits since open, plus those recovered at open
    /// (so that `versions_stored` stays right across reopening).
    pub versions_installed: u64,
    /// Versions dropped by garbage collection, in every keyspace.
    pub versions_collected: u64,
    /// Versions held now (`versions_installed - versions_collected`), in
    /// every keyspace. A collected keyspace's versions that GC had not
    /// dropped before its drop stay counted here.
    pub versions_stored: u64,
    /// Delta chains consolidated.
    pub consolidations: u64,
    /// Page splits.
    pub splits: u64,
    /// Page merges.
    pub merges: u64,
    /// Full garbage-collection sweeps (background or [`crate::Db::collect_garbage`]).
    pub gc_sweeps: u64,
    /// Snapshots and transactions open now.
    pub active_snapshots: u64,
    /// The read timestamp: the newest commit every new snapshot sees.
    pub read_ts: u64,
    /// The tree's GC watermark: versions no snapshot at or above it can see
    /// may be dropped.
    pub gc_watermark: u64,
    /// How far the GC watermark trails the read timestamp, in commit
    /// timestamps (`read_ts - gc_watermark`): what open snapshots and
    /// [`crate::Options::history_retention`] hold back.
    pub gc_lag: u64,
    /// The oldest registered snapshot's timestamp (`None`: none open).
    pub oldest_snapshot_ts: Option<u64>,
    /// About how long ago the oldest open snapshot was taken (to the
    /// watermark refresh interval; `None` if none is open or it is younger
    /// than the last refresh).
    pub oldest_snapshot_age: Option<std::time::Duration>,
    /// Versions the oldest open snapshot alone holds: those GC would drop
    /// at the watermark it would have without that snapshot (the next
    /// one's, or the read timestamp, within
    /// [`crate::Options::history_retention`]). An estimate, counted by the
    /// last GC sweep over the leaves in memory (0 before the first).
    pub versions_held_by_oldest_snapshot: u64,
    /// Live keys as of the read timestamp (exact; [`crate::Snapshot::len`]).
    pub live_keys: u64,
    /// The oldest timestamp garbage collection keeps readable now: below
    /// it [`crate::Db::snapshot_at`] is refused. With
    /// [`crate::Options::max_snapshot_age`] it may refuse newer ones too:
    /// those committed longer ago than the age limit and outside the
    /// retention window.
    pub oldest_readable_ts: u64,
    /// Commit records appended to the log since open.
    pub log_records: u64,
    /// Log syncs (fsyncs) since open: with group commit, fewer than records.
    pub log_syncs: u64,
    /// Log segment files on disk now.
    pub log_segments: u64,
    /// Checkpoints written since open.
    pub checkpoints: u64,
    /// Torn records found at the end of the log by recovery (truncated).
    pub torn_tails: u64,
    /// Commits replayed from the log by recovery.
    pub replayed: u64,
    /// Versions recovery replayed from the log that a page image held
    /// already (not installed twice; after a location table).
    pub replay_skipped: u64,
    /// Evicted leaves faulted back in (cache misses, page images read; with
    /// a page store). Opening reads none: after a clean close it is 0 until
    /// the first access.
    pub cache_misses: u64,
    /// Writes a commit validated over an evicted leaf without faulting it
    /// in (blind writes: a version delta over its stub; `design/storage.md`
    /// §3, P4-P6). Counted at validation: a commit that then conflicts, or
    /// whose later writes to the same leaf fault it in (past
    /// `2 x leaf_chain` in a row), still counts them.
    pub blind_writes: u64,
    /// Key sets read from an evicted leaf's on-disk chain (one positional
    /// read per part, no value read, no page built) by a blind write over
    /// a stub that has none: a leaf restored from a location table. The
    /// stub keeps the set from then on (`design/storage.md` §5.5).
    pub key_set_reads: u64,
    /// Point reads a version delta over an evicted leaf's stub answered
    /// without faulting the leaf in.
    pub blind_reads: u64,
    /// Point reads, and leaves a scan read, answered from an evicted leaf's
    /// on-disk chain without faulting the leaf in (read-through, while the
    /// cache is under pressure; `design/storage.md` §5.4). Also cache misses
    /// in the sense that they read the page store, but not counted in
    /// `cache_misses`.
    pub read_throughs: u64,
    /// Cold stubs made: an evicted leaf's stub packed into about 110 bytes
    /// (plus its key set, if it has one) instead of 400-600, by its
    /// eviction or by the evictor's clock (`design/storage.md` §5.9). Reads
    /// and scans read a cold leaf as it is; its next write or fault-in
    /// rebuilds its stub.
    pub cold_stubs_packed: u64,
    /// Key sets the evictor dropped from cold stubs of leaves no write used
    /// for three of its aging passes, 6-8 s (8 bytes a key each; the leaf's
    /// next blind write reads its set from disk, `key_set_reads`;
    /// `design/storage.md` §5.9).
    pub key_sets_dropped: u64,
    /// Leaves evicted without a write: clean, or nothing new since their
    /// on-disk chain (a base page that only lost garbage).
    pub clean_evictions: u64,
    /// Clean leaves written whole on eviction because their on-disk chain
    /// had several parts (delta flushes over a base image): later reads
    /// read one record instead of each part (`design/storage.md` §5.7).
    /// Also in `pages_written`.
    pub chains_rewritten: u64,
    /// Leaf images written by checkpoints' flushes (also in `pages_written`).
    pub pages_flushed: u64,
    /// Page segment files now (with a page store).
    pub page_segments: u64,
    /// Bytes written by this run's incremental checkpoints: page images
    /// (with any eviction's written meanwhile) and location tables.
    pub checkpoint_bytes: u64,
    /// Leaves evicted to the page store.
    pub evictions: u64,
    /// Leaf images written to the page store.
    pub pages_written: u64,
    /// Payload bytes of the leaf images written.
    pub page_bytes_written: u64,
    /// Leaves a commit faulted in after taking its timestamp: 0 but for a
    /// merge begun before the commit whose left page was evicted meanwhile
    /// (`design/storage.md` §5.2).
    pub install_fault_ins: u64,
    /// Estimated heap bytes of the pages of every tree now (the default
    /// keyspace's, the catalog's and every named keyspace's: the trees the
    /// cache budget spans; with `cache_size`, 0 without): nodes, arrays and blobs, not allocator overhead.
    pub resident_bytes: u64,
    /// Estimated heap bytes of the chains every tree retired (replaced by a
    /// consolidation, an eviction or a flush) whose memory the epoch
    /// collector has not freed yet (with `cache_size`; 0 without): held by
    /// the process beside `resident_bytes` until their grace period ends
    /// (`design/storage.md` §5.1).
    pub retired_bytes: u64,
    /// Estimated heap bytes of the evicted leaves' stubs of every tree (with
    /// `cache_size`; 0 without): one `Evicted` node (320 bytes), its two
    /// fence keys and any key set per evicted leaf, or its cold stub
    /// (`cold_stubs_packed`). Outside `resident_bytes` and the cache
    /// budget: they grow with the data, not with what is cached
    /// (`design/storage.md` §5.1).
    pub stub_bytes: u64,
    /// The tree's own counters.
    pub tree: crate::bwtree::TreeStats,
    /// Payload bytes appended to the value log since open (values longer
    /// than [`crate::Options::value_log_threshold`], each written once).
    pub value_log_bytes_written: u64,
    /// Value-log segment files now.
    pub value_log_segments: u64,
    /// Bytes of the value-log segment files now.
    pub value_log_bytes: u64,
    /// Value-log bytes no listed page image referenced at the last
    /// checkpoint (`value_log_bytes` minus the live records then; segments of
    /// an earlier run count live while an image of that run not yet read is
    /// listed; 0 before this run's first checkpoint): what a cleaner could
    /// reclaim.
    pub value_log_garbage_bytes: u64,
    /// Value-log segments deleted since open (no image referenced them; at
    /// open, those written after the table it opened from).
    pub value_log_segments_deleted: u64,
    /// Value-log segments the value log's cleaner emptied that a collection
    /// then deleted, since open (`design/storage.md` §10, "Cleaning").
    pub value_log_segments_cleaned: u64,
    /// Payload bytes of values appended again out of segments being
    /// cleaned, since open (also in `value_log_bytes_written`).
    pub value_log_bytes_relocated: u64,
    /// Pages the value log's cleaner rewrote (and repointed) off segments
    /// being cleaned, since open.
    pub value_log_pages_rewritten: u64,
    /// Values read from the value log by reference since open (page reads
    /// and point reads of evicted leaves).
    pub value_log_reads: u64,
    /// Value-log references a fault-in left unread since open: versions its
    /// collection drops (`design/storage.md` §5, fault-in).
    pub value_log_reads_skipped: u64,
    /// Bytes of the page segment files now (headers included; with a page
    /// store).
    pub page_disk_bytes: u64,
    /// Live record bytes of the page segments at the cleaner's last recount
    /// (`design/storage.md` §9): records the newest location table or the
    /// mapping table names.
    pub page_live_bytes: u64,
    /// Page images the segment cleaner moved to the head since open.
    pub pages_relocated: u64,
    /// Page segments the cleaner emptied of published images since open
    /// (the next checkpoint deletes them).
    pub segments_cleaned: u64,
    /// Delta flushes written (by evictions and checkpoints; also in
    /// `pages_written`): only a page's versions since its last flush,
    /// linked to its on-disk chain (`design/storage.md` §4).
    pub delta_flushes: u64,
    /// Log bytes appended since open (commit records with their framing).
    pub log_bytes_written: u64,
    /// Record bytes (header, payload, padding) of the whole page images
    /// that evictions and checkpoint flushes wrote since open.
    pub page_image_bytes: u64,
    /// Record bytes of the delta flushes written since open (evictions and
    /// checkpoint flushes).
    pub page_delta_bytes: u64,
    /// Record bytes of the page images the segment cleaners (the page
    /// segments' and the value log's) wrote since open: byte copies and
    /// chains rewritten as one image.
    pub clean_bytes_written: u64,
    /// Bytes of the location tables written since open (checkpoint files).
    pub table_bytes_written: u64,
    /// Sleeps (200 µs each) in the retired-memory throttle since open: a
    /// committer waiting for the epoch collector to free retired chains
    /// (`design/storage.md` §5.1; with `cache_size`). Readers never wait.
    pub reclaim_waits: u64,
    /// Microseconds spent in those sleeps since open.
    pub reclaim_wait_micros: u64,
}

impl Stats {
    /// Space amplification of the page store: `page_disk_bytes` over
    /// `page_live_bytes` (`None` before the cleaner counted any live bytes).
    pub fn page_space_amplification(&self) -> Option<f64> {
        (self.page_live_bytes > 0).then(|| self.page_disk_bytes as f64 / self.page_live_bytes as f64)
    }
}

impl Engine {
    /// [`crate::Db::stats`].
    pub(crate) fn stats(&self) -> Stats {
        let paged = self.paged_bytes();
        let tree = self.tree.stats();
        let oldest = self.registry.oldest();
        let installed = self.counters.versions_installed.get();
        // Every tree's: the default keyspace's, the others' and the
        // catalog's (before 2026-12-08 only the default one's, so
        // `versions_stored` grew by every write to a named keyspace).
        let collected = tree.versions_dropped + self.ks.versions_dropped();
        let store = self.store.as_ref();
        let paging = self.tree.paging.as_deref().map(|p| &p.counters);
        let r = |c: &crate::sync::AtomicU64| c.load(Ordering::Relaxed);
        let vlog_usage = self.pages.as_ref().map_or((0, 0), |p| p.vlog.usage());
        // Before the first collection (`u64::MAX`) nothing counts as garbage.
        let vlog_live = self.pages.as_ref().map_or(0, |p| p.vlog.live_bytes());
        Stats {
            commits: self.counters.commits.get(),
            conflicts: self.counters.conflicts.get(),
            versions_installed: installed,
            versions_collected: collected,
            versions_stored: installed.saturating_sub(collected),
            consolidations: tree.consolidations,
            splits: tree.splits,
            merges: tree.merges,
            gc_sweeps: self.counters.sweeps.get(),
            active_snapshots: self.registry.active() as u64,
            read_ts: self.oracle.read_ts(),
            gc_watermark: self.tree.gc_watermark(),
            gc_lag: self.oracle.read_ts().saturating_sub(self.tree.gc_watermark()),
            oldest_snapshot_ts: oldest,
            oldest_snapshot_age: oldest.and_then(|ts| self.horizon.age_of(ts)),
            oldest_readable_ts: self.registry.oldest_readable(),
            versions_held_by_oldest_snapshot: self.held_by_oldest(),
            live_keys: {
                let pin = self.registry.pin_scoped(&self.oracle);
                self.live_keys(pin.ts())
            },
            log_records: store.map_or(0, |s| s.log_records()),
            log_syncs: store.map_or(0, |s| s.log_syncs()),
            log_segments: store.map_or(0, |s| s.log_segments()),
            checkpoints: store.map_or(0, |s| s.checkpoints()),
            torn_tails: store.map_or(0, |s| s.recovered().torn_tails),
            replayed: store.map_or(0, |s| s.recovered().replayed),
            replay_skipped: self.replay_skipped,
            cache_misses: paging.map_or(0, |p| r(&p.faults)),
            blind_writes: paging.map_or(0, |p| r(&p.blind_writes)),
            key_set_reads: paging.map_or(0, |p| r(&p.key_set_reads)),
            blind_reads: paging.map_or(0, |p| r(&p.blind_reads)),
            read_throughs: paging.map_or(0, |p| r(&p.read_throughs)),
            cold_stubs_packed: paging.map_or(0, |p| r(&p.packs)),
            key_sets_dropped: paging.map_or(0, |p| r(&p.key_sets_dropped)),
            clean_evictions: paging.map_or(0, |p| r(&p.clean_evictions)),
            chains_rewritten: paging.map_or(0, |p| r(&p.chains_rewritten)),
            pages_flushed: paging.map_or(0, |p| r(&p.flushes)),
            checkpoint_bytes: self.checkpoint_bytes.load(Ordering::Relaxed),
            page_segments: self.pages.as_ref().map_or(0, |p| p.segments()),
            evictions: paging.map_or(0, |p| r(&p.evictions)),
            pages_written: paging.map_or(0, |p| r(&p.pages_written)),
            install_fault_ins: paging.map_or(0, |p| r(&p.install_faults)),
            resident_bytes: paged.0,
            retired_bytes: paged.1,
            stub_bytes: self.stubs_all(),
            page_bytes_written: self
                .pages
                .as_ref()
                .map_or(0, |p| p.bytes_written.load(Ordering::Relaxed)),
            tree,
            value_log_bytes_written: self
                .pages
                .as_ref()
                .map_or(0, |p| p.vlog.bytes_written.load(Ordering::Relaxed)),
            value_log_segments: vlog_usage.0,
            value_log_bytes: vlog_usage.1,
            value_log_garbage_bytes: vlog_usage.1.saturating_sub(vlog_live),
            value_log_segments_deleted: self
                .pages
                .as_ref()
                .map_or(0, |p| p.vlog.segments_deleted.load(Ordering::Relaxed)),
            value_log_segments_cleaned: self.pages.as_ref().map_or(0, |p| r(&p.vlog.segments_cleaned)),
            value_log_bytes_relocated: self.pages.as_ref().map_or(0, |p| r(&p.vlog.bytes_relocated)),
            value_log_pages_rewritten: self.pages.as_ref().map_or(0, |p| r(&p.vlog.pages_rewritten)),
            value_log_reads: self.pages.as_ref().map_or(0, |p| r(&p.vlog.reads)),
            value_log_reads_skipped: self.pages.as_ref().map_or(0, |p| r(&p.vlog.reads_skipped)),
            page_disk_bytes: self.pages.as_ref().map_or(0, |p| p.disk_bytes()),
            page_live_bytes: self.pages.as_ref().map_or(0, |p| r(&p.clean.live_bytes)),
            pages_relocated: self.pages.as_ref().map_or(0, |p| r(&p.clean.pages_relocated)),
            segments_cleaned: self.pages.as_ref().map_or(0, |p| r(&p.clean.segments_cleaned)),
            delta_flushes: paging.map_or(0, |p| r(&p.delta_flushes)),
            log_bytes_written: store.map_or(0, |s| s.log_bytes()),
            page_image_bytes: self.pages.as_ref().map_or(0, |p| r(&p.written.images)),
            page_delta_bytes: self.pages.as_ref().map_or(0, |p| r(&p.written.deltas)),
            clean_bytes_written: self.pages.as_ref().map_or(0, |p| r(&p.written.cleaned)),
            table_bytes_written: self.pages.as_ref().map_or(0, |p| r(&p.written.tables)),
            reclaim_waits: self.counters.reclaim_waits.get(),
            reclaim_wait_micros: self.counters.reclaim_wait_micros.get(),
        }
    }
}
