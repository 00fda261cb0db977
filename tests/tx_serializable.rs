//! Serializable isolation (issue 12, item 2): a serializable transaction
//! with writes is refused when a key it read (found or absent) or a key in a
//! range it scanned was written by a transaction that committed after its
//! snapshot and before it. Write skew on keys (G2-item) and through ranges
//! (phantoms, G2) aborts exactly one transaction under `Serializable` and
//! commits both under `Snapshot`; read-only and disjoint transactions
//! commit; scans dropped early conflict only on what they yielded; levels
//! mix; the error names the key, range and winner; a refused commit leaves
//! no gap in a durable log; evicted leaves are validated without being
//! faulted in; and a 4-thread "at least one doctor on call" workload keeps
//! its invariant.

mod common;

use std::ops::Bound;
use std::sync::Arc;

use bwtx::fs::FaultFs;
use bwtx::{ConflictReason, Db, Durability, Error, Isolation, Options, Transaction};
use bytes::Bytes;

use common::{fault_opts, DIR};

const SER: Isolation = Isolation::Serializable;
const SI: Isolation = Isolation::Snapshot;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn db_with(pairs: &[(&str, &str)]) -> Db {
    let db = Db::in_memory();
    let mut tx = db.begin();
    for (k, v) in pairs {
        tx.put(k, v).unwrap();
    }
    tx.commit().unwrap();
    db
}

