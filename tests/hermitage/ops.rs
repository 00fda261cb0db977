//! Reads, value-predicate scans (both directions), the final state, and the
//! checks of a commit's outcome.

use bwtx::{ConflictReason, Db, Error, Isolation, Iter, Transaction};

use crate::env::Env;

pub(crate) fn int(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The numeric value of `key` in `tx`'s view.
pub(crate) fn get(tx: &Transaction, key: &str) -> Option<i64> {
    tx.get(key)
        .unwrap()
        .map(|v| int(&v).expect("Hermitage keys hold numbers"))
}

/// The `(key, value)` pairs with a numeric value matching `pred`, from an
/// iterator over everything.
pub(crate) fn numeric(it: Iter<'_>, rev: bool, pred: &dyn Fn(i64) -> bool) -> Vec<(String, i64)> {
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
///
/// A serializable transaction on the churning database scans instead the
/// ten ranges `["d", "d/")` for the digits `d`, which hold every Hermitage
/// key and none of the filler (filler keys all start with `"d/"`): a
/// serializable scan validates its range at commit, and the churn's filler
/// inserts into a full range would be phantoms that abort it. The ranges
/// still cover absent keys such as `3` and `4`, so inserting one is a
/// phantom in them.
pub(crate) fn scan(env: &Env, tx: &Transaction, pred: impl Fn(i64) -> bool) -> Vec<(String, i64)> {
    if env.churn && tx.isolation() == Isolation::Serializable {
        let mut out = Vec::new();
        for d in 0..10 {
            let (lo, hi) = (d.to_string(), format!("{d}/"));
            let fwd = numeric(tx.range(lo.as_bytes()..hi.as_bytes()), false, &pred);
            let bwd = numeric(tx.range(lo.as_bytes()..hi.as_bytes()), true, &pred);
            assert_eq!(fwd, bwd, "forward and reverse scans disagree");
            out.extend(fwd);
        }
        return out;
    }
    let fwd = numeric(tx.range::<&[u8], _>(..), false, &pred);
    let bwd = numeric(tx.range::<&[u8], _>(..), true, &pred);
    assert_eq!(fwd, bwd, "forward and reverse scans disagree");
    fwd
}

/// The committed state of the Hermitage keys, read by a fresh snapshot (by a
/// scan, checked against point reads).
pub(crate) fn state(db: &Db) -> Vec<(String, i64)> {
    let snap = db.snapshot();
    let all = numeric(snap.range::<&[u8], _>(..), false, &|_| true);
    assert_eq!(all, numeric(snap.range::<&[u8], _>(..), true, &|_| true));
    for (k, v) in &all {
        assert_eq!(snap.get(k).unwrap().and_then(|b| int(&b)), Some(*v));
    }
    all
}

pub(crate) fn kv(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

/// A read-only commit succeeds and returns the snapshot timestamp.
pub(crate) fn commit_read_only(tx: Transaction) {
    let snap = tx.snapshot_ts();
    assert_eq!(tx.write_count(), 0);
    assert_eq!(tx.commit().unwrap(), snap, "a read-only commit returns its snapshot ts");
}

/// Commit `tx` and assert it loses to the commit at `winner` on `key`, that
/// the refusal is counted, and that nothing of it was installed; the reason
/// (under SI always a write-write conflict; under serializable it may be the
/// validation of a read or a scanned range, see [`Reason`]).
pub(crate) fn commit_conflict(env: &Env, tx: Transaction, key: &str, winner: u64) -> Reason {
    let snapshot = tx.snapshot_ts();
    assert!(winner > snapshot, "the winner committed after the loser's snapshot");
    let (commits, conflicts, read_ts) = {
        let s = env.db.stats();
        (s.commits, s.conflicts, s.read_ts)
    };
    let before = state(&env.db);
    let reason = match tx.commit() {
        Err(Error::Conflict {
            key: k,
            winner: w,
            snapshot: s,
            reason,
        }) => {
            assert_eq!(&k[..], key.as_bytes(), "{}: conflict key ({reason})", env.name);
            assert_eq!(w, winner, "{}: winner ts", env.name);
            assert_eq!(s, snapshot, "{}: loser's snapshot ts", env.name);
            match *reason {
                ConflictReason::Write => Reason::Write,
                ConflictReason::Read => Reason::Read,
                ConflictReason::Range { .. } => Reason::Range,
                other => panic!("{}: unknown reason {other:?}", env.name),
            }
        }
        Err(e) => panic!("{}: expected Error::Conflict, got {e:?}", env.name),
        Ok(ts) => panic!("{}: commit at {ts} should have lost to {winner} on {key}", env.name),
    };
    if !env.serializable() {
        assert_eq!(
            reason,
            Reason::Write,
            "{}: SI refuses only write-write conflicts",
            env.name
        );
    }
    let s = env.db.stats();
    assert_eq!(s.conflicts, conflicts + 1, "{}: the conflict is counted", env.name);
    assert_eq!(s.commits, commits, "{}: a refused commit is not counted", env.name);
    // A write conflict is found before the commit takes a timestamp; a read
    // is validated after (against the versions below it), so that refusal
    // has used one timestamp, which commits nothing.
    let used = u64::from(reason != Reason::Write);
    assert_eq!(
        s.read_ts,
        read_ts + used,
        "{}: timestamps used by the refusal",
        env.name
    );
    assert_eq!(
        state(&env.db),
        before,
        "{}: a refused commit installs nothing",
        env.name
    );
    reason
}

/// Why a commit was refused ([`ConflictReason`] without the range's bounds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Both wrote the key.
    Write,
    /// The loser read the key (serializable only).
    Read,
    /// The loser scanned a range holding the key (serializable only).
    Range,
}

/// Commit `tx` (which wrote something) and check it took the next timestamp.
pub(crate) fn commit_ok(env: &Env, tx: Transaction) -> u64 {
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
