//! Keyspace names across time (`Snapshot::keyspace`): a snapshot resolves a
//! name as the catalog had it at its timestamp, so time travel reads a
//! keyspace since dropped, or dropped and created again under its name,
//! where `Db::keyspace` names the new one; and it never creates one.

use std::time::Duration;

use bwtx::{Db, Error, Options};

fn retaining() -> Db {
    Options::new()
        .history_retention(Duration::from_secs(3600))
        .in_memory()
        .unwrap()
}

#[test]
fn a_snapshot_resolves_a_keyspace_name_as_of_its_timestamp() {
    let db = retaining();
    let before = db.snapshot();
    let u = db.keyspace("u").unwrap();
    let mut tx = db.begin();
    for k in ["a", "b", "c"] {
        tx.put_in(&u, k, format!("old-{k}")).unwrap();
    }
    let t1 = tx.commit().unwrap();
    db.drop_keyspace("u").unwrap();
    let gap = db.snapshot().ts();
    let u2 = db.keyspace("u").unwrap();
    db.transaction(|tx| tx.put_in(&u2, "z", "new")).unwrap();
    db.collect_garbage();

    // Before its creation: no such keyspace, and asking creates none.
    assert!(matches!(before.keyspace("u"), Err(Error::KeyspaceNotFound { .. })));
    assert_eq!(db.keyspaces().unwrap(), ["default", "u"]);
    // At t1: the first "u", whole.
    let past = db.snapshot_at(t1).unwrap();
    let old = past.keyspace("u").unwrap();
    assert_eq!(past.len_in(&old).unwrap(), 3);
    assert_eq!(past.get_in(&old, "b").unwrap().as_deref(), Some(&b"old-b"[..]));
    // Db::keyspace names the new one, empty at t1.
    assert_eq!(past.len_in(&u2).unwrap(), 0);
    // Between the drop and the re-creation: none.
    let between = db.snapshot_at(gap).unwrap();
    assert!(matches!(between.keyspace("u"), Err(Error::KeyspaceNotFound { .. })));
    // Now: the new one.
    let now = db.snapshot();
    let new = now.keyspace("u").unwrap();
    assert_eq!(now.len_in(&new).unwrap(), 1);
    assert_eq!(now.get_in(&new, "a").unwrap(), None);
    // The default keyspace, and bad names.
    db.transaction(|tx| tx.put("d", "1")).unwrap();
    let now = db.snapshot();
    let default = now.keyspace("default").unwrap();
    assert_eq!(now.get_in(&default, "d").unwrap().as_deref(), Some(&b"1"[..]));
    for bad in ["", ".x", "a/b"] {
        assert!(matches!(now.keyspace(bad), Err(Error::InvalidArgument(_))), "{bad:?}");
    }
}
