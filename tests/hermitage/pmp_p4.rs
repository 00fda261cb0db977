//! Predicate-many-preceders (PMP, read and write predicates) and lost
//! updates (P4).

use crate::env::run;
use crate::ops::{commit_conflict, commit_ok, commit_read_only, get, kv, scan, state};

/// **PMP, predicate-many-preceders (read predicate).** T1 scans for v == 30
/// (none); T2 inserts 3 = 30 and commits; T1 scans for v % 3 == 0. Under SI
/// T1's second scan reads its snapshot and finds nothing (no phantom); the
/// final state has 3 = 30.
#[test]
pub(crate) fn pmp_read_predicate() {
    run(|env| {
        let t1 = env.begin();
        assert_eq!(scan(env, &t1, |v| v == 30), kv(&[]));
        let mut t2 = env.begin();
        t2.put("3", "30").unwrap();
        env.churn();
        commit_ok(env, t2);
        env.churn();
        assert_eq!(scan(env, &t1, |v| v % 3 == 0), kv(&[]), "no phantom");
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
pub(crate) fn pmp_write_predicate() {
    run(|env| {
        let mut t1 = env.begin();
        let mut t2 = env.begin();
        t1.put("1", "20").unwrap();
        t1.put("2", "30").unwrap();
        let hits = scan(env, &t2, |v| v == 20);
        assert_eq!(hits, kv(&[("2", 20)]));
        for (k, _) in &hits {
            t2.delete(k).unwrap();
        }
        assert_eq!(
            scan(env, &t2, |_| true),
            kv(&[("1", 10)]),
            "T2's own delete hides key 2"
        );
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
pub(crate) fn p4_lost_update() {
    run(|env| {
        let mut t1 = env.begin();
        let mut t2 = env.begin();
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
