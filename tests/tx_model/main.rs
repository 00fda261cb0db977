//! Model-based test of transactions: up to four interleaved read-write
//! transactions (snapshot isolation or serializable), held and fresh
//! snapshots, and explicit garbage collection, run against both the default
//! configuration and tiny pages (splits and merges under the transactions),
//! and checked after every step against a model of snapshot isolation with
//! first-committer-wins, plus serializable read validation:
//!
//! - the committed history, per key a list of `(commit_ts, Option<value>)`,
//!   so that a read at any snapshot timestamp can be predicted;
//! - per open transaction its snapshot timestamp and its write buffer, a
//!   copy of that buffer at each live savepoint (see `savepoint.rs`), and,
//!   if serializable, its reads: keys (found or absent, not answered by its
//!   writes) and the part of each scanned range its iterator yielded.
//!
//! A serializable commit with writes is predicted by checking the commit
//! order against a serial execution: it is refused iff a key it read or a
//! key in a range it scanned was written by a commit after its snapshot
//! (every such commit precedes it), and then the model predicts the key,
//! winner, reason and range the error names, and that the refusal uses up
//! a timestamp and logs an empty record.
//!
//! The model predicts every read (own writes first, buffered deletes hide
//! keys), every range in every consumption order, what a rollback to a
//! savepoint restores and which rollbacks are refused, which commits fail with a
//! conflict (and the reported key, winner and snapshot), every commit
//! timestamp (consecutive from 1; a commit without writes returns its
//! snapshot timestamp), every snapshot timestamp, and the counters.
//!
//! The same properties run on durable databases ([`Durability::Sync`]) with
//! two more operations: `Checkpoint`, and `Restart`, which rolls back every
//! transaction and drops every held snapshot (the model drops their
//! buffers), closes the database (cleanly, or after a power loss that drops
//! every unsynced byte), and reopens it. Across restarts the model predicts
//! the same committed state, consecutive commit timestamps, snapshot
//! timestamps, counters restarting from zero, the commits replayed (those
//! after the newest checkpoint), no torn tails, the log records and syncs,
//! and the files in the directory (log segments, exactly one checkpoint).
//! They run on [`FaultFs`] (default pages; tiny pages with small log
//! segments) and, with few cases, on a real temporary directory.
//!
//! `PROPTEST_CASES=N` runs N cases per property (default 128; the real
//! directory runs N / 16).

mod durable;
mod model;
mod ops;
mod read;
mod run;
mod savepoint;

use std::ops::Bound::{Excluded, Included, Unbounded};

use bwtx::Db;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use durable::{durable_all, run_durable, Disk};
use ops::{durable_op, op, savepoint_op, Consume, Op, Scan, Shutdown, Target};
use run::{run_on, Run};

fn tiny_db() -> Db {
    bwtx::Options::new()
        .tree_config(bwtx::tree::Config::tiny())
        .gc_interval(None)
        .in_memory()
        .unwrap()
}

/// Tiny pages and a background sweeper that wakes every millisecond, so
/// sweeps (consolidations, merges) race with the reads and commits.
fn tiny_swept_db() -> Db {
    bwtx::Options::new()
        .tree_config(bwtx::tree::Config::tiny())
        .gc_interval(Some(std::time::Duration::from_millis(1)))
        .in_memory()
        .unwrap()
}

/// Tiny pages in a directory (on `FaultFs`, unlogged) with a one-byte page
/// cache (these runs hold a few KiB): every committer evicts the leaves
/// after its commit (past 1.25 x the budget), and the evictor thread every
/// 2 ms, so nearly every step faults a leaf in.
fn tiny_paged_db() -> Db {
    bwtx::Options::new()
        .tree_config(bwtx::tree::Config::tiny())
        .gc_interval(None)
        .file_system(std::sync::Arc::new(bwtx::fs::FaultFs::new()))
        .durability(bwtx::Durability::None)
        .checkpoint_bytes(0)
        .cache_size(1)
        .open("/db")
        .unwrap()
}

