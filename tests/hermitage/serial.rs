//! What serializable must not refuse (read-only transactions, writers whose
//! reads and writes are disjoint), and mixed levels in one database.

use bwtx::Isolation;

use crate::env::run;
use crate::ops::{commit_conflict, commit_ok, commit_read_only, get, kv, scan, state, Reason};

/// **Read-only transactions commit.** T1 reads 1 and scans; T2 reads both
/// keys, moves 2 from key 2 to key 1 and commits; T1 reads its snapshot
/// (10/20) again and commits. Under both levels: a transaction with no
/// writes serializes at its snapshot, so its commit never validates and
/// returns the snapshot timestamp.
#[test]
pub(crate) fn read_only_transactions_commit() {
    run(|env| {
        let t1 = env.begin();
        assert_eq!(get(&t1, "1"), Some(10));
        assert_eq!(scan(env, &t1, |_| true), kv(&[("1", 10), ("2", 20)]));
        let mut t2 = env.begin();
        assert_eq!((get(&t2, "1"), get(&t2, "2")), (Some(10), Some(20)));
        t2.put("1", "12").unwrap();
        t2.put("2", "18").unwrap();
        env.churn();
        commit_ok(env, t2);
        env.churn();
        assert_eq!(get(&t1, "2"), Some(20));
        assert_eq!(get(&t1, "3"), None);
        assert_eq!(scan(env, &t1, |_| true), kv(&[("1", 10), ("2", 20)]));
        commit_read_only(t1);
        assert_eq!(state(&env.db), kv(&[("1", 12), ("2", 18)]), "{}", env.name);
        assert_eq!(env.db.stats().conflicts, 0, "{}", env.name);
    });
}

/// **Disjoint writers commit.** Four concurrent writers, each reading,
/// scanning and writing only its own key: T1 key 1, T2 key 2, and T3, T4
/// insert the absent keys 3 and 4 after finding them absent (by a point read
/// and by a scan of `["3", "3/")`, `["4", "4/")`). Nothing one read was
/// written by another, so all four commit under both levels.
#[test]
pub(crate) fn disjoint_writers_commit() {
    run(|env| {
        let mut ts: Vec<_> = ["1", "2", "3", "4"].iter().map(|&k| (k, env.begin())).collect();
        for (k, t) in &ts {
            let found = t.range(k.as_bytes()..format!("{k}/").as_bytes()).count();
            assert_eq!(found, usize::from(*k <= "2"), "{k}");
        }
        env.churn();
        for (k, t) in &mut ts {
            let n = get(t, k).unwrap_or(0);
            t.put(*k, (n + 1).to_string()).unwrap();
        }
        env.churn();
        for (_, t) in ts {
            commit_ok(env, t);
        }
        assert_eq!(
            state(&env.db),
            kv(&[("1", 11), ("2", 21), ("3", 1), ("4", 1)]),
            "{}",
            env.name
        );
        assert_eq!(env.db.stats().conflicts, 0, "{}", env.name);
    });
}

/// **Mixed levels** (once per database, from the serializable set-up): a
/// write skew between a serializable S and a snapshot T, both reading keys 1
/// and 2, S writing 1 and T writing 2. If S commits first, T commits too: a
/// snapshot transaction never aborts because of what a serializable one
/// read. If T commits first, S is refused: its read of key 2 is stale.
#[test]
pub(crate) fn mixed_levels() {
    run(|env| {
        if !env.serializable() {
            return;
        }
        let begin = |level| {
            let t = env.db.begin_with(level);
            assert_eq!((get(&t, "1"), get(&t, "2")), (Some(10), Some(20)));
            t
        };
        let (mut s, mut t) = (begin(Isolation::Serializable), begin(Isolation::Snapshot));
        s.put("1", "11").unwrap();
        t.put("2", "21").unwrap();
        env.churn();
        commit_ok(env, s);
        commit_ok(env, t);
        assert_eq!(state(&env.db), kv(&[("1", 11), ("2", 21)]), "{}", env.name);
        let before = (get(&env.db.begin(), "1"), get(&env.db.begin(), "2"));
        assert_eq!(before, (Some(11), Some(21)));
        let mut s = env.db.begin_with(Isolation::Serializable);
        let mut t = env.db.begin_with(Isolation::Snapshot);
        assert_eq!((get(&s, "1"), get(&s, "2")), (Some(11), Some(21)));
        assert_eq!((get(&t, "1"), get(&t, "2")), (Some(11), Some(21)));
        s.put("1", "12").unwrap();
        t.put("2", "22").unwrap();
        env.churn();
        let w = commit_ok(env, t);
        assert_eq!(commit_conflict(env, s, "2", w), Reason::Read);
        assert_eq!(state(&env.db), kv(&[("1", 11), ("2", 22)]), "{}", env.name);
        assert_eq!(env.db.stats().conflicts, 1, "{}", env.name);
    });
}
