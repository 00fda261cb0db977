//! Options for opening a database, and the durability modes: plain
//! configuration, below every layer that reads it (the engine opens a
//! database from them: `Options::open` and `Options::in_memory` are defined
//! with the handles, in `crate::db`).

use std::sync::Arc;
use std::time::Duration;

use crate::bwtree::Config;
use crate::fs::{Fs, StdFs};

/// What an acknowledged commit survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `commit` returns after the commit's log record is on stable storage
    /// (`fdatasync`): it survives a process kill and a power loss.
    /// Concurrent committers share one sync (group commit). The default.
    #[default]
    Sync,
    /// `commit` returns after the record is written to the operating system;
    /// a background thread syncs the log at this interval. A process kill
    /// loses nothing; a power loss loses at most the commits of the last
    /// interval (whole commits, in commit order: never a torn or partial one).
    /// An interval under a millisecond is taken as one millisecond.
    Buffered(Duration),
    /// Commits are not logged. With [`Options::in_memory`] nothing touches
    /// the disk; with [`Options::open`] the directory is locked and recovered
    /// (and a fresh log segment created), but commits are lost on close
    /// unless a checkpoint ([`crate::Db::checkpoint`]) saves them.
    None,
}

/// The isolation level of a transaction (`design/mvcc.md`).
///
/// Both levels read one snapshot plus the transaction's own writes, and
/// both make a transaction that wrote a key someone else wrote after its
/// snapshot fail at commit (first committer wins). They differ in what a
/// commit validates about the transaction's *reads*.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Isolation {
    /// Snapshot isolation: reads are not validated. Fast, never aborts a
    /// transaction for what it read, but lets write skew through. The
    /// default.
    #[default]
    Snapshot,
    /// Serializable: a transaction with writes also validates at commit that
    /// nothing it read (keys, including keys found absent, and scanned
    /// ranges, phantoms included) was written by a transaction that
    /// committed after its snapshot and before it; otherwise its commit
    /// fails with [`crate::Error::Conflict`] ([`crate::ConflictReason::Read`]
    /// or [`crate::ConflictReason::Range`]). When every transaction that
    /// writes is serializable, every committed history is then equivalent
    /// to running the transactions one at a time in commit order (read-only
    /// ones at their snapshot, and they never fail); snapshot-isolation
    /// writers beside them can still form a write skew with them.
    /// Costs: each read is also recorded (a lock, a key copy), and a commit
    /// with reads waits for earlier commits to finish installing and checks
    /// each key and range read (`design/mvcc.md`, section 10).
    Serializable,
}

/// Options for opening a database.
///
/// ```
/// use std::time::Duration;
/// use bwtx::{Durability, Options};
///
/// let dir = std::env::temp_dir().join(format!("bwtx-doc-options-{}", std::process::id()));
/// let db = Options::new()
///     .durability(Durability::Buffered(Duration::from_millis(10)))
///     .open(&dir)?;
/// db.transaction(|tx| tx.put("k", "v"))?;
/// drop(db);
/// let db = bwtx::Db::open(&dir)?; // recovers the commit
/// assert_eq!(db.snapshot().get("k")?.as_deref(), Some(&b"v"[..]));
/// # drop(db); std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), bwtx::Error>(())
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) tree: Config,
    pub(crate) gc_interval: Option<Duration>,
    pub(crate) durability: Durability,
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) segment_bytes: u64,
    pub(crate) checkpoint_bytes: u64,
    pub(crate) cache_size: Option<u64>,
    pub(crate) isolation: Isolation,
    pub(crate) history_retention: Duration,
    pub(crate) max_snapshot_age: Option<Duration>,
    pub(crate) change_retention: Duration,
    pub(crate) value_log_threshold: u64,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("tree", &self.tree)
            .field("gc_interval", &self.gc_interval)
            .field("durability", &self.durability)
            .field("segment_bytes", &self.segment_bytes)
            .field("checkpoint_bytes", &self.checkpoint_bytes)
            .field("cache_size", &self.cache_size)
            .field("isolation", &self.isolation)
            .field("history_retention", &self.history_retention)
            .field("max_snapshot_age", &self.max_snapshot_age)
            .field("change_retention", &self.change_retention)
            .field("value_log_threshold", &self.value_log_threshold)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tree: Config::default(),
            gc_interval: Some(Duration::from_millis(100)),
            durability: Durability::Sync,
            fs: Arc::new(StdFs),
            segment_bytes: 64 << 20,
            checkpoint_bytes: 256 << 20,
            cache_size: None,
            isolation: Isolation::Snapshot,
            history_retention: Duration::ZERO,
            max_snapshot_age: None,
            change_retention: Duration::ZERO,
            value_log_threshold: DEFAULT_VALUE_LOG_THRESHOLD,
        }
    }
}

