//! What the child and the parent share: the workload's constants, the
//! options, the key names and how values are read back.

use std::collections::BTreeMap;

use bwtx::{Db, Durability, Options};
use bwtx_kit::rng::{SplitMix64, GAMMA};

pub(crate) const ACCOUNTS: usize = 16;
pub(crate) const INIT: i64 = 1000;
pub(crate) const WORKERS: usize = 3;
/// Commits between the child's manual checkpoints.
pub(crate) const CKPT_EVERY: u64 = 24;
pub(crate) const SEGMENT_BYTES: u64 = 2048;
pub(crate) const CHECKPOINT_BYTES: u64 = 8192;
/// Rounds whose data survive the purge at the start of a round.
pub(crate) const KEEP_ROUNDS: u64 = 3;
/// Marks the child's report lines (the test harness writes to stdout too).
pub(crate) const TAG: &str = "@@";

/// `Options::cache_size` of the paged loop: tiny, so evictions and
/// incremental checkpoints happen during the kills.
pub(crate) const TINY_CACHE: u64 = 4 << 10;

/// The loop's options; `cache`: paged with that budget.
pub(crate) fn options(cache: Option<u64>) -> Options {
    let o = Options::new()
        .durability(Durability::Sync)
        .segment_bytes(SEGMENT_BYTES)
        .tree_config(bwtx::tree::Config::tiny())
        // Checkpoints keep the log: the checks read the change stream of
        // every round (nothing is deleted while the database has been open
        // for less than the window, and every child is killed sooner).
        .change_retention(std::time::Duration::from_secs(3600));
    match cache {
        Some(c) => o.cache_size(c),
        None => o,
    }
}

pub(crate) fn acct(i: usize) -> String {
    format!("a/{i:02}")
}

pub(crate) fn base(i: usize) -> String {
    format!("b/{i:02}")
}

pub(crate) fn num(v: &[u8]) -> i64 {
    std::str::from_utf8(v).unwrap().parse().unwrap()
}

/// FNV-1a over every key and value: the child and the parent compare what
/// their recoveries of the same directory saw.
pub(crate) fn digest(kv: &BTreeMap<String, String>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (k, v) in kv {
        for b in k.bytes().chain([0]).chain(v.bytes()).chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

pub(crate) fn scan(db: &Db) -> BTreeMap<String, String> {
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).expect("the workload writes UTF-8");
    let snapshot = db.snapshot();
    let kvs = snapshot
        .range::<&[u8], _>(..)
        .map(|kv| kv.map(|(k, v)| (text(&k), text(&v))));
    kvs.collect::<bwtx::Result<_>>().expect("reads never fail")
}

/// The round a `t/` or `l/` key belongs to.
pub(crate) fn key_round(k: &str) -> Option<u64> {
    let rest = k.strip_prefix("t/").or_else(|| k.strip_prefix("l/"))?;
    rest.get(..6)?.parse().ok()
}

/// `l/` value: `from,to,amount,k`.
pub(crate) fn parse_log(v: &str) -> (usize, usize, i64, usize) {
    let p: Vec<&str> = v.split(',').collect();
    assert_eq!(p.len(), 4, "malformed l/ value {v:?}");
    (
        p[0].parse().unwrap(),
        p[1].parse().unwrap(),
        p[2].parse().unwrap(),
        p[3].parse().unwrap(),
    )
}

/// splitmix64 seeded with `seed` (mixed with the golden ratio): small,
/// deterministic, good enough to pick workloads.
pub(crate) fn rng(seed: u64) -> SplitMix64 {
    SplitMix64::new(seed ^ GAMMA)
}

/// Uniform in `lo..=hi` (by a modulo: the draws this test has always made).
pub(crate) fn range(rng: &mut SplitMix64, lo: u64, hi: u64) -> u64 {
    lo + rng.next_u64() % (hi - lo + 1)
}
