//! Concurrent list-append histories (the model of Elle, Kingsbury & Alvaro,
//! VLDB 2020) and a checker for snapshot isolation and serializability.
//!
//! Transactions append globally unique values to lists and read whole lists;
//! the order of the elements then reveals each key's version order, so
//! isolation anomalies show up as concrete contradictions or as cycles in a
//! dependency graph. [`workload::run`] drives a [`crate::Db`] from real
//! threads and records a [`History`]; [`check()`] looks for anomalies; [`json`]
//! reads and writes Elle-format JSON lines so a history can also be fed to
//! Elle itself.
//!
//! Needs the `history` feature (a tool for isolation tests, not part of the
//! default API); the `bwtx history` command uses it.
//!
//! ```
//! use bwtx::history::{self, WorkloadConfig};
//!
//! let db = bwtx::Db::in_memory();
//! let cfg = WorkloadConfig { threads: 2, txns_per_thread: 20, ..WorkloadConfig::default() };
//! let h = history::workload::run(&db, cfg);
//! let report = history::check(&h);
//! assert!(report.ok, "{report}");
//! assert_eq!(history::json::parse(&history::json::to_string(&h)).unwrap(), h);
//! ```

pub mod check;
pub mod json;
pub mod model;
pub mod workload;

pub use check::{check, check_with, Anomaly, CheckStats, CycleKind, Dep, LostCause, OpId, Report, Step};
pub use model::{History, Mop, Op, OpKind};
pub use workload::WorkloadConfig;
