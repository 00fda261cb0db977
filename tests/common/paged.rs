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

/// A fault injected into one cleaning run, counted from its start.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    None,
    CrashAtSync(u64),
    FailWrite(u64),
}

impl Fault {
    /// Arm this fault on `fs`, whose syncs and writes so far are `syncs`
    /// and `writes`.
    pub fn inject(self, fs: &FaultFs, syncs: u64, writes: u64) {
        match self {
            Fault::None => {}
            Fault::CrashAtSync(k) => fs.crash_at_sync(syncs + k),
            Fault::FailWrite(k) => fs.fail_write_at(writes + k),
        }
    }
}

/// The power-loss sweep of a cleaning run: `run(fault)` cleans with `fault`
/// injected and checks the reopened database, returning the run's syncs and
/// writes and whether it failed. A clean run first (at least `min_syncs`
/// syncs and more than `min_writes` writes), then a power loss at every
/// sync and a failed write at a dozen sampled writes; some fault must reach
/// the cleaning.
pub fn power_loss_sweep(run: impl Fn(Fault) -> (u64, u64, bool), min_syncs: u64, min_writes: u64) {
    let (syncs, writes, failed) = run(Fault::None);
    assert!(
        !failed && syncs >= min_syncs && writes > min_writes,
        "{syncs} syncs, {writes} writes"
    );
    let mut failures = 0;
    for k in 0..syncs {
        failures += usize::from(run(Fault::CrashAtSync(k)).2);
    }
    for k in (0..writes).step_by((writes / 12).max(1) as usize) {
        failures += usize::from(run(Fault::FailWrite(k)).2);
    }
    assert!(failures > 0, "no injected fault reached the cleaning");
}

/// One cleaning run of [`power_loss_sweep`]: `db` (on `fs`, holding
/// `model`) cleans with `fault` injected; a failure is an I/O error or the
/// poison, a success is checked by `cleaned`; then power is lost, and the
/// database reopened with `opts` equals `model`, before and after evicting
/// every leaf. Returns the cleaning's syncs and writes and whether it failed.
pub fn clean_with_fault(
    fs: &FaultFs,
    db: bwtx::Db,
    model: &std::collections::BTreeMap<String, String>,
    opts: impl Fn(&FaultFs) -> Options,
    fault: Fault,
    cleaned: impl FnOnce(&bwtx::Db),
) -> (u64, u64, bool) {
    let (syncs, writes) = (fs.syncs(), fs.writes());
    fault.inject(fs, syncs, writes);
    let r = db.clean_now();
    let (syncs, writes) = (fs.syncs() - syncs, fs.writes() - writes);
    match &r {
        Err(e) => assert!(matches!(e, bwtx::Error::Io(_) | bwtx::Error::Poisoned), "{e}"),
        Ok(_) => cleaned(&db),
    }
    drop(db);
    match fault {
        // Every other crash writes part of each file's unsynced tail back
        // (a torn record at the end of the log and of the page segments).
        Fault::CrashAtSync(k) if k % 2 == 1 => {
            fs.power_loss_keeping(|n| n * ((k as usize * 37) % 100) / 100);
        }
        _ => fs.power_loss(),
    }
    let db = opts(fs).open(super::DIR).unwrap();
    assert_eq!(&super::dump(&db).1, model, "after {r:?}");
    // The pages read back after another eviction too.
    db.evict_all().unwrap();
    assert_eq!(&super::dump(&db).1, model, "after {r:?}, evicted");
    (syncs, writes, r.is_err())
}
