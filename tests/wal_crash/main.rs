//! The crash loop: a child process (this test binary re-invoked, running
//! `child_entry`) commits concurrent random transactions in
//! [`Durability::Sync`] mode on a real directory, reporting each
//! acknowledged commit on stdout, while it checkpoints often; the parent
//! SIGKILLs it at a random moment (sometimes right after it reports starting a
//! checkpoint, sometimes while it is still opening and recovering), reopens
//! the directory and checks what survived. The next round continues on the
//! same directory, so recoveries follow recoveries.
//!
//! The workload makes every outcome checkable:
//! - transaction `X` (id `RRRRRR.W.NNNNNN`: round, worker, number) writes
//!   `l/X = "from,to,amount,k"` and `t/X/0..k = X`, and moves `amount` from
//!   account `a/from` to `a/to`: after recovery each transaction is wholly
//!   present or wholly absent, and every acknowledged one is present;
//! - `a/i == b/i + (sum of the deltas of the present l/ records)` for every
//!   account, and the accounts sum to `ACCOUNTS * INIT`: the transfers that
//!   survived are exactly those of the transactions that survived;
//! - at start a child *purges* the transactions of rounds up to `round - 3`
//!   in one transaction (deleting their keys, folding their deltas into the
//!   `b/` bases, writing `p/<round> = keys deleted`): a large commit of
//!   deletes, present whole or absent whole;
//! - across rounds: what one recovery shows of earlier rounds, every later
//!   recovery shows unchanged (unless purged): nothing lost, nothing
//!   resurrected; commit timestamps continue, the child's recovery sees
//!   exactly what the parent's did, and acknowledged timestamps are unique;
//! - the change stream (`Db::changes_since`, with a change retention so
//!   checkpoints keep the log) after the previous check's read timestamp
//!   holds exactly every commit since, once each, in order, and each
//!   acknowledged transaction at its timestamp with its `l/X` write;
//! - the recovered `Snapshot::len` equals the scan's count.
//!
//! Kills: 60% of rounds 5-80 ms after the child reports being ready
//! (recovered, purged); 30% as soon as (or up to 3 ms after) it reports
//! starting its 1st-3rd manual checkpoint; 10% 0-30 ms after the spawn. A
//! SIGKILL keeps every byte already written (the page cache survives it), so
//! this loop checks the logic of logging, checkpointing and recovery under
//! abrupt stops and torn writes; losing unsynced data (power loss) is the job
//! of the `FaultFs` tests.
//!
//! On failure the message names the round, the seeds, the kill, what is
//! missing or wrong, and the directory, kept both after the failed recovery
//! and as the kill left it (`<dir>.killed`).
//!
//! `crash_loop` then runs the same loop on a paged database with a 4 KiB
//! page cache (`Options::cache_size`): evictions, incremental
//! checkpoints (location tables listing the default tree, keyspace
//! "mirror" and the catalog) and recoveries from them happen during the
//! kills.
//!
//! Scale by hand: `BWTX_CRASH_ROUNDS=2000`, `BWTX_CRASH_SEED=<n>` (the
//! workload's seed; the kill moments are real time and vary anyway).
//!
//! Files: `workload.rs` (the constants, keys and helpers both sides share),
//! `child.rs` (the child's workload), `parent.rs` (running and killing a
//! child, the history of rounds), `check.rs` (the checks after a kill).

mod check;
mod child;
mod parent;
mod workload;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bwtx_kit::env;

use crate::check::check_round;
use crate::parent::{copy_dir, dir_listing, run_child, History, Kill, Report};
use crate::workload::{range, rng};

/// The child's workload; runs until killed (or for 60 s, should the parent
/// vanish without killing it). The parent runs this test by its exact name.
#[test]
fn child_entry() {
    child::entry();
}

/// The plain loop, then the paged one. One test, not two: two loops in
/// parallel threads of one process fork children at random moments, and a
/// child forked while the other loop's parent holds its directory's lock
/// keeps a copy of the lock's descriptor until it execs, which can make the
/// other loop's next child find the directory locked.
#[test]
fn crash_loop() {
    crash_loop_with(None, "crash");
    crash_loop_with(Some(workload::TINY_CACHE), "crash-paged");
}

fn crash_loop_with(cache: Option<u64>, name: &str) {
    if std::env::var_os("BWTX_CRASH_CHILD").is_some() {
        return;
    }
    let rounds = env::parse::<u64>("BWTX_CRASH_ROUNDS").unwrap_or(50);
    let seed = env::parse::<u64>("BWTX_CRASH_SEED").unwrap_or(0x5EED);
    let dir: PathBuf = std::env::temp_dir().join(format!("bwtx-{name}-{}", std::process::id()));
    let pre = dir.with_extension("killed");
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let mut h = History::default();
    for round in 0..rounds {
        let round_seed = rng(seed ^ round.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64();
        let mut rng = rng(round_seed);
        let kill = match range(&mut rng, 0, 9) {
            0 => {
                h.early_kills += 1;
                Kill::Early(Duration::from_millis(range(&mut rng, 0, 30)))
            }
            1..=3 => {
                h.ckpt_kills += 1;
                let after = if range(&mut rng, 0, 1) == 0 {
                    0
                } else {
                    range(&mut rng, 0, 3000)
                };
                Kill::InCheckpoint(range(&mut rng, 1, 3), Duration::from_micros(after))
            }
            _ => Kill::AfterReady(Duration::from_millis(range(&mut rng, 5, 80))),
        };
        let (rep, stderr) = run_child(&dir, round, round_seed, kill, cache);
        // What the kill left, before any recovery touches it (kept on failure).
        copy_dir(&dir, &pre);
        if let Err(e) = check_round(&dir, round, &rep, &mut h, cache) {
            panic!(
                "crash loop failed in round {round} (base seed {seed}, round seed {round_seed}, kill {kill:?}); \
                 directory kept at {} (as the kill left it: {})\n{e}\nfiles (after recovery):\n{}\nchild report: started {} open {:?} init {:?} purge {:?} \
                 ready {} acked {} (last {:?}) checkpoints started {} done {}\nchild stderr:\n{stderr}",
                dir.display(),
                pre.display(),
                dir_listing(&dir),
                rep.started,
                rep.open,
                rep.init,
                rep.purge,
                rep.ready,
                rep.acked.len(),
                rep.acked.last(),
                rep.ckpt_started,
                rep.ckpt_done,
            );
        }
    }
    // A last recovery, with nothing new: the whole history again.
    check_round(&dir, rounds, &Report::default(), &mut h, cache).unwrap_or_else(|e| {
        panic!(
            "final check failed (base seed {seed}); directory kept at {}\n{e}",
            dir.display()
        )
    });
    println!(
        "{name} loop: {rounds} rounds in {:.1?} (base seed {seed}): {} commits acknowledged, {} present though \
         unacknowledged, {} manual checkpoints started / {} finished, {} purges, {} torn tails, {} commits \
         replayed, {} keys at most, read_ts {}; kills: {} early, {} in a checkpoint",
        started.elapsed(),
        h.commits_acked,
        h.present_unacked,
        h.ckpt_started,
        h.ckpt_done,
        h.purges,
        h.torn_tails,
        h.replayed,
        h.max_keys,
        h.read_ts,
        h.early_kills,
        h.ckpt_kills,
    );
    assert!(h.commits_acked > 0, "no commit was ever acknowledged");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&pre).unwrap();
}
