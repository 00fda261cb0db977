//! The checker: finds snapshot-isolation anomalies in a list-append history,
//! or, with [`check_with`] and [`Isolation::Serializable`], serializability
//! anomalies (every dependency cycle, G2 included).
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
//!    skew, G2) are allowed. Under serializable no cycle of any kind is
//!    allowed: G2 cycles are reported too. A transaction of unknown outcome
//!    (`info`) counts as committed once a committed read saw one of its
//!    appends. A read that holds a value its own transaction appends only
//!    later is internally inconsistent.
//! 2. **The recorded timestamps**. A read of `k` at snapshot `s` must equal
//!    the appends to `k` by committed transactions with commit timestamp
//!    `<= s`, in commit order, followed by the transaction's own earlier
//!    appends; committed writers of one key must not overlap (first committer
//!    wins); and an operation invoked after another completed must have a
//!    snapshot at least that one's commit timestamp.
//!
//! The work is split by concern: `checker` holds the shared state and
//! indexes the history, `reads` checks single reads, `orders` infers
//! version orders, `lost` finds lost updates, `graph` builds the
//! dependency graph and searches it for cycles, and `timestamps` checks the
//! recorded timestamps. `anomaly` and `report` define what is reported.

mod anomaly;
mod checker;
mod graph;
mod lost;
mod orders;
mod reads;
mod report;
mod timestamps;

#[cfg(test)]
mod tests;

pub use anomaly::{Anomaly, CycleKind, Dep, LostCause, OpId, Step};
pub use report::{CheckStats, Report};

use super::model::History;
use crate::Isolation;
use checker::Checker;

/// Check `history` for snapshot-isolation anomalies
/// (`check_with(history, Isolation::Snapshot)`).
pub fn check(history: &History) -> Report {
    check_with(history, Isolation::Snapshot)
}

/// Check `history` for the anomalies `level` forbids. Under
/// [`Isolation::Serializable`], every dependency cycle is an anomaly (G2
/// cycles as [`CycleKind::G2`]), and a failed writer counts as explained
/// (not in [`CheckStats::unexplained_fails`]) if a key it read changed after
/// its snapshot, not only a key it appended to.
pub fn check_with(history: &History, level: Isolation) -> Report {
    Checker::new(history, level).run()
}
