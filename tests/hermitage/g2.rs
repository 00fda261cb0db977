//! G2: write skew on items and on predicates (allowed by SI, refused by
//! serializable), and the read-only transaction anomaly.

use crate::env::run;
use crate::ops::{commit_conflict, commit_ok, commit_read_only, get, kv, scan, state, Reason};

/// **G2-item, write skew.** T1 and T2 both read 1 = 10 and 2 = 20; T1 writes
/// 1 = 11, T2 writes 2 = 21. Each decided on a state the other changed: no
/// serial order gives both reads, so a serializable system refuses one. SI
/// only checks write-write conflicts, and the write sets are disjoint: both
/// commit, final state 11/21 (the anomaly SI allows). Under serializable T1
/// commits and T2 is refused (its read of key 1 is stale); final 11/20.
#[test]
pub(crate) fn g2_item_write_skew() {
    run(|env| {
        let mut t1 = env.begin();
        let mut t2 = env.begin();
        assert_eq!((get(&t1, "1"), get(&t1, "2")), (Some(10), Some(20)));
        assert_eq!((get(&t2, "1"), get(&t2, "2")), (Some(10), Some(20)));
        t1.put("1", "11").unwrap();
        t2.put("2", "21").unwrap();
        env.churn();
        let w = commit_ok(env, t1);
        if env.serializable() {
            assert_eq!(commit_conflict(env, t2, "1", w), Reason::Read);
            assert_eq!(state(&env.db), kv(&[("1", 11), ("2", 20)]), "{}", env.name);
            assert_eq!(env.db.stats().conflicts, 1);
            return;
        }
        commit_ok(env, t2);
        assert_eq!(state(&env.db), kv(&[("1", 11), ("2", 21)]), "{}", env.name);
        assert_eq!(env.db.stats().conflicts, 0);
    });
}

/// **G2, anti-dependency cycles (predicate write skew).** T1 and T2 both scan
/// for v % 3 == 0 and find nothing; T1 inserts 3 = 30, T2 inserts 4 = 42.
/// Each insert matches the predicate the other read, so no serial order is
/// consistent with both empty scans. SI allows it: both commit, and a fresh
/// scan for v % 3 == 0 now finds both. Under serializable T1 commits and T2
/// is refused: key 3 is a phantom in the range T2 scanned.
#[test]
pub(crate) fn g2_predicate_write_skew() {
    run(|env| {
        let mut t1 = env.begin();
        let mut t2 = env.begin();
        assert_eq!(scan(env, &t1, |v| v % 3 == 0), kv(&[]));
        assert_eq!(scan(env, &t2, |v| v % 3 == 0), kv(&[]));
        t1.put("3", "30").unwrap();
        t2.put("4", "42").unwrap();
        assert_eq!(scan(env, &t1, |v| v % 3 == 0), kv(&[("3", 30)]), "own insert");
        assert_eq!(scan(env, &t2, |v| v % 3 == 0), kv(&[("4", 42)]), "own insert");
        env.churn();
        let w = commit_ok(env, t1);
        if env.serializable() {
            assert_eq!(commit_conflict(env, t2, "3", w), Reason::Range);
            let t3 = env.begin();
            assert_eq!(scan(env, &t3, |v| v % 3 == 0), kv(&[("3", 30)]));
            commit_read_only(t3);
            assert_eq!(env.db.stats().conflicts, 1);
            return;
        }
        commit_ok(env, t2);
        let t3 = env.begin();
        assert_eq!(scan(env, &t3, |v| v % 3 == 0), kv(&[("3", 30), ("4", 42)]));
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
/// system refuses T1 (its scan read key 2 before T2's write), and does so
/// here; under SI T1 commits (no write-write conflict) and the final state
/// is 0/25. The read-only T3 commits under both levels.
#[test]
pub(crate) fn g2_two_edges_read_only_anomaly() {
    run(|env| {
        let mut t1 = env.begin();
        assert_eq!(scan(env, &t1, |_| true), kv(&[("1", 10), ("2", 20)]));
        let mut t2 = env.begin();
        t2.put("2", "25").unwrap();
        env.churn();
        let w = commit_ok(env, t2);
        let t3 = env.begin();
        assert_eq!(scan(env, &t3, |_| true), kv(&[("1", 10), ("2", 25)]));
        commit_read_only(t3);
        env.churn();
        t1.put("1", "0").unwrap();
        if env.serializable() {
            assert_eq!(commit_conflict(env, t1, "2", w), Reason::Range);
            assert_eq!(state(&env.db), kv(&[("1", 10), ("2", 25)]), "{}", env.name);
            assert_eq!(env.db.stats().conflicts, 1);
            return;
        }
        commit_ok(env, t1);
        assert_eq!(state(&env.db), kv(&[("1", 0), ("2", 25)]), "{}", env.name);
        assert_eq!(env.db.stats().conflicts, 0);
    });
}
