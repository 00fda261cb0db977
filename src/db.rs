//! The database handle, its options and statistics.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::bwtree::{Config, Tree};
use crate::mvcc::counters::DbCounters;
use crate::mvcc::latches::Latches;
use crate::mvcc::oracle::Oracle;
use crate::mvcc::watermark::Registry;
use crate::mvcc::{Snapshot, Transaction};
use crate::sync::Backoff;
use crate::Result;

/// Everything a database handle shares.
pub(crate) struct Shared {
    pub(crate) tree: Tree,
    pub(crate) oracle: Oracle,
    pub(crate) registry: Registry,
    pub(crate) latches: Latches,
    pub(crate) stats: DbCounters,
    sweeper: OnceLock<std::thread::Thread>,
    closing: AtomicBool,
}

impl Shared {
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.closing.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.sweeper.get() {
            t.unpark();
        }
    }
}

/// Options for opening a database.
///
/// ```
/// use std::time::Duration;
///
/// let db = bwtx::Options::new()
///     .gc_interval(Some(Duration::from_millis(20)))
///     .in_memory()
///     .unwrap();
/// db.transaction(|tx| tx.put("k", "v")).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    tree: Config,
    gc_interval: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tree: Config::default(),
            gc_interval: Some(Duration::from_millis(100)),
        }
    }
}

impl Options {
    /// The defaults: the tree's default [`Config`] and a background sweep at
    /// most every 100 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// The Bw-Tree's page and chain parameters.
    pub fn tree_config(mut self, cfg: Config) -> Self {
        self.tree = cfg;
        self
    }

    /// How often the background sweeper wakes to collect versions on pages
    /// nobody writes (`None`: no sweeper thread; versions on written pages
    /// are still collected by consolidation, and [`Db::collect_garbage`]
    /// sweeps on demand). The sweeper backs off so that it uses at most
    /// about 5% of one core.
    pub fn gc_interval(mut self, interval: Option<Duration>) -> Self {
        self.gc_interval = interval;
        self
    }

    /// Open an in-memory database (nothing is written to disk).
    pub fn in_memory(self) -> Result<Db> {
        let shared = Arc::new(Shared {
            tree: Tree::with_config(self.tree)?,
            oracle: Oracle::new(0),
            registry: Registry::new(),
            latches: Latches::new(),
            stats: DbCounters::new(),
            sweeper: OnceLock::new(),
            closing: AtomicBool::new(false),
        });
        #[cfg(not(loom))]
        if let Some(interval) = self.gc_interval {
            let t = crate::mvcc::gc::spawn_sweeper(Arc::downgrade(&shared), interval).map_err(crate::Error::Io)?;
            let _ = shared.sweeper.set(t);
        }
        Ok(Db { shared })
    }
}

/// A database: a cheap handle (`Clone + Send + Sync`) to one multi-version
/// ordered key-value store with snapshot-isolation transactions.
///
/// ```
/// let db = bwtx::Db::in_memory();
///
/// let mut tx = db.begin();
/// tx.put("alice", "10")?;
/// tx.put("bob", "20")?;
/// tx.commit()?;
///
/// // Retries on conflict, a bounded number of times.
/// db.transaction(|tx| {
///     let a: u64 = std::str::from_utf8(&tx.get("alice")?.unwrap()).unwrap().parse().unwrap();
///     tx.put("alice", (a - 5).to_string())?;
///     tx.put("carol", "5")
/// })?;
///
/// let snap = db.snapshot();
/// let names: Vec<_> = snap.range("a".."c").map(|kv| kv.unwrap().0).collect();
/// assert_eq!(names, ["alice", "bob"]);
/// # Ok::<(), bwtx::Error>(())
/// ```
#[derive(Clone)]
pub struct Db {
    shared: Arc<Shared>,
}

/// Attempts [`Db::transaction`] makes before returning the conflict.
pub const TRANSACTION_ATTEMPTS: u32 = 64;

