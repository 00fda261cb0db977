//! The crate's one error type.

/// Errors returned by bwtx.
///
/// The enum is `#[non_exhaustive]`, so that a release can add variants
/// without breaking matches that end in `_ =>`. Use [`Error::is_conflict`]
/// to decide whether retrying a transaction may help;
/// [`source`](std::error::Error::source)
/// (from `std::error::Error`) gives the underlying I/O error where there is
/// one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key longer than [`crate::tree::MAX_KEY_LEN`].
    #[error("key of {len} bytes exceeds the limit of {max} bytes")]
    KeyTooLarge {
        /// Length of the rejected key.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value longer than [`crate::tree::MAX_VALUE_LEN`].
    #[error("value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge {
        /// Length of the rejected value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An operation lost its compare-and-swap more times than the retry bound
    /// allows. Nothing was changed; the caller may retry.
    #[error("operation gave up after {attempts} lost compare-and-swap attempts")]
    Contention {
        /// How many attempts were made.
        attempts: u32,
    },
    /// An argument is outside its domain (for example timestamp 0).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A configuration value is out of its allowed range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// An operating-system I/O operation failed (for example starting the
    /// background garbage-collection thread). On the real file system
    /// (`bwtx::fs::StdFs`) its message names the operation and the file,
    /// e.g. `fdatasync /data/db/wal-000007: Input/output error (os error 5)`,
    /// its kind is the operating system's, and the operating system's error
    /// is its source (its `raw_os_error()` is there: the wrapped error's is
    /// `None`).
    #[error("I/O error: {0}")]
    Io(#[source] std::io::Error),
    /// A write or sync of the log, the page store or the value log failed
    /// (or panicked) earlier: the database refuses commits until it is
    /// reopened (an fsync is never retried: after a failed one, the kernel
    /// may have dropped the data it was to make durable). Commits
    /// acknowledged before the failure are durable. [`crate::Db::poison_cause`]
    /// says what failed.
    ///
    /// A commit that returns this error (or [`Error::Io`]) after it began
    /// has an unknown outcome: its writes may be visible to this handle's
    /// later snapshots, and may or may not survive the reopen (recovery keeps
    /// each commit whole or drops it whole).
    #[error("the database is poisoned by an earlier I/O failure; reopen it")]
    Poisoned,
    /// The database directory is open already (in this process or another).
    #[error("database directory {} is locked by another handle or process", path.display())]
    Locked {
        /// The directory.
        path: std::path::PathBuf,
    },
    /// A log segment or checkpoint is damaged (other than a torn tail at the
    /// very end of the log, which recovery truncates and counts).
    #[error("corruption in {} at offset {offset}: {reason}", file.display())]
    Corruption {
        /// The damaged file.
        file: std::path::PathBuf,
        /// Byte offset of the first damage found.
        offset: u64,
        /// What is wrong there.
        reason: &'static str,
    },
    /// No keyspace of this name exists (`crate::Db::drop_keyspace`), or a
    /// [`crate::Keyspace`] handle was used by a transaction or snapshot that
    /// began after the keyspace was dropped, or by a commit after the drop.
    #[error("keyspace {name:?} does not exist")]
    KeyspaceNotFound {
        /// The keyspace's name.
        name: String,
    },
    /// A snapshot cannot be read as of `requested`: garbage collection may
    /// already have dropped versions it would see. Returned by
    /// [`crate::Db::snapshot_at`] for a timestamp below what
    /// [`crate::Options::history_retention`] and the open snapshots keep (or,
    /// outside the retention window, older than
    /// [`crate::Options::max_snapshot_age`]), and by the reads and the commit
    /// of a snapshot or transaction older than that age once garbage
    /// collection passed it. Never a wrong answer instead.
    ///
    /// Also: [`crate::Db::changes_since`] (and a change stream reading on)
    /// for a position the log no longer reaches back to, and
    /// [`crate::Snapshot::len_in`] for a named keyspace at a timestamp before
    /// the database's last open, which it can read but not count. `oldest`
    /// is then where the stream can start, or the oldest timestamp the
    /// count knows.
    #[error("ts {requested} is too old: the oldest timestamp available is {oldest}")]
    SnapshotTooOld {
        /// The snapshot timestamp asked for.
        requested: u64,
        /// The oldest timestamp readable when the error was found (a snapshot
        /// at or above it may still be refused later, as the horizon moves).
        oldest: u64,
    },
    /// The transaction lost a race and was refused at commit; nothing was
    /// installed, and running it again on a fresh snapshot may succeed.
    /// `reason` says which kind:
    ///
    /// - [`ConflictReason::Write`] (both levels; first committer wins): a
    ///   transaction that committed at `winner`, after this one's snapshot at
    ///   `snapshot` was taken, wrote `key`, which this one writes too.
    /// - [`ConflictReason::Read`] ([`crate::Isolation::Serializable`]): the
    ///   commit at `winner` wrote `key`, which this transaction read (found
    ///   or absent) at `snapshot`.
    /// - [`ConflictReason::Range`] ([`crate::Isolation::Serializable`]): the
    ///   commit at `winner` wrote `key` (an insert, update or delete) inside
    ///   a range this transaction scanned.
    /// - [`ConflictReason::Count`] ([`crate::Isolation::Serializable`]): the
    ///   commits after `snapshot` changed the number of keys this
    ///   transaction counted; `winner` is the last of them, `key` is empty.
    #[error("{reason} on key {key:?}: committed at ts {winner}, after this transaction's snapshot at ts {snapshot}")]
    Conflict {
        /// The key found written by the winner (for a write conflict, the
        /// first in key order).
        key: bytes::Bytes,
        /// Commit timestamp of the transaction that won.
        winner: u64,
        /// This transaction's snapshot (start) timestamp.
        snapshot: u64,
        /// What this transaction did with `key`: wrote it, read it, or
        /// scanned a range holding it (or counted keys). Boxed, so that a range's bounds do
        /// not make every `Result` of the crate larger.
        reason: Box<ConflictReason>,
    },
}

/// Why a commit was refused with [`Error::Conflict`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictReason {
    /// Write-write: both transactions wrote the key (first committer wins).
    Write,
    /// A serializable transaction read the key (found or absent) and another
    /// wrote it after the reader's snapshot and committed first.
    Read,
    /// A serializable transaction scanned the range `start..end` and another
    /// wrote the key inside it (a phantom insert counts, a delete counts)
    /// after the scanner's snapshot and committed first. The range holds
    /// what the scans consumed: an iterator dropped early records only the
    /// part it yielded, and the ranges are joined where they overlap or
    /// touch before commit validates them, so it may span several scans
    /// (a count is not a scan: see [`ConflictReason::Count`]).
    Range {
        /// The range's start bound.
        start: std::ops::Bound<bytes::Bytes>,
        /// The range's end bound.
        end: std::ops::Bound<bytes::Bytes>,
    },
    /// A serializable transaction counted a keyspace's keys
    /// (`Transaction::len`, `Transaction::len_in`), and the commits after
    /// its snapshot and before its own changed that count: the conflict's
    /// `key` is empty and its `winner` the last commit that changed it.
    /// Updates, and inserts and deletes that cancel out, leave the count
    /// as it was and refuse nothing.
    Count {
        /// The count at the transaction's snapshot (without its own
        /// writes).
        counted: u64,
        /// The count just below the transaction's commit timestamp.
        now: u64,
    },
}

impl std::fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::ops::Bound::*;
        match self {
            ConflictReason::Write => write!(f, "write-write conflict"),
            ConflictReason::Read => write!(f, "read-write conflict (serializable: a key read was written)"),
            ConflictReason::Range { start, end } => {
                write!(f, "range conflict (serializable: a write inside the scanned range ")?;
                match start {
                    Included(s) => write!(f, "[{s:?}")?,
                    Excluded(s) => write!(f, "({s:?}")?,
                    Unbounded => write!(f, "(-inf")?,
                }
                match end {
                    Included(e) => write!(f, ", {e:?}])"),
                    Excluded(e) => write!(f, ", {e:?}))"),
                    Unbounded => write!(f, ", +inf))"),
                }
            }
            ConflictReason::Count { counted, now } => write!(
                f,
                "count conflict (serializable: {counted} keys counted at the snapshot, {now} at the commit)"
            ),
        }
    }
}

impl Error {
    /// True for [`Error::Conflict`]: the transaction lost a race and may be
    /// retried (see [`crate::Db::transaction`], which does so).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
