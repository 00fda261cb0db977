//! Checkpoints (`design/storage.md` §6, `design/durability.md`): a database
//! with a page store writes a location table; one without writes the
//! key-value image of a snapshot, every keyspace's entries tagged with its
//! id (after syncing the log; with
//! `Options::history_retention` the newest image at or below the retention
//! horizon stays, with the log after it and a few newer images). Each writes its history file
//! first (`crate::wal::hist`).
//!
//! The incremental checkpoint, numbered as in `design/storage.md` §6:
//! 1. One checkpoint at a time; the log rotates. A snapshot at `C` (the read
//!    timestamp) is held until the end, so the GC watermark stays `<= C`.
//! 2. The log is synced (every commit `<= C` is durable: `D >= C`). Without
//!    a log, the images listed hold nothing above `C` (`D = C` for this
//!    checkpoint's flushes, and evictions wait until the listing is done).
//! 3. Phase 1, fuzzy: an image of every dirty leaf, versions `<= D`, tree
//!    by tree (the default keyspace, each keyspace the catalog lists at `C`,
//!    the catalog; `super::tree_pages`); with a log, the page file's chain
//!    map is pruned between batches of flushes as it grows. A clean close's
//!    checkpoint with a log writes the dirty leaves by evicting them
//!    ([`Engine::checkpoint_closing`]) rather than flushing them.
//! 4. Phase 2, tree by tree: structure modifications paused, every leaf
//!    listed with an image address (dirty ones flushed again); then resumed.
//! 5. The value log is synced, then the page segment, then the history
//!    file (`crate::wal::hist`: the oldest timestamp the table serves, the
//!    counts from there, the horizon's samples), then the table written
//!    (`ckpt-<C>.tmp`, sync, rename, directory sync), listing every tree
//!    of step 3 with its live count at `C`. A keyspace dropped at or
//!    below `C` is not listed: its images are garbage.
//! 6. Older checkpoint and history files and log segments at or below `C`
//!    are deleted,
//!    then (evictions of every tree held off) every page segment but the
//!    current one that neither the table nor any tree's mapping table
//!    references (and, the
//!    cleaner's mutex held, no relocation publishes a copy meanwhile:
//!    `super::clean`), then every value-log segment no image they name
//!    references (`vlog.rs`). A checkpoint runs even with no commit since
//!    the last one if the cleaner relocated pages since.

use super::tree_pages::{tag, CATALOG_TAG};
use super::Engine;
use crate::pagestore::table::{self, Leaf, Table, TreeTable};
use crate::sync::Ordering;
use crate::wal::hist::Hist;
use crate::wal::store::Keep;
use crate::{Error, Result};

impl Engine {
    /// [`crate::Db::checkpoint`]: one at a time, written while commits
    /// continue. Returns its timestamp.
    pub(crate) fn checkpoint(&self) -> Result<u64> {
        self.checkpoint_evicting(false)
    }

    /// The checkpoint of a clean close: its phase 1 writes every dirty leaf
    /// by evicting it (`Tree::flush_dirty`), since nothing stays in memory
    /// after the close, where a checkpoint's flushes rebuild each one as a
    /// clean page. Without a log evictions are paused during a checkpoint,
    /// and it flushes as any checkpoint.
    pub(crate) fn checkpoint_closing(&self) -> Result<u64> {
        self.checkpoint_evicting(true)
    }

