//! Lost updates: two committed transactions appended to a key although one
//! of them should have seen the other's append.

use std::collections::{HashMap, HashSet};

use super::checker::Checker;
use super::{Anomaly, LostCause};
use crate::history::model::{Mop, OpKind};

impl Checker<'_> {
    /// Lost updates: committed appenders that read the same version, read a
    /// stale base, overlapped in time, or vanished from the longest read.
    pub(super) fn lost_updates(&mut self) {
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
}