/// The largest budget [`Options::cache_size`] keeps.
const MAX_CACHE_SIZE: u64 = 1 << 62;

impl Options {
    /// The defaults: [`Durability::Sync`], the tree's default [`Config`], a
    /// background GC sweep at most every 100 ms, 64 MiB log segments and an
    /// automatic checkpoint every 256 MiB of log.
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
    /// are still collected by consolidation, and [`crate::Db::collect_garbage`]
    /// sweeps on demand). The sweeper backs off so that it uses at most
    /// about 5% of one core. An interval under a millisecond is taken as
    /// one millisecond.
    pub fn gc_interval(mut self, interval: Option<Duration>) -> Self {
        self.gc_interval = interval;
        self
    }

    /// What an acknowledged commit survives (for [`Options::open`]).
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// Start a new log segment file once the current one reaches this size
    /// (page segments, with a page store, too; they hold at least 4 KiB).
    /// A log segment closes once past 1 GiB at most (a larger size is taken
    /// as 1 GiB; one batch of records may pass it): recovery reads each one
    /// whole, so this bounds an open's memory.
    pub fn segment_bytes(mut self, n: u64) -> Self {
        self.segment_bytes = n;
        self
    }

    /// Take a checkpoint in the background after this many bytes of log
    /// (0: only [`crate::Db::checkpoint`] and a clean close, see
    /// [`crate::Db`]'s "Closing"). The values the log's records
    /// reference in the value log (placed there at commit) count too: this
    /// bounds what recovery replays after a crash. A background checkpoint
    /// that fails (an I/O error) is tried again after this many bytes more,
    /// not at once: the replay after a crash grows by this much between
    /// tries until one succeeds.
    pub fn checkpoint_bytes(mut self, n: u64) -> Self {
        self.checkpoint_bytes = n;
        self
    }

    /// Page memory budget in bytes (default: unlimited, every page stays
    /// resident). With a budget, leaves may be written to page segments
    /// (`pages-*.seg`) in the database directory, dropped from memory and
    /// read back on access (`design/storage.md` §3-§5). Only for
    /// [`Options::open`]: [`Options::in_memory`] with a cache size fails with
    /// [`crate::Error::InvalidArgument`], since an in-memory database has no
    /// directory to page to (ignoring it silently would hide a
    /// misconfiguration). A background thread evicts whenever the pages pass
    /// the budget; past 1.25 x the budget, readers and committers evict too.
    /// The budget counts an estimate of page memory (nodes, arrays, blobs),
    /// not allocator overhead. A database with a cache size has incremental
    /// checkpoints: a checkpoint writes the leaves changed since the last
    /// one and a location table (`design/storage.md` §6), a clean close
    /// writes one, and an open reads that table and the log after it, never
    /// a page (leaves load on first access). Such a database keeps its page
    /// store when reopened without a cache size (then with no budget).
    ///
    /// A budget above 2^62 bytes (4 EiB) is taken as 2^62, so that the
    /// arithmetic on it (the help threshold at 1.25 x, the evictor's
    /// targets) cannot overflow.
    pub fn cache_size(mut self, bytes: u64) -> Self {
        self.cache_size = Some(bytes.min(MAX_CACHE_SIZE));
        self
    }

