//! Owned handles: a `Transaction` and a `Snapshot` are `'static + Send`,
//! keep the database alive after the `Db` they came from is dropped, and
//! close it (sync the log, release the directory lock) when the last one
//! goes.

use std::thread;

use bwtx::{Db, Durability, Error, Options, Snapshot, Transaction};

fn assert_owned<T: Send + Sync + 'static>() {}

#[test]
fn handles_are_static_send_and_sync() {
    assert_owned::<Db>();
    assert_owned::<Transaction>();
    assert_owned::<Snapshot>();
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bwtx-owned-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn transaction_and_snapshot_move_into_threads_after_db_is_dropped() {
    let db = Db::in_memory();
    db.transaction(|tx| tx.put("a", "1")).unwrap();
    let mut tx = db.begin();
    let snap = db.snapshot();
    let reader = db.snapshot();
    drop(db);

    let committed = thread::spawn(move || {
        assert_eq!(tx.get("a")?.as_deref(), Some(&b"1"[..]));
        tx.put("b", "2")?;
        tx.commit()
    })
    .join()
    .unwrap()
    .unwrap();
    assert!(committed > snap.ts());

    // The older snapshot still reads its own view, from another thread.
    let seen = thread::spawn(move || {
        let keys: Vec<_> = snap.range::<&str, _>(..).map(|kv| kv.unwrap().0).collect();
        (snap.ts(), keys)
    })
    .join()
    .unwrap();
    assert_eq!(seen.1, ["a"]);

    // Another snapshot taken before the commit still reads its own view.
    assert_eq!(reader.get("b").unwrap(), None, "snapshot older than the commit");
}

#[test]
fn a_commit_after_the_db_is_dropped_is_durable_and_the_last_handle_closes() {
    let dir = temp_dir("durable");
    let db = Options::new().durability(Durability::Sync).open(&dir).unwrap();
    db.transaction(|tx| tx.put("k", "0")).unwrap();
    let mut tx = db.begin();
    drop(db);

    // The transaction keeps the database open: the directory stays locked.
    match Db::open(&dir) {
        Err(Error::Locked { .. }) => {}
        other => panic!("expected Locked while a transaction is open, got {other:?}"),
    }

    let ts = thread::spawn(move || {
        tx.put("k", "1")?;
        tx.commit()
    })
    .join()
    .unwrap()
    .unwrap();

    // The transaction was the last handle: committing consumed it, so the
    // database closed and the lock is free again.
    let db = Db::open(&dir).unwrap();
    let snap = db.snapshot();
    assert!(snap.ts() >= ts);
    assert_eq!(snap.get("k").unwrap().as_deref(), Some(&b"1"[..]));
    drop(snap);
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn buffered_commits_after_the_db_is_dropped_survive_power_loss_once_the_last_handle_closes() {
    // On the fault file system, a power loss drops every write not synced.
    let fs = bwtx::fs::FaultFs::new();
    let opts = || {
        Options::new()
            .file_system(std::sync::Arc::new(fs.clone()))
            .durability(Durability::Buffered(std::time::Duration::from_secs(3600)))
            .gc_interval(None)
    };
    let db = opts().open("/db").unwrap();
    let snap = db.snapshot();
    let mut tx = db.begin();
    drop(db);
    tx.put("x", "y").unwrap();
    tx.commit().unwrap();
    // The snapshot is the last handle: dropping it closes the database,
    // which syncs the buffered log.
    thread::spawn(move || drop(snap)).join().unwrap();
    fs.power_loss();

    let db = opts().open("/db").unwrap();
    assert_eq!(db.snapshot().get("x").unwrap().as_deref(), Some(&b"y"[..]));
}

#[test]
fn many_threads_begin_and_drop_handles_while_the_db_goes_away() {
    let db = Db::in_memory();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            thread::spawn(move || {
                let mut held = Vec::new();
                for i in 0..200u32 {
                    let mut tx = db.begin();
                    tx.put(format!("t{t}-{i}"), i.to_le_bytes()).unwrap();
                    tx.commit().unwrap();
                    held.push(db.snapshot());
                }
                held
            })
        })
        .collect();
    drop(db);
    let snaps: Vec<Snapshot> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let newest = snaps.iter().max_by_key(|s| s.ts()).unwrap();
    assert_eq!(newest.range::<&str, _>(..).count(), 800);
}
