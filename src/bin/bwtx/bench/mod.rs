//! `bwtx bench`: the YCSB core workloads A–F and a bank-transfer workload,
//! run as bwtx transactions from several threads (or, with `--compare`, on
//! the peer stores of `peers/` too).
//!
//! - [`args`]: the command line;
//! - [`records`]: keys, record choice, operations and values;
//! - [`engine`]: the [`Engine`] trait and bwtx as one;
//! - [`load`](mod@load): loading the records;
//! - [`run`](mod@run): the timed run and what it measured;
//! - [`setup`](mod@setup): checked settings and the report of a bwtx run.

mod args;
mod engine;
mod load;
mod records;
mod run;
mod setup;

pub use args::{BenchArgs, Distribution, DurabilityArg, IsolationArg, Workload};
pub use engine::{Bwtx, Engine, Outcome};
pub use records::{balance_of, key, rmw_value, Chooser, Op, BALANCE};
pub use run::measure;
#[cfg(feature = "bench-peers")]
pub use setup::reset_peak_rss;
pub use setup::{run, Setup};

// Used by the peers of `--compare` only.
#[cfg(feature = "bench-peers")]
pub use args::show_bytes;
#[cfg(feature = "bench-peers")]
pub use engine::open_compare;
#[cfg(feature = "bench-peers")]
pub use load::load;
#[cfg(feature = "bench-peers")]
pub use records::{read_only, Key};
#[cfg(feature = "bench-peers")]
pub use run::{run_loaded, Measured};
#[cfg(feature = "bench-peers")]
pub use setup::{reads_and_cpu, reads_line, setup};
