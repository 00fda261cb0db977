//! The database handle, its options and statistics.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bwtree::Tree;
use crate::mvcc::counters::DbCounters;
use crate::mvcc::latches::Latches;
use crate::mvcc::oracle::Oracle;
use crate::mvcc::watermark::Registry;
use crate::mvcc::{Snapshot, Transaction};
use crate::sync::Backoff;
use crate::wal::store::Store;
use crate::{Options, Result};

/// Everything a database handle shares.
pub(crate) struct Shared {
    pub(crate) tree: Tree,
    pub(crate) oracle: Oracle,
    pub(crate) registry: Registry,
    pub(crate) latches: Latches,
    pub(crate) stats: DbCounters,
    /// The log and checkpoints (`None`: in memory).
    pub(crate) store: Option<Store>,
    /// Background threads (GC sweeper, log syncer/checkpointer).
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    closing: AtomicBool,
}

impl Shared {
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Shared {
    /// Stop the background threads and wait for them: they hold the shared
    /// state only while working, so once they are gone the last user handle
    /// is the last reference, and dropping it closes the database (syncs the
    /// log, releases the directory lock) at once.
    fn stop_workers(&self) {
        self.closing.store(true, std::sync::atomic::Ordering::Release);
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for w in &workers {
            w.thread().unpark();
        }
        for w in workers {
            let _ = w.join();
        }
    }

    /// [`Db::checkpoint`].
    pub(crate) fn checkpoint(&self) -> Result<u64> {
        let store = self.store.as_ref().ok_or(crate::Error::InvalidArgument(
            "an in-memory database has no checkpoints",
        ))?;
        let guard = store.begin_checkpoint()?;
        let snap = Snapshot::new(self);
        store.finish_checkpoint(guard, snap.ts(), snap.range::<&[u8], _>(..))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Buffered mode: what was written reaches the disk on a clean close.
        if let Some(store) = &self.store {
            let _ = store.wal.sync_now();
        }
    }
}

/// Shared by the user's handles only (never by background threads): when
/// the last one goes, the background threads are stopped and joined.
struct Handles {
    shared: Arc<Shared>,
}

impl Drop for Handles {
    fn drop(&mut self) {
        self.shared.stop_workers();
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
    // Field order matters: `handles` drops first and stops the workers.
    _handles: Arc<Handles>,
    shared: Arc<Shared>,
}

/// Attempts [`Db::transaction`] makes before returning the conflict.
pub const TRANSACTION_ATTEMPTS: u32 = 64;

/// How long [`Db::transaction`] waits for a conflict's winner to become
/// visible before retrying anyway: well above one log sync.
const WINNER_WAIT: Duration = Duration::from_millis(10);

impl Db {
    /// A new in-memory database with default [`Options`]: nothing is
    /// written to disk ([`crate::Durability::None`]).
    pub fn in_memory() -> Db {
        Options::new().in_memory().expect("default options are valid")
    }

    /// Open (or create) the database in directory `path` with default
    /// [`Options`]: [`crate::Durability::Sync`], so every acknowledged commit
    /// is on stable storage. Recovers what a previous run left: the newest
    /// checkpoint, then the log after it (a torn final record is truncated
    /// and counted in [`Stats::torn_tails`]; other damage is
    /// [`crate::Error::Corruption`]). Fails with [`crate::Error::Locked`] if
    /// the directory is open already.
    pub fn open(path: impl AsRef<Path>) -> crate::Result<Db> {
        Options::new().open(path)
    }

    pub(crate) fn from_parts(
        tree: Tree,
        last_ts: u64,
        store: Option<Store>,
        gc_interval: Option<Duration>,
    ) -> Result<Db> {
        let shared = Arc::new(Shared {
            tree,
            oracle: Oracle::new(last_ts),
            registry: Registry::new(),
            latches: Latches::new(),
            stats: DbCounters::new(),
            store,
            workers: Mutex::new(Vec::new()),
            closing: AtomicBool::new(false),
        });
        #[cfg(not(loom))]
        {
            if let Some(interval) = gc_interval {
                let t = crate::mvcc::gc::spawn_sweeper(Arc::downgrade(&shared), interval).map_err(crate::Error::Io)?;
                shared.workers.lock().unwrap_or_else(|p| p.into_inner()).push(t);
            }
            if let Some(tick) = shared.store.as_ref().and_then(Store::tick) {
                let t = spawn_logger(Arc::downgrade(&shared), tick).map_err(crate::Error::Io)?;
                shared.workers.lock().unwrap_or_else(|p| p.into_inner()).push(t);
            }
        }
        #[cfg(loom)]
        let _ = gc_interval;
        if let Some(store) = &shared.store {
            // Recovered versions count as installed, so that versions_stored
            // (installed - collected) stays true across reopening.
            shared.stats.versions_installed.add(store.recovered.versions);
        }
        Ok(Db {
            _handles: Arc::new(Handles { shared: shared.clone() }),
            shared,
        })
    }