/// The conflict's (key, winner, reason), or a panic naming what came instead.
fn conflict(r: bwtx::Result<u64>) -> (Bytes, u64, ConflictReason) {
    match r {
        Err(Error::Conflict {
            key, winner, reason, ..
        }) => (key, winner, *reason),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// Keys in a prefix, as a transaction sees them.
fn count(tx: &Transaction, prefix: &str) -> usize {
    tx.prefix(prefix).inspect(|kv| assert!(kv.is_ok())).count()
}

/// Two doctors on call; each transaction checks both are on call and takes
/// one off. Under SI both commit (write skew, G2-item); under serializable
/// the second committer is refused on the key the first wrote.
fn on_call_skew(level: Isolation) -> (bwtx::Result<u64>, bwtx::Result<u64>) {
    let db = db_with(&[("alice", "on"), ("bob", "on")]);
    let mut t1 = db.begin_with(level);
    let mut t2 = db.begin_with(level);
    for t in [&t1, &t2] {
        assert_eq!(t.get("alice").unwrap().as_deref(), Some(&b"on"[..]));
        assert_eq!(t.get("bob").unwrap().as_deref(), Some(&b"on"[..]));
    }
    t1.put("alice", "off").unwrap();
    t2.put("bob", "off").unwrap();
    (t1.commit(), t2.commit())
}

#[test]
fn write_skew_on_keys_aborts_one_under_serializable_only() {
    let (r1, r2) = on_call_skew(SI);
    assert!(r1.is_ok() && r2.is_ok(), "SI lets write skew commit");

    let (r1, r2) = on_call_skew(SER);
    let won = r1.unwrap();
    let (key, winner, reason) = conflict(r2);
    assert_eq!((&key[..], winner, reason), (&b"alice"[..], won, ConflictReason::Read));
}

/// Shifts in `shift/`: each transaction counts the booked shifts and books
/// one more if fewer than 2 (uniqueness checked by a scan). Under SI both
/// insert (G2 through a phantom); under serializable the second is refused
/// on the range it scanned.
fn booking_skew(level: Isolation) -> (bwtx::Result<u64>, bwtx::Result<u64>) {
    let db = db_with(&[("shift/1", "x"), ("zzz", "other")]);
    let mut t1 = db.begin_with(level);
    let mut t2 = db.begin_with(level);
    assert_eq!(count(&t1, "shift/"), 1);
    assert_eq!(count(&t2, "shift/"), 1);
    t1.put("shift/2", "t1").unwrap();
    t2.put("shift/3", "t2").unwrap();
    (t1.commit(), t2.commit())
}

#[test]
fn phantom_write_skew_through_a_range_aborts_one_under_serializable_only() {
    let (r1, r2) = booking_skew(SI);
    assert!(r1.is_ok() && r2.is_ok(), "SI lets the phantom through");

    let (r1, r2) = booking_skew(SER);
    let won = r1.unwrap();
    let (key, winner, reason) = conflict(r2);
    assert_eq!((&key[..], winner), (&b"shift/2"[..], won));
    assert_eq!(
        reason,
        ConflictReason::Range {
            start: Bound::Included(b("shift/")),
            end: Bound::Excluded(b("shift0")),
        }
    );
}

#[test]
fn a_delete_inside_a_scanned_range_counts() {
    let db = db_with(&[("r/a", "1"), ("r/b", "2")]);
    let mut t1 = db.begin_with(SER);
    assert_eq!(t1.range("r/".."r0").count(), 2);
    t1.put("total", "2").unwrap();
    let mut t2 = db.begin();
    t2.delete("r/b").unwrap();
    let won = t2.commit().unwrap();
    let (key, winner, _) = conflict(t1.commit());
    assert_eq!((&key[..], winner), (&b"r/b"[..], won));
}

#[test]
fn read_only_serializable_transactions_never_abort() {
    let db = db_with(&[("a", "1"), ("b", "1")]);
    let t1 = db.begin_with(SER);
    let s = t1.snapshot_ts();
    assert_eq!(t1.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(t1.get("absent").unwrap(), None);
    assert_eq!(t1.range::<&str, _>(..).count(), 2);
    db.transaction(|tx| {
        tx.put("a", "2")?;
        tx.put("absent", "now")?;
        tx.put("c", "new")
    })
    .unwrap();
    // Serializes at its snapshot: commits, at the snapshot timestamp.
    assert_eq!(t1.commit().unwrap(), s);
}

#[test]
fn disjoint_serializable_writers_commit() {
    let db = db_with(&[("a", "1"), ("b", "1"), ("m", "1")]);
    let mut t1 = db.begin_with(SER);
    let mut t2 = db.begin_with(SER);
    t1.get("a").unwrap();
    t1.get("m").unwrap();
    assert_eq!(t1.range("a".."b").count(), 1);
    t1.put("a", "2").unwrap();
    t2.get("b").unwrap();
    t2.get("m").unwrap();
    t2.put("b", "2").unwrap();
    let c1 = t1.commit().unwrap();
    let c2 = t2.commit().unwrap();
    assert!(c2 > c1);
}

#[test]
fn an_absent_key_read_then_inserted_by_another_aborts() {
    let db = db_with(&[("x", "1")]);
    let mut t1 = db.begin_with(SER);
    assert_eq!(t1.get("ghost").unwrap(), None);
    t1.put("x", "2").unwrap();
    let mut t2 = db.begin();
    t2.put("ghost", "boo").unwrap();
    let won = t2.commit().unwrap();
    let (key, winner, reason) = conflict(t1.commit());
    assert_eq!((&key[..], winner, reason), (&b"ghost"[..], won, ConflictReason::Read));
    // Retried on a fresh snapshot, it commits.
    let mut t3 = db.begin_with(SER);
    assert!(t3.get("ghost").unwrap().is_some());
    t3.put("x", "2").unwrap();
    t3.commit().unwrap();
}

#[test]
fn keys_answered_by_the_own_write_set_are_not_read() {
    let db = db_with(&[("k", "0")]);
    let mut t1 = db.begin_with(SER);
    t1.put("other", "1").unwrap();
    t1.put("k", "mine").unwrap();
    assert_eq!(t1.get("k").unwrap().as_deref(), Some(&b"mine"[..]));
    // A later write to "k" by another would be a write-write conflict; a
    // write to a key never read is nothing.
    db.transaction(|tx| tx.put("unrelated", "1")).unwrap();
    t1.commit().unwrap();
}

fn keys(n: usize) -> Db {
    let db = Db::in_memory();
    let mut tx = db.begin();
    for i in 0..n {
        tx.put(format!("k{i:03}"), "v").unwrap();
    }
    tx.commit().unwrap();
    db
}

#[test]
fn scans_dropped_early_conflict_only_on_what_they_yielded() {
    let db = keys(100);
    // Front: take(3) consumed k000..=k002; a write after them is no conflict.
    let mut t1 = db.begin_with(SER);
    let first: Vec<_> = t1.range("k000"..).take(3).map(|kv| kv.unwrap().0).collect();
    assert_eq!(first, vec![b("k000"), b("k001"), b("k002")]);
    t1.put("a/out", "1").unwrap();
    db.transaction(|tx| tx.put("k050", "changed")).unwrap();
    db.transaction(|tx| tx.put("k0025", "inserted past the last key yielded"))
        .unwrap();
    t1.commit().unwrap();

    // Back: rev().take(2) consumed k099, k098; a write below is no conflict,
    // one between them is.
    let mut t2 = db.begin_with(SER);
    assert_eq!(t2.range::<&str, _>(..).rev().take(2).count(), 2);
    t2.put("a/out", "2").unwrap();
    db.transaction(|tx| tx.put("k010", "x")).unwrap();
    t2.commit().unwrap();
    let mut t3 = db.begin_with(SER);
    assert_eq!(t3.range::<&str, _>(..).rev().take(2).count(), 2);
    t3.put("a/out", "3").unwrap();
    let won = db
        .transaction(|tx| tx.put("k0985", "x"))
        .map(|_| db.snapshot().ts())
        .unwrap();
    let (key, winner, reason) = conflict(t3.commit());
    assert_eq!((&key[..], winner), (&b"k0985"[..], won));
    assert_eq!(
        reason,
        ConflictReason::Range {
            start: Bound::Included(b("k098")),
            end: Bound::Unbounded,
        }
    );

    // Both ends of one iterator: front k000, k001; back k099.
    let mut t4 = db.begin_with(SER);
    let mut it = t4.range::<&str, _>(..);
    it.next().unwrap().unwrap();
    it.next().unwrap().unwrap();
    it.next_back().unwrap().unwrap();
    drop(it);
    t4.put("a/out", "4").unwrap();
    db.transaction(|tx| tx.put("k050", "again")).unwrap();
    t4.commit().unwrap();

    // A write inside the consumed part conflicts.
    let mut t5 = db.begin_with(SER);
    assert_eq!(t5.range("k000"..).take(3).count(), 3);
    t5.put("a/out", "5").unwrap();
    db.transaction(|tx| tx.delete("k001")).unwrap();
    assert_eq!(conflict(t5.commit()).0, b("k001"));
}

#[test]
fn an_iterator_run_out_or_leaked_keeps_its_whole_range() {
    let db = keys(10);
    let mut t1 = db.begin_with(SER);
    assert_eq!(t1.range("k000".."k005").count(), 5);
    t1.put("a/out", "1").unwrap();
    // Inside the range, after its last key: the scan saw it was absent.
    db.transaction(|tx| tx.put("k0045", "x")).unwrap();
    assert_eq!(conflict(t1.commit()).0, b("k0045"));

    let mut t2 = db.begin_with(SER);
    let mut it = t2.range::<&str, _>(..);
    it.next().unwrap().unwrap();
    std::mem::forget(it);
    t2.put("a/out", "2").unwrap();
    db.transaction(|tx| tx.put("zzz", "x")).unwrap();
    assert_eq!(conflict(t2.commit()).0, b("zzz"));
}

#[test]
fn mixed_levels_behave_as_each_chose() {
    let db = db_with(&[("a", "1"), ("b", "1")]);
    // A serializable reader does not make a snapshot writer abort.
    let t1 = db.begin_with(SER);
    let mut t2 = db.begin_with(SI);
    t1.get("a").unwrap();
    t2.get("b").unwrap();
    t2.put("a", "2").unwrap();
    let mut t1 = t1;
    t1.put("b", "2").unwrap();
    // t1 commits first: t2 (SI) read b, which t1 wrote: SI does not care.
    t1.commit().unwrap();
    t2.commit().unwrap();

    // A snapshot writer's commit does make a serializable reader abort.
    let mut t3 = db.begin_with(SER);
    t3.get("a").unwrap();
    t3.put("c", "1").unwrap();
    let won = db.begin_with(SI);
    let mut won = won;
    won.put("a", "3").unwrap();
    let won = won.commit().unwrap();
    assert_eq!(conflict(t3.commit()).1, won);

    // The default level comes from the options.
    let db = Options::new().isolation(SER).in_memory().unwrap();
    assert_eq!(db.begin().isolation(), SER);
    assert_eq!(Db::in_memory().begin().isolation(), SI);
}

#[test]
fn the_error_names_the_kind_key_range_and_winner() {
    let db = db_with(&[("p/1", "1")]);
    let mut t1 = db.begin_with(SER);
    assert_eq!(count(&t1, "p/"), 1);
    t1.put("q", "1").unwrap();
    let won = {
        let mut t = db.begin();
        t.put("p/2", "2").unwrap();
        t.commit().unwrap()
    };
    let e = t1.commit().unwrap_err();
    assert!(e.is_conflict());
    let msg = e.to_string();
    assert!(msg.contains("range conflict"), "{msg}");
    assert!(msg.contains("p/2") && msg.contains(&format!("ts {won}")), "{msg}");

    let mut t2 = db.begin_with(SER);
    t2.get("q").unwrap();
    t2.put("r", "1").unwrap();
    db.transaction(|tx| tx.put("q", "2")).unwrap();
    let msg = t2.commit().unwrap_err().to_string();
    assert!(msg.starts_with("read-write conflict"), "{msg}");

    let mut t3 = db.begin_with(SER);
    t3.put("r", "2").unwrap();
    db.transaction(|tx| tx.put("r", "3")).unwrap();
    let e = t3.commit().unwrap_err();
    assert!(e.to_string().starts_with("write-write conflict"), "{e}");
    assert_eq!(conflict(Err(e)).2, ConflictReason::Write);
}

#[test]
fn reads_stay_read_after_rollback_to() {
    let db = db_with(&[("x", "1"), ("y", "1")]);
    let mut t1 = db.begin_with(SER);
    t1.get("x").unwrap();
    let sp = t1.savepoint();
    t1.get("y").unwrap();
    t1.put("z", "1").unwrap();
    t1.rollback_to(&sp).unwrap();
    t1.put("w", "1").unwrap();
    let won = db
        .transaction(|tx| tx.put("y", "2"))
        .map(|_| db.snapshot().ts())
        .unwrap();
    let (key, winner, _) = conflict(t1.commit());
    assert_eq!((&key[..], winner), (&b"y"[..], won));
}

#[test]
fn a_refused_commit_leaves_no_gap_in_a_durable_log() {
    let fs = FaultFs::new();
    let opts = || fault_opts(&fs).durability(Durability::Sync);
    let db = opts().open(DIR).unwrap();
    db.transaction(|tx| tx.put("a", "1")).unwrap();
    let mut t1 = db.begin_with(SER);
    t1.get("a").unwrap();
    t1.put("b", "1").unwrap();
    let won = db
        .transaction(|tx| tx.put("a", "2"))
        .map(|_| db.snapshot().ts())
        .unwrap();
    assert_eq!(conflict(t1.commit()).1, won);
    // The refused commit's timestamp was used: the next commit gets the one after.
    let mut t2 = db.begin();
    t2.put("c", "1").unwrap();
    let c = t2.commit().unwrap();
    assert_eq!(c, won + 2);
    drop(db);
    let db = opts().open(DIR).unwrap();
    let snap = db.snapshot();
    assert_eq!(snap.ts(), c);
    assert_eq!(snap.get("a").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(snap.get("b").unwrap(), None);
    assert_eq!(snap.get("c").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(
        db.transaction(|tx| tx.put("d", "1"))
            .map(|_| db.snapshot().ts())
            .unwrap(),
        c + 1
    );
}

#[test]
fn evicted_leaves_are_validated_without_faulting_them_in() {
    let fs = FaultFs::new();
    let db = fault_opts(&fs).cache_size(64 << 10).open(DIR).unwrap();
    for chunk in (0..2000).collect::<Vec<_>>().chunks(100) {
        let mut tx = db.begin();
        for i in chunk {
            tx.put(format!("key{i:05}"), "v").unwrap();
        }
        tx.commit().unwrap();
    }
    // Nothing changed in the range since the snapshot: no fault-in.
    let mut t1 = db.begin_with(SER);
    assert_eq!(t1.range::<&str, _>(..).count(), 2000);
    t1.put("key00000", "w").unwrap();
    db.evict_all().unwrap();
    let (misses, blind) = (db.stats().cache_misses, db.stats().blind_writes);
    t1.commit().unwrap();
    // The read range is validated from the stubs' timestamps, and the
    // write goes on its leaf's stub (a blind write): nothing is read.
    assert_eq!(db.stats().cache_misses - misses, 0, "no leaf is faulted in");
    assert_eq!(db.stats().blind_writes - blind, 1, "the write is blind");

    // A write in the range after the snapshot: found in its evicted leaf.
    let mut t2 = db.begin_with(SER);
    assert_eq!(t2.range("key01000".."key01100").count(), 100);
    t2.put("elsewhere", "w").unwrap();
    let won = db
        .transaction(|tx| tx.put("key01050", "new"))
        .map(|_| db.snapshot().ts())
        .unwrap();
    db.evict_all().unwrap();
    let (key, winner, _) = conflict(t2.commit());
    assert_eq!((&key[..], winner), (&b"key01050"[..], won));
}

/// "At least one doctor on call" over many shifts, 4 threads: each
/// transaction picks a shift and a doctor, scans the shift, and takes the
/// doctor off call if at least two are on (else puts them on). Under
/// serializable every snapshot keeps at least one doctor on call per shift.
#[test]
fn at_least_one_doctor_on_call_holds_under_serializable_with_4_threads() {
    const SHIFTS: usize = 8;
    const DOCTORS: usize = 3;
    let db = Arc::new(Options::new().isolation(SER).in_memory().unwrap());
    let mut tx = db.begin();
    for s in 0..SHIFTS {
        for d in 0..DOCTORS {
            tx.put(format!("shift{s:02}/doc{d}"), "on").unwrap();
        }
    }
    tx.commit().unwrap();
    let check = |snap: &bwtx::Snapshot| {
        for s in 0..SHIFTS {
            let on = snap
                .prefix(format!("shift{s:02}/"))
                .filter(|kv| kv.as_ref().unwrap().1 == "on")
                .count();
            assert!(on >= 1, "shift {s} has nobody on call at ts {}", snap.ts());
        }
    };
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut rng = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) + 1;
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let (mut commits, mut conflicts) = (0, 0);
                for _ in 0..1500 {
                    let s = (next() % SHIFTS as u64) as usize;
                    let d = (next() % DOCTORS as u64) as usize;
                    let mut tx = db.begin();
                    let shift = format!("shift{s:02}/");
                    let on = tx.prefix(&shift).filter(|kv| kv.as_ref().unwrap().1 == "on").count();
                    // Widen the window between the check and the write.
                    std::thread::yield_now();
                    let me = format!("{shift}doc{d}");
                    let value = if on >= 2 { "off" } else { "on" };
                    tx.put(&me, value).unwrap();
                    match tx.commit() {
                        Ok(_) => commits += 1,
                        Err(e) if e.is_conflict() => conflicts += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (commits, conflicts)
            })
        })
        .collect();
    // At least one snapshot, however soon the threads finish.
    let mut snapshots = 0;
    loop {
        check(&db.snapshot());
        snapshots += 1;
        if threads.iter().all(|t| t.is_finished()) {
            break;
        }
    }
    let (mut commits, mut conflicts) = (0, 0);
    for t in threads {
        let (c, a) = t.join().unwrap();
        commits += c;
        conflicts += a;
    }
    check(&db.snapshot());
    assert!(commits > 0 && snapshots > 0);
    eprintln!("doctors: {commits} commits, {conflicts} conflicts, {snapshots} snapshots checked");
}

/// `is_empty` reads what a scan for a first key reads: a later update past
/// that key is no conflict, an insert before it is. A count (`len`) reads
/// the count, however often it is asked: a later update is no conflict, an
/// insert is. (Before 2026-12-08 `is_empty` was `len() == 0` and refused on
/// any later write; each count added a range of the whole key space. Until
/// 2026-12-09 a count refused on any later write.)
#[test]
fn is_empty_reads_up_to_the_first_key_and_counts_read_the_count() {
    let db = db_with(&[("m", "1"), ("n", "1")]);
    let mut t1 = db.begin_with(SER);
    assert!(!t1.is_empty().unwrap());
    t1.put("worker", "busy").unwrap();
    db.transaction(|tx| tx.put("n", "2")).unwrap();
    t1.commit().unwrap();

    let mut t2 = db.begin_with(SER);
    assert!(!t2.is_empty().unwrap());
    t2.put("worker", "idle").unwrap();
    db.transaction(|tx| tx.put("a", "before the first key")).unwrap();
    let (key, _, reason) = conflict(t2.commit());
    assert_eq!(key, b("a"));
    assert!(matches!(reason, ConflictReason::Range { .. }), "{reason:?}");

    let mut t3 = db.begin_with(SER);
    for _ in 0..10_000 {
        assert_eq!(t3.len().unwrap(), 4);
    }
    t3.put("count", "4").unwrap();
    db.transaction(|tx| tx.put("n", "3")).unwrap();
    t3.commit().unwrap();

    let mut t3 = db.begin_with(SER);
    assert_eq!(t3.len().unwrap(), 5);
    t3.put("count", "5").unwrap();
    db.transaction(|tx| tx.put("o", "1")).unwrap();
    let (key, _, reason) = conflict(t3.commit());
    assert!(key.is_empty());
    assert_eq!(reason, ConflictReason::Count { counted: 5, now: 6 });

    // An empty database: nothing to find, every key read.
    let db = Db::in_memory();
    let mut t4 = db.begin_with(SER);
    assert!(t4.is_empty().unwrap());
    t4.put("first", "1").unwrap();
    db.transaction(|tx| tx.put("zzz", "1")).unwrap();
    assert!(matches!(conflict(t4.commit()).2, ConflictReason::Range { .. }));
}
