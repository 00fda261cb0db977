//! Failing writes, short writes and failing syncs at every position of a
//! scripted workload (and of checkpoints), on [`FaultFs`]: the failing commit
//! returns the I/O error, the database is poisoned (later commits fail with
//! `Error::Poisoned`, reads still work), nothing acknowledged is lost after a
//! power loss (or a plain process crash) and reopening, and the reopened
//! database accepts commits again.
//!
//! Every position of the (single-threaded, so deterministic) workload is
//! tried; `BWTX_FAULT_TXNS` (default 24) sets its length.

use std::collections::BTreeMap;

use bwtx::fs::FaultFs;
use bwtx::{Db, Error, Options};

use bwtx_kit::env;

mod common;
use common::{dump, fault_opts, markers, DIR};

const SEGMENT_BYTES: u64 = 300;

fn opts(fs: &FaultFs) -> Options {
    fault_opts(fs).segment_bytes(SEGMENT_BYTES)
}

/// Transaction `i`'s writes: its marker `m/<i>`, a fresh key, and every few
/// transactions an overwrite or a delete of an earlier key. Values are unique
/// per (key, transaction).
fn writes(i: usize) -> Vec<(String, Option<String>)> {
    let v = |k: &str| Some(format!("{k}@{i}{}", "#".repeat(i * 5 % 23)));
    let mut w = vec![(format!("m/{i:03}"), Some(i.to_string()))];
    let fresh = format!("k/{i:03}");
    w.push((fresh.clone(), v(&fresh)));
    if i % 3 == 1 {
        let old = format!("k/{:03}", i / 2);
        w.push((old.clone(), v(&old)));
    }
    if i % 4 == 3 {
        w.push((format!("k/{:03}", i - 2), None));
    }
    if i.is_multiple_of(5) {
        w.push(("hot".into(), v("hot")));
    }
    w
}

fn commit(db: &Db, i: usize) -> Result<u64, Error> {
    let mut tx = db.begin();
    for (k, v) in writes(i) {
        match v {
            Some(v) => tx.put(k, v)?,
            None => tx.delete(k)?,
        }
    }
    tx.commit()
}

/// The state after transactions `0..n`.
fn expected(n: usize) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for i in 0..n {
        for (k, v) in writes(i) {
            match v {
                Some(v) => m.insert(k, v),
                None => m.remove(&k),
            };
        }
    }
    m
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    FailWrite,
    ShortWrite,
    FailSync,
}

impl Fault {
    fn arm(self, fs: &FaultFs, n: u64) {
        match self {
            Fault::FailWrite => fs.fail_write_at(n),
            Fault::ShortWrite => fs.short_write_at(n),
            Fault::FailSync => fs.fail_sync_at(n),
        }
    }
}

/// How the process ends after the fault.
#[derive(Clone, Copy, Debug)]
enum End {
    /// Power loss: unsynced bytes are gone.
    PowerLoss,
    /// The process exits; what was written (synced or not) stays.
    Exit,
}

/// Reopen and check: exactly transactions `0..n` are present, with `n` in
/// `acked..=acked + maybe`; commits work and timestamps continue.
fn check_reopen(fs: &FaultFs, acked: usize, maybe: usize, ctx: &str) {
    let db = opts(fs)
        .open(DIR)
        .unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
    let (ts, state) = dump(&db);
    let present = markers(&state);
    let n = present.len();
    assert!(
        (acked..=acked + maybe).contains(&n),
        "{ctx}: {acked} acknowledged (+{maybe} unacknowledged) commits, {n} recovered"
    );
    assert_eq!(present, (0..n).collect(), "{ctx}: recovered commits are not a prefix");
    assert_eq!(state, expected(n), "{ctx}: recovered data differs (partial commit?)");
    assert_eq!(ts, n as u64, "{ctx}: recovered timestamp");
    assert_eq!(
        commit(&db, n).unwrap(),
        ts + 1,
        "{ctx}: the reopened database must take commits"
    );
    drop(db);
    let db = opts(fs)
        .open(DIR)
        .unwrap_or_else(|e| panic!("{ctx}: second reopen failed: {e}"));
    assert_eq!(dump(&db), (ts + 1, expected(n + 1)), "{ctx}: second reopen");
}

/// Run `txns` commits with `fault` armed at position `at`; the fault must be
/// hit. Returns how many commits were acknowledged.
fn faulty_run(fs: &FaultFs, fault: Fault, at: u64, txns: usize, ctx: &str) -> usize {
    fault.arm(fs, at);
    let db = match opts(fs).open(DIR) {
        Ok(db) => db,
        Err(e) => {
            // The fault hit the open itself (the first segment's header).
            assert!(matches!(e, Error::Io(_)), "{ctx}: open failed with {e}");
            return 0;
        }
    };
    for i in 0..txns {
        match commit(&db, i) {
            Ok(ts) => assert_eq!(ts, i as u64 + 1, "{ctx}"),
            Err(e) => {
                assert!(matches!(e, Error::Io(_)), "{ctx}: the failing commit {i} returned {e}");
                // Poisoned: no more commits, nor checkpoints.
                for j in [i + 1, i + 2] {
                    let e = commit(&db, j).unwrap_err();
                    assert!(matches!(e, Error::Poisoned), "{ctx}: commit after the failure: {e}");
                }
                assert!(db.checkpoint().is_err(), "{ctx}: checkpoint of a poisoned database");
                // Reads still work; they see every acknowledged commit (and
                // the failed one: it was published).
                let (ts, state) = dump(&db);
                assert_eq!(ts, i as u64 + 1, "{ctx}");
                assert_eq!(state, expected(i + 1), "{ctx}: reads of the poisoned database");
                return i;
            }
        }
    }
    panic!("{ctx}: the fault at {at} was never hit");
}

