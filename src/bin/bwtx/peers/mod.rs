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
//! `BWTX_BFTREE_CACHE_MIB`). With `--durability sync` every engine that can
//! syncs each commit as in `benches/durable/`, and the others (skipdb and
//! the indexes) sit out.
//!
//! With `--isolation serializable` bwtx begins `Isolation::Serializable`
//! transactions and each peer runs in its serializable mode: skipdb's
//! `SerializableDb::serializable_write` (`skipdb_ser`), fjall's optimistic
//! transactions (SSI in either run: fjall has no snapshot-only mode), redb's
//! single writer (serializable in either run). The others sit out with a
//! note in the report (`compare::not_serializable` says why).

#[cfg(feature = "peer-bftree")]
mod bftree;
mod compare;
mod fjall;
mod index;
mod plot;
mod redb;
#[cfg(feature = "peer-rocksdb")]
mod rocksdb;
#[cfg(feature = "peer-seerdb")]
mod seerdb;
mod skipdb;
mod skipdb_ser;
mod sled;

pub use compare::{run, summary};
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