    /// The isolation level of transactions begun with [`crate::Db::begin`],
    /// [`crate::Db::transaction`] and [`crate::Db::try_transaction`]
    /// (default [`Isolation::Snapshot`]); [`crate::Db::begin_with`] chooses
    /// per transaction.
    pub fn isolation(mut self, level: Isolation) -> Self {
        self.isolation = level;
        self
    }

    /// Keep history for time travel ([`crate::Db::snapshot_at`]): every
    /// version that was the newest of its key at some moment in the last
    /// `retention` stays readable, and garbage collection drops only older
    /// ones. The default is zero: only open snapshots hold versions. The
    /// window is kept in memory and in page images, and survives a clean
    /// close, a crash and checkpoints: without a page store, the newest
    /// checkpoint older than the window and the log after it are kept, and
    /// recovery replays from there; a paged database restarts from its
    /// location table, whose images hold the window's versions. Without
    /// retention, history after a restart starts at the checkpoint
    /// recovered from.
    pub fn history_retention(mut self, retention: Duration) -> Self {
        self.history_retention = retention;
        self
    }

    /// Stop a forgotten snapshot from holding back garbage collection: a
    /// snapshot (or transaction) older than `age` no longer keeps its
    /// versions, and its reads, and the commit of a transaction that
    /// writes, fail with [`crate::Error::SnapshotTooOld`] once collection
    /// has passed it, rather than letting memory grow without bound (a
    /// conflict found first is reported as [`crate::Error::Conflict`]; a
    /// transaction that wrote nothing commits, each of its reads having
    /// been checked when it ran); [`crate::Db::snapshot_at`] a timestamp
    /// committed longer ago than `age` is refused so, unless
    /// [`Options::history_retention`] still keeps it (then it reads until
    /// the retention window moves past it). Default: no limit.
    ///
    /// An expired snapshot still keeps the history of the exact counts
    /// (16 bytes per commit that changes a keyspace's count), so that its
    /// [`crate::Snapshot::len`] stays exact: drop snapshots you are done
    /// with.
    pub fn max_snapshot_age(mut self, age: Duration) -> Self {
        self.max_snapshot_age = Some(age);
        self
    }

    /// Keep committed changes for the change stream
    /// ([`crate::Db::changes_since`]) at least this long: checkpoints keep
    /// the log segments that hold commits made within the window (they are
    /// the stream: nothing is written twice). The default is zero: the
    /// stream reaches back to the last checkpoint. After a reopen, commits of
    /// earlier runs are kept until the database has been open for the whole
    /// window (their commit times are not recorded).
    pub fn change_retention(mut self, retention: Duration) -> Self {
        self.change_retention = retention;
        self
    }

    /// The file system the log and checkpoints use (default: the real one,
    /// [`StdFs`]); tests pass a `FaultFs` (feature `fault-injection`).
    pub fn file_system(mut self, fs: Arc<dyn Fs>) -> Self {
        self.fs = fs;
        self
    }

    /// Values longer than `bytes` go to the value log (`vlog-*.seg` in the
    /// database directory) of a database with a page store
    /// ([`Options::cache_size`]): at commit when its log is buffered
    /// ([`Durability::Buffered`]; the log record then holds a 12-byte
    /// reference, `design/storage.md` §10.1), else when their page is
    /// flushed; page images hold references too, so
    /// a rewritten page does not rewrite its large values, which are written
    /// once (`design/storage.md` §10). Default: 1 KiB. `u64::MAX` turns the
    /// value log off for new writes (values already in it stay readable).
    /// Values of at most 256 bytes always stay in the log record and the
    /// page, whatever the threshold. Without a page store it has no effect.
    pub fn value_log_threshold(mut self, bytes: u64) -> Self {
        self.value_log_threshold = bytes;
        self
    }
}

/// The default [`Options::value_log_threshold`]: values longer than 1 KiB go
/// to the value log.
pub(crate) const DEFAULT_VALUE_LOG_THRESHOLD: u64 = 1 << 10;