fn sweep(fault: Fault, end: End) {
    let txns = env::parse::<u64>("BWTX_FAULT_TXNS").unwrap_or(24) as usize;
    // Count the operations of a clean run.
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    for i in 0..txns {
        commit(&db, i).unwrap();
    }
    assert!(db.stats().log_segments >= 4, "segments should rotate: {:?}", db.stats());
    let (writes, syncs) = (fs.writes(), fs.syncs());
    drop(db);
    let positions = if fault == Fault::FailSync { syncs } else { writes };
    for at in 0..positions {
        let ctx = format!("{fault:?} at {at} of {positions}, then {end:?}");
        let fs = FaultFs::new();
        let acked = faulty_run(&fs, fault, at, txns, &ctx);
        if let End::PowerLoss = end {
            fs.power_loss();
        }
        // The failing commit may be present (whole) or absent.
        check_reopen(&fs, acked, 1, &ctx);
    }
}

#[test]
fn failing_write_then_power_loss() {
    sweep(Fault::FailWrite, End::PowerLoss);
}

#[test]
fn failing_write_then_exit() {
    sweep(Fault::FailWrite, End::Exit);
}

#[test]
fn short_write_then_power_loss() {
    sweep(Fault::ShortWrite, End::PowerLoss);
}

#[test]
fn short_write_then_exit() {
    sweep(Fault::ShortWrite, End::Exit);
}

#[test]
fn failing_sync_then_power_loss() {
    sweep(Fault::FailSync, End::PowerLoss);
}

#[test]
fn failing_sync_then_exit() {
    sweep(Fault::FailSync, End::Exit);
}

/// A workload with checkpoints; a fault anywhere. A fault in a commit (or in
/// the log rotation that starts a checkpoint) poisons the database; a fault
/// while writing the checkpoint file or deleting what it covers fails only
/// that checkpoint: commits go on, and so do later checkpoints.
fn checkpoint_sweep(fault: Fault) {
    // Commits, with a checkpoint after each `*` step.
    const PLAN: [usize; 4] = [8, 6, 5, 4];
    let run = |db: &Db, acked: &mut usize, errors: &mut Vec<String>, ctx: &str| {
        let mut i = 0;
        for (round, n) in PLAN.into_iter().enumerate() {
            for _ in 0..n {
                match commit(db, i) {
                    Ok(_) => *acked = i + 1,
                    Err(e) => {
                        assert!(matches!(e, Error::Io(_) | Error::Poisoned), "{ctx}: commit {i}: {e}");
                        errors.push(format!("commit {i}: {e}"));
                        return;
                    }
                }
                i += 1;
            }
            if round + 1 < PLAN.len() {
                if let Err(e) = db.checkpoint() {
                    assert!(matches!(e, Error::Io(_) | Error::Poisoned), "{ctx}: checkpoint: {e}");
                    errors.push(format!("checkpoint {round}: {e}"));
                }
            }
        }
    };
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let (mut acked, mut errors) = (0, Vec::new());
    run(&db, &mut acked, &mut errors, "clean");
    assert!(errors.is_empty());
    assert_eq!(db.stats().checkpoints, PLAN.len() as u64 - 1);
    let positions = if fault == Fault::FailSync {
        fs.syncs()
    } else {
        fs.writes()
    };
    drop(db);
    let total: usize = PLAN.iter().sum();

    for at in 0..positions {
        let ctx = format!("{fault:?} at {at} of {positions} (with checkpoints)");
        let fs = FaultFs::new();
        fault.arm(&fs, at);
        let (mut acked, mut errors) = (0, Vec::new());
        match opts(&fs).open(DIR) {
            Ok(db) => {
                run(&db, &mut acked, &mut errors, &ctx);
                assert!(!errors.is_empty(), "{ctx}: the fault was never hit");
                let ckpt_failed = errors[0].starts_with("checkpoint");
                if ckpt_failed && acked == total {
                    // Only a checkpoint failed and the log was not
                    // poisoned: later checkpoints must work again.
                    assert_eq!(
                        errors.len(),
                        1,
                        "{ctx}: a failed checkpoint breaks later ones: {errors:?}"
                    );
                    db.checkpoint()
                        .unwrap_or_else(|e| panic!("{ctx}: checkpoint after a failed one: {e}"));
                }
            }
            Err(e) => assert!(matches!(e, Error::Io(_)), "{ctx}: open failed with {e}"),
        }
        fs.power_loss();
        check_reopen(&fs, acked, 1, &format!("{ctx}; errors {errors:?}"));
    }
}

#[test]
fn failing_sync_during_checkpoints() {
    checkpoint_sweep(Fault::FailSync);
}

#[test]
fn failing_write_during_checkpoints() {
    checkpoint_sweep(Fault::FailWrite);
}

#[test]
fn short_write_during_checkpoints() {
    checkpoint_sweep(Fault::ShortWrite);
}
