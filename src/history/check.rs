//! The checker: finds snapshot-isolation anomalies in a list-append history.
//!
//! Two independent lines of evidence are used.
//!
//! 1. **Elle's inference** (no timestamps needed). Every list only grows by
//!    appends of unique values, so each read names its writers and the longest
//!    read of a key gives that key's version order. From it come the direct
//!    checks (duplicates, aborted and intermediate reads, incompatible orders,
//!    lost updates) and a dependency graph between committed transactions:
//!    `ww` (next version), `wr` (read the version) and `rw` (read the version
//!    before another's write). Under snapshot isolation the graph has no cycle
//!    made of `ww` edges only (G0), of `ww`/`wr` edges (G1c), or with exactly
//!    one `rw` edge (G-single); cycles with two or more `rw` edges (write
//!    skew, G2) are allowed.
//! 2. **The recorded timestamps**. A read of `k` at snapshot `s` must equal
//!    the appends to `k` by committed transactions with commit timestamp
//!    `<= s`, in commit order, followed by the transaction's own earlier
//!    appends; committed writers of one key must not overlap (first committer
//!    wins); and an operation invoked after another completed must have a
//!    snapshot at least that one's commit timestamp.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;

use super::model::{History, Mop, Op, OpKind, ShortList};

/// An operation named in a report: its index in [`History::ops`] and its process.
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

/// The kinds of dependency cycles snapshot isolation forbids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CycleKind {
    /// Only `ww` edges (dirty write).
    G0,
    /// `ww` and `wr` edges, at least one `wr` (circular information flow).
    G1c,
    /// Exactly one `rw` edge (read skew and friends).
    GSingle,
}

impl fmt::Display for CycleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CycleKind::G0 => "G0",
            CycleKind::G1c => "G1c",
            CycleKind::GSingle => "G-single",
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
    /// A dependency cycle forbidden under snapshot isolation.
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

/// What the checker looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Operations in the history.
    pub ops: usize,
    /// Committed operations.
    pub ok: usize,
    /// Aborted operations.
    pub fail: usize,
    /// Indeterminate operations.
    pub info: usize,
    /// Reads of committed operations checked.
    pub reads: usize,
    /// Appends (all operations).
    pub appends: usize,
    /// Distinct keys.
    pub keys: usize,
    /// Length of the longest read.
    pub longest_read: usize,
    /// `ww` edges in the dependency graph.
    pub ww_edges: usize,
    /// `wr` edges.
    pub wr_edges: usize,
    /// `rw` edges.
    pub rw_edges: usize,
    /// Strongly connected components whose cycles all have two or more
    /// `rw` edges: write skew (G2), allowed under snapshot isolation.
    pub g2_components: usize,
    /// Reads checked against their snapshot timestamp.
    pub snapshot_reads_checked: usize,
    /// Keys whose reads could not be checked against timestamps (a writer
    /// without a commit timestamp).
    pub snapshot_keys_skipped: usize,
    /// Failed writers for which no committed writer of a common key
    /// committed after their snapshot (aborts with no visible cause; not an
    /// isolation anomaly).
    pub unexplained_fails: usize,
}

/// The checker's verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// True if no anomaly was found.
    pub ok: bool,
    /// Everything found.
    pub anomalies: Vec<Anomaly>,
    /// What was looked at.
    pub stats: CheckStats,
}

impl Report {
    /// Number of anomalies of each kind, by [`Anomaly::name`].
    pub fn kinds(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for a in &self.anomalies {
            *m.entry(a.name()).or_insert(0) += 1;
        }
        m
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        writeln!(
            f,
            "{}: {} ops ({} ok, {} fail, {} info), {} reads, {} appends, {} keys; edges ww {} wr {} rw {}; \
             {} G2 components; {} reads checked against snapshots",
            if self.ok { "valid" } else { "INVALID" },
            s.ops,
            s.ok,
            s.fail,
            s.info,
            s.reads,
            s.appends,
            s.keys,
            s.ww_edges,
            s.wr_edges,
            s.rw_edges,
            s.g2_components,
            s.snapshot_reads_checked
        )?;
        if !self.ok {
            writeln!(f, "{} anomalies {:?}:", self.anomalies.len(), self.kinds())?;
            for a in self.anomalies.iter().take(50) {
                writeln!(f, "  {a}")?;
            }
            if self.anomalies.len() > 50 {
                writeln!(f, "  ...")?;
            }
        }
        Ok(())
    }
}

/// Check `history` for snapshot-isolation anomalies.
pub fn check(history: &History) -> Report {
    Checker::new(history).run()
}

struct Edge {
    from: usize,
    to: usize,
    dep: Dep,
    key: u64,
}

struct Checker<'h> {
    ops: &'h [Op],
    found: Vec<Anomaly>,
    stats: CheckStats,
    /// (key, value) -> appending op.
    writer: HashMap<(u64, u64), usize>,
    /// Per op: key -> its appends to that key, in order.
    appends: Vec<HashMap<u64, Vec<u64>>>,
    /// key -> ops that append to it, in history order.
    appenders: HashMap<u64, Vec<usize>>,
    /// key -> reads of committed ops: (op, mop index).
    reads: BTreeMap<u64, Vec<(usize, usize)>>,
    /// key -> (reader, longest list read), for keys whose reads agree.
    longest: BTreeMap<u64, (usize, &'h [u64])>,
    edges: Vec<Edge>,
    edge_set: HashSet<(usize, usize, Dep)>,
}

