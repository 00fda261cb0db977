//! The engine: the one place a database is assembled (index; see
//! `design/architecture.md`).
//!
//! An [`Engine`] owns everything one open database has: the default
//! keyspace's tree and the other keyspaces' (with their catalog), the
//! timestamp oracle, the snapshot registry, the commit latches, the counters,
//! the log and checkpoints (for a database on disk), and the background
//! threads. The user's handles (`Db`, `Transaction`, `Snapshot`, in
//! `crate::db`) hold it in an `Arc` and call the operations below; nothing
//! else builds one.
//!
//! - [`commit`]: the commit protocol (validate, timestamp, install, log,
//!   publish).
//! - [`serializable`]: serializable read validation, between the commit
//!   timestamp and the install.
//! - [`gc`]: the GC watermark's refresh and the background sweeper.
//! - [`workers`]: starting and stopping the background threads; the log
//!   thread (buffered syncs, automatic checkpoints).
//! - [`read`]: point reads and scans at a snapshot, merged with a
//!   transaction's writes.
//! - [`pinned`]: [`Pinned`], a registered snapshot that keeps the engine
//!   alive, the core of the owned handles.
//! - [`stats`]: [`Stats`], the counters and gauges of `Db::stats`.
//! - [`changes`]: the change stream's start, limit and records.
//! - [`open`]: opening a directory: lock, newest checkpoint (a location
//!   table becomes a tree of evicted leaves), recovery.
//! - [`checkpoint`]: checkpoints: the incremental one (location table) of a
//!   database with a page store, the key-value image of one without.
//! - [`pages`]: the page store behind the trees' `PageIo`.
//! - [`page_read`]: its read side: a page's on-disk chain read and merged
//!   (fault-in).
//! - [`chain_parts`]: a page chain's parts as the page file's chain map
//!   keeps them (inline).
//! - [`addr_shards`]: the chain map's container: a map by page-store
//!   address in shards, each rebuilt at a prune.
//! - [`tree_pages`]: every tree on the one page store: each tree's
//!   `PageIo` (its records tagged), the cache budget over every tree.
//! - [`vlog`]: the value log: large values out of the page images.
//! - [`clean`]: segment cleaning: live bytes per page segment, and the
//!   cleaner that empties mostly-dead segments.
//! - [`keyspaces`]: the catalog of named keyspaces, their trees, creating
//!   and dropping them (`design/keyspaces.md`).

pub(crate) mod addr_shards;
pub(crate) mod chain_map;
pub(crate) mod chain_parts;
pub(crate) mod changes;
pub(crate) mod checkpoint;
#[cfg(test)]
mod checkpoint_tests;
pub(crate) mod clean;
#[cfg(test)]
mod clean_tests;
pub(crate) mod commit;
pub(crate) mod gc;
pub(crate) mod keyspaces;
pub(crate) mod open;
pub(crate) mod page_read;
pub(crate) mod pages;
pub(crate) mod pinned;
pub(crate) mod read;
pub(crate) mod serializable;
pub(crate) mod stats;
pub(crate) mod tree_pages;
pub(crate) mod vlog;
pub(crate) mod vlog_clean;
pub(crate) mod workers;

use std::path::Path;

use crate::bwtree::Tree;
use crate::mvcc::counters::EngineCounters;
use crate::mvcc::counts::Counts;
use crate::mvcc::horizon::Horizon;
use crate::mvcc::latches::Latches;
use crate::mvcc::oracle::Oracle;
use crate::mvcc::registry::Registry;
use crate::options::Options;
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex};
use crate::wal::store::Store;
use crate::{Error, Result};

pub use changes::Change;
pub(crate) use pinned::Pinned;
pub use stats::Stats;

