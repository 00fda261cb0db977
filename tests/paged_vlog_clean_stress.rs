//! The value log's cleaner under load (`design/storage.md` §10,
//! "Cleaning"): a cleaner thread (rewriting pages off mostly-dead value-log
//! segments and checkpointing) runs beside two writers of large values, a
//! thread evicting every leaf, and the evictor; every read a writer makes
//! of its own keys returns what it last wrote, and the final state equals
//! the writers' models in this run and after a power loss.

mod common;

use bwtx::fs::FaultFs;
use bwtx::Options;

const KEYS: u64 = 200;
const WRITERS: u64 = 2;

/// 16 KiB segments and cache; values of 1,500 bytes go to the value log.
fn opts(fs: &FaultFs) -> Options {
    common::paged::opts(fs, 16 << 10).value_log_threshold(1 << 10)
}

/// A 1,500-byte value that names key `i` and `round`.
fn value(i: u64, round: u64) -> String {
    let mut v = format!("value-{round}-{i}-");
    v.extend(std::iter::repeat_n('v', 1_500 - v.len()));
    v
}

#[test]
fn value_log_cleaning_beside_commits_and_evictions_keeps_every_value() {
    let ops: u64 = bwtx_kit::env::parse("BWTX_STRESS_OPS").unwrap_or(1_500);
    common::stress::cleaning_beside_commits_and_evictions(
        opts,
        KEYS,
        WRITERS,
        ops,
        value,
        |db| {
            db.collect_garbage();
            db.clean_now().unwrap()
        },
        |db, _| {
            let s = db.stats();
            s.value_log_pages_rewritten > 0 && s.value_log_segments_cleaned > 0
        },
    );
}
