//! The bank invariant: concurrent random transfers between `N` accounts never
//! change the total, and every snapshot (read-only or inside a read-write
//! transaction) sees exactly the total and exactly `N` accounts.
//!
//! - Writer threads move random amounts between two accounts (read both
//!   balances, never go negative), some through [`Db::transaction`] (which
//!   retries on conflict), some with an explicit `begin`/`commit` loop that
//!   counts its own conflicts; now and then a transfer also audits its own
//!   view (snapshot merged with its two buffered writes).
//! - Auditor threads sum `prefix("acct/")` in read-only snapshots (forwards
//!   and backwards) and in read-write transactions that commit with no writes.
//! - A churn thread inserts and deletes decoy keys right outside the prefix
//!   (`acct.…`, `acct0…`), with huge balances that would break the sum if a
//!   prefix scan ever let one in; on tiny pages this keeps splitting and
//!   merging the leaves at both ends of the account range.
//!
//! At the end: every thread's commit and conflict counts add up to
//! `stats().commits` and `stats().conflicts`, the read timestamp equals the
//! number of commits (timestamps are consecutive), and each final balance is
//! the initial one plus the net flow of the transfers that reported success.
//!
//! Scale with `BWTX_BANK_TRANSFERS` (total transfers per configuration,
//! default 2000); `BWTX_BANK_PACE=0` lets the auditors and the churn thread
//! run flat out instead of one round per 2 transfers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::Duration;

use bwtx::{Db, Error, Options};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const N: usize = 64;
const INITIAL: u64 = 1_000;
const TOTAL: u64 = N as u64 * INITIAL;
const WRITERS: usize = 3;
/// Balance of the decoy keys: any one of them in an audit breaks the total.
const DECOY: u64 = 1_000_000_000;
/// Fixed decoy keys around the `acct/` prefix.
const DECOYS: [&str; 6] = ["acct", "acct.", "acct.zz", "acct0", "acc", "accu"];

fn acct(i: usize) -> String {
    format!("acct/{i:04}")
}

fn transfers() -> usize {
    bwtx_kit::env::number("BWTX_BANK_TRANSFERS").unwrap_or(2_000)
}

fn balance(v: Option<bytes::Bytes>) -> u64 {
    let v = v.expect("accounts are never deleted");
    std::str::from_utf8(&v).unwrap().parse().expect("a balance")
}

/// Count and sum the accounts an iterator yields, checking the keys are the
/// accounts, in order (`rev`: in reverse order).
fn audit(it: impl Iterator<Item = bwtx::Result<(bytes::Bytes, bytes::Bytes)>>, rev: bool) -> (usize, u64) {
    let (mut n, mut sum) = (0, 0);
    for kv in it {
        let (k, v) = kv.unwrap();
        let i = if rev { N - 1 - n } else { n };
        assert_eq!(&k[..], acct(i).as_bytes(), "audit #{n}: unexpected key");
        sum += balance(Some(v));
        n += 1;
    }
    (n, sum)
}

/// The balances an iterator yields, in order.
fn balances(it: impl Iterator<Item = bwtx::Result<(bytes::Bytes, bytes::Bytes)>>) -> Vec<u64> {
    it.map(|kv| balance(Some(kv.unwrap().1))).collect()
}

/// Pick two distinct accounts; half the time among the first 4 (hot spot),
/// so that conflicts are frequent.
fn pair(rng: &mut SmallRng) -> (usize, usize) {
    let span = if rng.gen_bool(0.5) { 4 } else { N };
    let a = rng.gen_range(0..span);
    let mut b = rng.gen_range(0..span - 1);
    if b >= a {
        b += 1;
    }
    (a, b)
}

/// Coordination of one run's threads.
struct Ctl {
    start: Barrier,
    /// Set when the last writer finishes.
    done: AtomicBool,
    writers_left: AtomicU64,
    /// Transfers finished so far, by all writers.
    progress: AtomicU64,
    /// See [`pace`].
    pace: u64,
}