/// One open database.
pub(crate) struct Engine {
    /// The default keyspace's multi-version tree: every committed version.
    pub(crate) tree: Tree,
    /// The catalog and the named keyspaces' trees.
    pub(crate) ks: keyspaces::Keyspaces,
    /// This engine's identity (a process-wide counter): a `Keyspace` handle
    /// is used only with the database it came from.
    pub(crate) id: u64,
    /// Commit timestamps and the read (visibility) timestamp.
    pub(crate) oracle: Oracle,
    /// Registered snapshots and the GC low watermark.
    pub(crate) registry: Registry,
    /// History retention and the snapshot age limit, as timestamps.
    pub(crate) horizon: Horizon,
    /// Exact live-key counts per commit timestamp.
    pub(crate) counts: Counts,
    /// Striped commit latches (first-committer-wins validation).
    latches: Latches,
    /// Commits, conflicts, versions installed, sweeps.
    counters: EngineCounters,
    /// The log and checkpoints (`None`: in memory).
    store: Option<Store>,
    /// The page segments (with `Options::cache_size`).
    pages: Option<Arc<pages::PageFile>>,
    /// `Options::cache_size`, for a database with page segments.
    cache_size: Option<u64>,
    /// `Options::isolation`: the level of `Db::begin`.
    pub(crate) isolation: crate::Isolation,
    /// Background threads (GC sweeper, evictor, sync thread, log thread);
    /// see [`workers`].
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Set when the last `Db` handle goes: background threads exit.
    closing: AtomicBool,
    /// Bytes the incremental checkpoints of this run wrote (images and
    /// tables).
    checkpoint_bytes: AtomicU64,
    /// Log versions recovery found in page images already.
    replay_skipped: u64,
    /// Versions the oldest snapshot alone holds, as the last sweep counted
    /// them ([`gc`]).
    held_by_oldest: AtomicU64,
    /// [`crate::Db::force_read_through`]'s last setting. Held while it is
    /// applied to every tree, and while a new keyspace's tree takes it
    /// before it is published, so that no tree misses a setting.
    read_through: Mutex<Option<bool>>,
    /// Declared last, so dropped last: gives the memory the fields above
    /// freed back to the system (paged databases only).
    _trim: TrimOnClose,
}

/// Dropped after every other field of an [`Engine`]: a paged database's
/// pages, stubs and maps are freed by then, and glibc keeps what they
/// occupied in its arenas (the evictor's periodic trim has stopped). So
/// closing a database gives its memory back: a 2M-key database with a
/// 64 MiB cache left 223 MiB of RSS behind after its close, 34 MiB with
/// this trim (`examples/rss`, `design/storage.md` §5.1).
struct TrimOnClose(bool);

impl Drop for TrimOnClose {
    fn drop(&mut self) {
        if self.0 {
            crate::bwtree::trim_allocator();
        }
    }
}

impl Engine {
    /// Assemble a database from `opts`: in memory (`dir == None`), or in
    /// directory `dir`, locked and recovered. Starts the background threads.
    pub(crate) fn open(opts: Options, dir: Option<&Path>) -> Result<Arc<Engine>> {
        if dir.is_none() && opts.cache_size.is_some() {
            return Err(Error::InvalidArgument(
                "cache_size needs a database directory (Options::open)",
            ));
        }
        let (tree, store, pages, replay_skipped, oldest, samples, counts, ks) = match dir {
            None => {
                let catalog = keyspaces::KsTree::new(
                    keyspaces::CATALOG,
                    "catalog",
                    0,
                    Tree::with_config(opts.tree.clone())?,
                    0,
                    0,
                );
                let ks = keyspaces::Keyspaces::new(opts.tree.clone(), Arc::new(catalog), Vec::new(), Vec::new());
                (
                    Tree::with_config(opts.tree.clone())?,
                    None,
                    None,
                    0,
                    0,
                    vec![],
                    vec![],
                    ks,
                )
            }
            Some(dir) => {
                let o = open::open_dir(&opts, dir)?;
                (
                    o.tree,
                    Some(o.store),
                    o.pages,
                    o.replay_skipped,
                    o.oldest,
                    o.samples,
                    o.counts,
                    o.keyspaces,
                )
            }
        };
        let last_ts = store.as_ref().map_or(0, |s| s.recovered().last_ts);
        // Numbers engines only (`crate::sync`'s exceptions): a std static.
        static NEXT_ENGINE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let engine = Arc::new(Engine {
            tree,
            ks,
            id: NEXT_ENGINE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            oracle: Oracle::new(last_ts),
            // No history below what recovery rebuilt (`design/mvcc.md` §11).
            registry: Registry::new(oldest),
            horizon: Horizon::new(
                opts.history_retention,
                opts.max_snapshot_age,
                opts.change_retention,
                last_ts,
            )
            .restored(oldest, &samples),
            counts: Counts::with_history(last_ts, counts),
            latches: Latches::new(),
            counters: EngineCounters::new(),
            store,
            cache_size: pages.as_ref().and(opts.cache_size),
            checkpoint_bytes: AtomicU64::new(0),
            replay_skipped,
            held_by_oldest: AtomicU64::new(0),
            isolation: opts.isolation,
            pages,
            workers: Mutex::new(Vec::new()),
            closing: AtomicBool::new(false),
            read_through: Mutex::new(None),
            _trim: TrimOnClose(opts.cache_size.is_some()),
        });
        if let Some(store) = &engine.store {
            // Recovered versions count as installed, so that versions_stored
            // (installed - collected) stays true across reopening.
            engine.counters.versions_installed.add(store.recovered().versions);
        }
        workers::start(&engine, opts.gc_interval)?;
        Ok(engine)
    }

