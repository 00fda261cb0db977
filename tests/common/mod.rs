//! Helpers shared by the log tests that run on the in-memory `FaultFs`
//! (`wal_corruption_*.rs`, `wal_fault.rs`, `wal_power_loss.rs`): the
//! bwtx-dependent part of the test kit (the rest is the `bwtx-kit` crate,
//! which cannot depend on bwtx; see its documentation).
#![allow(dead_code)] // each test file uses its own subset

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bwtx::fs::FaultFs;
use bwtx::{Db, Options};

pub mod blind;
pub mod corrupt;
pub mod held;
pub mod paged;
pub mod stress;

/// Where the database lives inside the fault file system.
pub const DIR: &str = "/db";

/// A database on `fs` with no background sweeper, no automatic checkpoints
/// and tiny pages (splits and merges all the time); callers add the segment
/// size and the durability their test needs.
pub fn fault_opts(fs: &FaultFs) -> Options {
    Options::new()
        .file_system(Arc::new(fs.clone()))
        .gc_interval(None)
        .checkpoint_bytes(0)
        .tree_config(bwtx::tree::Config::tiny())
}

/// The snapshot timestamp and every key-value pair (as UTF-8, lossily: the
/// corruption tests also recover arbitrary bytes).
pub fn dump(db: &Db) -> (u64, BTreeMap<String, String>) {
    let snap = db.snapshot();
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let m = snap
        .range::<&[u8], _>(..)
        .map(|kv| {
            let (k, v) = kv.expect("reads never fail");
            (s(&k), s(&v))
        })
        .collect();
    (snap.ts(), m)
}

/// The numbers of the transaction markers (`m/<i>`) present in `state`.
pub fn markers(state: &BTreeMap<String, String>) -> BTreeSet<usize> {
    state
        .keys()
        .filter_map(|k| k.strip_prefix("m/"))
        .map(|i| i.parse().expect("a marker is m/<number>"))
        .collect()
}

/// The names of the files in [`DIR`] that start with `prefix`, sorted.
pub fn files_with_prefix(fs: &FaultFs, prefix: &str) -> Vec<String> {
    use bwtx::fs::Fs;
    let mut v: Vec<String> = fs
        .list(std::path::Path::new(DIR))
        .expect("the database directory")
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}
