//! What the checker reports: the operations, dependencies and cycle kinds it
//! names, and [`Anomaly`], one thing found wrong with a history.

use std::fmt;

use crate::history::model::ShortList;

/// An operation named in a report: its index in [`History::ops`](crate::history::History::ops) and its process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpId {
    /// Index in the history.
    pub index: usize,
    /// The operation's process.
    pub process: u64,
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op #{} (process {})", self.index, self.process)
    }
}

/// A dependency between two committed transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dep {
    /// Write-write: the second installed the next version of the key.
    WW,
    /// Write-read: the second read the version the first installed.
    WR,
    /// Read-write (anti-dependency): the first read a version older than
    /// the one the second installed.
    RW,
}

impl fmt::Display for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dep::WW => "ww",
            Dep::WR => "wr",
            Dep::RW => "rw",
        })
    }
}

/// One edge of a reported cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Source transaction.
    pub from: OpId,
    /// Kind of dependency.
    pub dep: Dep,
    /// The key that gave rise to it.
    pub key: u64,
    /// Target transaction.
    pub to: OpId,
}

/// The kinds of dependency cycles the checker reports: the first three are
/// forbidden under snapshot isolation, and under serializable every cycle is
/// (so [`CycleKind::G2`] is reported only by a serializability check).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CycleKind {
    /// Only `ww` edges (dirty write).
    G0,
    /// `ww` and `wr` edges, at least one `wr` (circular information flow).
    G1c,
    /// Exactly one `rw` edge (read skew and friends).
    GSingle,
    /// Two or more `rw` edges (write skew, anti-dependency cycles): allowed
    /// under snapshot isolation, an anomaly under serializable.
    G2,
}

impl fmt::Display for CycleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CycleKind::G0 => "G0",
            CycleKind::G1c => "G1c",
            CycleKind::GSingle => "G-single",
            CycleKind::G2 => "G2",
        })
    }
}

/// Why two committed appends to one key amount to a lost update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LostCause {
    /// Both read this same version of the key before appending to it.
    SameVersionRead(Vec<u64>),
    /// The second read the first `read_len` elements of the key, yet in the
    /// version order the first's append sits between that version and the
    /// second's own append.
    StaleBase {
        /// Length of the version the second read.
        read_len: usize,
    },
    /// Both appended to the key and both committed although neither's
    /// snapshot includes the other's commit (first committer wins is broken).
    ConcurrentCommits,
    /// The first committed `value` but the longest read of the key, by the
    /// second, lacks it although the timestamps say it must contain it.
    Missing {
        /// The vanished element.
        value: u64,
    },
}

