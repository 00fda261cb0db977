//! Segment cleaning under load (`design/storage.md` §9): a cleaner thread
//! (relocating images and checkpointing) runs beside committing writers, a
//! thread evicting every leaf, and the evictor; every read a writer makes
//! of its own keys returns what it last wrote, and the final state equals
//! the writers' models in this run and after a power loss.

mod common;

use bwtx::fs::FaultFs;
use bwtx::Options;
use common::paged::value;

const KEYS: u64 = 2_000;
const WRITERS: u64 = 2;

/// This test's paged database.
fn opts(fs: &FaultFs) -> Options {
    common::paged::opts(fs, 16 << 10)
}

#[test]
fn cleaning_beside_commits_and_evictions_keeps_every_value() {
    let ops: u64 = bwtx_kit::env::parse("BWTX_STRESS_OPS").unwrap_or(3_000);
    common::stress::cleaning_beside_commits_and_evictions(
        opts,
        KEYS,
        WRITERS,
        ops,
        value,
        |db| db.clean_now().unwrap(),
        |_, cleaned| cleaned > 0,
    );
}
