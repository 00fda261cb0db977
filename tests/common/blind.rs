//! Helpers of the blind-write tests (`paged_blind_liveness.rs`,
//! `paged_blind_gc.rs`): a paged database whose ten-odd keys sit in one
//! leaf, named keys, single-key transactions and a full read.

use std::path::Path;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability};

use super::{fault_opts, DIR};

/// A paged database on `fs` (sync commits, the default tree configuration:
/// a few dozen keys stay in one leaf).
pub fn open(fs: &FaultFs) -> Db {
    fault_opts(fs)
        .durability(Durability::Sync)
        .tree_config(bwtx::tree::Config::default())
        .cache_size(16 << 20)
        .open(Path::new(DIR))
        .unwrap()
}

/// The key numbered `k`.
pub fn key(k: u8) -> Vec<u8> {
    format!("key{k:03}").into_bytes()
}

/// One transaction writing `v` to key `k` (`None`: deleting it).
pub fn put(db: &Db, k: u8, v: Option<u8>) -> bwtx::Result<()> {
    let mut tx = db.begin();
    match v {
        Some(v) => tx.put(key(k), [v])?,
        None => tx.delete(key(k))?,
    }
    tx.commit().map(drop)
}

/// Every live key and value at a fresh snapshot.
pub fn all(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    let snap = db.snapshot();
    let kvs = snap
        .range::<&[u8], _>(..)
        .map(|kv| kv.unwrap())
        .map(|(k, v)| (k.to_vec(), v.to_vec()));
    kvs.collect()
}
