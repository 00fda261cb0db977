//! The list-append data model: operations, micro-operations, histories.

use std::fmt;

/// How an operation completed (Elle's `:ok`, `:fail`, `:info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Committed: its appends happened and its reads are filled in.
    Ok,
    /// Definitely aborted: none of its appends may ever be visible.
    Fail,
    /// Indeterminate: it may or may not have committed.
    Info,
}

impl OpKind {
    /// The Elle name: `"ok"`, `"fail"` or `"info"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Ok => "ok",
            OpKind::Fail => "fail",
            OpKind::Info => "info",
        }
    }
}

/// One micro-operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mop {
    /// Append `value` (unique in the history) to the list under `key`.
    Append(u64, u64),
    /// Read the whole list under `key`. `None` until observed (and for
    /// operations that did not commit); `Some(vec![])` is an empty or absent list.
    Read(u64, Option<Vec<u64>>),
}

impl Mop {
    /// The key this micro-operation touches.
    pub fn key(&self) -> u64 {
        match self {
            Mop::Append(k, _) | Mop::Read(k, _) => *k,
        }
    }
}

impl fmt::Display for Mop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mop::Append(k, v) => write!(f, "append {k} {v}"),
            Mop::Read(k, None) => write!(f, "r {k} ?"),
            Mop::Read(k, Some(l)) => write!(f, "r {k} {}", ShortList(l)),
        }
    }
}

/// One completed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    /// The logical client (one thread at a time; a thread whose operation
    /// ended `Info` continues as a new process, as in Elle).
    pub process: u64,
    /// How it completed.
    pub kind: OpKind,
    /// Its micro-operations, in program order.
    pub txn: Vec<Mop>,
    /// The snapshot timestamp the database reported, if known.
    pub snapshot_ts: Option<u64>,
    /// The commit timestamp the database reported (for a read-only
    /// transaction the API reports its snapshot timestamp), if known.
    pub commit_ts: Option<u64>,
    /// Logical time of the invocation (a global event counter), if known.
    pub invoked_at: Option<u64>,
    /// Logical time of the completion, on the same clock as `invoked_at`.
    pub completed_at: Option<u64>,
}

impl Op {
    /// An operation with no timestamps or times.
    pub fn new(process: u64, kind: OpKind, txn: Vec<Mop>) -> Op {
        Op {
            process,
            kind,
            txn,
            snapshot_ts: None,
            commit_ts: None,
            invoked_at: None,
            completed_at: None,
        }
    }

    /// Set the database timestamps (builder style).
    pub fn with_ts(mut self, snapshot_ts: u64, commit_ts: u64) -> Op {
        self.snapshot_ts = Some(snapshot_ts);
        self.commit_ts = Some(commit_ts);
        self
    }

    /// Set the logical invocation and completion times (builder style).
    pub fn with_times(mut self, invoked_at: u64, completed_at: u64) -> Op {
        self.invoked_at = Some(invoked_at);
        self.completed_at = Some(completed_at);
        self
    }

    /// True if the transaction appends anything.
    pub fn writes(&self) -> bool {
        self.txn.iter().any(|m| matches!(m, Mop::Append(..)))
    }

    /// The values this transaction appends to `key`, in program order.
    pub fn appends_to(&self, key: u64) -> impl Iterator<Item = u64> + '_ {
        self.txn.iter().filter_map(move |m| match m {
            Mop::Append(k, v) if *k == key => Some(*v),
            _ => None,
        })
    }

    /// The same transaction as it was invoked: every read's value unknown.
    pub fn invocation(&self) -> Vec<Mop> {
        self.txn
            .iter()
            .map(|m| match m {
                Mop::Read(k, _) => Mop::Read(*k, None),
                a => a.clone(),
            })
            .collect()
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} process {} [", self.kind.as_str(), self.process)?;
        for (i, m) in self.txn.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("]")?;
        if let Some(s) = self.snapshot_ts {
            write!(f, " snapshot {s}")?;
        }
        if let Some(c) = self.commit_ts {
            write!(f, " commit {c}")?;
        }
        Ok(())
    }
}

/// A history: completed operations, in completion order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct History {
    /// The operations. An operation's index here is its name in reports.
    pub ops: Vec<Op>,
}

impl History {
    /// A history of `ops`.
    pub fn new(ops: Vec<Op>) -> History {
        History { ops }
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True if there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Count of operations of each kind: `(ok, fail, info)`.
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |k| self.ops.iter().filter(|o| o.kind == k).count();
        (n(OpKind::Ok), n(OpKind::Fail), n(OpKind::Info))
    }
}

impl From<Vec<Op>> for History {
    fn from(ops: Vec<Op>) -> History {
        History { ops }
    }
}

/// Displays a list in full when short, else its ends and length.
pub(crate) struct ShortList<'a>(pub(crate) &'a [u64]);

impl fmt::Display for ShortList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.0;
        let show = |f: &mut fmt::Formatter<'_>, s: &[u64]| {
            for (i, v) in s.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        };
        f.write_str("[")?;
        if l.len() <= 12 {
            show(f, l)?;
        } else {
            show(f, &l[..4])?;
            write!(f, " ...({} more)... ", l.len() - 8)?;
            show(f, &l[l.len() - 4..])?;
        }
        f.write_str("]")
    }
}
