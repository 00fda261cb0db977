//! Hermitage: Martin Kleppmann's catalogue of isolation anomalies
//! (<https://github.com/ept/hermitage>), rewritten for a key-value API, with
//! the snapshot-isolation outcome of every case asserted exactly.
//!
//! Setup of every case: key `1` = 10 and key `2` = 20, committed by a setup
//! transaction. Keys are the decimal strings `"1"`, `"2"`, ...; values are
//! decimal strings. A "scan(pred)" is a range scan over *all* keys
//! (`tx.range::<&[u8], _>(..)`) with a client-side filter on the values; it is
//! run forwards and backwards, and both directions must agree.
//!
//! bwtx buffers writes until commit and validates them there (first committer
//! wins), so where PostgreSQL would block a statement and abort it when the
//! other transaction commits, bwtx lets the statement through and refuses the
//! commit with [`Error::Conflict`] (`key`: the contested key, `winner`: the
//! commit timestamp the winner's `commit()` returned, `snapshot`: the loser's
//! snapshot timestamp). Nothing of a refused commit is installed.
//!
//! Every case runs on two databases (see [`envs`]): the default configuration,
//! and tiny pages (`Config::tiny()`, no background GC) with ~300 filler keys
//! around the Hermitage keys, so that keys `1`..`4` live on different leaves,
//! plus "churn" commits between the steps of the interleaving that insert and
//! delete filler next to keys `1` and `2`, so the pages that hold them split
//! and merge while the transactions are open, each followed by a full
//! garbage collection. Filler values are not numbers,
//! so the value predicates never match them.

use std::cell::Cell;

use bwtx::{Db, Error, Iter, Options, Transaction};

/// A database to run a case on.
struct Env {
    name: &'static str,
    db: Db,
    /// Commit structure-modifying filler transactions between steps.
    churn: bool,
    round: Cell<u32>,
}

impl Env {
    /// Between two steps of an interleaving: on the tiny database, commit a
    /// transaction that inserts (odd rounds) or deletes (even rounds) 24
    /// filler keys right before and right after keys `1` and `2` (between
    /// them and the static filler), so that their leaves split or merge,
    /// then collect garbage on every page (the versions the open
    /// transactions read must survive it). Never touches a Hermitage key, so
    /// it never conflicts with a case's transactions and never changes what
    /// they read.
    fn churn(&self) {
        if !self.churn {
            return;
        }
        let round = self.round.get() + 1;
        self.round.set(round);
        let splits_before = self.db.stats().splits;
        let mut tx = self.db.begin();
        for side in ["0/zchurn", "1/churn", "1/zchurn", "2/churn"] {
            for i in 0..24 {
                let k = format!("{side}/{i:02}");
                if round % 2 == 1 {
                    tx.put(&k, "churn").unwrap();
                } else {
                    tx.delete(&k).unwrap();
                }
            }
        }
        tx.commit().expect("churn commits never conflict");
        // Collect garbage with the case's transactions open: the watermark
        // rises to the oldest of them, and every page is consolidated.
        self.db.collect_garbage();
        if round % 2 == 1 {
            assert!(
                self.db.stats().splits > splits_before,
                "{}: churn must split pages",
                self.name
            );
        }
    }
}

/// The two databases every case runs on.
fn envs() -> Vec<Env> {
    let tiny = Options::new()
        .tree_config(bwtx::tree::Config::tiny())
        .gc_interval(None)
        .in_memory()
        .unwrap();
    // ~300 filler keys: before key 1, between 1 and 2, 2 and 3, 3 and 4, after 4.
    for group in ["0", "1", "2", "3", "4", "5"] {
        tiny.transaction(|tx| {
            for i in 0..50 {
                tx.put(format!("{group}/fill/{i:03}"), "filler")?;
            }
            Ok(())
        })
        .unwrap();
    }
    assert!(
        tiny.stats().splits > 50,
        "the filler must spread the keys over many pages"
    );
    vec![
        Env {
            name: "default",
            db: Db::in_memory(),
            churn: false,
            round: Cell::new(0),
        },
        Env {
            name: "tiny",
            db: tiny,
            churn: true,
            round: Cell::new(0),
        },
    ]
}