    /// A checkpoint; `evict`: its phase 1 evicts the dirty leaves.
    fn checkpoint_evicting(&self, evict: bool) -> Result<u64> {
        let store = self
            .store
            .as_ref()
            .ok_or(Error::InvalidArgument("an in-memory database has no checkpoints"))?;
        let turn = store.begin_checkpoint()?;
        // Without a log: `D` held from before `C` until the listing is done.
        let unlogged_hold = (self.pages.is_some() && !store.has_log()).then(|| store.hold_unlogged());
        // Held: no age expires it (`Registry::pin_held`).
        let pin = self.registry.pin_held(&self.oracle);
        let c = pin.ts();
        // Log segments with commits inside `Options::change_retention` stay;
        // with `Options::history_retention`, a version-1 database keeps the
        // newest checkpoint at or below the retention horizon, the log after
        // it, and the checkpoints that will replace it as the horizon moves
        // (`crate::wal::store::kept`; `design/mvcc.md` §11, "Restart").
        let bounds = self.horizon.bounds(self.oracle.read_ts(), true);
        let mut keep = Keep {
            changes_after: bounds.map_or(0, |b| b.keep_changes_after),
            history_marks: Vec::new(),
            hist: Hist {
                ts: c,
                oldest: c,
                samples: self.horizon.persisted(),
                counts: Vec::new(),
            },
        };
        let Some(pages) = &self.pages else {
            if store.logs() {
                keep.history_marks = self.horizon.retention_marks();
                // The log reaches at least `C` after a power loss, so that
                // recovery may start from an older checkpoint.
                store.sync_now()?;
            }
            // A key-value image: the snapshot, taken after the log rotated;
            // the catalog first, then the default keyspace, then every
            // keyspace the catalog lists at the snapshot (`design/keyspaces.md`).
            let others = self.image_at(c)?;
            fn tagged(
                id: u32,
                tree: &crate::bwtree::Tree,
                ts: u64,
            ) -> impl Iterator<Item = Result<(u32, bytes::Bytes, bytes::Bytes)>> + '_ {
                tree.range::<&[u8], _>(.., ts)
                    .map(move |kv| kv.map(|(k, v)| (id, k, v)))
            }
            let entries = tagged(super::keyspaces::CATALOG, &self.ks.catalog.tree, c)
                .chain(tagged(0, &self.tree, c))
                .chain(others.iter().flat_map(|ks| tagged(ks.id, &ks.tree, c)));
            return store.finish_checkpoint(turn, c, keep, entries);
        };
        // Pages the cleaner relocated need a table naming their copies (so
        // that their old segments can go), even with no commit since. A
        // checkpoint that fails gives the mark back, and so does one whose
        // deletions after its table failed: the next one tries again.
        let moved = pages.clean.take_relocated();
        let mut retry = RetryMark {
            clean: &pages.clean,
            armed: moved,
        };
        if !store.checkpoint_due(&turn, c) && !moved {
            return Ok(c);
        }
        pages.check()?;
        let before = pages.bytes_written.load(Ordering::Relaxed);
        let vlog_before = pages.vlog.bytes_written.load(Ordering::Relaxed);
        // No prune of the value log's references from here to the collection.
        let _cycle = pages.vlog.checkpoint_cycle();
        self.prune_page_maps_held();
        store.make_durable(c)?;
        // Without a log nothing after `C` can be replayed: the images listed
        // hold nothing above `C`. Evictions from before the pause below
        // wrote none (`D` is held at or below `C`: `unlogged_hold`), and
        // evictions wait from the pause until the listing is done.
        // The trees listed: the default one, each keyspace the catalog
        // lists at `C` (by id, so by tag), the catalog last.
        let listed = self.image_at(c)?;
        let mut trees: Vec<(u16, &crate::bwtree::Tree, u64)> = vec![(0, &self.tree, self.live_keys(c))];
        for ks in &listed {
            let t = tag(ks.id).ok_or(Error::InvalidArgument("a keyspace id too large for a page store"))?;
            trees.push((t, &ks.tree, ks.counts.at(c, self.count_floor())));
        }
        trees.push((CATALOG_TAG, &self.ks.catalog.tree, 0));
        let unlogged = (!store.has_log()).then(|| trees.iter().map(|t| t.1.pause_evictions()).collect::<Vec<_>>());
        let limit = |store: &crate::wal::store::Store| if unlogged.is_some() { c } else { store.durable_ts() };
        // Each flush adds a chain-map entry. With a log, prune the map as
        // it grows during the flushes (no listing has begun, nothing of
        // this checkpoint is in flight between two batches, and the prune
        // holds evictions off): else a checkpoint that flushes every leaf
        // doubles the map's table (to 63 MB at 5M keys, with the old table
        // alive while it grows). Without a log evictions are paused
        // already, and the map may grow.
        //
        // A clean close's evictions free every dirty leaf while the evictor
        // thread, which trims the allocator every `TRIM_EVERY`, has stopped:
        // under glibc, freed memory the next batches did not reuse stayed in
        // the process's RSS: at 20M keys and a 256 MiB cache the close of
        // `examples/rss -- D 20000000 268435456 30 --count --updates` added
        // 292-296 MiB to the run's peak RSS, 95-160 with this trim (every
        // 50 ms instead: 170-198, and a close 41-59% longer). So it trims as
        // the evictor does (`design/storage.md` §6).
        let evicting = evict && unlogged.is_none();
        let mut last_trim = std::time::Instant::now();
        // Run between batches of flushes: the map's prune, then the trim.
        let mut between = || {
            if unlogged.is_none() && pages.chains_want_prune() {
                self.prune_page_maps_held();
            }
            if evicting && last_trim.elapsed() >= super::workers::TRIM_EVERY {
                crate::bwtree::trim_allocator();
                last_trim = std::time::Instant::now();
            }
        };
        for t in &trees {
            t.1.flush_dirty(limit(store), evicting, &mut between)?;
        }
        let mut tables = Vec::with_capacity(trees.len());
        let mut addrs: Vec<u64> = Vec::new();
        for &(tree, t, live) in &trees {
            let (leaves, pid_high) = t.list_leaves(limit(store))?;
            addrs.extend(leaves.iter().map(|l| l.addr));
            tables.push(TreeTable {
                tree,
                pid_high,
                live,
                leaves: leaves
                    .into_iter()
                    .map(|l| Leaf {
                        pid: l.pid,
                        addr: l.addr,
                        low: l.low,
                    })
                    .collect(),
            });
        }
        drop(unlogged);
        drop(unlogged_hold);
        // The value log's head before the sync: every value the listed
        // images reference is below it (appended by the flushes above),
        // and so is every value it bounds synced by the sync below, which
        // recovery relies on (a reference below it is never a torn tail,
        // `ValueLog::fetch_logged`). Values commits place meanwhile lie
        // above it; their log records keep them.
        let vlog_head = pages.vlog.head();
        pages.sync()?;
        // Every image listed was built at a GC watermark at or below the
        // proposal now: the table serves every timestamp from it on, with
        // the counts from there (folded up to `C` by `live`).
        let oldest = self.registry.oldest_readable().min(c);
        keep.hist.counts = self.counts.history(oldest, c);
        keep.hist.oldest = keep.hist.counts.first().map_or(c, |e| e.0.max(oldest));
        let bytes = table::encode(&Table {
            ts: c,
            trees: tables,
            vlog_head,
            pages_head: pages.head(),
        });
        store.finish_table(turn, c, keep, &bytes)?;
        retry.armed = true;
        pages.written.tables.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        pages.clean.set_table(addrs.clone());
        drop(pin);
        {
            // No tree joins the map until the pause ends: it would escape it.
            let _publication = self.ks.hold_publication();
            let others = self.other_trees();
            let _paused: Vec<_> = self.each_tree(&others).map(|(_, t)| t.pause_evictions()).collect();
            // No cleaner copy is appended and published meanwhile.
            let _cleaner = crate::sync::lock(&pages.clean.running);
            let heads: std::collections::BTreeSet<u64> = addrs
                .into_iter()
                .chain(self.each_tree(&others).flat_map(|(_, t)| t.disk_addrs()))
                .collect();
            // Every part of each chain (its base image holds the value
            // references), taken before the deletion forgets unlisted chains.
            let images = pages.chain_parts(heads.iter().copied());
            pages.delete_unreferenced(heads.iter().copied())?;
            // Values placed at commit stay while the log may be read back
            // to them: recovery after this table, the change stream.
            pages.vlog.collect(&images, c.min(store.retained_from()))?;
        }
        retry.armed = false;
        pages.clean.checkpoint_succeeded();
        let written = pages.bytes_written.load(Ordering::Relaxed) - before
            + bytes.len() as u64
            + pages.vlog.bytes_written.load(Ordering::Relaxed)
            - vlog_before;
        self.checkpoint_bytes.fetch_add(written, Ordering::Relaxed);
        Ok(c)
    }
}

/// Gives the cleaner's "pages were relocated" mark back when dropped armed
/// (a checkpoint that took it failed, or deleted less than it should),
/// so that the next checkpoint writes a table and deletes again even
/// without a commit, and the log thread's next cleaning pass takes one
/// ([`super::clean::CleanState::retry_deletions`]).
struct RetryMark<'a> {
    clean: &'a super::clean::CleanState,
    armed: bool,
}

impl Drop for RetryMark<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.clean.retry_deletions();
        }
    }
}