    /// `Err(Poisoned)` if the log is poisoned (a write or sync failed).
    pub(crate) fn check_log(&self) -> Result<()> {
        match &self.store {
            Some(store) if store.logs() => store.check(),
            _ => Ok(()),
        }
    }

    /// `Err(Poisoned)` once a write or sync failed: of the log (with or
    /// without logged commits: without them a checkpoint's failed sync
    /// poisons it, and checkpoints are then what saves commits) or of the
    /// page store. Commits and [`crate::Db::sync`] are refused then.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if let Some(store) = &self.store {
            store.check()?;
        }
        if let Some(pages) = &self.pages {
            pages.check()?;
        }
        Ok(())
    }

    /// [`crate::Db::poison_cause`].
    pub(crate) fn poison_cause(&self) -> Option<String> {
        let log = self
            .store
            .as_ref()
            .and_then(|s| s.poison_cause())
            .map(|c| format!("log: {c}"));
        log.or_else(|| self.pages.as_ref().and_then(|p| p.poison_cause()))
    }

    /// [`crate::Db::sync`]: every commit logged so far made durable.
    pub(crate) fn sync(&self) -> Result<()> {
        self.check_writable()?;
        match &self.store {
            Some(store) if store.logs() => store.sync_now(),
            _ => Ok(()),
        }
    }

    /// [`crate::Db::force_read_through`].
    pub(crate) fn force_read_through(&self, on: Option<bool>) {
        let mut forced = crate::sync::lock(&self.read_through);
        *forced = on;
        let others = self.other_trees();
        for (_, t) in self.each_tree(&others) {
            t.force_read_through(on);
        }
    }

    /// [`crate::Db::evict_all`]: the log is synced first, so that the WAL
    /// rule holds back no page.
    pub(crate) fn evict_all(&self) -> Result<usize> {
        if let Some(store) = &self.store {
            store.sync_now()?;
        }
        self.before_evict();
        let others = self.other_trees();
        let mut n = 0;
        for (_, t) in self.each_tree(&others) {
            n += t.evict_all()?;
        }
        Ok(n)
    }

    /// [`crate::Db::pack_stubs`].
    pub(crate) fn pack_stubs(&self) -> usize {
        let others = self.other_trees();
        self.each_tree(&others).map(|(_, t)| t.pack_stubs()).sum()
    }

    /// An aging pass over every tree's cold key sets (KS1 in
    /// `bwtree::paging`; the evictor thread's, every `KEY_SET_PASS`).
    pub(crate) fn age_key_sets(&self) -> usize {
        let others = self.other_trees();
        self.each_tree(&others).map(|(_, t)| t.age_key_sets()).sum()
    }

    /// [`crate::Db::drop_key_sets`].
    pub(crate) fn drop_key_sets(&self) -> usize {
        let others = self.other_trees();
        self.each_tree(&others).map(|(_, t)| t.drop_key_sets()).sum()
    }

    /// [`crate::Db::unpack_stubs`].
    pub(crate) fn unpack_stubs(&self) -> usize {
        let others = self.other_trees();
        self.each_tree(&others).map(|(_, t)| t.unpack_stubs()).sum()
    }

    /// Before an eviction batch: without a log, the page images' limit
    /// (W1's `D`) is the read timestamp (every commit at or below it is
    /// installed whole); see [`crate::wal::store::Store::unlogged_visible`].
    pub(crate) fn before_evict(&self) {
        if let Some(store) = &self.store {
            store.unlogged_visible(|| self.oracle.read_ts());
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // A clean close of a paged database writes a checkpoint, so the
        // next open replays nothing; without a page store, one whose image
        // costs about what the replay it saves would (a log at least as
        // large as the newest image), unless history is retained (the next
        // open starts from an older image then). Buffered mode: what was
        // written reaches the disk on a clean close. (A failure poisons the log or
        // the page store; there is nobody left to tell.)
        if let Some(store) = &self.store {
            if self.pages.as_ref().is_some_and(|p| p.check().is_ok()) && store.check().is_ok() {
                let _ = self.checkpoint_closing();
            } else if self.pages.is_none()
                && !self.horizon.retains_history()
                && store.logs()
                && store.check().is_ok()
                && store.replay_outweighs_image()
            {
                let _ = self.checkpoint();
            }
            // The last sync's bytes get a mark past them: a sector the
            // medium loses from them later is damage, not a torn tail.
            let _ = store.seal();
        }
    }
}