impl<'h> Checker<'h> {
    fn new(h: &'h History) -> Self {
        Checker {
            ops: &h.ops,
            found: Vec::new(),
            stats: CheckStats::default(),
            writer: HashMap::new(),
            appends: Vec::new(),
            appenders: HashMap::new(),
            reads: BTreeMap::new(),
            longest: BTreeMap::new(),
            edges: Vec::new(),
            edge_set: HashSet::new(),
        }
    }

    fn id(&self, i: usize) -> OpId {
        OpId {
            index: i,
            process: self.ops[i].process,
        }
    }

    fn list(&self, (op, m): (usize, usize)) -> &'h [u64] {
        match &self.ops[op].txn[m] {
            Mop::Read(_, Some(l)) => l,
            _ => &[],
        }
    }

    fn ok(&self, i: usize) -> bool {
        self.ops[i].kind == OpKind::Ok
    }

    fn run(mut self) -> Report {
        self.index();
        self.per_read();
        self.version_orders();
        self.lost_updates();
        self.graph();
        self.cycles();
        self.timestamps();
        Report {
            ok: self.found.is_empty(),
            anomalies: self.found,
            stats: self.stats,
        }
    }

    /// Writers of every value, appends per op, reads per key, counts.
    fn index(&mut self) {
        let ops = self.ops;
        let mut keys = HashSet::new();
        self.stats.ops = ops.len();
        for (i, op) in ops.iter().enumerate() {
            match op.kind {
                OpKind::Ok => self.stats.ok += 1,
                OpKind::Fail => self.stats.fail += 1,
                OpKind::Info => self.stats.info += 1,
            }
            let mut mine: HashMap<u64, Vec<u64>> = HashMap::new();
            for (m, mop) in op.txn.iter().enumerate() {
                keys.insert(mop.key());
                match mop {
                    Mop::Append(k, v) => {
                        self.stats.appends += 1;
                        mine.entry(*k).or_default().push(*v);
                        if let Some(&first) = self.writer.get(&(*k, *v)) {
                            self.found.push(Anomaly::DuplicateAppend {
                                key: *k,
                                value: *v,
                                first: self.id(first),
                                second: self.id(i),
                            });
                        } else {
                            self.writer.insert((*k, *v), i);
                        }
                    }
                    Mop::Read(k, Some(l)) if op.kind == OpKind::Ok => {
                        self.stats.reads += 1;
                        self.stats.longest_read = self.stats.longest_read.max(l.len());
                        self.reads.entry(*k).or_default().push((i, m));
                    }
                    Mop::Read(..) => {}
                }
            }
            for &k in mine.keys() {
                self.appenders.entry(k).or_default().push(i);
            }
            self.appends.push(mine);
        }
        self.stats.keys = keys.len();
    }

    /// Checks of single reads: duplicates, unknown and aborted values,
    /// intermediate and garbled writers, and internal consistency.
    fn per_read(&mut self) {
        let ops = self.ops;
        for (i, op) in ops.iter().enumerate() {
            if op.kind != OpKind::Ok {
                continue;
            }
            // key -> (what the txn knows the list to be, its own appends so far)
            let mut state: HashMap<u64, (Option<Vec<u64>>, Vec<u64>)> = HashMap::new();
            for mop in &op.txn {
                match mop {
                    Mop::Append(k, v) => {
                        let (known, own) = state.entry(*k).or_default();
                        own.push(*v);
                        if let Some(kn) = known {
                            kn.push(*v);
                        }
                    }
                    Mop::Read(_, None) => {}
                    Mop::Read(k, Some(l)) => {
                        self.read_contents(i, *k, l);
                        let (known, own) = state.entry(*k).or_default();
                        let bad = match known {
                            Some(kn) if kn != l => Some((kn.clone(), false)),
                            None if !l.ends_with(own) => Some((own.clone(), true)),
                            _ => None,
                        };
                        *known = Some(l.clone());
                        if let Some((expected, suffix)) = bad {
                            self.found.push(Anomaly::Internal {
                                op: self.id(i),
                                key: *k,
                                expected,
                                actual: l.clone(),
                                suffix,
                            });
                        }
                    }
                }
            }
        }
    }

    fn read_contents(&mut self, i: usize, k: u64, l: &[u64]) {
        let mut seen = HashSet::with_capacity(l.len());
        let mut dup_reported = false;
        // Runs of consecutive elements by the same writer: (writer, start, end).
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for (p, &v) in l.iter().enumerate() {
            if !seen.insert(v) && !dup_reported {
                dup_reported = true;
                self.found.push(Anomaly::DuplicateElements {
                    op: self.id(i),
                    key: k,
                    value: v,
                });
            }
            let Some(&w) = self.writer.get(&(k, v)) else {
                self.found.push(Anomaly::UnknownValue {
                    op: self.id(i),
                    key: k,
                    value: v,
                });
                continue;
            };
            if self.ops[w].kind == OpKind::Fail {
                self.found.push(Anomaly::AbortedRead {
                    op: self.id(i),
                    key: k,
                    value: v,
                    writer: self.id(w),
                });
                continue;
            }
            match runs.last_mut() {
                Some((rw, _, end)) if *rw == w && *end == p => *end = p + 1,
                _ => runs.push((w, p, p + 1)),
            }
        }
        let mut run_count: HashMap<usize, usize> = HashMap::new();
        for &(w, _, _) in &runs {
            *run_count.entry(w).or_default() += 1;
        }
        let mut reported = HashSet::new();
        for &(w, start, end) in &runs {
            if w == i || !reported.insert(w) {
                continue; // own appends: the internal check's business
            }
            let all = &self.appends[w][&k];
            let run = &l[start..end];
            if run_count[&w] == 1 && run == &all[..] {
                continue;
            }
            if run_count[&w] == 1 && all.starts_with(run) {
                self.found.push(Anomaly::IntermediateRead {
                    op: self.id(i),
                    key: k,
                    writer: self.id(w),
                    seen: run[run.len() - 1],
                    missing: all[run.len()],
                });
            } else {
                self.found.push(Anomaly::GarbledAppends {
                    op: self.id(i),
                    key: k,
                    writer: self.id(w),
                });
            }
        }
    }

    /// The longest read of each key; every other read must be its prefix.
    fn version_orders(&mut self) {
        let reads = std::mem::take(&mut self.reads);
        for (&k, rs) in &reads {
            let Some(&best) = rs.iter().max_by_key(|&&r| (self.list(r).len(), std::cmp::Reverse(r))) else {
                continue;
            };
            let long = self.list(best);
            let mut compatible = true;
            for &r in rs {
                let l = self.list(r);
                if !long.starts_with(l) {
                    compatible = false;
                    let position = l.iter().zip(long).take_while(|(a, b)| a == b).count();
                    self.found.push(Anomaly::IncompatibleOrder {
                        key: k,
                        a: self.id(r.0),
                        b: self.id(best.0),
                        position,
                    });
                }
            }
            if compatible {
                self.longest.insert(k, (best.0, long));
            }
        }
        self.reads = reads;
    }

    fn lost_updates(&mut self) {
        let ops = self.ops;
        // (a) Same version read before appending; stale base in the version order.
        let mut by_version: HashMap<(u64, &[u64]), Vec<usize>> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            if op.kind != OpKind::Ok {
                continue;
            }
            let mut first_touch: HashSet<u64> = HashSet::new();
            for mop in &op.txn {
                if !first_touch.insert(mop.key()) {
                    continue;
                }
                let Mop::Read(k, Some(p)) = mop else { continue };
                let Some(mine) = self.appends[i].get(k) else { continue };
                by_version.entry((*k, p.as_slice())).or_default().push(i);
                if let Some(&(_, long)) = self.longest.get(k) {
                    if let Some(q) = long.iter().position(|v| *v == mine[0]) {
                        let other = self.writer.get(&(*k, long[p.len().min(q)])).copied();
                        if let Some(other) = other.filter(|_| q > p.len() && long.starts_with(p)) {
                            self.found.push(Anomaly::LostUpdate {
                                key: *k,
                                first: self.id(other),
                                second: self.id(i),
                                cause: LostCause::StaleBase { read_len: p.len() },
                            });
                        }
                    }
                }
            }
        }
        let mut groups: Vec<_> = by_version.into_iter().filter(|(_, v)| v.len() > 1).collect();
        groups.sort();
        for ((k, p), txns) in groups {
            for &t in &txns[1..] {
                self.found.push(Anomaly::LostUpdate {
                    key: k,
                    first: self.id(txns[0]),
                    second: self.id(t),
                    cause: LostCause::SameVersionRead(p.to_vec()),
                });
            }
        }
        // (b) Overlapping committed writers of a key, by timestamps.
        for (k, ws) in self.writers_by_commit() {
            for pair in ws.windows(2) {
                let (u, t) = (pair[0], pair[1]);
                let (Some(uc), Some(ts)) = (ops[u].commit_ts, ops[t].snapshot_ts) else {
                    continue;
                };
                if ts < uc {
                    self.found.push(Anomaly::LostUpdate {
                        key: k,
                        first: self.id(u),
                        second: self.id(t),
                        cause: LostCause::ConcurrentCommits,
                    });
                }
            }
        }
        // (c) Committed appends missing from the longest read that must contain them.
        let longest: Vec<(u64, usize, &[u64])> = self.longest.iter().map(|(&k, &(r, l))| (k, r, l)).collect();
        for (k, reader, long) in longest {
            let present: HashSet<u64> = long.iter().copied().collect();
            let newest = long
                .iter()
                .filter_map(|v| self.writer.get(&(k, *v)))
                .filter(|&&w| self.ok(w))
                .filter_map(|&w| ops[w].commit_ts)
                .max();
            for &t in self.appenders.get(&k).map_or(&[][..], |v| &v[..]) {
                let op = &ops[t];
                if op.kind != OpKind::Ok || t == reader {
                    continue;
                }
                let Some(mine) = self.appends[t].get(&k) else { continue };
                let Some(&value) = mine.iter().find(|v| !present.contains(v)) else {
                    continue;
                };
                let Some(c) = op.commit_ts else { continue };
                let seen_by_reader = ops[reader].snapshot_ts.is_some_and(|s| c <= s);
                if seen_by_reader || newest.is_some_and(|n| n > c) {
                    self.found.push(Anomaly::LostUpdate {
                        key: k,
                        first: self.id(t),
                        second: self.id(reader),
                        cause: LostCause::Missing { value },
                    });
                }
            }
        }
    }

    /// key -> committed writers of it, in commit-timestamp order (those with one).
    fn writers_by_commit(&self) -> BTreeMap<u64, Vec<usize>> {
        let mut m: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, op) in self.ops.iter().enumerate() {
            if op.kind == OpKind::Ok && op.commit_ts.is_some() {
                for &k in self.appends[i].keys() {
                    m.entry(k).or_default().push(i);
                }
            }
        }
        for ws in m.values_mut() {
            ws.sort_by_key(|&w| (self.ops[w].commit_ts, w));
        }
        m
    }

    fn edge(&mut self, from: usize, to: usize, dep: Dep, key: u64) {
        if from != to && self.edge_set.insert((from, to, dep)) {
            match dep {
                Dep::WW => self.stats.ww_edges += 1,
                Dep::WR => self.stats.wr_edges += 1,
                Dep::RW => self.stats.rw_edges += 1,
            }
            self.edges.push(Edge { from, to, dep, key });
        }
    }

    /// The dependency graph from each key's version order.
    fn graph(&mut self) {
        let ops = self.ops;
        let longest: Vec<(u64, &[u64])> = self.longest.iter().map(|(&k, &(_, l))| (k, l)).collect();
        for (k, long) in longest {
            // Writer runs of the version order; run_of[p] = run index of position p.
            let mut runs: Vec<usize> = Vec::new();
            let mut run_of: Vec<Option<usize>> = Vec::with_capacity(long.len());
            for v in long {
                match self.writer.get(&(k, *v)) {
                    Some(&w) if ops[w].kind != OpKind::Fail => {
                        if runs.last() != Some(&w) {
                            runs.push(w);
                        }
                        run_of.push(Some(runs.len() - 1));
                    }
                    _ => run_of.push(None),
                }
            }
            for pair in runs.windows(2) {
                self.edge(pair[0], pair[1], Dep::WW, k);
            }
            // Committed appenders never observed: after every observed version.
            let present: HashSet<u64> = long.iter().copied().collect();
            let unseen: Vec<usize> = (self.appenders.get(&k).cloned().unwrap_or_default().into_iter())
                .filter(|&t| self.ok(t))
                .filter(|&t| {
                    self.appends[t]
                        .get(&k)
                        .is_some_and(|m| m.iter().any(|v| !present.contains(v)))
                })
                .collect();
            if let Some(&last) = runs.last() {
                for &u in &unseen {
                    self.edge(last, u, Dep::WW, k);
                }
            }
            for &(r, m) in &self.reads.get(&k).cloned().unwrap_or_default() {
                let l = self.list((r, m));
                // The version read: the list without the reader's own appends.
                let mut n = l.len();
                while n > 0 && self.writer.get(&(k, l[n - 1])) == Some(&r) {
                    n -= 1;
                }
                let run = if n == 0 {
                    None
                } else {
                    run_of.get(n - 1).copied().flatten()
                };
                if n > 0 && run.is_none() {
                    continue; // ends in an unknown or aborted value: reported already
                }
                if let Some(j) = run {
                    self.edge(runs[j], r, Dep::WR, k);
                }
                let next = run.map_or(0, |j| j + 1);
                if let Some(&w) = runs.get(next) {
                    if w != r {
                        self.edge(r, w, Dep::RW, k);
                    }
                } else {
                    for &u in &unseen {
                        self.edge(r, u, Dep::RW, k);
                    }
                }
            }
        }
    }

    fn cycles(&mut self) {
        let n = self.ops.len();
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (e, edge) in self.edges.iter().enumerate() {
            out[edge.from].push(e);
        }
        let succ = |allow: &dyn Fn(Dep) -> bool| -> Vec<Vec<usize>> {
            out.iter()
                .map(|es| {
                    es.iter()
                        .filter(|&&e| allow(self.edges[e].dep))
                        .map(|&e| self.edges[e].to)
                        .collect()
                })
                .collect()
        };
        let (full_comp, full) = tarjan(&succ(&|_| true));
        let (_, ww) = tarjan(&succ(&|d| d == Dep::WW));
        let (wwwr_comp, wwwr) = tarjan(&succ(&|d| d != Dep::RW));
        let mut forbidden_comps = HashSet::new();
        // G0: any ww-only cycle.
        for c in ww.iter().filter(|c| c.len() > 1) {
            let member: HashSet<usize> = c.iter().copied().collect();
            let allow = |e: &Edge| e.dep == Dep::WW && member.contains(&e.to);
            if let Some(cycle) = self.cycle_through(&out, c[0], &allow) {
                forbidden_comps.insert(full_comp[c[0]]);
                self.report_cycle(CycleKind::G0, cycle);
            }
        }
        // G1c: a ww/wr cycle through a wr edge.
        for (ci, c) in wwwr.iter().enumerate().filter(|(_, c)| c.len() > 1) {
            let member: HashSet<usize> = c.iter().copied().collect();
            let wr = c.iter().flat_map(|&v| &out[v]).copied().find(|&e| {
                let e = &self.edges[e];
                e.dep == Dep::WR && wwwr_comp[e.to] == ci
            });
            let Some(wr) = wr else { continue };
            let (from, to) = (self.edges[wr].from, self.edges[wr].to);
            let allow = |e: &Edge| e.dep != Dep::RW && member.contains(&e.to);
            if let Some(mut path) = self.path(&out, to, from, &allow) {
                path.insert(0, wr);
                forbidden_comps.insert(full_comp[from]);
                self.report_cycle(CycleKind::G1c, path);
            }
        }
        // G-single: an rw edge u -> v closed by a ww/wr path v ~> u. Tarjan emits
        // components in reverse topological order, so a path v ~> u needs
        // wwwr_comp[v] >= wwwr_comp[u]; the search stays in that band.
        let mut single_comps = HashSet::new();
        for e in 0..self.edges.len() {
            let Edge {
                from: u, to: v, dep, ..
            } = self.edges[e];
            let c = full_comp[u];
            if dep != Dep::RW || full_comp[v] != c || single_comps.contains(&c) || wwwr_comp[v] < wwwr_comp[u] {
                continue;
            }
            let floor = wwwr_comp[u];
            let allow = |x: &Edge| x.dep != Dep::RW && full_comp[x.to] == c && wwwr_comp[x.to] >= floor;
            if let Some(mut path) = self.path(&out, v, u, &allow) {
                path.insert(0, e);
                single_comps.insert(c);
                self.report_cycle(CycleKind::GSingle, path);
            }
        }
        self.stats.g2_components = full
            .iter()
            .enumerate()
            .filter(|(ci, c)| c.len() > 1 && !forbidden_comps.contains(ci) && !single_comps.contains(ci))
            .count();
    }

    /// A cycle through `start` using allowed edges, as edge ids.
    fn cycle_through(&self, out: &[Vec<usize>], start: usize, allow: &dyn Fn(&Edge) -> bool) -> Option<Vec<usize>> {
        for &e in &out[start] {
            if allow(&self.edges[e]) {
                if let Some(mut p) = self.path(out, self.edges[e].to, start, allow) {
                    p.insert(0, e);
                    return Some(p);
                }
            }
        }
        None
    }

    /// Shortest path `from ~> to` over allowed edges (empty if equal), as edge ids.
    fn path(&self, out: &[Vec<usize>], from: usize, to: usize, allow: &dyn Fn(&Edge) -> bool) -> Option<Vec<usize>> {
        let mut parent: HashMap<usize, usize> = HashMap::new(); // node -> edge into it
        let mut queue = VecDeque::from([from]);
        let mut seen = HashSet::from([from]);
        while let Some(x) = queue.pop_front() {
            if x == to {
                let mut path = Vec::new();
                let mut at = to;
                while at != from {
                    let e = parent[&at];
                    path.push(e);
                    at = self.edges[e].from;
                }
                path.reverse();
                return Some(path);
            }
            for &e in &out[x] {
                let edge = &self.edges[e];
                if allow(edge) && seen.insert(edge.to) {
                    parent.insert(edge.to, e);
                    queue.push_back(edge.to);
                }
            }
        }
        None
    }

    fn report_cycle(&mut self, kind: CycleKind, edges: Vec<usize>) {
        let steps = edges
            .into_iter()
            .map(|e| {
                let e = &self.edges[e];
                Step {
                    from: self.id(e.from),
                    dep: e.dep,
                    key: e.key,
                    to: self.id(e.to),
                }
            })
            .collect();
        self.found.push(Anomaly::Cycle { kind, steps });
    }

    /// Checks against the recorded timestamps.
    fn timestamps(&mut self) {
        let ops = self.ops;
        // Commit timestamps of committed writers: distinct and above snapshots.
        let mut by_ts: HashMap<u64, usize> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            let Some(c) = op.commit_ts.filter(|_| op.kind == OpKind::Ok && op.writes()) else {
                continue;
            };
            if let Some(&first) = by_ts.get(&c) {
                self.found.push(Anomaly::DuplicateCommitTs {
                    ts: c,
                    first: self.id(first),
                    second: self.id(i),
                });
            } else {
                by_ts.insert(c, i);
            }
            if let Some(s) = op.snapshot_ts.filter(|&s| c <= s) {
                self.found.push(Anomaly::CommitBeforeSnapshot {
                    op: self.id(i),
                    snapshot: s,
                    commit: c,
                });
            }
        }
        self.snapshot_reads();
        self.realtime();
        // Failed writers should have lost to a committed writer of a common key.
        let newest: HashMap<u64, u64> = self
            .writers_by_commit()
            .into_iter()
            .filter_map(|(k, ws)| ws.last().and_then(|&w| ops[w].commit_ts).map(|c| (k, c)))
            .collect();
        for (i, op) in ops.iter().enumerate() {
            if op.kind != OpKind::Fail || !op.writes() {
                continue;
            }
            let Some(s) = op.snapshot_ts else { continue };
            if !self.appends[i].keys().any(|k| newest.get(k).is_some_and(|&c| c > s)) {
                self.stats.unexplained_fails += 1;
            }
        }
    }

    /// Every read equals the commits up to its snapshot plus its own appends.
    fn snapshot_reads(&mut self) {
        let ops = self.ops;
        // Writers of each key that count: committed, or indeterminate with a commit ts.
        let mut writers: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        let mut skip: HashSet<u64> = HashSet::new();
        for (i, op) in ops.iter().enumerate() {
            if op.kind == OpKind::Fail {
                continue;
            }
            for &k in self.appends[i].keys() {
                if op.commit_ts.is_some() {
                    writers.entry(k).or_default().push(i);
                } else {
                    skip.insert(k);
                }
            }
        }
        self.stats.snapshot_keys_skipped = skip.len();
        // key -> ((commit ts, end of its appends in the flat list) per commit, flat list).
        type Committed = (Vec<(u64, usize)>, Vec<u64>);
        let mut lists: HashMap<u64, Committed> = HashMap::new();
        for (k, mut ws) in writers {
            if skip.contains(&k) {
                continue;
            }
            ws.sort_by_key(|&w| (ops[w].commit_ts, w));
            let (mut marks, mut flat) = (Vec::new(), Vec::new());
            for w in ws {
                flat.extend_from_slice(&self.appends[w][&k]);
                marks.push((ops[w].commit_ts.unwrap_or(0), flat.len()));
            }
            lists.insert(k, (marks, flat));
        }
        let empty = (Vec::new(), Vec::new());
        for (i, op) in ops.iter().enumerate() {
            let Some(s) = op.snapshot_ts.filter(|_| op.kind == OpKind::Ok) else {
                continue;
            };
            let mut own: HashMap<u64, Vec<u64>> = HashMap::new();
            for mop in &op.txn {
                match mop {
                    Mop::Append(k, v) => own.entry(*k).or_default().push(*v),
                    Mop::Read(k, Some(l)) if !skip.contains(k) => {
                        self.stats.snapshot_reads_checked += 1;
                        let (marks, flat) = lists.get(k).unwrap_or(&empty);
                        let n = marks.partition_point(|&(c, _)| c <= s);
                        let end = if n == 0 { 0 } else { marks[n - 1].1 };
                        let mine = own.get(k).map_or(&[][..], |v| &v[..]);
                        let ok = l.len() == end + mine.len() && l[..end] == flat[..end] && l[end..] == *mine;
                        if !ok {
                            let mut expected = flat[..end].to_vec();
                            expected.extend_from_slice(mine);
                            self.found.push(Anomaly::SnapshotRead {
                                op: self.id(i),
                                key: *k,
                                snapshot: s,
                                expected,
                                actual: l.clone(),
                            });
                        }
                    }
                    Mop::Read(..) => {}
                }
            }
        }
    }

    /// An operation invoked after a commit returned sees that commit.
    fn realtime(&mut self) {
        let ops = self.ops;
        // Completed committed writers by completion time, with the running
        // maximum commit timestamp.
        let mut done: Vec<(u64, usize)> = ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.kind == OpKind::Ok && o.writes() && o.commit_ts.is_some())
            .filter_map(|(i, o)| o.completed_at.map(|t| (t, i)))
            .collect();
        done.sort_unstable();
        let mut best: Vec<(u64, usize)> = Vec::with_capacity(done.len()); // (max commit, its op)
        for &(_, i) in &done {
            let c = ops[i].commit_ts.unwrap_or(0);
            match best.last() {
                Some(&(m, _)) if m >= c => best.push(best[best.len() - 1]),
                _ => best.push((c, i)),
            }
        }
        for (i, op) in ops.iter().enumerate() {
            let (Some(t), Some(s)) = (op.invoked_at, op.snapshot_ts) else {
                continue;
            };
            let n = done.partition_point(|&(c, _)| c < t);
            if n == 0 {
                continue;
            }
            let (commit, a) = best[n - 1];
            if s < commit {
                self.found.push(Anomaly::StaleSnapshot {
                    op: self.id(i),
                    missed: self.id(a),
                    snapshot: s,
                    commit,
                });
            }
        }
    }
}

