//! `bwtx bench --compare`: the same workload on bwtx and on its peers
//! (skipdb, fjall, redb, sled), one engine after the other in one process,
//! with the same keys, the same seeded operation streams and the same
//! values. Needs the `bench-peers` feature.
//!
//! Durability is relaxed alike by default: bwtx in memory (or
//! `Durability::Buffered` in `--dir`), fjall, redb and sled in a temporary
//! directory without a sync per commit (fjall: no journal persist per
//! transaction; redb: `Durability::None`; sled: no `flush()`); skipdb is in
//! memory only. With `--durability sync` every engine that can syncs each
//! commit as in `benches/durable/`, and the in-memory ones (skipdb,
//! crossbeam-skiplist, scc) sit out.

mod compare;
mod fjall;
mod index;
mod plot;
mod redb;
#[cfg(feature = "peer-rocksdb")]
mod rocksdb;
mod skipdb;
mod sled;

pub use compare::{run, summary};
pub use plot::plot;

use crate::bench::{BenchArgs, DurabilityArg};

/// Whether `--durability sync` was asked for.
fn sync(args: &BenchArgs) -> bool {
    args.durability == Some(DurabilityArg::Sync)
}