/// One anomaly found in a history.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Anomaly {
    /// The history is malformed: one value appended to a key twice.
    DuplicateAppend {
        /// Key.
        key: u64,
        /// Value appended twice.
        value: u64,
        /// First appender.
        first: OpId,
        /// Second appender.
        second: OpId,
    },
    /// A read contains the same element twice.
    DuplicateElements {
        /// The reader.
        op: OpId,
        /// Key read.
        key: u64,
        /// The repeated value.
        value: u64,
    },
    /// A read contains a value nobody appended.
    UnknownValue {
        /// The reader.
        op: OpId,
        /// Key read.
        key: u64,
        /// The unexplained value.
        value: u64,
    },
    /// G1a: a committed read saw a value appended by an aborted transaction.
    AbortedRead {
        /// The reader.
        op: OpId,
        /// Key read.
        key: u64,
        /// The aborted value.
        value: u64,
        /// The failed appender.
        writer: OpId,
    },
    /// G1b: a read saw a transaction's append to a key but not its later
    /// append to the same key.
    IntermediateRead {
        /// The reader.
        op: OpId,
        /// Key read.
        key: u64,
        /// The writer whose intermediate state was seen.
        writer: OpId,
        /// Last of the writer's values seen.
        seen: u64,
        /// The writer's next value, missing from the read.
        missing: u64,
    },
    /// A read shows a transaction's appends to a key out of order, split by
    /// other transactions' appends, or with earlier ones missing.
    GarbledAppends {
        /// The reader.
        op: OpId,
        /// Key read.
        key: u64,
        /// The writer.
        writer: OpId,
    },
    /// A transaction's read disagrees with its own earlier reads and appends.
    Internal {
        /// The transaction.
        op: OpId,
        /// Key read.
        key: u64,
        /// What it should have read (if `suffix`, what the read should end with).
        expected: Vec<u64>,
        /// What it read.
        actual: Vec<u64>,
        /// Whether `expected` is only a required suffix.
        suffix: bool,
    },
    /// Two reads of a key where neither is a prefix of the other.
    IncompatibleOrder {
        /// Key read.
        key: u64,
        /// A reader.
        a: OpId,
        /// The reader of the longest list of the key.
        b: OpId,
        /// The first position where they differ.
        position: usize,
    },
    /// Two committed transactions appended to a key that one of them should
    /// have seen the other write.
    LostUpdate {
        /// Key.
        key: u64,
        /// First transaction.
        first: OpId,
        /// Second transaction.
        second: OpId,
        /// The evidence.
        cause: LostCause,
    },
    /// A dependency cycle forbidden under the isolation level checked.
    Cycle {
        /// Which kind.
        kind: CycleKind,
        /// The edges, each ending where the next begins; the last ends at the first's start.
        steps: Vec<Step>,
    },
    /// A read is not the state the recorded snapshot timestamp names: the
    /// appends of commits `<= snapshot` in commit order, then the
    /// transaction's own earlier appends (fractured or stale read).
    SnapshotRead {
        /// The reader.
        op: OpId,
        /// Key read.
        key: u64,
        /// Its snapshot timestamp.
        snapshot: u64,
        /// The list that snapshot should give.
        expected: Vec<u64>,
        /// The list read.
        actual: Vec<u64>,
    },
    /// An operation invoked after another had completed has a snapshot
    /// older than that one's commit: a commit returned before it was visible.
    StaleSnapshot {
        /// The late operation.
        op: OpId,
        /// The commit it missed.
        missed: OpId,
        /// `op`'s snapshot timestamp.
        snapshot: u64,
        /// `missed`'s commit timestamp.
        commit: u64,
    },
    /// Two committed writers reported the same commit timestamp.
    DuplicateCommitTs {
        /// The timestamp.
        ts: u64,
        /// First writer.
        first: OpId,
        /// Second writer.
        second: OpId,
    },
    /// A committed writer's commit timestamp is not above its snapshot.
    CommitBeforeSnapshot {
        /// The writer.
        op: OpId,
        /// Its snapshot timestamp.
        snapshot: u64,
        /// Its commit timestamp.
        commit: u64,
    },
}

