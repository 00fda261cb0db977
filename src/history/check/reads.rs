//! Checks of single reads: duplicate elements, unknown values, aborted (G1a)
//! and intermediate (G1b) reads, garbled appends, and a transaction's
//! consistency with its own earlier reads and appends.

use std::collections::{HashMap, HashSet};

use super::checker::Checker;
use super::Anomaly;
use crate::history::model::{Mop, OpKind};

impl Checker<'_> {
    /// Checks of single reads: duplicates, unknown and aborted values,
    /// intermediate and garbled writers, and internal consistency.
    pub(super) fn per_read(&mut self) {
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
                        // A value of its own append that comes later in
                        // the transaction: read before it was written.
                        let future = l
                            .iter()
                            .any(|v| self.writer.get(&(*k, *v)) == Some(&i) && !own.contains(v));
                        let bad = match known {
                            Some(kn) if kn != l => Some((kn.clone(), false)),
                            None if !l.ends_with(own) || future => Some((own.clone(), true)),
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

    /// The elements of one read `l` of key `k` by operation `i`.
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
}
