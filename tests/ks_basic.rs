//! Keyspaces: names, errors, isolation between keyspaces, the drop/commit
//! race, serializable reads per keyspace, savepoints across keyspaces,
//! stats, the change stream (keyspaces on a page store: `ks_paged.rs`).

use std::sync::Barrier;

use bwtx::{ConflictReason, Db, Durability, Error, Isolation, Options};

mod common;

#[test]
fn bad_names_are_invalid_arguments() {
    let db = Db::in_memory();
    let long = "x".repeat(65);
    for bad in ["", ".hidden", "_internal", "a b", "a/b", "é", long.as_str(), "a\0"] {
        assert!(
            matches!(db.keyspace(bad), Err(Error::InvalidArgument(_))),
            "{bad:?} must be refused"
        );
        assert!(
            matches!(db.drop_keyspace(bad), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
    }
    for good in ["a", "A-z_0.9", &"y".repeat(64)] {
        assert_eq!(db.keyspace(good).unwrap().name(), good);
    }
    assert!(matches!(db.drop_keyspace("default"), Err(Error::InvalidArgument(_))));
    assert!(matches!(db.drop_keyspace("nope"), Err(Error::KeyspaceNotFound { name }) if name == "nope"));
    let mut names = db.keyspaces().unwrap();
    names.retain(|n| n != "default");
    assert_eq!(names.len(), 3);
}

#[test]
fn the_default_keyspace_is_the_one_without_in() {
    let db = Db::in_memory();
    let d = db.keyspace("default").unwrap();
    assert_eq!(d.name(), "default");
    db.transaction(|tx| tx.put("k", "1")).unwrap();
    let mut tx = db.begin();
    assert_eq!(tx.get_in(&d, "k").unwrap().as_deref(), Some(&b"1"[..]));
    tx.put_in(&d, "j", "2").unwrap();
    tx.commit().unwrap();
    let s = db.snapshot();
    assert_eq!(s.get("j").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(s.len_in(&d).unwrap(), 2);
    assert_eq!(db.keyspaces().unwrap(), vec!["default".to_string()]);
}

#[test]
fn the_same_key_in_two_keyspaces_never_conflicts() {
    let db = Db::in_memory();
    let (a, b) = (db.keyspace("a").unwrap(), db.keyspace("b").unwrap());
    let mut t1 = db.begin();
    let mut t2 = db.begin();
    let mut t3 = db.begin();
    t1.put_in(&a, "k", "1").unwrap();
    t2.put_in(&b, "k", "2").unwrap();
    t3.put("k", "3").unwrap();
    t1.commit().unwrap();
    t2.commit().unwrap();
    t3.commit().unwrap();
    let s = db.snapshot();
    assert_eq!(s.get_in(&a, "k").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(s.get_in(&b, "k").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(s.get("k").unwrap().as_deref(), Some(&b"3"[..]));
    // The same key in one keyspace still conflicts.
    let mut t4 = db.begin();
    let mut t5 = db.begin();
    t4.put_in(&a, "k", "4").unwrap();
    t5.put_in(&a, "k", "5").unwrap();
    t4.commit().unwrap();
    assert!(matches!(t5.commit(), Err(Error::Conflict { .. })));
    // Scans stay inside their keyspace.
    let keys: Vec<_> = s.prefix_in(&b, "").map(|kv| kv.unwrap().0).collect();
    assert_eq!(keys, vec!["k"]);
}

#[test]
fn a_dropped_keyspace_is_an_error_never_a_panic() {
    let db = Db::in_memory();
    let a = db.keyspace("a").unwrap();
    db.transaction(|tx| tx.put_in(&a, "k", "v")).unwrap();
    let before = db.snapshot();
    let mut writer = db.begin();
    writer.put_in(&a, "k2", "v").unwrap();
    db.drop_keyspace("a").unwrap();
    assert!(matches!(db.drop_keyspace("a"), Err(Error::KeyspaceNotFound { .. })));
    // The snapshot taken before the drop still reads it.
    assert_eq!(before.get_in(&a, "k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(before.len_in(&a).unwrap(), 1);
    // A commit into it after the drop fails.
    assert!(matches!(writer.commit(), Err(Error::KeyspaceNotFound { name }) if name == "a"));
    // Everything that begins after the drop gets KeyspaceNotFound.
    let s = db.snapshot();
    let nf = |r: Result<(), Error>| matches!(r, Err(Error::KeyspaceNotFound { .. }));
    assert!(nf(s.get_in(&a, "k").map(|_| ())));
    assert!(nf(s.len_in(&a).map(|_| ())));
    let mut it = s.range_in::<&[u8], _>(&a, ..);
    assert!(matches!(it.next(), Some(Err(Error::KeyspaceNotFound { .. }))));
    assert!(it.next().is_none());
    assert!(matches!(
        s.prefix_in(&a, "k").next(),
        Some(Err(Error::KeyspaceNotFound { .. }))
    ));
    let mut tx = db.begin();
    assert!(nf(tx.get_in(&a, "k").map(|_| ())));
    assert!(nf(tx.put_in(&a, "k", "v")));
    assert!(nf(tx.delete_in(&a, "k")));
    assert!(nf(tx.len_in(&a).map(|_| ())));
    assert!(matches!(tx.range_in::<&[u8], _>(&a, ..).next(), Some(Err(_))));
    assert!(nf(db.keyspace_stats(&a).map(|_| ())));
    // Re-created: a new, empty keyspace; the old handle stays dead.
    let a2 = db.keyspace("a").unwrap();
    let s = db.snapshot();
    assert_eq!(s.len_in(&a2).unwrap(), 0);
    assert!(nf(s.get_in(&a, "k").map(|_| ())));
    assert_eq!(before.get_in(&a, "k").unwrap().as_deref(), Some(&b"v"[..]));
    // A handle of another database is refused.
    let other = Db::in_memory();
    let o = other.keyspace("a").unwrap();
    assert!(matches!(db.snapshot().get_in(&o, "k"), Err(Error::InvalidArgument(_))));
}

/// A snapshot or transaction begun before a keyspace was created reads it
/// as empty, and counts it so: 0, plus its own writes. Before, `len_in`
/// refused with `SnapshotTooOld` while `get_in` and `range_in` answered.
#[test]
fn a_keyspace_created_after_a_snapshot_counts_as_empty_there() {
    let db = Db::in_memory();
    let s = db.snapshot();
    let mut tx = db.begin();
    let ks = db.keyspace("a").unwrap();
    db.transaction(|t| t.put_in(&ks, "k", "v")).unwrap();
    assert_eq!(s.get_in(&ks, "k").unwrap(), None);
    assert_eq!(s.len_in(&ks).unwrap(), 0);
    assert_eq!(tx.len_in(&ks).unwrap(), 0);
    tx.put_in(&ks, "x", "1").unwrap();
    assert_eq!(tx.len_in(&ks).unwrap(), 1);
    assert_eq!(db.snapshot().len_in(&ks).unwrap(), 1);
}

/// A serializable transaction that read a keyspace (a key, a range, its
/// count) cannot commit once the keyspace is dropped: in timestamp order its
/// reads would come after the drop. A snapshot-isolation transaction that
/// only read it, or a serializable one that did not, commits. Before the
/// commit held read keyspaces' gates, the first commit passed.
#[test]
fn a_serializable_read_of_a_keyspace_dropped_before_its_commit_fails() {
    type Read = fn(&bwtx::Transaction, &bwtx::Keyspace);
    let reads: [(&str, Read); 3] = [
        ("get", |tx, ks| drop(tx.get_in(ks, "x").unwrap())),
        ("range", |tx, ks| assert_eq!(tx.range_in::<&[u8], _>(ks, ..).count(), 1)),
        ("len", |tx, ks| assert_eq!(tx.len_in(ks).unwrap(), 1)),
    ];
    for (what, read) in reads {
        let db = Db::in_memory();
        let ks = db.keyspace("ks").unwrap();
        db.transaction(|tx| tx.put_in(&ks, "x", "1")).unwrap();
        let mut ser = db.begin_with(Isolation::Serializable);
        read(&ser, &ks);
        ser.put("y", "1").unwrap();
        let mut si = db.begin_with(Isolation::Snapshot);
        read(&si, &ks);
        si.put("z", "1").unwrap();
        let mut other = db.begin_with(Isolation::Serializable);
        other.get("y").unwrap();
        other.put("w", "1").unwrap();
        db.drop_keyspace("ks").unwrap();
        // Re-created with the same key: the old handle's reads stay stale.
        let again = db.keyspace("ks").unwrap();
        db.transaction(|tx| tx.put_in(&again, "x", "2")).unwrap();
        assert!(
            matches!(ser.commit(), Err(Error::KeyspaceNotFound { ref name }) if name == "ks"),
            "{what}"
        );
        si.commit().unwrap();
        other.commit().unwrap();
        let s = db.snapshot();
        assert_eq!(s.get("y").unwrap(), None, "{what}");
        assert!(s.get("z").unwrap().is_some() && s.get("w").unwrap().is_some());
    }
}

/// Writers into a keyspace race its drop: every commit either lands before
/// the drop (and a snapshot just before the drop sees it) or fails with
/// `KeyspaceNotFound`; nothing lands after.
#[test]
fn commits_racing_a_drop_land_before_it_or_fail() {
    for round in 0..20 {
        let db = Db::in_memory();
        let a = db.keyspace("a").unwrap();
        let go = Barrier::new(3);
        let (acked, drop_ts) = std::thread::scope(|s| {
            let writers: Vec<_> = (0..2)
                .map(|w| {
                    let (db, a, go) = (&db, &a, &go);
                    s.spawn(move || {
                        go.wait();
                        let mut acked = Vec::new();
                        for i in 0..200 {
                            let mut tx = db.begin();
                            let k = format!("{w}/{i}");
                            match tx.put_in(a, &k, "v") {
                                Ok(()) => {}
                                // Began after the drop.
                                Err(Error::KeyspaceNotFound { .. }) => continue,
                                Err(e) => panic!("round {round}: {e}"),
                            }
                            tx.put(&k, "v").unwrap();
                            match tx.commit() {
                                Ok(ts) => acked.push((k, ts)),
                                Err(Error::KeyspaceNotFound { .. }) => {}
                                Err(e) => panic!("round {round}: {e}"),
                            }
                        }
                        acked
                    })
                })
                .collect();
            go.wait();
            std::thread::yield_now();
            db.drop_keyspace("a").unwrap();
            let drop_ts = db.snapshot().ts();
            let acked: Vec<_> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
            (acked, drop_ts)
        });
        let late = db.snapshot();
        for (k, ts) in &acked {
            assert!(
                *ts < drop_ts,
                "round {round}: commit {ts} into a keyspace dropped at {drop_ts}"
            );
            // The commit is whole: its default-keyspace write is there.
            assert_eq!(late.get(k).unwrap().as_deref(), Some(&b"v"[..]));
        }
        // Failed commits installed nothing in the default keyspace either.
        assert_eq!(late.len(), acked.len() as u64, "round {round}");
    }
}

#[test]
fn serializable_reads_are_tracked_per_keyspace() {
    let db = Options::new().isolation(Isolation::Serializable).in_memory().unwrap();
    let (a, b) = (db.keyspace("a").unwrap(), db.keyspace("b").unwrap());
    db.transaction(|tx| {
        tx.put_in(&a, "on", "1")?;
        tx.put_in(&b, "on", "1")
    })
    .unwrap();
    // Write skew across keyspaces: each reads the other's key, writes its own.
    let mut t1 = db.begin();
    let mut t2 = db.begin();
    assert!(t1.get_in(&b, "on").unwrap().is_some());
    assert!(t2.get_in(&a, "on").unwrap().is_some());
    t1.delete_in(&a, "on").unwrap();
    t2.delete_in(&b, "on").unwrap();
    t1.commit().unwrap();
    match t2.commit() {
        Err(Error::Conflict { key, reason, .. }) => {
            assert_eq!(&key[..], b"on");
            assert_eq!(*reason, ConflictReason::Read);
        }
        other => panic!("write skew across keyspaces must be refused: {other:?}"),
    }
    // A read of key "on" in the default keyspace does not clash with a
    // write of "on" in keyspace a.
    let mut t3 = db.begin();
    let mut t4 = db.begin();
    assert!(t3.get("on").unwrap().is_none());
    t3.put("x", "1").unwrap();
    t4.put_in(&a, "on", "2").unwrap();
    t4.commit().unwrap();
    t3.commit().unwrap();
    // A scan of a keyspace is validated as a range of that keyspace.
    let mut t5 = db.begin();
    let mut t6 = db.begin();
    assert_eq!(t5.range_in::<&[u8], _>(&b, ..).count(), 1, "b holds \"on\"");
    t5.put("y", "1").unwrap();
    t6.put_in(&b, "new", "1").unwrap();
    t6.commit().unwrap();
    assert!(matches!(t5.commit(), Err(Error::Conflict { .. })));
}

#[test]
fn savepoints_cover_every_keyspace() {
    let db = Db::in_memory();
    let (a, b) = (db.keyspace("a").unwrap(), db.keyspace("b").unwrap());
    let mut tx = db.begin();
    tx.put_in(&a, "1", "a1").unwrap();
    let sp = tx.savepoint();
    tx.put_in(&a, "1", "a2").unwrap();
    tx.put_in(&b, "1", "b1").unwrap();
    tx.put("1", "d1").unwrap();
    assert_eq!(tx.write_count(), 3);
    tx.rollback_to(&sp).unwrap();
    assert_eq!(tx.get_in(&a, "1").unwrap().as_deref(), Some(&b"a1"[..]));
    assert_eq!(tx.get_in(&b, "1").unwrap(), None);
    assert_eq!(tx.get("1").unwrap(), None);
    tx.commit().unwrap();
    let s = db.snapshot();
    assert_eq!(s.len_in(&a).unwrap(), 1);
    assert_eq!(s.len_in(&b).unwrap(), 0);
    assert_eq!(s.len(), 0);
}

#[test]
fn stats_count_each_keyspace() {
    let db = Db::in_memory();
    let (a, b) = (db.keyspace("a").unwrap(), db.keyspace("b").unwrap());
    db.transaction(|tx| {
        for i in 0..100 {
            tx.put_in(&a, format!("{i:03}"), "v")?;
        }
        tx.put_in(&b, "only", "v")
    })
    .unwrap();
    let sa = db.keyspace_stats(&a).unwrap();
    let sb = db.keyspace_stats(&b).unwrap();
    assert_eq!((sa.live_keys, sb.live_keys), (100, 1));
    assert!(sa.pages >= 1 && sb.pages >= 1);
    assert_eq!(db.snapshot().len(), 0);
}

#[test]
fn the_change_stream_names_other_keyspaces() {
    let dir = std::env::temp_dir().join(format!("bwtx-ks-changes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let start;
    {
        let db = Options::new().durability(Durability::Sync).open(&dir).unwrap();
        start = db.snapshot().ts();
        let a = db.keyspace("a").unwrap();
        let mut tx = db.begin();
        tx.put("d", "1").unwrap();
        tx.put_in(&a, "k", "2").unwrap();
        let ts = tx.commit().unwrap();
        let changes: Vec<_> = db.changes_since(start).unwrap().map(|c| c.unwrap()).collect();
        let last = changes.last().unwrap();
        assert_eq!(last.ts, ts);
        assert_eq!(last.writes, vec![("d".into(), Some("1".into()))]);
        assert_eq!(
            last.keyspaces,
            vec![("a".to_string(), vec![("k".into(), Some("2".into()))])]
        );
        // The creation is a commit of its own, with no user writes.
        assert_eq!(changes.len(), 2);
        assert!(changes[0].writes.is_empty() && changes[0].keyspaces.is_empty());
        assert_eq!(
            (&changes[0].created[..], changes[0].dropped.len()),
            (&["a".to_string()][..], 0)
        );
        assert!(last.created.is_empty() && last.dropped.is_empty());
        // A drop, a re-creation, and a write to the new keyspace: in order,
        // so that a mirror knows the new "a" starts empty.
        let from = db.snapshot().ts();
        db.drop_keyspace("a").unwrap();
        let a2 = db.keyspace("a").unwrap();
        db.transaction(|tx| tx.put_in(&a2, "n", "3")).unwrap();
        let changes: Vec<_> = db.changes_since(from).unwrap().map(|c| c.unwrap()).collect();
        let seen: Vec<_> = changes
            .iter()
            .map(|c| (c.created.clone(), c.dropped.clone(), c.keyspaces.clone()))
            .collect();
        let a = || vec!["a".to_string()];
        assert_eq!(
            seen,
            vec![
                (vec![], a(), vec![]),
                (a(), vec![], vec![]),
                (
                    vec![],
                    vec![],
                    vec![("a".to_string(), vec![("n".into(), Some("3".into()))])]
                ),
            ]
        );
    }
    // After a reopen, and GC past the drop, the dropped "a" is forgotten,
    // but a stream that read its creation names its writes as then
    // (before: `#1`).
    let db = Options::new().durability(Durability::Sync).open(&dir).unwrap();
    db.transaction(|tx| tx.put("later", "x")).unwrap();
    db.collect_garbage();
    let named: Vec<Vec<String>> = db
        .changes_since(start)
        .unwrap()
        .map(|c| c.unwrap().keyspaces.into_iter().map(|(n, _)| n).collect())
        .collect();
    assert_eq!(
        named,
        vec![
            vec![],
            vec!["a".to_string()],
            vec![],
            vec![],
            vec!["a".to_string()],
            vec![]
        ]
    );
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A directory written before keyspaces (a version-1 checkpoint image and a
/// version-1 log segment, crafted byte by byte) opens: its data is the
/// default keyspace's; new keyspaces and commits follow, and reopen.
#[test]
fn version_1_files_still_open() {
    let dir = std::env::temp_dir().join(format!("bwtx-ks-v1-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Checkpoint at ts 2: a = 1, b = 2 (version 1: klen | vlen | key | value).
    let mut ck = Vec::new();
    ck.extend_from_slice(b"BWTXCKP\0");
    ck.extend_from_slice(&1u32.to_le_bytes());
    ck.extend_from_slice(&0u32.to_le_bytes());
    ck.extend_from_slice(&2u64.to_le_bytes());
    for (k, v) in [("a", "1"), ("b", "2")] {
        ck.extend_from_slice(&1u32.to_le_bytes());
        ck.extend_from_slice(&1u32.to_le_bytes());
        ck.extend_from_slice(k.as_bytes());
        ck.extend_from_slice(v.as_bytes());
    }
    let crc = crc32c::crc32c(&ck);
    ck.extend_from_slice(&2u64.to_le_bytes());
    ck.extend_from_slice(&crc.to_le_bytes());
    ck.extend_from_slice(b"BWTXEND\0");
    std::fs::write(dir.join(format!("ckpt-{:020}.ckpt", 2)), ck).unwrap();
    // Log segment (version 1): commit 3 puts c = 3 and deletes a.
    let mut seg = Vec::new();
    seg.extend_from_slice(b"BWTXWAL\0");
    seg.extend_from_slice(&1u32.to_le_bytes());
    seg.extend_from_slice(&0u32.to_le_bytes());
    let mut p = Vec::new();
    p.extend_from_slice(&3u64.to_le_bytes());
    p.extend_from_slice(&2u32.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(b"c3");
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    p.extend_from_slice(b"a");
    let len = (p.len() as u32).to_le_bytes();
    seg.extend_from_slice(&len);
    seg.extend_from_slice(&crc32c::crc32c_append(crc32c::crc32c(&len), &p).to_le_bytes());
    seg.extend_from_slice(&p);
    std::fs::write(dir.join(format!("wal-{:010}.log", 0)), seg).unwrap();
    let read = |db: &Db| -> Vec<(String, String)> { common::dump(db).1.into_iter().collect() };
    let want = vec![("b".to_string(), "2".to_string()), ("c".to_string(), "3".to_string())];
    {
        let db = Options::new().durability(Durability::Sync).open(&dir).unwrap();
        assert_eq!(db.snapshot().ts(), 3);
        assert_eq!(read(&db), want);
        let k = db.keyspace("k").unwrap();
        db.transaction(|tx| tx.put_in(&k, "x", "y")).unwrap();
    }
    {
        let db = Options::new().durability(Durability::Sync).open(&dir).unwrap();
        assert_eq!(read(&db), want);
        let k = db.keyspace("k").unwrap();
        assert_eq!(db.snapshot().get_in(&k, "x").unwrap().as_deref(), Some(&b"y"[..]));
        db.checkpoint().unwrap();
    }
    let db = Options::new().durability(Durability::Sync).open(&dir).unwrap();
    assert_eq!(read(&db), want);
    let k = db.keyspace("k").unwrap();
    assert_eq!(db.snapshot().len_in(&k).unwrap(), 1);
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}
