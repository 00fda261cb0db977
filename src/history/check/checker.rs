//! The checker's shared state ([`Checker`]), the order in which it runs the
//! checks, and the first pass that indexes the history for them.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::graph::Edge;
use super::{Anomaly, CheckStats, Dep, OpId, Report};
use crate::history::model::{History, Mop, Op, OpKind};
use crate::Isolation;

/// The checker's state: the history, what has been found so far, and the
/// indexes the individual checks share.
pub(super) struct Checker<'h> {
    /// The history's operations.
    pub(super) ops: &'h [Op],
    /// Anomalies found so far.
    pub(super) found: Vec<Anomaly>,
    /// What has been looked at.
    pub(super) stats: CheckStats,
    /// (key, value) -> appending op.
    pub(super) writer: HashMap<(u64, u64), usize>,
    /// Per op: key -> its appends to that key, in order.
    pub(super) appends: Vec<HashMap<u64, Vec<u64>>>,
    /// key -> ops that append to it, in history order.
    pub(super) appenders: HashMap<u64, Vec<usize>>,
    /// key -> reads of committed ops: (op, mop index).
    pub(super) reads: BTreeMap<u64, Vec<(usize, usize)>>,
    /// key -> (reader, longest list read), for keys whose reads agree.
    pub(super) longest: BTreeMap<u64, (usize, &'h [u64])>,
    /// `Info` ops that committed for sure ([`Checker::prove_info`]).
    pub(super) proven: HashSet<usize>,
    /// The dependency graph's edges.
    pub(super) edges: Vec<Edge>,
    /// The edges already present, by (from, to, dependency).
    pub(super) edge_set: HashSet<(usize, usize, Dep)>,
    /// Check serializability (every cycle is an anomaly, and a failed
    /// transaction may have lost on a key it only read) instead of
    /// snapshot isolation.
    pub(super) serializable: bool,
}

impl<'h> Checker<'h> {
    /// A checker for `h` at isolation `level`, with nothing indexed yet.
    pub(super) fn new(h: &'h History, level: Isolation) -> Self {
        Checker {
            ops: &h.ops,
            found: Vec::new(),
            stats: CheckStats::default(),
            writer: HashMap::new(),
            appends: Vec::new(),
            appenders: HashMap::new(),
            reads: BTreeMap::new(),
            longest: BTreeMap::new(),
            proven: HashSet::new(),
            edges: Vec::new(),
            edge_set: HashSet::new(),
            serializable: level == Isolation::Serializable,
        }
    }

    /// The report name of operation `i`.
    pub(super) fn id(&self, i: usize) -> OpId {
        OpId {
            index: i,
            process: self.ops[i].process,
        }
    }

    /// The list read by mop `m` of operation `op` (empty if none).
    pub(super) fn list(&self, (op, m): (usize, usize)) -> &'h [u64] {
        match &self.ops[op].txn[m] {
            Mop::Read(_, Some(l)) => l,
            _ => &[],
        }
    }

    /// Whether operation `i` committed.
    pub(super) fn ok(&self, i: usize) -> bool {
        self.ops[i].kind == OpKind::Ok
    }

    /// Whether op `i` committed for sure: `Ok`, or `Info` (outcome
    /// unknown) with one of its appends in a committed read ([`Checker::proven`]).
    pub(super) fn committed(&self, i: usize) -> bool {
        self.ok(i) || self.proven.contains(&i)
    }

    /// The `Info` ops a committed read proves committed: a value they
    /// appended is in the longest read of its key (reads are of `Ok` ops).
    pub(super) fn prove_info(&mut self) {
        for (&k, &(_, long)) in &self.longest {
            for v in long {
                if let Some(&w) = self.writer.get(&(k, *v)) {
                    if self.ops[w].kind == OpKind::Info {
                        self.proven.insert(w);
                    }
                }
            }
        }
    }

    /// Run every check, in order, and give the verdict.
    pub(super) fn run(mut self) -> Report {
        self.index();
        self.per_read();
        self.version_orders();
        self.prove_info();
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
    pub(super) fn index(&mut self) {
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
}
