//! `bwtx bench --compare`: the same workload on bwtx and on its peers
//! (skipdb, fjall, redb, sled; RocksDB with `peer-rocksdb`, seerdb with
//! `peer-seerdb`), and on ordered indexes without transactions
//! (crossbeam-skiplist, scc; Bf-Tree with `peer-bftree`), one engine after
//! the other in one process, with the same keys, the same seeded operation
//! streams and the same values. Needs the `bench-peers` feature.
//!
//! Durability is relaxed alike by default: bwtx in memory (or
//! `Durability::Buffered` in `--dir`), fjall, redb, sled, RocksDB and seerdb
//! in a temporary directory without a sync per commit (fjall: no journal
//! persist per transaction; redb: `Durability::None`; sled: no `flush()`;
//! RocksDB and seerdb: WAL written, not synced); skipdb, crossbeam-skiplist,
//! scc and Bf-Tree are in memory (Bf-Tree on a file with
//! `BWTX_BFTREE_CACHE_MIB` or `--cache-size`). With `--durability sync` every engine that can
//! syncs each commit as in `benches/durable/`, and the others (skipdb and
//! the indexes) sit out.
//!
//! With `--isolation serializable` bwtx begins `Isolation::Serializable`
//! transactions and each peer runs in its serializable mode: skipdb's
//! `SerializableDb::serializable_write` (`skipdb_ser`), fjall's optimistic
//! transactions (SSI in either run: fjall has no snapshot-only mode), redb's
//! single writer (serializable in either run). The others sit out with a
//! note in the report (`compare::not_serializable` says why).
//!
//! With `--cache-size N` (or `--isolate`) each engine runs in a process of
//! its own (`isolate.rs` starts them, `child.rs` is what each runs), loads
//! once and runs every `--workload` on that load, so that its peak RSS and
//! its bytes written to disk (`procfs.rs`) are its own; every peer with a
//! cache gets N as its cache (its settings line names the setting), bwtx
//! runs on disk with `Options::cache_size(N)`, and the in-memory engines sit
//! out. Each phase's figures are printed as the child reports them;
//! `--engine-timeout` bounds each child, and a child that times out or dies
//! is reported with its exit status and stderr tail while the others run.
//! `--engines` picks the engines of either kind of comparison.
//!
//! Files: `compare.rs` (the engines, one run in this process, the report
//! and the summary), `render.rs` (the report's table and JSON),
//! `summary.rs` (a row's figures), `isolate.rs`, `supervise.rs` (watching
//! one child), `child.rs`, `procfs.rs`,
//! `json.rs` (reading the children's lines), `plot.rs` (the chart), and one
//! file per peer.

#[cfg(feature = "peer-bftree")]
mod bftree;
mod child;
mod compare;
mod fjall;
mod index;
mod isolate;
mod json;
mod plot;
mod procfs;
mod redb;
mod render;
#[cfg(feature = "peer-rocksdb")]
mod rocksdb;
#[cfg(feature = "peer-seerdb")]
mod seerdb;
mod skipdb;
mod skipdb_ser;
mod sled;
mod summary;
mod supervise;

pub use child::run as child;
pub use compare::{run, summary, CompareReport};
pub use isolate::run as isolated;
pub use plot::plot;

use crate::bench::{BenchArgs, DurabilityArg, IsolationArg};

/// Whether `--durability sync` was asked for.
fn sync(args: &BenchArgs) -> bool {
    args.durability == Some(DurabilityArg::Sync)
}

/// Whether `--isolation serializable` was asked for.
fn serializable(args: &BenchArgs) -> bool {
    args.isolation == IsolationArg::Serializable
}
