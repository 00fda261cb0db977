//! Basic transaction behaviour: read your writes, visibility after commit,
//! first committer wins, rollback, ranges merged with own writes, bad input.

use bwtx::{Db, Error};

fn keys(it: impl Iterator<Item = bwtx::Result<(bytes::Bytes, bytes::Bytes)>>) -> Vec<String> {
    it.map(|kv| String::from_utf8(kv.unwrap().0.to_vec()).unwrap())
        .collect()
}

#[test]
fn read_your_writes_and_commit_visibility() {
    let db = Db::in_memory();
    let mut tx = db.begin();
    assert_eq!(tx.get("a").unwrap(), None);
    tx.put("a", "1").unwrap();
    assert_eq!(tx.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    let other = db.snapshot();
    let ts = tx.commit().unwrap();
    assert_eq!(other.get("a").unwrap(), None, "older snapshot");
    let snap = db.snapshot();
    assert_eq!(snap.ts(), ts);
    assert_eq!(snap.get("a").unwrap().as_deref(), Some(&b"1"[..]));
}

#[test]
fn first_committer_wins() {
    let db = Db::in_memory();
    let mut t1 = db.begin();
    let mut t2 = db.begin();
    t1.put("k", "1").unwrap();
    t2.put("k", "2").unwrap();
    let won = t1.commit().unwrap();
    match t2.commit() {
        Err(Error::Conflict { key, winner, .. }) => {
            assert_eq!(&key[..], b"k");
            assert_eq!(winner, won);
            assert!(db.wait_visible(winner, std::time::Duration::from_millis(100)));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A timestamp nobody committed never becomes visible: the wait times out.
    assert!(!db.wait_visible(won + 100, std::time::Duration::from_millis(5)));
    assert_eq!(db.stats().conflicts, 1);
    assert_eq!(db.snapshot().get("k").unwrap().as_deref(), Some(&b"1"[..]));
}

#[test]
fn rollback_and_drop_discard() {
    let db = Db::in_memory();
    let mut tx = db.begin();
    tx.put("x", "1").unwrap();
    tx.rollback();
    {
        let mut tx = db.begin();
        tx.put("y", "1").unwrap();
    }
    assert_eq!(db.snapshot().range::<&str, _>(..).count(), 0);
    assert_eq!(db.stats().commits, 0);
    assert_eq!(db.stats().active_snapshots, 0);
}

#[test]
fn ranges_merge_own_writes_both_directions() {
    let db = Db::in_memory();
    db.transaction(|tx| {
        for k in ["a", "c", "e", "g"] {
            tx.put(k, "old")?;
        }
        Ok(())
    })
    .unwrap();
    let mut tx = db.begin();
    tx.put("b", "new").unwrap();
    tx.delete("c").unwrap();
    tx.put("e", "new").unwrap();
    tx.put("h", "new").unwrap();
    assert_eq!(keys(tx.range::<&str, _>(..)), ["a", "b", "e", "g", "h"]);
    assert_eq!(keys(tx.range::<&str, _>(..).rev()), ["h", "g", "e", "b", "a"]);
    assert_eq!(keys(tx.range("b"..="g")), ["b", "e", "g"]);
    // Alternate ends.
    let mut it = tx.range::<&str, _>(..);
    let mut got = Vec::new();
    loop {
        let f = it.next();
        let b = it.next_back();
        if f.is_none() && b.is_none() {
            break;
        }
        for kv in [f, b].into_iter().flatten() {
            got.push(String::from_utf8(kv.unwrap().0.to_vec()).unwrap());
        }
    }
    got.sort();
    assert_eq!(got, ["a", "b", "e", "g", "h"]);
    assert_eq!(keys(tx.range("e".."a")), Vec::<String>::new());
    assert_eq!(keys(tx.prefix("g")), ["g"]);
}

#[test]
fn bad_input_is_an_error() {
    let db = Db::in_memory();
    let mut tx = db.begin();
    let big = vec![0u8; bwtx::tree::MAX_KEY_LEN + 1];
    assert!(matches!(tx.put(&big, "v"), Err(Error::KeyTooLarge { .. })));
    assert!(matches!(tx.delete(&big), Err(Error::KeyTooLarge { .. })));
    assert!(matches!(tx.get(&big), Err(Error::KeyTooLarge { .. })));
    assert_eq!(tx.write_count(), 0);
    tx.commit().unwrap();
}
