//! G-single: read skew, with item reads and with predicates.

use crate::env::run;
use crate::ops::{commit_conflict, commit_ok, commit_read_only, get, kv, scan, state};

/// **G-single, read skew.** T1 reads 1 = 10; T2 moves 2 from key 2 to key 1
/// (1 = 12, 2 = 18) and commits; T1 reads 2. Reading 18 would make T1 see a
/// total of 28 instead of 30. Under SI T1 reads 2 = 20 (its snapshot); the
/// final state is 12/18.
#[test]
pub(crate) fn g_single_read_skew() {
    run(|env| {
        let t1 = env.begin();
        assert_eq!(get(&t1, "1"), Some(10));
        let mut t2 = env.begin();
        assert_eq!(get(&t2, "1"), Some(10));
        assert_eq!(get(&t2, "2"), Some(20));
        t2.put("1", "12").unwrap();
        t2.put("2", "18").unwrap();
        env.churn();
        commit_ok(env, t2);
        env.churn();
        assert_eq!(get(&t1, "2"), Some(20), "no read skew");
        assert_eq!(scan(env, &t1, |_| true), kv(&[("1", 10), ("2", 20)]));
        commit_read_only(t1);
        assert_eq!(state(&env.db), kv(&[("1", 12), ("2", 18)]), "{}", env.name);
    });
}

/// **G-single, read skew with predicate dependencies.** T1 scans for
/// v % 5 == 0 (both keys); T2 sets 1 = 12 and commits; T1 scans for
/// v % 3 == 0. Finding 1 = 12 would mix two states. Under SI T1's second
/// scan reads its snapshot and finds nothing; the final state is 12/20.
#[test]
pub(crate) fn g_single_predicate() {
    run(|env| {
        let t1 = env.begin();
        assert_eq!(scan(env, &t1, |v| v % 5 == 0), kv(&[("1", 10), ("2", 20)]));
        let mut t2 = env.begin();
        t2.put("1", "12").unwrap();
        env.churn();
        commit_ok(env, t2);
        env.churn();
        assert_eq!(scan(env, &t1, |v| v % 3 == 0), kv(&[]), "old snapshot");
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
pub(crate) fn g_single_write_predicate() {
    run(|env| {
        let mut t1 = env.begin();
        assert_eq!(get(&t1, "1"), Some(10));
        let mut t2 = env.begin();
        t2.put("1", "12").unwrap();
        t2.put("2", "18").unwrap();
        env.churn();
        let w = commit_ok(env, t2);
        let hits = scan(env, &t1, |v| v == 20);
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