impl Db {
    /// A new in-memory database with default [`Options`].
    pub fn in_memory() -> Db {
        Options::new().in_memory().expect("default options are valid")
    }

    /// Begin a read-write transaction on a snapshot of everything committed
    /// so far.
    pub fn begin(&self) -> Transaction<'_> {
        Transaction::new(&self.shared)
    }

    /// A read-only snapshot of everything committed so far. It never blocks
    /// and never aborts.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot::new(&self.shared)
    }

    /// Run `f` in a transaction and commit it; on a conflict, back off and
    /// run it again on a fresh snapshot, up to [`TRANSACTION_ATTEMPTS`]
    /// times (then the last conflict is returned). An error from `f` rolls
    /// the transaction back and is returned as is. Returns `f`'s result.
    pub fn transaction<T>(&self, mut f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        self.try_transaction(|tx| f(tx))
    }

    /// [`Db::transaction`] for closures with their own error type.
    pub fn try_transaction<T, E: From<crate::Error>>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let backoff = Backoff::new();
        let mut attempt = 0;
        loop {
            let mut tx = self.begin();
            let out = f(&mut tx)?;
            match tx.commit() {
                Ok(_) => return Ok(out),
                Err(e) if e.is_conflict() && attempt + 1 < TRANSACTION_ATTEMPTS => {
                    attempt += 1;
                    if attempt < 8 {
                        backoff.snooze();
                    } else {
                        // Long contention: sleep a little, growing, with jitter
                        // from the attempt's own timestamp.
                        let us = (1u64 << attempt.min(10)) + (crate::mvcc::latches::hash(&attempt.to_le_bytes()) % 64);
                        std::thread::sleep(Duration::from_micros(us));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Collect garbage now: raise the GC watermark to the oldest live
    /// snapshot and sweep every page. Returns the number of versions dropped.
    /// (The background sweeper does this periodically; this is for callers
    /// that want memory back at a known point.)
    pub fn collect_garbage(&self) -> u64 {
        self.shared.sweep()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        let tree = s.tree.stats();
        let installed = s.stats.versions_installed.get();
        Stats {
            commits: s.stats.commits.get(),
            conflicts: s.stats.conflicts.get(),
            versions_installed: installed,
            versions_collected: tree.versions_dropped,
            versions_stored: installed.saturating_sub(tree.versions_dropped),
            consolidations: tree.consolidations,
            splits: tree.splits,
            merges: tree.merges,
            gc_sweeps: s.stats.sweeps.get(),
            active_snapshots: s.registry.active() as u64,
            read_ts: s.oracle.read_ts(),
            gc_watermark: s.tree.gc_watermark(),
            tree,
        }
    }

    /// The underlying tree (read-only use: for diagnostics and tests).
    #[doc(hidden)]
    pub fn tree(&self) -> &Tree {
        &self.shared.tree
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("read_ts", &self.shared.oracle.read_ts())
            .finish()
    }
}

/// Database statistics ([`Db::stats`]). Counters count since open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Transactions committed with at least one write.
    pub commits: u64,
    /// Commits refused with [`crate::Error::Conflict`].
    pub conflicts: u64,
    /// Versions written by commits.
    pub versions_installed: u64,
    /// Versions dropped by garbage collection.
    pub versions_collected: u64,
    /// Versions held now (`versions_installed - versions_collected`).
    pub versions_stored: u64,
    /// Delta chains consolidated.
    pub consolidations: u64,
    /// Page splits.
    pub splits: u64,
    /// Page merges.
    pub merges: u64,
    /// Full garbage-collection sweeps (background or [`Db::collect_garbage`]).
    pub gc_sweeps: u64,
    /// Snapshots and transactions open now.
    pub active_snapshots: u64,
    /// The read timestamp: the newest commit every new snapshot sees.
    pub read_ts: u64,
    /// The tree's GC watermark: versions no snapshot at or above it can see
    /// may be dropped.
    pub gc_watermark: u64,
    /// The tree's own counters.
    pub tree: crate::tree::TreeStats,
}