/// Tarjan's strongly connected components, iteratively. Returns each node's
/// component and the components, in reverse topological order (an edge
/// between components goes from a later one to an earlier one).
fn tarjan(succ: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    const UNSEEN: usize = usize::MAX;
    let n = succ.len();
    let (mut index, mut low, mut on) = (vec![UNSEEN; n], vec![0; n], vec![false; n]);
    let (mut comp, mut comps) = (vec![UNSEEN; n], Vec::new());
    let (mut stack, mut call, mut next) = (Vec::new(), Vec::<(usize, usize)>::new(), 0);
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on[root] = true;
        call.push((root, 0));
        while let Some(&(v, i)) = call.last() {
            if let Some(&w) = succ[v].get(i) {
                call.last_mut().expect("non-empty").1 += 1;
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on[w] = true;
                    call.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(p, _)) = call.last() {
                low[p] = low[p].min(low[v]);
            }
            if low[v] == index[v] {
                let mut c = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on[w] = false;
                    comp[w] = comps.len();
                    c.push(w);
                    if w == v {
                        break;
                    }
                }
                comps.push(c);
            }
        }
    }
    (comp, comps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Mop::{Append as A, Read as R};

    fn r(k: u64, l: &[u64]) -> Mop {
        R(k, Some(l.to_vec()))
    }

    fn ok(p: u64, txn: Vec<Mop>) -> Op {
        Op::new(p, OpKind::Ok, txn)
    }

    /// Check and return the anomaly names, printing the report on failure paths.
    fn names(ops: Vec<Op>) -> Vec<&'static str> {
        let rep = check(&History::new(ops));
        assert_eq!(rep.ok, rep.anomalies.is_empty());
        for a in &rep.anomalies {
            // Every anomaly renders, naming at least one op.
            let s = a.to_string();
            assert!(s.contains("op #"), "{s}");
        }
        let mut n: Vec<_> = rep.anomalies.iter().map(Anomaly::name).collect();
        n.dedup();
        n
    }

    #[test]
    fn tarjan_orders_components() {
        // 0 -> 1 <-> 2 -> 3
        let (comp, comps) = tarjan(&[vec![1], vec![2], vec![1, 3], vec![]]);
        assert_eq!(comps.len(), 3);
        assert_eq!(comp[1], comp[2]);
        assert!(comp[0] > comp[1] && comp[1] > comp[3]);
    }

    /// A valid history with concurrency, reads of own writes, a failure,
    /// write skew (allowed), timestamps and times.
    fn good() -> Vec<Op> {
        vec![
            ok(0, vec![A(1, 1), r(1, &[1]), A(2, 2)]).with_ts(0, 1).with_times(0, 1),
            // Write skew: both read the other's key empty at snapshot 1.
            ok(0, vec![r(3, &[]), A(4, 3)]).with_ts(1, 2).with_times(2, 4),
            ok(1, vec![r(4, &[]), A(3, 4), r(1, &[1])])
                .with_ts(1, 3)
                .with_times(3, 5),
            Op {
                snapshot_ts: Some(1),
                ..Op::new(2, OpKind::Fail, vec![A(1, 5), R(2, None)]).with_times(3, 6)
            },
            ok(0, vec![r(1, &[1]), A(1, 6), r(1, &[1, 6]), A(1, 7)])
                .with_ts(3, 4)
                .with_times(5, 7),
            ok(3, vec![r(1, &[1, 6, 7]), r(2, &[2]), r(3, &[4]), r(4, &[3])])
                .with_ts(4, 4)
                .with_times(8, 9),
            // No timestamps at all: still fine.
            ok(4, vec![r(1, &[1]), r(2, &[2])]),
        ]
    }

    #[test]
    fn good_history_passes() {
        let rep = check(&History::new(good()));
        assert!(rep.ok, "{rep}");
        assert_eq!(rep.stats.g2_components, 1, "{rep}");
        assert!(
            rep.stats.rw_edges >= 2 && rep.stats.ww_edges >= 1 && rep.stats.wr_edges >= 1,
            "{rep}"
        );
        assert_eq!(rep.stats.snapshot_reads_checked, 10);
        assert_eq!((rep.stats.ok, rep.stats.fail), (6, 1));
        assert_eq!(rep.stats.unexplained_fails, 0); // op 3 lost to op 4 on key 1
    }

    #[test]
    fn duplicate_elements_and_unknown_values() {
        let n = names(vec![ok(0, vec![A(1, 1)]), ok(1, vec![r(1, &[1, 1])])]);
        assert!(n.contains(&"duplicate-elements"), "{n:?}");
        assert_eq!(names(vec![ok(1, vec![r(1, &[9])])]), ["unknown-value"]);
        let n = names(vec![ok(0, vec![A(1, 1)]), ok(1, vec![A(1, 1)])]);
        assert!(n.contains(&"duplicate-append"), "{n:?}");
    }

    #[test]
    fn aborted_read_g1a() {
        let n = names(vec![Op::new(0, OpKind::Fail, vec![A(1, 1)]), ok(1, vec![r(1, &[1])])]);
        assert_eq!(n, ["G1a"]);
        // An indeterminate writer may be read.
        assert!(names(vec![Op::new(0, OpKind::Info, vec![A(1, 1)]), ok(1, vec![r(1, &[1])])]).is_empty());
    }

    #[test]
    fn intermediate_read_g1b() {
        let n = names(vec![
            ok(0, vec![A(1, 1), A(1, 2)]),
            ok(1, vec![r(1, &[1])]),
            ok(2, vec![r(1, &[1, 2])]),
        ]);
        assert_eq!(n, ["G1b"]);
        let n = names(vec![
            ok(0, vec![A(1, 1), A(1, 2)]),
            ok(1, vec![A(1, 3)]),
            ok(2, vec![r(1, &[1, 3, 2])]),
        ]);
        assert!(n.contains(&"garbled-appends"), "{n:?}");
    }

    #[test]
    fn internal_inconsistency() {
        let n = names(vec![ok(0, vec![A(1, 1)]), ok(1, vec![r(1, &[1]), A(1, 2), r(1, &[1])])]);
        assert!(n.contains(&"internal"), "{n:?}");
        let n = names(vec![ok(1, vec![A(1, 2), r(1, &[])])]);
        assert_eq!(n, ["internal"]);
    }

    #[test]
    fn incompatible_order() {
        let n = names(vec![
            ok(0, vec![A(1, 1)]),
            ok(1, vec![A(1, 2)]),
            ok(2, vec![r(1, &[1, 2])]),
            ok(3, vec![r(1, &[2, 1])]),
        ]);
        assert!(n.contains(&"incompatible-order"), "{n:?}");
    }

    #[test]
    fn lost_update_same_version() {
        // Both read [1] and appended; only one append survives.
        let n = names(vec![
            ok(0, vec![A(1, 1)]),
            ok(1, vec![r(1, &[1]), A(1, 2)]),
            ok(2, vec![r(1, &[1]), A(1, 3)]),
            ok(3, vec![r(1, &[1, 3])]),
        ]);
        assert!(n.contains(&"lost-update"), "{n:?}");
        // Read [1], appended, but the version order puts another append in between.
        let n = names(vec![
            ok(0, vec![A(1, 1)]),
            ok(1, vec![r(1, &[1]), A(1, 2)]),
            ok(2, vec![A(1, 3)]),
            ok(3, vec![r(1, &[1, 3, 2])]),
        ]);
        assert!(n.contains(&"lost-update"), "{n:?}");
    }

    #[test]
    fn lost_update_by_timestamps() {
        // Overlapping committed writers: snapshots 0, commits 1 and 2.
        let n = names(vec![
            ok(0, vec![A(1, 1)]).with_ts(0, 1),
            ok(1, vec![A(1, 2)]).with_ts(0, 2),
            ok(2, vec![r(1, &[1, 2])]).with_ts(2, 2),
        ]);
        assert_eq!(n, ["lost-update"]);
        // A committed append vanished from the final read that must hold it.
        let n = names(vec![
            ok(0, vec![A(1, 1)]).with_ts(0, 1),
            ok(1, vec![A(1, 2)]).with_ts(1, 2),
            ok(2, vec![r(1, &[2])]),
        ]);
        assert_eq!(n, ["lost-update"]);
    }

    #[test]
    fn g0_write_cycle() {
        let n = names(vec![
            ok(0, vec![A(1, 1), A(2, 1)]),
            ok(1, vec![A(1, 2), A(2, 2)]),
            ok(2, vec![r(1, &[1, 2]), r(2, &[2, 1])]),
        ]);
        assert_eq!(n, ["G0"]);
    }

    #[test]
    fn g1c_circular_information_flow() {
        let n = names(vec![ok(0, vec![A(1, 1), r(2, &[2])]), ok(1, vec![A(2, 2), r(1, &[1])])]);
        assert_eq!(n, ["G1c"]);
    }

    #[test]
    fn g_single_read_skew() {
        // op 1 saw op 0's write of key 2 but not its write of key 1.
        let n = names(vec![
            ok(0, vec![A(1, 1), A(2, 2)]),
            ok(1, vec![r(1, &[]), r(2, &[2])]),
            ok(2, vec![r(1, &[1])]),
        ]);
        assert_eq!(n, ["G-single"]);
        // Same, with op 0's append of key 1 never read: inferred rw edge.
        let n = names(vec![ok(0, vec![A(1, 1), A(2, 2)]), ok(1, vec![r(1, &[]), r(2, &[2])])]);
        assert_eq!(n, ["G-single"]);
        let rep = check(&History::new(vec![
            ok(0, vec![A(1, 1), A(2, 2)]),
            ok(1, vec![r(1, &[]), r(2, &[2])]),
        ]));
        let text = rep.anomalies[0].to_string();
        assert!(
            text.contains("op #1 (process 1) -rw(key 1)-> op #0 (process 0)"),
            "{text}"
        );
        assert!(text.contains("-wr(key 2)-> op #1"), "{text}");
    }

    #[test]
    fn write_skew_is_allowed() {
        let rep = check(&History::new(vec![
            ok(0, vec![r(1, &[]), A(2, 1)]).with_ts(0, 1),
            ok(1, vec![r(2, &[]), A(1, 2)]).with_ts(0, 2),
        ]));
        assert!(rep.ok, "{rep}");
        assert_eq!(rep.stats.g2_components, 1);
    }

    #[test]
    fn snapshot_read_mismatch() {
        // Read from the future: snapshot 0 sees a commit at 1.
        let n = names(vec![
            ok(0, vec![A(1, 1)]).with_ts(0, 1),
            ok(1, vec![r(1, &[1])]).with_ts(0, 0),
        ]);
        assert_eq!(n, ["snapshot-read"]);
        // Fractured: snapshot 1 sees one of commit 1's two keys.
        let n = names(vec![
            ok(0, vec![A(1, 1), A(2, 2)]).with_ts(0, 1),
            ok(1, vec![r(1, &[1]), r(2, &[])]).with_ts(1, 1),
        ]);
        assert!(n.contains(&"snapshot-read") && n.contains(&"G-single"), "{n:?}");
        // Wrong commit order: commit 2's element read before commit 1's.
        let n = names(vec![
            ok(0, vec![A(1, 1)]).with_ts(0, 2),
            ok(1, vec![A(1, 2)]).with_ts(0, 1),
            ok(2, vec![r(1, &[1, 2])]).with_ts(2, 2),
        ]);
        assert!(n.contains(&"snapshot-read"), "{n:?}");
        // Own writes are part of the expected read.
        let rep = check(&History::new(vec![ok(0, vec![A(1, 1), r(1, &[1])]).with_ts(0, 1)]));
        assert!(rep.ok, "{rep}");
    }

    #[test]
    fn stale_snapshot_after_commit_returned() {
        let n = names(vec![
            ok(0, vec![A(1, 1)]).with_ts(0, 1).with_times(0, 1),
            ok(1, vec![r(1, &[])]).with_ts(0, 0).with_times(2, 3),
        ]);
        assert_eq!(n, ["stale-snapshot"]);
        // Overlapping in time: fine.
        let rep = check(&History::new(vec![
            ok(0, vec![A(1, 1)]).with_ts(0, 1).with_times(0, 2),
            ok(1, vec![r(1, &[])]).with_ts(0, 0).with_times(1, 3),
        ]));
        assert!(rep.ok, "{rep}");
    }

    #[test]
    fn bad_commit_timestamps() {
        let n = names(vec![
            ok(0, vec![A(1, 1)]).with_ts(0, 1),
            ok(1, vec![A(2, 2)]).with_ts(0, 1),
        ]);
        assert_eq!(n, ["duplicate-commit-ts"]);
        let n = names(vec![ok(0, vec![A(1, 1)]).with_ts(3, 3)]);
        assert_eq!(n, ["commit-before-snapshot"]);
    }
}
