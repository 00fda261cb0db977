//! The user's handles (index; see `design/architecture.md`): [`Db`], and
//! the owned [`Transaction`] and [`Snapshot`] it begins. Every handle holds
//! the [`Engine`] in an `Arc`, so each is `'static + Send + Sync` and keeps the
//! database alive; the operations themselves are the engine's.
//!
//! - [`transaction`]: [`Transaction`], a read-write transaction.
//! - [`snapshot`]: [`Snapshot`], a read-only view.
//! - [`changes`]: [`Changes`], the change stream.
//! - [`savepoint`]: [`Savepoint`], a point a transaction can roll back to,
//!   and the undo log behind it.
//! - [`keyspace`]: [`Keyspace`], [`KeyspaceStats`] and the `Db` methods that
//!   open, list and drop keyspaces.
//! - [`keyspace_ops`]: the `*_in` methods of `Transaction` and `Snapshot`.
//! - this file: [`Db`], `Options::open` / `Options::in_memory`, and the
//!   retry loop of [`Db::transaction`].

pub(crate) mod changes;
pub(crate) mod keyspace;
pub(crate) mod keyspace_ops;
pub(crate) mod savepoint;
pub(crate) mod snapshot;
pub(crate) mod transaction;

use std::path::Path;
use std::time::Duration;

pub use changes::Changes;
pub use keyspace::{Keyspace, KeyspaceStats};
pub use savepoint::Savepoint;
pub use snapshot::Snapshot;
pub use transaction::Transaction;

use crate::bwtree::Tree;
use crate::engine::{Engine, Stats};
use crate::options::Options;
use crate::sync::{Arc, Backoff};
use crate::Result;

/// Held by the `Db` handles only (never by transactions, snapshots or
/// background threads): when the last `Db` goes, the background threads are
/// stopped and joined. Transactions and snapshots still open keep the engine
/// (and so the directory lock) until they are dropped; their commits are
/// logged as usual, and with no sync thread left a buffered log is synced
/// at once and at each of their commits.
struct WorkerStopper {
    engine: Arc<Engine>,
}

impl Drop for WorkerStopper {
    fn drop(&mut self) {
        self.engine.stop_workers();
    }
}

/// A database: a cheap handle (`Clone + Send + Sync`) to one multi-version
/// ordered key-value store with snapshot-isolation and serializable
/// transactions ([`crate::Isolation`]).
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
///
/// **Closing.** Dropping the last handle (and every transaction, snapshot
/// and change stream begun on it) closes the database: a buffered log is
/// synced, and a database with a page store writes a checkpoint so that the
/// next open replays nothing. One without a page store writes its key-value
/// image when the log the next open would replay is at least 4 MiB and as
/// large as the newest image (not with `Options::history_retention`). A failure there has nobody to report to (the
/// database reopens from its log as after a crash, losing nothing
/// acknowledged as durable). To see it, call [`Db::sync`] (and, with a
/// page store, [`Db::checkpoint`]) before the last drop.
#[derive(Clone)]
pub struct Db {
    // Field order matters: `_handles` drops first and stops the workers.
    _handles: Arc<WorkerStopper>,
    engine: Arc<Engine>,
}

/// Attempts [`Db::transaction`] makes before returning the conflict.
pub const TRANSACTION_ATTEMPTS: u32 = 64;

/// How long [`Db::transaction`] waits for a conflict's winner to become
/// visible before retrying anyway: well above one log sync.
const WINNER_WAIT: Duration = Duration::from_millis(10);

impl Db {
    /// A new in-memory database with default [`Options`]: nothing is
    /// written to disk ([`crate::Durability::None`]).
    ///
    /// # Panics
    ///
    /// If the database's background thread cannot be started (the system
    /// refuses a new thread). `Options::new().in_memory()` returns that as
    /// [`crate::Error::Io`] instead.
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

    fn from_engine(engine: Arc<Engine>) -> Db {
        Db {
            _handles: Arc::new(WorkerStopper { engine: engine.clone() }),
            engine,
        }
    }

    /// The engine (unit tests that look inside it).
    #[cfg(test)]
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Write a checkpoint now: a consistent image of the database as of a
    /// snapshot, taken while commits continue; then delete the log segments
    /// and older checkpoints it covers. Returns the checkpoint's timestamp.
    /// With a page store ([`Options::cache_size`]) it is incremental: the
    /// leaves changed since the last one and a location table
    /// (`design/storage.md` §6).
    /// (Checkpoints are also taken automatically, see
    /// [`Options::checkpoint_bytes`].) An in-memory database has none:
    /// [`crate::Error::InvalidArgument`].
    pub fn checkpoint(&self) -> Result<u64> {
        self.engine.checkpoint()
    }