/// Runs `ops` on the default configuration, on tiny pages, on tiny pages
/// with a busy background sweeper, and on tiny pages with a tiny page cache:
/// the outcome must be the same everywhere.
fn run_all(ops: &[Op]) -> Result<(), TestCaseError> {
    run_on(&Db::in_memory(), ops, false).map_err(|e| TestCaseError::fail(format!("default config: {e}")))?;
    run_on(&tiny_db(), ops, true).map_err(|e| TestCaseError::fail(format!("tiny pages: {e}")))?;
    run_on(&tiny_swept_db(), ops, false).map_err(|e| TestCaseError::fail(format!("tiny pages, 1 ms sweeper: {e}")))?;
    // Not strict about GC: the sweep skips evicted leaves (collected when
    // next faulted in and consolidated).
    let paged = tiny_paged_db();
    run_on(&paged, ops, false).map_err(|e| TestCaseError::fail(format!("tiny pages, 1-byte cache: {e}")))?;
    let s = paged.stats();
    prop_assert!(s.commits == 0 || s.evictions > 0, "the cache never evicted: {:?}", s);
    Ok(())
}

fn cases() -> u32 {
    bwtx_kit::env::parse("PROPTEST_CASES").unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// 16 keys: conflicts on nearly every pair of concurrent writers.
    #[test]
    fn transactions_match_model_small_keyspace(ops in proptest::collection::vec(op(16, 1), 1..300)) {
        run_all(&ops)?;
    }

    /// 200 keys with bulk writes: on tiny pages, many splits and merges
    /// happen under the open transactions and snapshots.
    #[test]
    fn transactions_match_model_many_keys(ops in proptest::collection::vec(op(200, 4), 1..200)) {
        run_all(&ops)?;
    }

    /// Nested savepoints over a few keys written again and again.
    #[test]
    fn savepoints_match_model(ops in proptest::collection::vec(savepoint_op(), 1..120)) {
        run_all(&ops)?;
    }

    /// The small keyspace on durable databases, with checkpoints and restarts.
    #[test]
    fn durable_transactions_match_model_small_keyspace(ops in proptest::collection::vec(durable_op(16, 1), 1..300)) {
        durable_all(&ops)?;
    }

    /// Many keys and bulk writes on durable databases: recovery rebuilds
    /// many pages (tiny ones: splits during replay).
    #[test]
    fn durable_transactions_match_model_many_keys(ops in proptest::collection::vec(durable_op(200, 4), 1..200)) {
        durable_all(&ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases((cases() / 16).max(2)))]

    /// On a real directory (`StdFs`: fsync, rename, the `flock` lock), with
    /// small segments so that files are created and deleted often.
    #[test]
    fn durable_transactions_match_model_real_directory(ops in proptest::collection::vec(durable_op(40, 2), 1..200)) {
        let disk = Disk::real("real directory, 1 KiB segments", false, Some(1024));
        run_durable(&disk, &ops).map_err(|e| TestCaseError::fail(format!("{}: {e}", disk.name)))?;
    }
}

/// Mixed `next`/`next_back` over a transaction's own writes interleaved
/// with committed keys, on tiny pages, checked item by item.
#[test]
fn mixed_direction_ranges_over_many_pages() {
    let db = tiny_db();
    let mut run = Run::new(&db, true);
    let mut ops = vec![
        Op::Fill(0, 0, 120, 7, false),
        Op::Commit(0),
        Op::Fill(1, 30, 20, 9, true),
    ];
    for i in (0..120).step_by(7) {
        ops.push(Op::Put(1, i, i as u8));
    }
    let patterns = [
        vec![true, false],
        vec![false, false, true],
        vec![true; 40],
        [false, true].repeat(60),
        [true, true, false].repeat(40),
    ];
    for p in &patterns {
        ops.push(Op::Scan(
            Target::Txn(1),
            Scan::Range(Unbounded, Unbounded),
            Consume::Mixed(p.clone()),
        ));
        ops.push(Op::Scan(
            Target::Txn(1),
            Scan::Range(Included(10), Excluded(100)),
            Consume::Mixed(p.clone()),
        ));
        ops.push(Op::Scan(Target::Txn(1), Scan::Prefix(12, 2), Consume::Mixed(p.clone())));
        ops.push(Op::Scan(Target::Txn(0), Scan::Prefix(12, 1), Consume::Mixed(p.clone())));
        ops.push(Op::Scan(
            Target::Fresh,
            Scan::Range(Excluded(5), Included(90)),
            Consume::Mixed(p.clone()),
        ));
    }
    ops.push(Op::Gc);
    ops.push(Op::Commit(1));
    for (i, op) in ops.iter().enumerate() {
        run.step(i, op).unwrap();
    }
    run.finish().unwrap();
    assert!(db.stats().splits > 10, "{:?}", db.stats());
}

