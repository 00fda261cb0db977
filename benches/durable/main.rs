//! Durable commits per second: bwtx in [`Durability::Sync`] mode (group
//! commit: one `fdatasync` may cover many committers) against fjall, redb,
//! sled and two naive "fsync per commit" logs, on 1, 2, 4 and 8 committing
//! threads.
//!
//! Needs the `bench-peers` feature (it pulls in fjall, redb and sled, which
//! the normal test build never compiles):
//!
//! ```text
//! cargo bench --bench durable --features bench-peers                                # full run
//! BWTX_BENCH_KEYS=2000 cargo bench --bench durable --features bench-peers -- --test  # smoke
//! BWTX_BENCH_ENGINES=bwtx,fsync-log cargo bench --bench durable --features bench-peers
//! ```
//!
//! Environment: `BWTX_BENCH_KEYS` (preloaded keys; 100,000, or 2,000 in
//! `--test` mode), `BWTX_BENCH_PASS_MS` (length of one timed pass; 1,000, or
//! 20 in `--test` mode), `BWTX_BENCH_ROUNDS` (timed passes per cell; 3, or 1
//! in `--test` mode), `BWTX_BENCH_THREADS` (committer counts, default
//! `1,2,4,8`), `BWTX_BENCH_ENGINES` (a comma-separated subset of the engine
//! names below) and `BWTX_BENCH_DIR` (where the databases live; default
//! `std::env::temp_dir()`: it must be a real disk, a tmpfs makes every sync
//! free, and the bench says so).
//!
//! Workload: every engine except the naive logs is loaded with the same
//! `BWTX_BENCH_KEYS` random 8-byte keys with 8-byte values, then each
//! committing thread runs, until the pass's deadline, transactions of blind
//! writes of 8-byte values to one or two keys (alternately) drawn uniformly
//! from the preloaded ones. A commit counts once it returned, durably, as the
//! engine defines it:
//!
//! * `bwtx`: `Options::new()` defaults: `Durability::Sync`, 64 MiB segments,
//!   automatic checkpoints every 256 MiB of log. `Db::transaction` with the
//!   `put`s: a write-write conflict (rare with uniform keys; a version
//!   installed by a commit still waiting for its sync counts) is retried
//!   with the library's own backoff, and counted (`stats().conflicts`).
//! * `fjall`: `OptimisticTxDatabase` (its transactional database with
//!   concurrent writers), one keyspace with default options; each write
//!   transaction with `durability(Some(PersistMode::SyncAll))`, so its
//!   commit writes and `fsync`s the journal. A `Conflict` would be retried
//!   (it cannot happen: these transactions read nothing).
//! * `redb`: one table `&[u8] -> &[u8]`, one write transaction per commit
//!   with `Durability::Immediate` (redb has a single writer at a time).
//! * `sled`: 0.34 (the stable release), `Tree::transaction` then
//!   `Db::flush()` per commit. sled's flush ends with `sync_file_range`
//!   (WAIT_BEFORE | WRITE | WAIT_AFTER), not an fsync: it neither flushes the
//!   disk's cache nor the file's metadata, so it promises less than the others
//!   on a power loss (its background flusher `fsync`s every 500 ms).
//! * `fsync-log`: the naive baseline: one shared append-only file behind a
//!   mutex; per commit, under the mutex, `write` the commit's record (8-byte
//!   header plus 16 bytes per write) and `sync_data`. One fsync per commit,
//!   serialized.
//! * `fsync-files`: the same with one file per thread and no mutex: one fsync
//!   per commit, but the threads' fsyncs run concurrently (the file system
//!   may merge their journal commits).
//!
//! Each cell (engine x threads) is the best of `BWTX_BENCH_ROUNDS` timed
//! passes of `BWTX_BENCH_PASS_MS`, after a warm-up pass a quarter as long;
//! the passes of one thread count run interleaved, engine after engine, so a
//! burst of load elsewhere hits all of them. Absolute rates depend on the
//! disk; the ratios are the result.
//!
//! Syncs per commit are counted two ways. bwtx's own: `stats().log_syncs`
//! over `stats().commits`. And for every engine: this binary defines the C
//! functions `fsync`, `fdatasync` and `sync_file_range` (Linux x86-64 and
//! aarch64 only), which the standard library and the peers call through
//! libc; they count the call and make the system call directly, so the
//! counts include background threads (checkpoints, flushes, compactions)
//! and directory syncs. Elsewhere, or if the counting is found not to work,
//! that column says `-`.
//!
//! Goals (from the issue): with 8 committers, bwtx at least 10x the
//! fsync-per-commit baseline (`fsync-log`; the ratio to `fsync-files` is
//! printed too) and ahead of every peer. Note the ceiling: with `T`
//! committers a sync can cover at most `T` commits, so group commit is at
//! most about `T` times the one-fsync-per-commit rate when a sync of a few
//! records costs what a sync of one does; the table prints bwtx's rate as a
//! fraction of that ceiling (`T x` the 1-thread `fsync-log` rate).
//!
//! At the end every database is closed and reopened (recovery) and every
//! key's value is compared with what it was before closing.
//!
//! Files: `engines.rs` (the `Engine` trait, bwtx, the engine list),
//! `peers.rs` (fjall, redb, sled), `naive.rs` (the fsync-per-commit logs),
//! `sync_count.rs` (counting the process's syncs), `passes.rs` (timed
//! passes), `results.rs` (the table), `recovery.rs` (the check after
//! reopening).

