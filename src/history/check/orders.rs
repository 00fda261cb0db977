//! Version orders: each key's order inferred from its longest read (every
//! other read must be a prefix of it, else an incompatible order), and the
//! order of its committed writers by commit timestamp.

use std::collections::BTreeMap;

use super::checker::Checker;
use super::Anomaly;
use crate::history::model::OpKind;

impl Checker<'_> {
    /// The longest read of each key; every other read must be its prefix.
    pub(super) fn version_orders(&mut self) {
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

    /// key -> committed writers of it, in commit-timestamp order (those with one).
    pub(super) fn writers_by_commit(&self) -> BTreeMap<u64, Vec<usize>> {
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
}
