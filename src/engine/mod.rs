//! The engine: the one place a database is assembled (index; see
//! `design/architecture.md`).
//!
//! An [`Engine`] owns everything one open database has: the tree, the
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

pub(crate) mod commit;
pub(crate) mod gc;
pub(crate) mod pages;
pub(crate) mod pinned;
pub(crate) mod read;
pub(crate) mod serializable;
pub(crate) mod stats;
pub(crate) mod workers;

use std::path::Path;

use bytes::Bytes;

use crate::bwtree::Tree;
use crate::mvcc::counters::EngineCounters;
use crate::mvcc::latches::Latches;
use crate::mvcc::oracle::Oracle;
use crate::mvcc::registry::Registry;
use crate::options::Options;
use crate::sync::{Arc, AtomicBool, Mutex};
use crate::wal::recovery::Replay;
use crate::wal::store::Store;
use crate::{Error, Result};

pub(crate) use pinned::Pinned;
pub use stats::Stats;

/// One open database.
pub(crate) struct Engine {
    /// The multi-version tree: every committed version.
    pub(crate) tree: Tree,
    /// Commit timestamps and the read (visibility) timestamp.
    pub(crate) oracle: Oracle,
    /// Registered snapshots and the GC low watermark.
    pub(crate) registry: Registry,
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
    /// Background threads (GC sweeper, log thread); see [`workers`].
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Set when the last `Db` handle goes: background threads exit.
    closing: AtomicBool,
}

/// Recovery replays into the tree: each call is one committed version.
impl Replay for Tree {
    fn replay(&self, key: Bytes, ts: u64, value: Option<Bytes>) -> Result<()> {
        self.install(key, ts, value)
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
        let mut tree = Tree::with_config(opts.tree)?;
        let fs = opts.fs.clone();
        let store = match dir {
            None => None,
            Some(dir) => Some(Store::open(
                opts.fs,
                dir,
                opts.durability,
                opts.segment_bytes,
                opts.checkpoint_bytes,
                &tree,
            )?),
        };
        // The page store is opened after recovery (which holds the
        // directory's lock and does not read page images yet).
        let pages = match (dir, opts.cache_size) {
            (Some(dir), Some(_)) => {
                let pages = Arc::new(pages::PageFile::open(fs, dir)?);
                tree.set_page_io(Box::new(pages.clone()));
                Some(pages)
            }
            _ => None,
        };
        let last_ts = store.as_ref().map_or(0, |s| s.recovered().last_ts);
        let engine = Arc::new(Engine {
            tree,
            oracle: Oracle::new(last_ts),
            registry: Registry::new(),
            latches: Latches::new(),
            counters: EngineCounters::new(),
            store,
            cache_size: pages.as_ref().and(opts.cache_size),
            isolation: opts.isolation,
            pages,
            workers: Mutex::new(Vec::new()),
            closing: AtomicBool::new(false),
        });
        if let Some(store) = &engine.store {
            // Recovered versions count as installed, so that versions_stored
            // (installed - collected) stays true across reopening.
            engine.counters.versions_installed.add(store.recovered().versions);
        }
        workers::start(&engine, opts.gc_interval)?;
        Ok(engine)
    }

    /// [`crate::Db::evict_all`].
    pub(crate) fn evict_all(&self) -> Result<usize> {
        self.tree.evict_all()
    }

    /// [`crate::Db::checkpoint`]: one at a time; the image is a snapshot
    /// taken after the log rotated, written while commits continue.
    pub(crate) fn checkpoint(&self) -> Result<u64> {
        let store = self
            .store
            .as_ref()
            .ok_or(Error::InvalidArgument("an in-memory database has no checkpoints"))?;
        let turn = store.begin_checkpoint()?;
        let pin = self.registry.pin_scoped(&self.oracle);
        store.finish_checkpoint(turn, pin.ts(), self.tree.range::<&[u8], _>(.., pin.ts()))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Buffered mode: what was written reaches the disk on a clean close.
        // (A failure poisons the log; there is nobody left to tell.)
        if let Some(store) = &self.store {
            let _ = store.sync_now();
        }
    }
}
