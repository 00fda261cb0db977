//! G0 and P4 with the two keys in different keyspaces: key `1` lives in
//! keyspace `a`, key `2` in keyspace `b` (set up as 10 and 20 beside the
//! default keyspace's, which the cases leave alone). Conflicts are per
//! keyspace and key; a refused commit installs nothing in either keyspace;
//! the same key bytes in two keyspaces never conflict.

use bwtx::{Keyspace, Transaction};

use crate::env::{run, Env};
use crate::ops::{commit_conflict, commit_ok, int, kv, state};

/// Keyspaces `a` (key 1 = 10) and `b` (key 2 = 20), freshly created.
fn setup(env: &Env) -> (Keyspace, Keyspace) {
    let a = env.db.keyspace("a").unwrap();
    let b = env.db.keyspace("b").unwrap();
    let mut tx = env.db.begin();
    tx.put_in(&a, "1", "10").unwrap();
    tx.put_in(&b, "2", "20").unwrap();
    tx.commit().unwrap();
    (a, b)
}

fn get_in(tx: &Transaction, ks: &Keyspace, key: &str) -> Option<i64> {
    tx.get_in(ks, key).unwrap().and_then(|v| int(&v))
}

/// The contents of keyspaces `a` and `b` at the newest snapshot.
fn both(env: &Env, a: &Keyspace, b: &Keyspace) -> [Vec<(String, i64)>; 2] {
    let s = env.db.snapshot();
    [a, b].map(|ks| {
        s.range_in::<&[u8], _>(ks, ..)
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (String::from_utf8(k.to_vec()).unwrap(), int(&v).unwrap())
            })
            .collect()
    })
}

/// **G0 across keyspaces.** T1 and T2 both write a:1 and b:2, interleaved.
/// T1 commits first; T2's commit is refused on key 1 (of keyspace a), and
/// nothing of it lands in either keyspace: a = 11, b = 21.
#[test]
fn g0_write_cycles_across_keyspaces() {
    run(|env| {
        let (a, b) = setup(env);
        let default_before = state(&env.db);
        let mut t1 = env.begin();
        let mut t2 = env.begin();
        t1.put_in(&a, "1", "11").unwrap();
        env.churn();
        t2.put_in(&a, "1", "12").unwrap();
        t1.put_in(&b, "2", "21").unwrap();
        let w = commit_ok(env, t1);
        env.churn();
        t2.put_in(&b, "2", "22").unwrap();
        assert_eq!(get_in(&t2, &a, "1"), Some(12), "T2 reads its own writes");
        assert_eq!(get_in(&t2, &b, "2"), Some(22));
        commit_conflict(env, t2, "1", w);
        assert_eq!(both(env, &a, &b), [kv(&[("1", 11)]), kv(&[("2", 21)])], "{}", env.name);
        assert_eq!(
            state(&env.db),
            default_before,
            "{}: default keyspace untouched",
            env.name
        );
    });
}

/// **P4 across keyspaces.** T1 and T2 both read a:1 = 10 and write a:1 = 11;
/// T2 also writes b:2. T2's commit is refused on key 1 and its write to b
/// is not installed: a = 11, b = 20. Then the same key bytes in the two
/// keyspaces are written by two concurrent transactions: both commit.
#[test]
fn p4_lost_update_across_keyspaces() {
    run(|env| {
        let (a, b) = setup(env);
        let mut t1 = env.begin();
        let mut t2 = env.begin();
        assert_eq!(get_in(&t1, &a, "1"), Some(10));
        assert_eq!(get_in(&t2, &a, "1"), Some(10));
        t1.put_in(&a, "1", "11").unwrap();
        t2.put_in(&a, "1", "11").unwrap();
        t2.put_in(&b, "2", "21").unwrap();
        env.churn();
        let w = commit_ok(env, t1);
        commit_conflict(env, t2, "1", w);
        assert_eq!(both(env, &a, &b), [kv(&[("1", 11)]), kv(&[("2", 20)])], "{}", env.name);
        // Key "1" of b and key "1" of a: two keys, no conflict.
        let mut t3 = env.begin();
        let mut t4 = env.begin();
        assert_eq!(get_in(&t3, &b, "1"), None);
        assert_eq!(get_in(&t4, &a, "1"), Some(11));
        t3.put_in(&b, "1", "12").unwrap();
        t4.put_in(&a, "1", "12").unwrap();
        env.churn();
        commit_ok(env, t3);
        commit_ok(env, t4);
        assert_eq!(
            both(env, &a, &b),
            [kv(&[("1", 12)]), kv(&[("1", 12), ("2", 20)])],
            "{}",
            env.name
        );
    });
}
