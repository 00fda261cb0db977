//! The checker's verdict: the anomalies found ([`Report`]) and what was
//! looked at ([`CheckStats`]).

use std::collections::BTreeMap;
use std::fmt;

use super::Anomaly;

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