impl Anomaly {
    /// A short name for the kind of anomaly (`"G1a"`, `"lost-update"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Anomaly::DuplicateAppend { .. } => "duplicate-append",
            Anomaly::DuplicateElements { .. } => "duplicate-elements",
            Anomaly::UnknownValue { .. } => "unknown-value",
            Anomaly::AbortedRead { .. } => "G1a",
            Anomaly::IntermediateRead { .. } => "G1b",
            Anomaly::GarbledAppends { .. } => "garbled-appends",
            Anomaly::Internal { .. } => "internal",
            Anomaly::IncompatibleOrder { .. } => "incompatible-order",
            Anomaly::LostUpdate { .. } => "lost-update",
            Anomaly::Cycle {
                kind: CycleKind::G0, ..
            } => "G0",
            Anomaly::Cycle {
                kind: CycleKind::G1c, ..
            } => "G1c",
            Anomaly::Cycle {
                kind: CycleKind::GSingle,
                ..
            } => "G-single",
            Anomaly::Cycle {
                kind: CycleKind::G2, ..
            } => "G2",
            Anomaly::SnapshotRead { .. } => "snapshot-read",
            Anomaly::StaleSnapshot { .. } => "stale-snapshot",
            Anomaly::DuplicateCommitTs { .. } => "duplicate-commit-ts",
            Anomaly::CommitBeforeSnapshot { .. } => "commit-before-snapshot",
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.name())?;
        match self {
            Anomaly::DuplicateAppend {
                key,
                value,
                first,
                second,
            } => write!(f, "{first} and {second} both append {value} to key {key}"),
            Anomaly::DuplicateElements { op, key, value } => {
                write!(f, "{op} read key {key} containing {value} more than once")
            }
            Anomaly::UnknownValue { op, key, value } => {
                write!(f, "{op} read {value} in key {key}, which no operation appended")
            }
            Anomaly::AbortedRead { op, key, value, writer } => write!(
                f,
                "{op} read {value} in key {key}, appended by the failed (aborted) {writer}"
            ),
            Anomaly::IntermediateRead {
                op,
                key,
                writer,
                seen,
                missing,
            } => write!(
                f,
                "{op} read key {key} with {writer}'s append of {seen} but not its later append of {missing}"
            ),
            Anomaly::GarbledAppends { op, key, writer } => write!(
                f,
                "{op} read key {key} with {writer}'s appends out of order, split, or missing earlier ones"
            ),
            Anomaly::Internal {
                op,
                key,
                expected,
                actual,
                suffix,
            } => {
                let what = if *suffix { "a list ending in" } else { "" };
                write!(
                    f,
                    "{op} read key {key} as {}, but its own earlier reads and appends imply {what}{}",
                    ShortList(actual),
                    ShortList(expected)
                )
            }
            Anomaly::IncompatibleOrder { key, a, b, position } => write!(
                f,
                "{a}'s read of key {key} is not a prefix of {b}'s (they differ at position {position})"
            ),
            Anomaly::LostUpdate {
                key,
                first,
                second,
                cause,
            } => match cause {
                LostCause::SameVersionRead(v) => write!(
                    f,
                    "{first} and {second} both read key {key} = {} and both appended to it and committed",
                    ShortList(v)
                ),
                LostCause::StaleBase { read_len } => write!(
                    f,
                    "{second} read {read_len} elements of key {key} and appended, but {first}'s append \
                     sits between that version and {second}'s in the version order"
                ),
                LostCause::ConcurrentCommits => write!(
                    f,
                    "{first} and {second} both appended to key {key} and committed, yet {second}'s snapshot \
                     precedes {first}'s commit (first committer wins violated)"
                ),
                LostCause::Missing { value } => write!(
                    f,
                    "{first} committed the append of {value} to key {key}, but {second}'s read of the \
                     longest list of key {key} lacks it although it must contain it"
                ),
            },
            Anomaly::Cycle { kind, steps } => {
                write!(f, "{kind} cycle: ")?;
                for (i, s) in steps.iter().enumerate() {
                    if i == 0 {
                        write!(f, "{}", s.from)?;
                    }
                    write!(f, " -{}(key {})-> {}", s.dep, s.key, s.to)?;
                }
                Ok(())
            }
            Anomaly::SnapshotRead {
                op,
                key,
                snapshot,
                expected,
                actual,
            } => {
                let at = expected.iter().zip(actual).take_while(|(a, b)| a == b).count();
                write!(
                    f,
                    "{op} read key {key} = {} at snapshot {snapshot}, but commits <= {snapshot} plus its own \
                     appends give {} (first difference at position {at})",
                    ShortList(actual),
                    ShortList(expected)
                )
            }
            Anomaly::StaleSnapshot {
                op,
                missed,
                snapshot,
                commit,
            } => write!(
                f,
                "{op} was invoked after {missed} returned commit ts {commit}, but its snapshot is {snapshot}"
            ),
            Anomaly::DuplicateCommitTs { ts, first, second } => {
                write!(f, "{first} and {second} both committed writes at ts {ts}")
            }
            Anomaly::CommitBeforeSnapshot { op, snapshot, commit } => {
                write!(
                    f,
                    "{op} committed writes at ts {commit}, not above its snapshot {snapshot}"
                )
            }
        }
    }
}