/// One key rewritten many times (values too large to inline) while readers
/// of several ages pin its old versions, on tiny pages, with collections in
/// between: every reader keeps its version, and the full collection at the
/// end leaves one version. Also passes commit timestamp 64, where the commit
/// path refreshes the GC watermark.
#[test]
fn many_versions_of_one_key_pinned_by_old_readers() {
    let db = tiny_db();
    let mut run = Run::new(&db, true);
    let mut ops = Vec::new();
    for round in 0..100usize {
        let k = if round % 10 == 9 { 6 } else { 0 };
        ops.push(Op::Put(0, k, 1 + (round % 2) as u8 * 16)); // 300-byte values
        if round % 3 == 0 {
            ops.push(Op::Put(0, 6 + round % 30, 5));
        }
        ops.push(Op::Commit(0));
        match round {
            5 => ops.push(Op::Get(Target::Held(0), 0)),
            20 => ops.push(Op::Get(Target::Txn(1), 0)),
            40 => ops.push(Op::Get(Target::Held(1), 0)),
            60 => ops.push(Op::Release(0)),
            70 => ops.push(Op::Delete(2, 0)),
            _ => {}
        }
        if round % 7 == 0 {
            ops.push(Op::Gc);
        }
        if round % 16 == 0 {
            ops.push(Op::Auto(0, None));
        }
    }
    ops.push(Op::Commit(2)); // conflicts: key 0 was rewritten after its snapshot
    ops.push(Op::Gc);
    for (i, op) in ops.iter().enumerate() {
        run.step(i, op).unwrap();
    }
    assert!(run.model.last > 64);
    assert_eq!(run.model.conflicts, 1);
    run.finish().unwrap();
}

/// Restarts of every kind with transactions and snapshots open, around
/// checkpoints (one repeating the last, which writes nothing; one repeating
/// the recovered one after a reopen, which writes it again), on both fault
/// file system configurations and a real directory.
#[test]
fn durable_restarts_around_checkpoints() {
    use Shutdown::*;
    let ops = vec![
        Op::Fill(0, 0, 30, 1, false),
        Op::Commit(0), // ts 1
        Op::Put(1, 3, 5),
        Op::Get(Target::Held(0), 0),
        Op::Auto(4, Some(2)), // ts 2
        Op::Checkpoint,       // at 2
        Op::Checkpoint,       // nothing new: skipped
        Op::Auto(5, None),    // ts 3
        Op::Put(2, 7, 9),
        Op::Commit(2), // ts 4
        Op::Put(3, 8, 1),
        Op::Restart(PowerLossWhileOpen), // replays 3 and 4; txns 1 and 3 and the held snapshot are gone
        Op::Commit(1),                   // empty slot: nothing
        Op::Commit(3),
        Op::Put(1, 3, 6),
        Op::Commit(1), // ts 5
        Op::Checkpoint,
        Op::Restart(Clean), // replays nothing
        Op::Checkpoint,     // at 5 again: written again after the reopen
        Op::Restart(PowerLossAfterClose),
        Op::Fill(3, 10, 20, 3, true),
        Op::Commit(3), // ts 6
        Op::Scan(Target::Fresh, Scan::Prefix(0, 1), Consume::Reverse),
        Op::Restart(Clean), // replays 6
        Op::Get(Target::Txn(0), 3),
        Op::Gc,
    ];
    for disk in [
        Disk::fault("FaultFs, default config", false, None),
        Disk::fault("FaultFs, tiny pages, 512-byte segments", true, Some(512)),
        Disk::real("real directory, 1 KiB segments", false, Some(1024)),
    ] {
        let m = run_durable(&disk, &ops).unwrap_or_else(|e| panic!("{}: {e}", disk.name));
        assert_eq!(m.last, 6, "{}", disk.name);
        assert_eq!(m.disk.checkpoint, Some(5), "{}", disk.name);
        // The final reopen (after the implicit last restart) replayed commit 6.
        assert_eq!(m.disk.replayed, 1, "{}", disk.name);
        // Keys 0..10 but 5 (deleted at 3); 10..30 were deleted at 6.
        assert_eq!(m.view(6, None).len(), 9, "{}", disk.name);
    }
}