impl Ctl {
    fn done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Keep background threads from starving the writers on a small machine:
    /// wait until the writers have finished `transfers` transfers (or all of
    /// theirs). Only pacing; nothing is asserted about timing.
    fn wait_progress(&self, transfers: u64) {
        while self.progress.load(Ordering::Acquire) < transfers && !self.done() {
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    fn writer_finished(&self) {
        if self.writers_left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.store(true, Ordering::Release);
        }
    }
}

/// Audits (of each auditor) and churn rounds: at most one per this many
/// transfers; `BWTX_BANK_PACE` (default 2; 0: free-running background threads).
fn pace() -> u64 {
    bwtx_kit::env::number("BWTX_BANK_PACE").unwrap_or(2)
}

/// What a writer thread saw.
#[derive(Default)]
struct WriterLog {
    commits: u64,
    conflicts: u64,
    /// `Db::transaction` calls that gave up after `TRANSACTION_ATTEMPTS` conflicts.
    gave_up: u64,
    /// Net flow per account of the transfers that committed.
    flow: Vec<i64>,
    max_winner: u64,
}

fn writer(db: &Db, seed: u64, n: usize, ctl: &Ctl) -> WriterLog {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut log = WriterLog {
        flow: vec![0; N],
        ..WriterLog::default()
    };
    ctl.start.wait();
    for t in 0..n {
        let (from, to) = pair(&mut rng);
        let want = rng.gen_range(0..=300u64);
        let audit_inside = t % 16 == 0;
        let amount = if t % 3 != 2 {
            // Through Db::transaction: every attempt commits or conflicts.
            let mut attempts = 0u64;
            let r = db.transaction(|tx| {
                attempts += 1;
                let a = balance(tx.get(acct(from))?);
                let b = balance(tx.get(acct(to))?);
                let amount = want.min(a);
                tx.put(acct(from), (a - amount).to_string())?;
                tx.put(acct(to), (b + amount).to_string())?;
                if audit_inside {
                    assert_eq!(audit(tx.prefix("acct/"), false), (N, TOTAL), "own writes merged");
                    assert_eq!(audit(tx.prefix("acct/").rev(), true), (N, TOTAL));
                }
                Ok(amount)
            });
            match r {
                Ok(amount) => {
                    log.commits += 1;
                    log.conflicts += attempts - 1;
                    Some(amount)
                }
                Err(e) => {
                    assert!(e.is_conflict(), "unexpected error {e:?}");
                    assert_eq!(attempts, u64::from(bwtx::TRANSACTION_ATTEMPTS));
                    log.conflicts += attempts;
                    log.gave_up += 1;
                    None
                }
            }
        } else {
            // Explicit begin/commit, retried by hand.
            loop {
                let mut tx = db.begin();
                let snapshot = tx.snapshot_ts();
                let a = balance(tx.get(acct(from)).unwrap());
                let b = balance(tx.get(acct(to)).unwrap());
                let amount = want.min(a);
                tx.put(acct(from), (a - amount).to_string()).unwrap();
                // Widen the window between read and commit.
                std::thread::yield_now();
                tx.put(acct(to), (b + amount).to_string()).unwrap();
                match tx.commit() {
                    Ok(ts) => {
                        assert!(ts > snapshot, "commit ts {ts} not above snapshot {snapshot}");
                        assert!(db.snapshot().ts() >= ts, "a commit is visible once it returns");
                        log.commits += 1;
                        break Some(amount);
                    }
                    Err(Error::Conflict {
                        key,
                        winner,
                        snapshot: s,
                        ..
                    }) => {
                        assert_eq!(s, snapshot, "conflict reports the loser's snapshot");
                        assert!(winner > snapshot, "winner {winner} not after snapshot {snapshot}");
                        assert!(
                            key == acct(from).as_bytes() || key == acct(to).as_bytes(),
                            "conflict on {key:?}, not in the write set"
                        );
                        log.max_winner = log.max_winner.max(winner);
                        log.conflicts += 1;
                    }
                    Err(e) => panic!("unexpected error {e:?}"),
                }
            }
        };
        if let Some(amount) = amount {
            log.flow[from] -= amount as i64;
            log.flow[to] += amount as i64;
        }
        ctl.progress.fetch_add(1, Ordering::AcqRel);
    }
    ctl.writer_finished();
    log
}

/// Read-only audits: prefix scans forwards and backwards, a point read
/// checked against the scan, snapshots never going back in time, an old
/// snapshot that must keep reading the same balances. Every
/// `gc_every`th audit also collects garbage while other snapshots live.
fn snapshot_auditor(db: &Db, seed: u64, ctl: &Ctl, gc_every: Option<u64>) -> u64 {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut last_ts = 0;
    let mut audits = 0u64;
    let mut old: Option<(bwtx::Snapshot, Vec<u64>)> = None;
    ctl.start.wait();
    loop {
        ctl.wait_progress(audits * ctl.pace);
        let finished = ctl.done();
        let snap = db.snapshot();
        assert!(snap.ts() >= last_ts, "snapshot went back in time");
        last_ts = snap.ts();
        assert_eq!(
            audit(snap.prefix("acct/"), false),
            (N, TOTAL),
            "audit at ts {}",
            snap.ts()
        );
        assert_eq!(
            audit(snap.prefix("acct/").rev(), true),
            (N, TOTAL),
            "rev audit at ts {}",
            snap.ts()
        );
        assert_eq!(
            audit(snap.range("acct/".."acct0"), false),
            (N, TOTAL),
            "range audit at ts {}",
            snap.ts()
        );
        // A long-lived snapshot (renewed every 64 audits) keeps reading
        // exactly what it read first, while versions are collected around it.
        if audits.is_multiple_of(64) {
            drop(old.take()); // unpin the previous one first
            let o = db.snapshot();
            let bals = balances(o.prefix("acct/"));
            old = Some((o, bals));
        }
        let (o, bals) = old.as_ref().unwrap();
        assert_eq!(&balances(o.prefix("acct/")), bals, "repeatable reads at ts {}", o.ts());
        assert_eq!(bals.iter().sum::<u64>(), TOTAL);
        // A point read agrees with a scan of the same snapshot.
        let i = rng.gen_range(0..N);
        let scanned = snap.prefix(acct(i)).next().unwrap().unwrap();
        assert_eq!(&scanned.0[..], acct(i).as_bytes());
        assert_eq!(balance(snap.get(acct(i)).unwrap()), balance(Some(scanned.1)));
        audits += 1;
        if let Some(every) = gc_every {
            if audits.is_multiple_of(every) {
                db.collect_garbage();
            }
        }
        drop(snap);
        if finished {
            return audits;
        }
    }
}

/// Audits inside read-write transactions that write nothing: their commit
/// succeeds, returns the snapshot timestamp and is not counted as a commit.
fn tx_auditor(db: &Db, ctl: &Ctl) -> u64 {
    let mut audits = 0u64;
    ctl.start.wait();
    loop {
        ctl.wait_progress(audits * ctl.pace);
        let finished = ctl.done();
        let tx = db.begin();
        let snapshot = tx.snapshot_ts();
        assert_eq!(
            audit(tx.prefix("acct/"), false),
            (N, TOTAL),
            "tx audit at ts {snapshot}"
        );
        let sum: u64 = (0..N).map(|i| balance(tx.get(acct(i)).unwrap())).sum();
        assert_eq!(sum, TOTAL, "point-read audit at ts {snapshot}");
        assert_eq!(
            audit(tx.prefix("acct/").rev(), true),
            (N, TOTAL),
            "repeatable read at ts {snapshot}"
        );
        assert_eq!(
            tx.commit().unwrap(),
            snapshot,
            "a read-only commit returns its snapshot ts"
        );
        audits += 1;
        if finished {
            return audits;
        }
    }
}

/// Insert, then delete, batches of decoy keys on both sides of the account
/// range. Returns its commits (it never conflicts: nobody else writes them).
fn churn(db: &Db, ctl: &Ctl) -> u64 {
    let mut commits = 0;
    ctl.start.wait();
    let mut round = 0u64;
    // At least one insert and one delete round, however fast the writers are.
    while round < 2 || !ctl.done() {
        ctl.wait_progress(round * ctl.pace);
        let mut tx = db.begin();
        for i in 0..12 {
            for side in ["acct.", "acct0"] {
                let k = format!("{side}{i:04}");
                if round.is_multiple_of(2) {
                    tx.put(k, DECOY.to_string()).unwrap();
                } else {
                    tx.delete(k).unwrap();
                }
            }
        }
        tx.commit().expect("churn keys are written by the churn thread only");
        commits += 1;
        round += 1;
    }
    commits
}

/// Run the bank on `db`; returns (splits after setup, stats at the end).
fn run_bank(db: Db, gc_every: Option<u64>) -> (u64, bwtx::Stats) {
    // Accounts, plus fixed decoys next to the prefix that audits must skip.
    db.transaction(|tx| {
        for i in 0..N {
            tx.put(acct(i), INITIAL.to_string())?;
        }
        for k in DECOYS {
            tx.put(k, DECOY.to_string())?;
        }
        Ok(())
    })
    .unwrap();
    let setup_commits = 1u64;
    assert_eq!(db.stats().commits, setup_commits);
    let setup_splits = db.stats().splits;

    let total = transfers();
    // Writers, two snapshot auditors, one transaction auditor, churn.
    let ctl = Ctl {
        start: Barrier::new(WRITERS + 4),
        done: AtomicBool::new(false),
        writers_left: AtomicU64::new(WRITERS as u64),
        progress: AtomicU64::new(0),
        pace: pace(),
    };
    let (logs, audits, tx_audits, churn_commits) = std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (db, ctl) = (&db, &ctl);
                let n = total / WRITERS + usize::from(w < total % WRITERS);
                s.spawn(move || writer(db, 0xba4c_0000 + w as u64, n, ctl))
            })
            .collect();
        let auditors: Vec<_> = (0..2u64)
            .map(|a| {
                let (db, ctl) = (&db, &ctl);
                s.spawn(move || snapshot_auditor(db, 1000 + a, ctl, if a == 0 { gc_every } else { None }))
            })
            .collect();
        let txa = s.spawn(|| tx_auditor(&db, &ctl));
        let ch = s.spawn(|| churn(&db, &ctl));
        let logs: Vec<WriterLog> = writers.into_iter().map(|h| h.join().unwrap()).collect();
        let audits: u64 = auditors.into_iter().map(|h| h.join().unwrap()).sum();
        (logs, audits, txa.join().unwrap(), ch.join().unwrap())
    });

    let commits: u64 = setup_commits + churn_commits + logs.iter().map(|l| l.commits).sum::<u64>();
    let conflicts: u64 = logs.iter().map(|l| l.conflicts).sum();
    let gave_up: u64 = logs.iter().map(|l| l.gave_up).sum();
    let stats = db.stats();
    assert_eq!(stats.commits, commits, "commits counted by the threads");
    assert_eq!(stats.conflicts, conflicts, "conflicts counted by the threads");
    assert_eq!(stats.read_ts, commits, "commit timestamps are 1, 2, ... with no gaps");
    assert_eq!(stats.active_snapshots, 0);
    let transfer_commits: u64 = logs.iter().map(|l| l.commits).sum();
    assert_eq!(
        stats.versions_installed,
        (N + DECOYS.len()) as u64 + 2 * transfer_commits + 24 * churn_commits,
        "versions written by the commits"
    );
    let max_winner = logs.iter().map(|l| l.max_winner).max().unwrap();
    assert!(
        max_winner <= stats.read_ts,
        "every winner reported by a conflict committed"
    );
    assert!(audits >= 2 && tx_audits >= 1);

    // Final state: each balance is the initial one plus its net flow.
    let snap = db.snapshot();
    assert_eq!(audit(snap.prefix("acct/"), false), (N, TOTAL));
    for i in 0..N {
        let flow: i64 = logs.iter().map(|l| l.flow[i]).sum();
        assert_eq!(
            balance(snap.get(acct(i)).unwrap()) as i64,
            INITIAL as i64 + flow,
            "account {i}: no update lost, no refused commit applied"
        );
    }
    for k in DECOYS {
        assert_eq!(balance(snap.get(k).unwrap()), DECOY, "decoy {k}");
    }
    drop(snap);
    db.collect_garbage();
    let t = db.stats();
    assert_eq!(t.commits, commits, "collecting garbage commits nothing");
    eprintln!(
        "bank: {total} transfers, {} commits, {conflicts} conflicts ({gave_up} transfers gave up), \
         {audits} snapshot audits, {tx_audits} tx audits, {churn_commits} churn commits, \
         {} splits, {} merges, {} consolidations",
        t.commits, t.splits, t.merges, t.consolidations
    );
    (setup_splits, t)
}

/// Default configuration (background GC every 100 ms).
#[test]
fn bank_default_config() {
    run_bank(Db::in_memory(), Some(64));
}

/// Tiny pages, no background GC: versions pile up between explicit
/// `collect_garbage` calls, pages split on size and merge as decoys go.
#[test]
fn bank_tiny_pages() {
    let db = Options::new()
        .tree_config(bwtx::tree::Config::tiny())
        .gc_interval(None)
        .in_memory()
        .unwrap();
    let (setup_splits, end) = run_bank(db, Some(16));
    assert!(end.splits > setup_splits, "pages split during the run");
}

/// Tiny pages with an eager background sweeper racing the transactions.
#[test]
fn bank_tiny_pages_eager_gc() {
    let db = Options::new()
        .tree_config(bwtx::tree::Config::tiny())
        .gc_interval(Some(Duration::from_millis(1)))
        .in_memory()
        .unwrap();
    let (setup_splits, end) = run_bank(db, None);
    assert!(end.splits > setup_splits, "pages split during the run");
}
