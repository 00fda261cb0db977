//! The set-up the segment-cleaning tests share (`paged_clean*.rs`): keys,
//! 100-byte values naming their key and round, and a paged database on the
//! fault file system with a page cache and page segments of one size.

use bwtx::fs::FaultFs;
use bwtx::{Durability, Options};

use super::fault_opts;

/// Key `i`.
pub fn key(i: impl std::fmt::Display) -> String {
    format!("key{i:0>6}")
}

/// A 100-byte value that names key `i` and `round`.
pub fn value(i: impl std::fmt::Display, round: impl std::fmt::Display) -> String {
    let mut v = format!("value-{round}-{i}-");
    v.extend(std::iter::repeat_n('x', 100 - v.len()));
    v
}

/// Synced commits, a page cache of `bytes` and page segments of `bytes`.
pub fn opts(fs: &FaultFs, bytes: u64) -> Options {
    fault_opts(fs)
        .durability(Durability::Sync)
        .cache_size(bytes)
        .segment_bytes(bytes)
}

/// Put keys `range` with values of `round`, 100 per commit, into `db` and
/// `model`.
pub fn load(
    db: &bwtx::Db,
    range: std::ops::Range<usize>,
    round: usize,
    model: &mut std::collections::BTreeMap<String, String>,
) {
    for chunk in range.collect::<Vec<_>>().chunks(100) {
        let mut tx = db.begin();
        for &i in chunk {
            tx.put(key(i), value(i, round)).unwrap();
            model.insert(key(i), value(i, round));
        }
        tx.commit().unwrap();
    }
}