    /// Write a checkpoint now: a consistent image of the database as of a
    /// snapshot, taken while commits continue; then delete the log segments
    /// and older checkpoints it covers. Returns the checkpoint's timestamp.
    /// (Checkpoints are also taken automatically, see
    /// [`Options::checkpoint_bytes`].) An in-memory database has none:
    /// [`crate::Error::InvalidArgument`].
    pub fn checkpoint(&self) -> Result<u64> {
        self.shared.checkpoint()
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

    /// Wait until snapshots taken from now on include the commit at `ts`
    /// (at most `timeout`); whether they do. After a conflict, waiting for
    /// the winner (`Error::Conflict { winner, .. }`) before retrying keeps
    /// the retry from reading the same stale snapshot and losing again: a
    /// winner can be committed but not yet visible while its log record is
    /// being synced.
    ///
    /// ```
    /// use std::time::Duration;
    /// let db = bwtx::Db::in_memory();
    /// let (mut a, mut b) = (db.begin(), db.begin());
    /// a.put("k", "a")?;
    /// b.put("k", "b")?;
    /// a.commit()?;
    /// match b.commit() {
    ///     Err(bwtx::Error::Conflict { winner, .. }) => {
    ///         assert!(db.wait_visible(winner, Duration::from_millis(10)));
    ///         // A transaction begun now reads the winner's write.
    ///         assert_eq!(db.begin().get("k")?.as_deref(), Some(&b"a"[..]));
    ///     }
    ///     other => panic!("expected a conflict, got {other:?}"),
    /// }
    /// # Ok::<(), bwtx::Error>(())
    /// ```
    pub fn wait_visible(&self, ts: u64, timeout: Duration) -> bool {
        let oracle = &self.shared.oracle;
        let backoff = Backoff::new();
        let start = std::time::Instant::now();
        let mut polls = 0u32;
        while oracle.read_ts() < ts {
            // Spin and yield for about a commit's installation, then sleep in
            // steps well below one log sync.
            polls += 1;
            if polls <= 32 {
                backoff.snooze();
            } else if start.elapsed() >= timeout {
                return false;
            } else {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
        true
    }

    /// Run `f` in a transaction and commit it; on a conflict, wait for the
    /// winner to become visible, back off and run it again on a fresh
    /// snapshot, up to [`TRANSACTION_ATTEMPTS`] times (then the last
    /// conflict is returned). An error from `f` rolls
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
                    if let crate::Error::Conflict { winner, .. } = e {
                        self.wait_visible(winner, WINNER_WAIT);
                    }
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
            log_records: s
                .store
                .as_ref()
                .map_or(0, |d| d.wal.records.load(std::sync::atomic::Ordering::Relaxed)),
            log_syncs: s
                .store
                .as_ref()
                .map_or(0, |d| d.wal.syncs.load(std::sync::atomic::Ordering::Relaxed)),
            log_segments: s.store.as_ref().map_or(0, |d| d.wal.segments() as u64),
            checkpoints: s
                .store
                .as_ref()
                .map_or(0, |d| d.checkpoints.load(std::sync::atomic::Ordering::Relaxed)),
            torn_tails: s.store.as_ref().map_or(0, |d| d.recovered.torn_tails),
            replayed: s.store.as_ref().map_or(0, |d| d.recovered.replayed),
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
    /// The tree's own counters.
    pub tree: crate::tree::TreeStats,
}

/// The background thread of a durable database: syncs the log in buffered
/// mode and takes automatic checkpoints. Holds only a weak reference.
#[cfg(not(loom))]
fn spawn_logger(db: std::sync::Weak<Shared>, tick: Duration) -> std::io::Result<std::thread::JoinHandle<()>> {
    let h = std::thread::Builder::new()
        .name("bwtx-log".into())
        .spawn(move || loop {
            std::thread::park_timeout(tick);
            let Some(shared) = db.upgrade() else { return };
            if shared.closing() {
                return;
            }
            let Some(store) = &shared.store else { return };
            if matches!(store.mode, crate::Durability::Buffered(_)) {
                // A failure poisons the log; commits report it.
                let _ = store.wal.sync_now();
            }
            if store.ckpt_wanted.load(std::sync::atomic::Ordering::Acquire) {
                let _ = shared.checkpoint();
            }
        })?;
    Ok(h)
}