/// Run `case` on each database, after the common setup (1 = 10, 2 = 20).
fn run(case: impl Fn(&Env)) {
    for env in envs() {
        let mut tx = env.db.begin();
        tx.put("1", "10").unwrap();
        tx.put("2", "20").unwrap();
        tx.commit().unwrap();
        assert_eq!(state(&env.db), kv(&[("1", 10), ("2", 20)]), "{}: setup", env.name);
        case(&env);
        assert_eq!(
            env.db.stats().active_snapshots,
            0,
            "{}: every transaction ended",
            env.name
        );
    }
}

fn int(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The numeric value of `key` in `tx`'s view.
fn get(tx: &Transaction, key: &str) -> Option<i64> {
    tx.get(key)
        .unwrap()
        .map(|v| int(&v).expect("Hermitage keys hold numbers"))
}

/// The `(key, value)` pairs with a numeric value matching `pred`, from an
/// iterator over everything.
fn numeric(it: Iter<'_>, rev: bool, pred: &dyn Fn(i64) -> bool) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = Vec::new();
    let mut prev: Option<bytes::Bytes> = None;
    let mut visit = |kv: bwtx::Result<(bytes::Bytes, bytes::Bytes)>| {
        let (k, v) = kv.unwrap();
        if let Some(p) = &prev {
            assert!(if rev { *p > k } else { *p < k }, "scan out of order: {p:?} then {k:?}");
        }
        prev = Some(k.clone());
        if let Some(n) = int(&v) {
            if pred(n) {
                out.push((String::from_utf8(k.to_vec()).unwrap(), n));
            }
        }
    };
    if rev {
        it.rev().for_each(&mut visit);
        out.reverse();
    } else {
        it.for_each(&mut visit);
    }
    out
}

/// scan(pred) in `tx`: a full range scan, filtered on the values client-side.
/// Forwards and backwards must agree.
fn scan(tx: &Transaction, pred: impl Fn(i64) -> bool) -> Vec<(String, i64)> {
    let fwd = numeric(tx.range::<&[u8], _>(..), false, &pred);
    let bwd = numeric(tx.range::<&[u8], _>(..), true, &pred);
    assert_eq!(fwd, bwd, "forward and reverse scans disagree");
    fwd
}

/// The committed state of the Hermitage keys, read by a fresh snapshot (by a
/// scan, checked against point reads).
fn state(db: &Db) -> Vec<(String, i64)> {
    let snap = db.snapshot();
    let all = numeric(snap.range::<&[u8], _>(..), false, &|_| true);
    assert_eq!(all, numeric(snap.range::<&[u8], _>(..), true, &|_| true));
    for (k, v) in &all {
        assert_eq!(snap.get(k).unwrap().and_then(|b| int(&b)), Some(*v));
    }
    all
}

fn kv(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

/// A read-only commit succeeds and returns the snapshot timestamp.
fn commit_read_only(tx: Transaction) {
    let snap = tx.snapshot_ts();
    assert_eq!(tx.write_count(), 0);
    assert_eq!(tx.commit().unwrap(), snap, "a read-only commit returns its snapshot ts");
}

/// Commit `tx` and assert it loses to the commit at `winner` on `key`, that
/// the refusal is counted, and that nothing of it was installed.
fn commit_conflict(env: &Env, tx: Transaction, key: &str, winner: u64) {
    let snapshot = tx.snapshot_ts();
    assert!(winner > snapshot, "the winner committed after the loser's snapshot");
    let (commits, conflicts, read_ts) = {
        let s = env.db.stats();
        (s.commits, s.conflicts, s.read_ts)
    };
    let before = state(&env.db);
    match tx.commit() {
        Err(e) => {
            assert!(e.is_conflict(), "{}: expected a conflict, got {e:?}", env.name);
            match e {
                Error::Conflict {
                    key: k,
                    winner: w,
                    snapshot: s,
                } => {
                    assert_eq!(&k[..], key.as_bytes(), "{}: conflict key", env.name);
                    assert_eq!(w, winner, "{}: winner ts", env.name);
                    assert_eq!(s, snapshot, "{}: loser's snapshot ts", env.name);
                }
                other => panic!("{}: expected Error::Conflict, got {other:?}", env.name),
            }
        }
        Ok(ts) => panic!("{}: commit at {ts} should have lost to {winner} on {key}", env.name),
    }
    let s = env.db.stats();
    assert_eq!(s.conflicts, conflicts + 1, "{}: the conflict is counted", env.name);
    assert_eq!(s.commits, commits, "{}: a refused commit is not counted", env.name);
    assert_eq!(s.read_ts, read_ts, "{}: a refused commit takes no timestamp", env.name);
    assert_eq!(
        state(&env.db),
        before,
        "{}: a refused commit installs nothing",
        env.name
    );
}

/// Commit `tx` (which wrote something) and check it took the next timestamp.
fn commit_ok(env: &Env, tx: Transaction) -> u64 {
    let expect = env.db.stats().read_ts + 1;
    let ts = tx
        .commit()
        .unwrap_or_else(|e| panic!("{}: commit failed: {e:?}", env.name));
    assert_eq!(ts, expect, "{}: commit timestamps are consecutive", env.name);
    assert!(
        env.db.snapshot().ts() >= ts,
        "{}: a commit is visible when it returns",
        env.name
    );
    ts
}

/// **G0, write cycles (dirty writes).** T1 and T2 both write keys 1 and 2,
/// interleaved. If both could commit, the final state could mix them
/// (1 from one, 2 from the other). Under SI (first committer wins) T1 commits
/// first and T2's commit is refused on key 1; the final state is T1's, 11/21.
#[test]
fn g0_write_cycles() {
    run(|env| {
        let conflicts = env.db.stats().conflicts;
        let mut t1 = env.db.begin();
        let mut t2 = env.db.begin();
        t1.put("1", "11").unwrap();
        env.churn();
        t2.put("1", "12").unwrap();
        t1.put("2", "21").unwrap();
        let w = commit_ok(env, t1);
        env.churn();
        t2.put("2", "22").unwrap();
        assert_eq!(get(&t2, "1"), Some(12), "T2 reads its own writes");
        assert_eq!(get(&t2, "2"), Some(22));
        commit_conflict(env, t2, "1", w);
        assert_eq!(state(&env.db), kv(&[("1", 11), ("2", 21)]), "{}", env.name);
        assert_eq!(env.db.stats().conflicts, conflicts + 1);
    });
}

/// **G1a, aborted reads (dirty reads).** T1 writes 1 = 101 and aborts; T2
/// must never see 101, neither before nor after the abort. Under SI: T2 reads
/// 10 both times, and the state stays 10/20.
#[test]
fn g1a_aborted_reads() {
    run(|env| {
        let mut t1 = env.db.begin();
        let t2 = env.db.begin();
        t1.put("1", "101").unwrap();
        assert_eq!(get(&t1, "1"), Some(101));
        assert_eq!(get(&t2, "1"), Some(10));
        env.churn();
        t1.rollback();
        assert_eq!(get(&t2, "1"), Some(10));
        assert_eq!(scan(&t2, |_| true), kv(&[("1", 10), ("2", 20)]));
        commit_read_only(t2);
        // A transaction begun after the abort does not see it either.
        let t3 = env.db.begin();
        assert_eq!(get(&t3, "1"), Some(10));
        commit_read_only(t3);
        assert_eq!(state(&env.db), kv(&[("1", 10), ("2", 20)]), "{}", env.name);
        assert_eq!(env.db.stats().conflicts, 0);
    });
}

/// **G1b, intermediate reads.** T1 writes 1 = 101, then 1 = 11, and commits;
/// T2 must never see the intermediate 101. Under SI T2 reads 10 before and
/// after T1's commit (its snapshot predates it); the final state is 11/20.
#[test]
fn g1b_intermediate_reads() {
    run(|env| {
        let mut t1 = env.db.begin();
        let t2 = env.db.begin();
        t1.put("1", "101").unwrap();
        assert_eq!(get(&t2, "1"), Some(10));
        t1.put("1", "11").unwrap();
        env.churn();
        commit_ok(env, t1);
        assert_eq!(get(&t2, "1"), Some(10), "T2 keeps its snapshot");
        commit_read_only(t2);
        assert_eq!(state(&env.db), kv(&[("1", 11), ("2", 20)]), "{}", env.name);
    });
}

/// **G1c, circular information flow.** T1 writes 1, T2 writes 2, then each
/// reads the key the other wrote. G1c proper (each reads the other's write, a
/// cycle of write-read edges) cannot happen: neither sees the other's
/// uncommitted write, T1 reads 2 = 20 and T2 reads 1 = 10. Both commit under
/// SI (disjoint write sets), which leaves a cycle of read-write
/// anti-dependencies (a write skew a serializable system would refuse): the
/// final state 11/22 is allowed under SI and asserted here.
#[test]
fn g1c_circular_information_flow() {
    run(|env| {
        let mut t1 = env.db.begin();
        let mut t2 = env.db.begin();
        t1.put("1", "11").unwrap();
        t2.put("2", "22").unwrap();
        env.churn();
        assert_eq!(get(&t1, "2"), Some(20));
        assert_eq!(get(&t2, "1"), Some(10));
        let a = commit_ok(env, t1);
        let b = commit_ok(env, t2);
        assert!(b > a);
        assert_eq!(state(&env.db), kv(&[("1", 11), ("2", 22)]), "{}", env.name);
        assert_eq!(env.db.stats().conflicts, 0);
    });
}

/// **OTV, observed transaction vanishes.** T1 writes 1 = 11, 2 = 19 and
/// commits; T2 writes 1 = 12 and 2 = 18 on an older snapshot; T3 reads 1 and
/// 2 around T2's writes. T3 must read one snapshot: never T1's 1 with T2's 2.
/// Under SI T2's commit is refused (key 1, won by T1), a T3 begun before T1's
/// commit reads 10/20 and one begun after it reads 11/19; the final state is
/// 11/19.
#[test]
fn otv_observed_transaction_vanishes() {
    run(|env| {
        let mut t1 = env.db.begin();
        let mut t2 = env.db.begin();
        let t3_early = env.db.begin();
        t1.put("1", "11").unwrap();
        t1.put("2", "19").unwrap();
        t2.put("1", "12").unwrap();
        env.churn();
        let w = commit_ok(env, t1);
        let t3 = env.db.begin();
        assert_eq!(get(&t3, "1"), Some(11));
        assert_eq!(get(&t3_early, "1"), Some(10));
        t2.put("2", "18").unwrap();
        env.churn();
        assert_eq!(get(&t3, "2"), Some(19));
        assert_eq!(get(&t3_early, "2"), Some(20));
        commit_conflict(env, t2, "1", w);
        assert_eq!(get(&t3, "1"), Some(11));
        assert_eq!(get(&t3, "2"), Some(19));
        assert_eq!(scan(&t3, |_| true), kv(&[("1", 11), ("2", 19)]));
        assert_eq!(scan(&t3_early, |_| true), kv(&[("1", 10), ("2", 20)]));
        commit_read_only(t3);
        commit_read_only(t3_early);
        assert_eq!(state(&env.db), kv(&[("1", 11), ("2", 19)]), "{}", env.name);
    });
}

/// **PMP, predicate-many-preceders (read predicate).** T1 scans for v == 30
/// (none); T2 inserts 3 = 30 and commits; T1 scans for v % 3 == 0. Under SI
/// T1's second scan reads its snapshot and finds nothing (no phantom); the
/// final state has 3 = 30.
#[test]
fn pmp_read_predicate() {
    run(|env| {
        let t1 = env.db.begin();
        assert_eq!(scan(&t1, |v| v == 30), kv(&[]));
        let mut t2 = env.db.begin();
        t2.put("3", "30").unwrap();
        env.churn();
        commit_ok(env, t2);
        env.churn();
        assert_eq!(scan(&t1, |v| v % 3 == 0), kv(&[]), "no phantom");
        assert_eq!(get(&t1, "3"), None);
        commit_read_only(t1);
        assert_eq!(state(&env.db), kv(&[("1", 10), ("2", 20), ("3", 30)]), "{}", env.name);
    });
}

/// **PMP, write predicate.** T1 adds 10 to every value (1 = 20, 2 = 30); T2
/// deletes the rows with v == 20, which in its snapshot is key 2; T1 commits,
/// then T2. If T2's delete went through, key 2 (now 30, no longer matching)
/// would vanish. Under SI T2's commit is refused on key 2 (won by T1); the
/// final state is 20/30.
#[test]
fn pmp_write_predicate() {
    run(|env| {
        let mut t1 = env.db.begin();
        let mut t2 = env.db.begin();
        t1.put("1", "20").unwrap();
        t1.put("2", "30").unwrap();
        let hits = scan(&t2, |v| v == 20);
        assert_eq!(hits, kv(&[("2", 20)]));
        for (k, _) in &hits {
            t2.delete(k).unwrap();
        }
        assert_eq!(scan(&t2, |_| true), kv(&[("1", 10)]), "T2's own delete hides key 2");
        env.churn();
        let w = commit_ok(env, t1);
        commit_conflict(env, t2, "2", w);
        assert_eq!(state(&env.db), kv(&[("1", 20), ("2", 30)]), "{}", env.name);
    });
}

/// **P4, lost update.** T1 and T2 both read 1 = 10 and write 1 = 11 (an
/// increment each). If both committed, one increment would be lost. Under SI
/// T2's commit is refused on key 1 (won by T1); the final state is 11/20.
#[test]
fn p4_lost_update() {
    run(|env| {
        let mut t1 = env.db.begin();
        let mut t2 = env.db.begin();
        assert_eq!(get(&t1, "1"), Some(10));
        assert_eq!(get(&t2, "1"), Some(10));
        t1.put("1", "11").unwrap();
        t2.put("1", "11").unwrap();
        env.churn();
        let w = commit_ok(env, t1);
        commit_conflict(env, t2, "1", w);
        assert_eq!(state(&env.db), kv(&[("1", 11), ("2", 20)]), "{}", env.name);
    });
}

/// **G-single, read skew.** T1 reads 1 = 10; T2 moves 2 from key 2 to key 1
/// (1 = 12, 2 = 18) and commits; T1 reads 2. Reading 18 would make T1 see a
/// total of 28 instead of 30. Under SI T1 reads 2 = 20 (its snapshot); the
/// final state is 12/18.
#[test]
fn g_single_read_skew() {
    run(|env| {
        let t1 = env.db.begin();
        assert_eq!(get(&t1, "1"), Some(10));
        let mut t2 = env.db.begin();
        assert_eq!(get(&t2, "1"), Some(10));
        assert_eq!(get(&t2, "2"), Some(20));
        t2.put("1", "12").unwrap();
        t2.put("2", "18").unwrap();
        env.churn();
        commit_ok(env, t2);
        env.churn();
        assert_eq!(get(&t1, "2"), Some(20), "no read skew");
        assert_eq!(scan(&t1, |_| true), kv(&[("1", 10), ("2", 20)]));
        commit_read_only(t1);
        assert_eq!(state(&env.db), kv(&[("1", 12), ("2", 18)]), "{}", env.name);
    });
}

/// **G-single, read skew with predicate dependencies.** T1 scans for
/// v % 5 == 0 (both keys); T2 sets 1 = 12 and commits; T1 scans for
/// v % 3 == 0. Finding 1 = 12 would mix two states. Under SI T1's second
/// scan reads its snapshot and finds nothing; the final state is 12/20.
#[test]
fn g_single_predicate() {
    run(|env| {
        let t1 = env.db.begin();
        assert_eq!(scan(&t1, |v| v % 5 == 0), kv(&[("1", 10), ("2", 20)]));
        let mut t2 = env.db.begin();
        t2.put("1", "12").unwrap();
        env.churn();
        commit_ok(env, t2);
        env.churn();
        assert_eq!(scan(&t1, |v| v % 3 == 0), kv(&[]), "old snapshot");
        commit_read_only(t1);
        assert_eq!(state(&env.db), kv(&[("1", 12), ("2", 20)]), "{}", env.name);
    });
}

/// **G-single, read skew with write predicate.** T1 reads 1 = 10; T2 sets
/// 1 = 12, 2 = 18 and commits; T1 deletes the rows with v == 20, which in its
/// snapshot is key 2 (it sees 20, though the committed value is now 18).
/// Under SI T1's commit is refused on key 2 (won by T2); the final state is
/// 12/18.
#[test]
fn g_single_write_predicate() {
    run(|env| {
        let mut t1 = env.db.begin();
        assert_eq!(get(&t1, "1"), Some(10));
        let mut t2 = env.db.begin();
        t2.put("1", "12").unwrap();
        t2.put("2", "18").unwrap();
        env.churn();
        let w = commit_ok(env, t2);
        let hits = scan(&t1, |v| v == 20);
        assert_eq!(hits, kv(&[("2", 20)]), "T1 sees its snapshot's 20");
        for (k, _) in &hits {
            t1.delete(k).unwrap();
        }
        assert_eq!(get(&t1, "2"), None);
        env.churn();
        commit_conflict(env, t1, "2", w);
        assert_eq!(state(&env.db), kv(&[("1", 12), ("2", 18)]), "{}", env.name);
    });
}

/// **G2-item, write skew.** T1 and T2 both read 1 = 10 and 2 = 20; T1 writes
/// 1 = 11, T2 writes 2 = 21. Each decided on a state the other changed: no
/// serial order gives both reads, so a serializable system refuses one. SI
/// only checks write-write conflicts, and the write sets are disjoint: both
/// commit, final state 11/21 (the anomaly SI allows).
#[test]
fn g2_item_write_skew() {
    run(|env| {
        let mut t1 = env.db.begin();
        let mut t2 = env.db.begin();
        assert_eq!((get(&t1, "1"), get(&t1, "2")), (Some(10), Some(20)));
        assert_eq!((get(&t2, "1"), get(&t2, "2")), (Some(10), Some(20)));
        t1.put("1", "11").unwrap();
        t2.put("2", "21").unwrap();
        env.churn();
        commit_ok(env, t1);
        commit_ok(env, t2);
        assert_eq!(state(&env.db), kv(&[("1", 11), ("2", 21)]), "{}", env.name);
        assert_eq!(env.db.stats().conflicts, 0);
    });
}

/// **G2, anti-dependency cycles (predicate write skew).** T1 and T2 both scan
/// for v % 3 == 0 and find nothing; T1 inserts 3 = 30, T2 inserts 4 = 42.
/// Each insert matches the predicate the other read, so no serial order is
/// consistent with both empty scans. SI allows it: both commit, and a fresh
/// scan for v % 3 == 0 now finds both.
#[test]
fn g2_predicate_write_skew() {
    run(|env| {
        let mut t1 = env.db.begin();
        let mut t2 = env.db.begin();
        assert_eq!(scan(&t1, |v| v % 3 == 0), kv(&[]));
        assert_eq!(scan(&t2, |v| v % 3 == 0), kv(&[]));
        t1.put("3", "30").unwrap();
        t2.put("4", "42").unwrap();
        assert_eq!(scan(&t1, |v| v % 3 == 0), kv(&[("3", 30)]), "own insert");
        assert_eq!(scan(&t2, |v| v % 3 == 0), kv(&[("4", 42)]), "own insert");
        env.churn();
        commit_ok(env, t1);
        commit_ok(env, t2);
        let t3 = env.db.begin();
        assert_eq!(scan(&t3, |v| v % 3 == 0), kv(&[("3", 30), ("4", 42)]));
        commit_read_only(t3);
        assert_eq!(
            state(&env.db),
            kv(&[("1", 10), ("2", 20), ("3", 30), ("4", 42)]),
            "{}",
            env.name
        );
        assert_eq!(env.db.stats().conflicts, 0);
    });
}

/// **G2 with two anti-dependency edges (Fekete et al.'s read-only anomaly).**
/// T1 reads everything (10/20); T2 sets 2 = 25 and commits; T3 reads
/// everything (10/25) and commits; then T1 sets 1 = 0 and commits. T3 saw
/// T2's effect but not T1's, although T1 must precede T2 (T1 read 2 before
/// T2 wrote it): no serial order explains the read-only T3. A serializable
/// system refuses T1; under SI T1 commits (no write-write conflict) and the
/// final state is 0/25.
#[test]
fn g2_two_edges_read_only_anomaly() {
    run(|env| {
        let mut t1 = env.db.begin();
        assert_eq!(scan(&t1, |_| true), kv(&[("1", 10), ("2", 20)]));
        let mut t2 = env.db.begin();
        t2.put("2", "25").unwrap();
        env.churn();
        commit_ok(env, t2);
        let t3 = env.db.begin();
        assert_eq!(scan(&t3, |_| true), kv(&[("1", 10), ("2", 25)]));
        commit_read_only(t3);
        env.churn();
        t1.put("1", "0").unwrap();
        commit_ok(env, t1);
        assert_eq!(state(&env.db), kv(&[("1", 0), ("2", 25)]), "{}", env.name);
        assert_eq!(env.db.stats().conflicts, 0);
    });
}
