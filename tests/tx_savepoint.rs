//! Savepoints (issue 12): `Transaction::savepoint` and
//! `Transaction::rollback_to` undo later writes in `get`, `range` and
//! `prefix`, take rolled-back keys out of the write set (so they cannot
//! conflict), and reject foreign or invalidated savepoints with an error.

use bwtx::{Db, Error, Transaction};

fn view(tx: &Transaction) -> Vec<(String, String)> {
    tx.range::<&str, _>(..)
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (
                String::from_utf8(k.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn seeded() -> Db {
    let db = Db::in_memory();
    let mut tx = db.begin();
    tx.put("a", "a0").unwrap();
    tx.put("c", "c0").unwrap();
    tx.put("e", "e0").unwrap();
    tx.commit().unwrap();
    db
}

#[test]
fn rollback_undoes_later_writes_in_get_range_and_prefix() {
    let db = seeded();
    let mut tx = db.begin();
    tx.put("a", "a1").unwrap();
    tx.delete("c").unwrap();
    let sp = tx.savepoint();
    tx.put("a", "a2").unwrap(); // written before, overwritten after
    tx.put("b", "b2").unwrap(); // only written after
    tx.delete("e").unwrap(); // committed key deleted after
    tx.put("c", "c2").unwrap(); // deleted before, rewritten after
    tx.put("a", "a3").unwrap();
    assert_eq!(view(&tx), pairs(&[("a", "a3"), ("b", "b2"), ("c", "c2")]));

    tx.rollback_to(&sp).unwrap();
    assert_eq!(tx.get("a").unwrap().as_deref(), Some(&b"a1"[..]));
    assert_eq!(tx.get("b").unwrap(), None);
    assert_eq!(tx.get("c").unwrap(), None);
    assert_eq!(tx.get("e").unwrap().as_deref(), Some(&b"e0"[..]));
    let expect = pairs(&[("a", "a1"), ("e", "e0")]);
    assert_eq!(view(&tx), expect);
    // Both directions.
    let back: Vec<_> = tx.range("a".."z").rev().map(|kv| kv.unwrap().0).collect();
    assert_eq!(back, ["e", "a"]);
    let fwd: Vec<_> = tx.range("b"..="e").map(|kv| kv.unwrap().0).collect();
    assert_eq!(fwd, ["e"]);
    assert_eq!(tx.prefix("b").count(), 0);
    assert_eq!(tx.prefix("c").count(), 0);
    assert_eq!(tx.prefix("a").rev().map(|kv| kv.unwrap().1).collect::<Vec<_>>(), ["a1"]);
    assert_eq!(tx.write_count(), 2);

    tx.commit().unwrap();
    let snap = db.snapshot();
    let all: Vec<_> = snap.range::<&str, _>(..).map(|kv| kv.unwrap()).collect();
    assert_eq!(all.len(), 2);
    assert_eq!(&all[0].1[..], b"a1");
    assert_eq!(&all[1].1[..], b"e0");
}

#[test]
fn rolled_back_keys_do_not_conflict() {
    let db = seeded();
    let mut tx = db.begin();
    tx.put("mine", "1").unwrap();
    let sp = tx.savepoint();
    tx.put("shared", "mine").unwrap();
    tx.delete("a").unwrap();
    tx.rollback_to(&sp).unwrap();

    // Concurrent commits of the rolled-back keys.
    let mut other = db.begin();
    other.put("shared", "theirs").unwrap();
    other.put("a", "theirs").unwrap();
    other.commit().unwrap();

    tx.commit().expect("rolled-back keys are not in the write set");
    let snap = db.snapshot();
    assert_eq!(snap.get("shared").unwrap().as_deref(), Some(&b"theirs"[..]));
    assert_eq!(snap.get("a").unwrap().as_deref(), Some(&b"theirs"[..]));
    assert_eq!(snap.get("mine").unwrap().as_deref(), Some(&b"1"[..]));

    // The control: without the rollback the same history conflicts.
    let mut tx = db.begin();
    let _sp = tx.savepoint();
    tx.put("shared", "mine").unwrap();
    let mut other = db.begin();
    other.put("shared", "again").unwrap();
    other.commit().unwrap();
    assert!(tx.commit().unwrap_err().is_conflict());
}

#[test]
fn a_key_written_before_the_savepoint_still_conflicts() {
    let db = seeded();
    let mut tx = db.begin();
    tx.put("k", "before").unwrap();
    let sp = tx.savepoint();
    tx.put("k", "after").unwrap();
    tx.rollback_to(&sp).unwrap();
    assert_eq!(tx.get("k").unwrap().as_deref(), Some(&b"before"[..]));
    let mut other = db.begin();
    other.put("k", "theirs").unwrap();
    other.commit().unwrap();
    assert!(tx.commit().unwrap_err().is_conflict());
}

#[test]
fn rollback_twice_and_nested_savepoints() {
    let db = Db::in_memory();
    let mut tx = db.begin();
    let s0 = tx.savepoint();
    tx.put("x", "1").unwrap();
    let s1 = tx.savepoint();
    tx.put("x", "2").unwrap();
    let s2 = tx.savepoint();
    tx.put("y", "2").unwrap();

    tx.rollback_to(&s2).unwrap();
    assert_eq!(view(&tx), pairs(&[("x", "2")]));
    tx.put("z", "3").unwrap();
    tx.rollback_to(&s2).unwrap(); // twice
    assert_eq!(view(&tx), pairs(&[("x", "2")]));

    tx.rollback_to(&s1).unwrap(); // an earlier one after a later one
    assert_eq!(view(&tx), pairs(&[("x", "1")]));
    // s2 was taken after s1: invalidated.
    assert!(matches!(tx.rollback_to(&s2), Err(Error::InvalidArgument(_))));
    assert_eq!(view(&tx), pairs(&[("x", "1")]), "a failed rollback changes nothing");
    tx.rollback_to(&s1).unwrap();

    // A new savepoint after the rollback works as usual.
    tx.put("w", "4").unwrap();
    let s3 = tx.savepoint();
    tx.delete("x").unwrap();
    assert_eq!(view(&tx), pairs(&[("w", "4")]));
    tx.rollback_to(&s3).unwrap();
    assert_eq!(view(&tx), pairs(&[("w", "4"), ("x", "1")]));

    tx.rollback_to(&s0).unwrap();
    assert_eq!(view(&tx), pairs(&[]));
    assert_eq!(tx.write_count(), 0);
    assert!(matches!(tx.rollback_to(&s3), Err(Error::InvalidArgument(_))));
    assert_eq!(tx.commit().unwrap(), 0, "nothing left to write");
}

#[test]
fn a_savepoint_of_another_transaction_is_an_error() {
    let db = Db::in_memory();
    let mut a = db.begin();
    let mut b = db.begin();
    let sa = a.savepoint();
    a.put("k", "a").unwrap();
    b.put("k", "b").unwrap();
    // b has no savepoint of its own yet, then one.
    assert!(matches!(b.rollback_to(&sa), Err(Error::InvalidArgument(_))));
    let _sb = b.savepoint();
    assert!(matches!(b.rollback_to(&sa), Err(Error::InvalidArgument(_))));
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"b"[..]));
    // Same serial in another transaction of the same database.
    let mut c = db.begin();
    let sc = c.savepoint();
    assert_ne!(sa, sc);
    assert!(matches!(a.rollback_to(&sc), Err(Error::InvalidArgument(_))));
    a.rollback_to(&sa).unwrap();
    assert_eq!(a.get("k").unwrap(), None);
}

#[test]
fn savepoints_work_inside_db_transaction() {
    let db = Db::in_memory();
    db.transaction(|tx| {
        tx.put("kept", "1")?;
        let sp = tx.savepoint();
        tx.put("dropped", "1")?;
        tx.rollback_to(&sp)
    })
    .unwrap();
    let snap = db.snapshot();
    assert!(snap.get("kept").unwrap().is_some());
    assert!(snap.get("dropped").unwrap().is_none());
}