mod engines;
mod naive;
mod passes;
mod peers;
mod recovery;
mod results;
mod sync_count;

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use bwtx_kit::alloc::Counting;
use bwtx_kit::env;
use bwtx_kit::machine::{fs_of, loadavg};
use bwtx_kit::rng::mix;

use crate::engines::{config_of, open_engine, Engine, ENGINES, LOAD_BATCH};
use crate::passes::measure;
use crate::recovery::check;
use crate::results::Results;

// Every benchmark runs on the counting allocator (off: one relaxed load per
// allocation), as the tree benchmark, which measures heap bytes with it, does.
#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |a: &str| args.iter().any(|x| x == a);
    if has("--list") {
        // No criterion benchmarks to enumerate.
        return;
    }
    let test_mode = has("--test");
    let n = env::number::<usize>("BWTX_BENCH_KEYS").unwrap_or(if test_mode { 2_000 } else { 100_000 });
    assert!(n >= 2, "BWTX_BENCH_KEYS must be at least 2");
    let len =
        Duration::from_millis(
            env::number::<usize>("BWTX_BENCH_PASS_MS").unwrap_or(if test_mode { 20 } else { 1000 }) as u64,
        );
    let rounds = env::number::<usize>("BWTX_BENCH_ROUNDS")
        .unwrap_or(if test_mode { 1 } else { 3 })
        .max(1);
    let threads: Vec<usize> = std::env::var("BWTX_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2,4,8".into())
        .split(',')
        .map(|s| s.trim().parse().expect("BWTX_BENCH_THREADS: comma-separated numbers"))
        .collect();
    assert!(threads.iter().all(|&t| t > 0), "BWTX_BENCH_THREADS must be positive");
    let names: Vec<&'static str> = match std::env::var("BWTX_BENCH_ENGINES") {
        Ok(list) => {
            let wanted: Vec<String> = list.split(',').map(|s| s.trim().to_owned()).collect();
            for w in &wanted {
                assert!(
                    ENGINES.contains(&w.as_str()),
                    "BWTX_BENCH_ENGINES: unknown engine {w} (one of {ENGINES:?})"
                );
            }
            ENGINES
                .iter()
                .copied()
                .filter(|e| wanted.iter().any(|w| w == e))
                .collect()
        }
        Err(_) => ENGINES.to_vec(),
    };
    let base = std::env::var_os("BWTX_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let root = base.join(format!("bwtx-durable-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("create the bench directory");
    let fs = fs_of(&root);

    let started = Instant::now();
    println!(
        "bwtx durable bench: {n} keys (8-byte keys and values); threads {threads:?}; load average at start {}; {} cpus",
        loadavg(),
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("  dir {} on {fs}", root.display());
    if fs.starts_with("tmpfs") || fs.starts_with("ramfs") {
        println!("  WARNING: a memory file system: syncs cost nothing, so the rates below mean little");
    }
    for name in &names {
        println!("  {name:<12} {}", config_of(name));
    }

    let keys: Vec<u64> = (0..n as u64).map(|i| mix(i ^ 0x6475_7261)).collect();
    let max_threads = threads.iter().copied().max().unwrap_or(1);
    println!("loading (1 thread, {LOAD_BATCH} writes per transaction, then synced):");
    let mut engines: Vec<Box<dyn Engine>> = Vec::new();
    for name in &names {
        let start = Instant::now();
        let e = open_engine(name, &root, max_threads);
        e.load(&keys);
        if e.stores_keys() {
            println!(
                "  {name:<12} opened and loaded in {:.2}s",
                start.elapsed().as_secs_f64()
            );
        }
        engines.push(e);
    }

    let mut seq = 0;
    let mut cells = Vec::new();
    for &t in &threads {
        cells.push(measure(&engines, &keys, t, len, rounds, &mut seq));
    }
    // The libc-boundary counting works if it saw bwtx's (or the naive
    // logs') syncs.
    let counted = cells.iter().flatten().zip(names.iter().cycle()).any(|(c, &name)| {
        matches!(name, "bwtx" | "fsync-log" | "fsync-files") && c.commits > 0 && c.syncs.is_some_and(|s| s.0 > 0)
    });
    let results = Results {
        names: names.clone(),
        threads: threads.clone(),
        cells,
        counted,
    };
    results.print(len, rounds);
    results.print_goals();

    for (i, &t) in threads.iter().enumerate() {
        for (j, name) in names.iter().enumerate() {
            let c = &results.cells[i][j];
            assert!(c.commits > 0, "{name} committed nothing on {t} threads");
            if let Some([s, commits, _]) = c.own {
                assert!(
                    s > 0 && s <= commits,
                    "bwtx on {t} threads: {s} log syncs for {commits} commits"
                );
            }
        }
    }
    println!();
    println!("recovery check (close, reopen, compare every key):");
    check(&mut engines, &keys);
    drop(engines);
    let _ = std::fs::remove_dir_all(&root);
    println!(
        "(took {:.1}s; load average now {})",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
}
