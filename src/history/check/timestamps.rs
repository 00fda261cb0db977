//! Checks against the recorded timestamps: distinct commit timestamps above
//! snapshots, reads equal to the state their snapshot names, and real-time
//! order (an operation invoked after a commit returned sees it).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::checker::Checker;
use super::Anomaly;
use crate::history::model::{Mop, OpKind};

impl Checker<'_> {
    /// Checks against the recorded timestamps.
    pub(super) fn timestamps(&mut self) {
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
        // Failed writers should have lost to a committed writer of a common
        // key (under serializable: of a key they read or wrote).
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
            // Under serializable a writer may also lose on a key it only read.
            let lost_on = |k: &u64| newest.get(k).is_some_and(|&c| c > s);
            let explained = if self.serializable {
                op.txn.iter().map(Mop::key).any(|k| lost_on(&k))
            } else {
                self.appends[i].keys().any(lost_on)
            };
            if !explained {
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