    /// Make every commit so far durable: write the log's pending records
    /// and fsync them (one group-commit flush, shared with commits syncing
    /// meanwhile). With [`crate::Durability::Sync`] each commit is durable
    /// when it returns, so this syncs nothing new; with
    /// [`crate::Durability::Buffered`] it is the way to choose when the sync
    /// comes (after a batch of commits, before answering a client); an
    /// in-memory database, or one opened with [`crate::Durability::None`],
    /// has nothing to sync (the latter returns `Poisoned` after a failed
    /// checkpoint sync, as its commits do). A failed write or fsync is
    /// [`crate::Error::Io`] and poisons the database, as for a commit.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bwtx::{Durability, Options};
    ///
    /// # let dir = std::env::temp_dir().join(format!("bwtx-doc-sync-{}", std::process::id()));
    /// let db = Options::new().durability(Durability::Buffered(Duration::from_secs(1))).open(&dir)?;
    /// for i in 0..100 {
    ///     let mut tx = db.begin();
    ///     tx.put(format!("k{i}"), "v")?;
    ///     tx.commit()?; // written, not yet synced
    /// }
    /// db.sync()?; // all 100 durable: one fsync
    /// # drop(db); std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), bwtx::Error>(())
    /// ```
    pub fn sync(&self) -> Result<()> {
        self.engine.sync()
    }

    /// Why the database is poisoned, if it is: the first failed write or
    /// sync (of the log, the page store or the value log), as its error
    /// said it. Commits (and [`Db::sync`], checkpoints) then fail with
    /// [`crate::Error::Poisoned`], which does not repeat it, and the failure
    /// itself may have been a background thread's (a buffered log's sync, a
    /// checkpoint). On the real file system the message names the file.
    /// `None` while the database takes writes.
    ///
    /// ```
    /// let db = bwtx::Db::in_memory();
    /// assert_eq!(db.poison_cause(), None);
    /// ```
    pub fn poison_cause(&self) -> Option<String> {
        self.engine.poison_cause()
    }

    /// Begin a read-write transaction on a snapshot of everything committed
    /// so far, at the isolation level [`Options::isolation`] chose (default
    /// [`crate::Isolation::Snapshot`]).
    ///
    /// The transaction owns its handle on the database: it can move to
    /// another thread and outlive this `Db`.
    pub fn begin(&self) -> Transaction {
        Transaction::new(&self.engine, self.engine.isolation)
    }

    /// Begin a read-write transaction at isolation level `level`, whatever
    /// [`Options::isolation`] says; otherwise as [`Db::begin`]. Transactions
    /// of both levels can run side by side: each behaves as it chose.
    pub fn begin_with(&self, level: crate::Isolation) -> Transaction {
        Transaction::new(&self.engine, level)
    }

    /// A read-only snapshot of everything committed so far. It never blocks
    /// and never aborts.
    /// Like a transaction, it owns its handle on the database.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(&self.engine)
    }

    /// A read-only snapshot as of commit timestamp `ts` (time travel): it
    /// sees exactly the commits at or below `ts`, such as the value a
    /// [`Transaction::commit`] returned. It holds its versions like any open
    /// snapshot, unless it is older than [`Options::max_snapshot_age`] (then
    /// only the retention window holds them, and its reads fail with
    /// [`crate::Error::SnapshotTooOld`] once the window moved past it).
    ///
    /// Timestamps stay readable for [`Options::history_retention`] (default
    /// zero: only while some open snapshot holds them). Fails with
    /// [`crate::Error::SnapshotTooOld`] (naming the oldest readable
    /// timestamp) below that, never with a wrong answer, and with
    /// [`crate::Error::InvalidArgument`] above the newest visible commit.
    ///
    /// A [`Keyspace`] handle names one keyspace, not a name
    /// (`design/keyspaces.md`, K3), and [`Db::keyspace`] resolves a name
    /// now: if a keyspace was dropped and another created under its name
    /// since `ts`, the handle is the new one, which the snapshot sees
    /// empty. [`Snapshot::keyspace`] resolves a name as of the snapshot.
    ///
    /// ```
    /// use std::time::Duration;
    /// let db = bwtx::Options::new()
    ///     .history_retention(Duration::from_secs(3600))
    ///     .in_memory()?;
    /// let mut tx = db.begin();
    /// tx.put("price", "10")?;
    /// let v1 = tx.commit()?;
    /// db.transaction(|tx| tx.put("price", "12"))?;
    /// db.collect_garbage();
    /// assert_eq!(db.snapshot_at(v1)?.get("price")?.as_deref(), Some(&b"10"[..]));
    /// assert_eq!(db.snapshot().get("price")?.as_deref(), Some(&b"12"[..]));
    /// # Ok::<(), bwtx::Error>(())
    /// ```
    pub fn snapshot_at(&self, ts: u64) -> Result<Snapshot> {
        Snapshot::at(&self.engine, ts)
    }

    /// The change stream: every committed transaction with writes, in
    /// commit order, strictly after commit timestamp `ts`, across restarts
    /// and checkpoints (see [`Changes`]). It reads the log's own records, so
    /// it costs no write; reading costs about a sequential read of the log
    /// from `ts` on. Fails with [`crate::Error::SnapshotTooOld`] if the log
    /// no longer holds every commit after `ts` (a checkpoint deleted them:
    /// [`Options::change_retention`] keeps them longer), and with
    /// [`crate::Error::InvalidArgument`] for a database without a log or a
    /// `ts` above the newest visible commit. A checkpoint that deletes the
    /// log after a reader's position makes its next change
    /// `SnapshotTooOld` too, and so does a position before a run without a
    /// log ([`crate::Durability::None`]), whose commits the log lacks;
    /// after a failed log write or sync, `Poisoned` (once the reader is
    /// caught up, and also to a reader waiting in [`Changes::wait_next`]).
    ///
    /// A change is given out once it is durable, so a power loss never takes
    /// back a change a reader was given, and a position stored by a reader
    /// stays valid after one. With [`crate::Durability::Buffered`] that is
    /// after the background sync that follows the commit (at most its
    /// interval later), or after [`Db::sync`]; a `ts` of a commit not synced
    /// yet is synced before the stream starts, so that the stream's first
    /// position is durable too.
    pub fn changes_since(&self, ts: u64) -> Result<Changes> {
        Changes::new(&self.engine, ts)
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
        self.engine.wait_visible(ts, timeout)
    }

    /// Run `f` in a transaction and commit it; on a conflict, wait for the
    /// winner to become visible, back off and run it again on a fresh
    /// snapshot, up to [`TRANSACTION_ATTEMPTS`] times (then the last
    /// conflict is returned). An error from `f` rolls
    /// the transaction back and is returned as is. Returns `f`'s result.
    pub fn transaction<T>(&self, mut f: impl FnMut(&mut Transaction) -> Result<T>) -> Result<T> {
        self.try_transaction(|tx| f(tx))
    }

    /// [`Db::transaction`] for closures with their own error type.
    pub fn try_transaction<T, E: From<crate::Error>>(
        &self,
        mut f: impl FnMut(&mut Transaction) -> std::result::Result<T, E>,
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
                        // Long contention: sleep a little, growing, with
                        // jitter that differs between threads (so that the
                        // losers do not all wake together).
                        std::thread::sleep(Duration::from_micros((1u64 << attempt.min(10)) + jitter(attempt) % 64));
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
        self.engine.sweep()
    }

    /// Evict every resident leaf to the page store, so that every later
    /// access to it faults it back in. A test hook for databases opened with
    /// `Options::cache_size` (else it evicts nothing); returns how many
    /// leaves were evicted. A failed page write or sync is the error, and
    /// poisons the database.
    #[doc(hidden)]
    pub fn evict_all(&self) -> Result<usize> {
        self.engine.evict_all()
    }

    /// Pack every evicted leaf's stub that has nothing over it into a cold
    /// stub (`design/storage.md` §5.9), as the evictor's clock does for
    /// leaves unused for a turn. A test hook (with `evict_all`, it makes
    /// every later access to a leaf unpack it first); returns how many
    /// stubs were packed. Nothing else changes: every read sees the same
    /// data.
    #[doc(hidden)]
    pub fn pack_stubs(&self) -> usize {
        self.engine.pack_stubs()
    }

    /// Drop the key set of every cold stub (`design/storage.md` §5.9), as
    /// the evictor's aging passes do for leaves no write used for 6-8 s.
    /// A test hook: each leaf's next blind write reads its key
    /// set from the page store (`Stats::key_set_reads`). Returns how many
    /// were dropped. Nothing else changes: every read sees the same data.
    #[doc(hidden)]
    pub fn drop_key_sets(&self) -> usize {
        self.engine.drop_key_sets()
    }

    /// One aging pass over cold stubs' key sets, as the evictor makes
    /// every 2 s (`design/storage.md` §5.9: a set goes at the fourth pass
    /// without a write of its leaf). A test hook; returns how many sets it
    /// dropped.
    #[doc(hidden)]
    pub fn age_key_sets(&self) -> usize {
        self.engine.age_key_sets()
    }

    /// Unpack every cold stub into a plain stub again, as a write's
    /// descent does (a test hook: the loom models race packing against the
    /// uses of a plain stub). Returns how many were unpacked.
    #[doc(hidden)]
    pub fn unpack_stubs(&self) -> usize {
        self.engine.unpack_stubs()
    }

    /// Force point reads of evicted leaves to read through (`Some(true)`:
    /// answer from the on-disk chain without faulting the leaf in, until
    /// the leaf's point reads outrun the clock's hand by 31, or six reads
    /// of a chain of several parts), or never to
    /// (`Some(false)`), or let the evictor decide (`None`, the default:
    /// while the cache is at least three quarters full). A test hook, like
    /// [`Db::evict_all`]; `design/storage.md` §5.4.
    #[doc(hidden)]
    pub fn force_read_through(&self, on: Option<bool>) {
        self.engine.force_read_through(on);
    }

    /// Run the page segments' cleaner and the value log's to the end now (a
    /// test hook, like [`Db::evict_all`]): relocate the published images out
    /// of mostly-dead page segments, rewrite the pages that reference
    /// mostly-dead value-log segments (their values appended again),
    /// checkpoint so that those segments are deleted, recount the live
    /// bytes (`design/storage.md` §9, §10). Returns how many pages the page
    /// cleaner moved (the value log's work is in [`Stats`]); 0 without a
    /// page store.
    #[doc(hidden)]
    pub fn clean_now(&self) -> Result<u64> {
        self.engine.clean_now().map(|r| r.relocated)
    }

    /// Move every page image the mapping table publishes (evicted leaves',
    /// clean resident leaves') to the head of the page store, as the
    /// cleaner moves those of mostly-dead segments (`design/storage.md`
    /// §9, step 3), deleting nothing. A test hook, like [`Db::evict_all`]:
    /// every read sees the same data after it. Returns how many pages
    /// moved (a page that changed during its move stays where it was); 0
    /// without a page store.
    #[doc(hidden)]
    pub fn relocate_all(&self) -> Result<u64> {
        self.engine.relocate_all()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    /// The underlying tree (read-only use: for diagnostics and tests).
    #[doc(hidden)]
    pub fn tree(&self) -> &Tree {
        self.engine.tree()
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("read_ts", &self.engine.read_ts()).finish()
    }
}

/// A pseudo-random number that differs between threads and attempts: the
/// backoff jitter of [`Db::try_transaction`].
fn jitter(attempt: u32) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::thread::current().id().hash(&mut h);
    attempt.hash(&mut h);
    h.finish()
}

impl Options {
    /// Open an in-memory database (nothing is written to disk). Fails with
    /// [`crate::Error::InvalidConfig`] for a bad [`Options::tree_config`], and
    /// with [`crate::Error::InvalidArgument`] for settings that need a
    /// directory ([`Options::cache_size`]).
    pub fn in_memory(self) -> Result<Db> {
        Ok(Db::from_engine(Engine::open(self, None)?))
    }

    /// Open (or create) the database in directory `path`, recovering it; see
    /// [`Db::open`]. With [`crate::Durability::None`] the directory is locked
    /// and recovered but nothing new is logged. Fails with
    /// [`crate::Error::InvalidConfig`] for a bad [`Options::tree_config`],
    /// [`crate::Error::Io`] if the directory cannot be read, written or
    /// locked (or a background thread cannot start), and
    /// [`crate::Error::Corruption`] naming the file and offset of damage
    /// recovery cannot read past.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Db> {
        Ok(Db::from_engine(Engine::open(self, Some(path.as_ref()))?))
    }
}
