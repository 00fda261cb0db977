//! Snapshot build and install against real state `Db`s: the same state
//! after a round trip (many batches), bounded batches, corrupt files
//! refused without a trace, a stop between batches or before the old
//! generation's drop followed by a reopen (the old state or the new, never
//! a mix), and a directory in the layout before generations.

use std::path::Path;

use bytes::Bytes;
use openraft::storage::RaftStateMachine;
use openraft::RaftSnapshotBuilder;

use super::install::{install_until, Stop};
use super::{Limits, SnapshotFile};
use crate::generation::GEN_PREFIX;
use crate::keys::{self, AppliedState, DATA_PREFIX};
use crate::state_machine::{apply_in, read_applied, StateMachine};
use crate::types::{log_id, Command, Entry, EntryPayload, Snapshot};

const LIMITS: Limits = Limits {
    chunk: 64,
    batch_keys: 7,
    batch_bytes: 1 << 20,
    state_cache_size: None,
    log_cache_size: None,
};

fn open_db(dir: &Path) -> bwtx::Db {
    bwtx::Options::new()
        .durability(bwtx::Durability::Buffered(std::time::Duration::from_millis(100)))
        .open(dir.join("state"))
        .unwrap()
}

fn open(dir: &Path) -> StateMachine {
    StateMachine::open(open_db(dir), &dir.join("snapshots"), LIMITS).unwrap()
}

/// Apply one entry at `index` writing keys `k0000..k{n}` (`tag` in the
/// values), then one deleting every third key of them.
fn fill(sm: &StateMachine, n: u32, index: u64, tag: &str) {
    let writes = (0..n)
        .map(|i| (format!("k{i:04}").into_bytes(), Some(format!("{tag}{i}").into_bytes())))
        .collect();
    let deletes = (0..n)
        .step_by(3)
        .map(|i| (format!("k{i:04}").into_bytes(), None))
        .collect();
    let entry = |index, writes| Entry {
        log_id: log_id(1, 0, index),
        payload: EntryPayload::Normal(Command::Txn {
            snapshot: index - 1,
            writes,
            reads: vec![],
            ranges: vec![],
        }),
    };
    let (db, gens) = sm.parts();
    apply_in(
        db,
        &gens.active(),
        vec![entry(index, writes), entry(index + 1, deletes)],
    )
    .unwrap();
}

/// The applied state and every stored data pair (tombstones included),
/// then the tombstone index (which an install rebuilds: the file does not
/// carry it).
fn dump(sm: &StateMachine) -> (AppliedState, Vec<(Bytes, Bytes)>) {
    let (snap, ks) = sm.read();
    let pairs = snap
        .prefix_in(&ks, DATA_PREFIX)
        .chain(snap.prefix_in(&ks, keys::TOMB_PREFIX))
        .map(|kv| kv.unwrap())
        .collect();
    (read_applied(&snap).unwrap(), pairs)
}

fn generations(sm: &StateMachine) -> Vec<String> {
    let names = sm.parts().0.keyspaces().unwrap();
    names.into_iter().filter(|n| n.starts_with(GEN_PREFIX)).collect()
}

async fn build(sm: &StateMachine) -> Snapshot {
    let mut sm = sm.clone();
    sm.get_snapshot_builder().await.build_snapshot().await.unwrap()
}

#[tokio::test]
async fn a_snapshot_installs_the_same_state_in_bounded_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let leader = open(&tmp.path().join("a"));
    fill(&leader, 1000, 1, "v");
    let tombs = dump(&leader)
        .1
        .iter()
        .filter(|(k, _)| k.starts_with(keys::TOMB_PREFIX))
        .count();
    assert_eq!(tombs, 334, "every third key deleted, each tombstone indexed");
    let snap = build(&leader).await;
    assert_eq!(leader.snapshot_stats().builds, 1);
    let files: Vec<_> = std::fs::read_dir(leader.snapshot_dir().path()).unwrap().collect();
    assert_eq!(files.len(), 1, "one complete snapshot file, no part left");

    // The follower holds other data, which the install replaces whole.
    let mut follower = open(&tmp.path().join("b"));
    fill(&follower, 50, 1, "old");
    let meta = snap.meta.clone();
    follower.install_snapshot(&meta, snap.snapshot).await.unwrap();
    assert_eq!(dump(&follower), dump(&leader));
    let s = follower.snapshot_stats();
    assert_eq!((s.installs, s.records), (1, 1000));
    assert!(s.peak_batch_keys <= LIMITS.batch_keys as u64, "{s:?}");
    assert!(s.batches >= 1000 / LIMITS.batch_keys as u64, "{s:?}");
    assert_eq!(generations(&follower), ["sm.gen.1"]);
    // The follower's copy is its current snapshot, and sends the same.
    let again = follower.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(again.meta, meta);
    let mut third = open(&tmp.path().join("c"));
    third.install_snapshot(&again.meta, again.snapshot).await.unwrap();
    assert_eq!(dump(&third), dump(&leader));

    // A second install into the follower: the next generation, the
    // first dropped.
    fill(&leader, 10, 3, "w");
    let snap = build(&leader).await;
    follower
        .install_snapshot(&snap.meta.clone(), snap.snapshot)
        .await
        .unwrap();
    assert_eq!(dump(&follower), dump(&leader));
    assert_eq!(generations(&follower), ["sm.gen.2"]);
}

/// An older snapshot file that cannot be removed (here a directory in its
/// name's place) does not fail the build that made a newer one current:
/// it costs only disk space. (Before, the build's error stopped the node.)
#[tokio::test]
async fn an_older_snapshot_that_cannot_be_removed_fails_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sm = open(&tmp.path().join("a"));
    fill(&sm, 20, 1, "v");
    let stuck = sm.snapshot_dir().path().join("0-stuck.snap");
    std::fs::create_dir_all(&stuck).unwrap();
    std::fs::write(stuck.join("f"), b"x").unwrap();
    let snap = build(&sm).await;
    assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(2));
    assert!(stuck.exists());
    assert_eq!(sm.snapshot_stats().removal_failures, 1);
    let current = sm.clone().get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snap.meta);
}

/// Zero batch limits install one record a batch. (Before, a
/// `batch_bytes` of 0 started empty batches forever.)
#[tokio::test]
async fn zero_batch_limits_install_one_record_a_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let leader = open(&tmp.path().join("a"));
    fill(&leader, 20, 1, "v");
    let snap = build(&leader).await;
    let dir = tmp.path().join("b");
    let zero = Limits {
        batch_keys: 0,
        batch_bytes: 0,
        ..LIMITS
    };
    let mut follower = StateMachine::open(open_db(&dir), &dir.join("snapshots"), zero).unwrap();
    let meta = snap.meta.clone();
    let install = follower.install_snapshot(&meta, snap.snapshot);
    tokio::time::timeout(std::time::Duration::from_secs(60), install)
        .await
        .expect("the install ends")
        .unwrap();
    assert_eq!(dump(&follower), dump(&leader));
    let s = follower.snapshot_stats();
    assert_eq!((s.records, s.peak_batch_keys), (20, 1), "{s:?}");
}

#[tokio::test]
async fn corrupt_or_mismatched_snapshots_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let leader = open(&tmp.path().join("a"));
    fill(&leader, 100, 1, "v");
    let snap = build(&leader).await;
    let path = snap.snapshot.path().to_path_buf();
    let good = std::fs::read(&path).unwrap();
    let mut follower = open(&tmp.path().join("b"));
    fill(&follower, 20, 1, "old");
    let before = dump(&follower);
    let bad_dir = tmp.path().join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let flipped = {
        let mut b = good.clone();
        b[good.len() / 2] ^= 0x10;
        b
    };
    for (name, bytes) in [
        ("flipped", flipped),
        ("truncated", good[..good.len() - 3].to_vec()),
        ("empty", Vec::new()),
    ] {
        let p = bad_dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = follower
            .install_snapshot(&snap.meta, SnapshotFile::open(&p).unwrap())
            .await
            .expect_err(name);
        assert!(e.to_string().contains("corrupt"), "{name}: {e}");
        assert_eq!(dump(&follower), before, "{name}");
        assert!(generations(&follower).is_empty(), "{name}: no generation was made");
    }
    // The right file under another meta is refused too.
    let mut meta = snap.meta.clone();
    meta.last_log_id = Some(log_id(1, 0, 99));
    let e = follower
        .install_snapshot(&meta, SnapshotFile::open(&path).unwrap())
        .await;
    assert!(e.is_err());
    assert_eq!(dump(&follower), before);
    let parts = std::fs::read_dir(follower.snapshot_dir().path()).unwrap().count();
    assert_eq!(parts, 0, "refused copies are removed");
}

#[tokio::test]
async fn a_stop_during_install_leaves_the_old_state_or_the_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let leader = open(&tmp.path().join("a"));
    fill(&leader, 300, 1, "v");
    let snap = build(&leader).await;
    let (fdir, path) = (tmp.path().join("b"), snap.snapshot.path().to_path_buf());

    for (stop, new) in [(Stop::AfterBatches(5), false), (Stop::BeforeRetire, true)] {
        let follower = open(&fdir);
        if generations(&follower).is_empty() {
            fill(&follower, 40, 1, "old");
        }
        let before = dump(&follower);
        let mut stats = Default::default();
        let (db, gens) = follower.parts();
        let r = install_until(
            db,
            gens,
            follower.snapshot_dir(),
            &path,
            &snap.meta,
            LIMITS,
            &mut stats,
            stop,
        );
        assert!(r.is_err(), "{stop:?}");
        if stop == Stop::AfterBatches(5) {
            assert_eq!(stats.batches, 5);
            assert_eq!(generations(&follower).len(), 1, "the half-loaded generation is left");
        }
        // The process stops here: every handle goes, the directory is
        // opened again.
        drop(follower);
        let reopened = open(&fdir);
        let after = dump(&reopened);
        if new {
            assert_eq!(after, dump(&leader), "{stop:?}: the new state and its applied id");
        } else {
            assert_eq!(after, before, "{stop:?}: the old state and its applied id");
        }
        let want: &[&str] = if new { &["sm.gen.1"] } else { &[] };
        assert_eq!(
            generations(&reopened),
            want,
            "{stop:?}: the other generation dropped at open"
        );
        if new {
            // The default keyspace's data keys (the old state) are gone too.
            let snap = reopened.parts().0.snapshot();
            assert_eq!(snap.prefix(DATA_PREFIX).count(), 0);
        }
    }
}

#[tokio::test]
async fn a_directory_in_the_layout_before_generations_is_read_and_moved() {
    let tmp = tempfile::tempdir().unwrap();
    // The earlier layout: data keys in the default keyspace, no sm/active.
    {
        let db = open_db(&tmp.path().join("b"));
        let mut tx = db.begin();
        tx.put(keys::data_key(b"legacy"), keys::encode_value(1, Some(b"x")))
            .unwrap();
        // A tombstone this build indexed in the old layout.
        tx.put(keys::data_key(b"gone"), keys::encode_value(1, None)).unwrap();
        tx.put(keys::tomb_key(1, b"gone").unwrap(), []).unwrap();
        let applied = AppliedState {
            last_applied: Some(log_id(1, 0, 1)),
            membership: Default::default(),
            ..Default::default()
        };
        tx.put(keys::APPLIED, keys::to_json(&applied)).unwrap();
        tx.commit().unwrap();
    }
    let mut follower = open(&tmp.path().join("b"));
    let (applied, pairs) = dump(&follower);
    assert_eq!(applied.index(), 1);
    assert_eq!(pairs.len(), 3, "the old layout reads as it is");
    let leader = open(&tmp.path().join("a"));
    fill(&leader, 30, 1, "v");
    let snap = build(&leader).await;
    follower
        .install_snapshot(&snap.meta.clone(), snap.snapshot)
        .await
        .unwrap();
    assert_eq!(dump(&follower), dump(&leader));
    let snap = follower.parts().0.snapshot();
    assert_eq!(snap.prefix(DATA_PREFIX).count(), 0, "the old layout's keys are removed");
    assert_eq!(snap.prefix(keys::TOMB_PREFIX).count(), 0, "and its tombstone index");
}

#[test]
fn copy_in_links_a_file_it_can_and_copies_one_it_cannot() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let from = super::SnapshotDir::open(&a).unwrap();
    let to = super::SnapshotDir::open(&b).unwrap();
    let contents = |p: &Path| {
        let mut s = Vec::new();
        std::fs::File::open(p).unwrap().read_to_end(&mut s).unwrap();
        s
    };
    let src_path = a.join("x.snap");
    std::fs::write(&src_path, vec![7u8; 10_000]).unwrap();
    let mut src = SnapshotFile::open(&src_path).unwrap();
    // Same file system: a link, no byte copied (the same inode).
    let linked = to.copy_in(&mut src).unwrap();
    assert_eq!(contents(&linked), vec![7u8; 10_000]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&linked), ino(&src_path), "a hard link");
    }
    // The source removed since it was opened (the leader's file of a
    // snapshot that did not become current): copied from the open file.
    std::fs::remove_file(&src_path).unwrap();
    let copied = to.copy_in(&mut src).unwrap();
    assert_ne!(copied, linked);
    assert_eq!(contents(&copied), vec![7u8; 10_000]);
    drop((src, from));
    let parts = std::fs::read_dir(&b).unwrap().count();
    assert_eq!(parts, 2, "the link and the copy, nothing else");
}

/// `sm/active` naming a generation the state `Db` does not hold (its
/// keyspace lost): `Error::Corrupt`, and the generation that is there
/// stays. Before, the open created the named one empty and dropped the
/// other: a replica with no data and an applied position that said
/// otherwise. Also `sm/active` without `sm/applied`.
#[tokio::test]
async fn an_active_generation_that_is_missing_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let leader = open(&tmp.path().join("a"));
    fill(&leader, 20, 1, "v");
    let snap = build(&leader).await;
    let fdir = tmp.path().join("b");
    {
        let mut follower = open(&fdir);
        follower
            .install_snapshot(&snap.meta.clone(), snap.snapshot)
            .await
            .unwrap();
        assert_eq!(generations(&follower), ["sm.gen.1"]);
    }
    {
        let db = open_db(&fdir);
        db.transaction(|tx| tx.put(keys::ACTIVE, "sm.gen.7")).unwrap();
    }
    let r = StateMachine::open(open_db(&fdir), &fdir.join("snapshots"), LIMITS);
    assert!(matches!(r, Err(crate::error::Error::Corrupt(_))), "{:?}", r.err());
    assert!(open_db(&fdir).keyspaces().unwrap().contains(&"sm.gen.1".to_string()));
    // Named again, and sm/applied gone: corrupt too.
    {
        let db = open_db(&fdir);
        db.transaction(|tx| {
            tx.put(keys::ACTIVE, "sm.gen.1")?;
            tx.delete(keys::APPLIED)
        })
        .unwrap();
    }
    let r = StateMachine::open(open_db(&fdir), &fdir.join("snapshots"), LIMITS);
    assert!(matches!(r, Err(crate::error::Error::Corrupt(_))), "{:?}", r.err());
}

/// A switch whose commit fails in the log is visible anyway (bwtx publishes
/// it and poisons the database): reads then pair the new applied state with
/// the new generation, never with the old one's data.
#[test]
fn a_switch_whose_log_write_failed_reads_the_new_generation() {
    let fs = bwtx::fs::FaultFs::new();
    let db = bwtx::Options::new()
        .durability(bwtx::Durability::Buffered(std::time::Duration::from_secs(3600)))
        .file_system(std::sync::Arc::new(fs.clone()))
        .open("/state")
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let sm = StateMachine::open(db, &tmp.path().join("snapshots"), LIMITS).unwrap();
    fill(&sm, 40, 1, "old");
    let (_, gens) = sm.parts();
    let (name, ks) = gens.create_next().unwrap();
    let newer = AppliedState {
        last_applied: Some(log_id(2, 0, 50)),
        ..AppliedState::default()
    };
    fs.fail_next_write("wal-");
    assert!(gens.switch(&name, ks, &keys::encode_applied(&newer)).is_err());
    let (snap, ks) = gens.read();
    let applied = read_applied(&snap).unwrap();
    assert_eq!(
        applied.last_applied, newer.last_applied,
        "the failed commit was published"
    );
    assert_eq!(
        snap.prefix_in(&ks, DATA_PREFIX).count(),
        0,
        "so the new (empty) generation is read"
    );
}

/// A restart keeps the newest complete snapshot as the current one (checked
/// whole first) instead of building a fresh one; a damaged one is removed,
/// and one is built on demand as before. (Before 2026-12-08 every start
/// built one, a cost that grows with the state.)
#[tokio::test]
async fn a_restart_keeps_the_newest_snapshot_and_drops_a_damaged_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let sm = open(&dir);
    fill(&sm, 100, 1, "v");
    let first = build(&sm).await.meta;
    fill(&sm, 10, 3, "w");
    let built = build(&sm).await.meta;
    assert_ne!(first.last_log_id, built.last_log_id);
    drop(sm);

    let mut sm = open(&dir);
    let kept = sm.get_current_snapshot().await.unwrap().expect("the snapshot kept");
    assert_eq!(kept.meta, built, "the newest one");
    assert_eq!(sm.snapshot_stats().builds, 0, "nothing built at start");
    // It is whole: another replica installs it.
    let mut other = open(&tmp.path().join("b"));
    other.install_snapshot(&kept.meta, kept.snapshot).await.unwrap();
    assert_eq!(dump(&other), dump(&sm));
    let path = sm.snapshot_dir().final_path(built.last_log_id);
    drop(sm);

    // A flipped byte: removed at the next start, a fresh one built when asked.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let mut sm = open(&dir);
    assert!(!path.exists(), "the damaged snapshot is removed");
    let fresh = sm.get_current_snapshot().await.unwrap().expect("built on demand");
    assert_eq!(fresh.meta, built);
    assert_eq!(sm.snapshot_stats().builds, 1);
    assert!(path.exists());
}

/// A kept snapshot ahead of the state (the crash came before the state it
/// holds was durable) is installed from itself, as openraft's start does
/// (`restore_from_snapshot`: the current snapshot, if newer than the
/// applied state, is installed): the state catches up, and the file stays
/// the current one with no part left beside it.
#[tokio::test]
async fn a_kept_snapshot_ahead_of_the_state_installs_from_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let leader = open(&tmp.path().join("a"));
    fill(&leader, 50, 1, "v");
    let built = build(&leader).await.meta;
    // Node b: an empty state, and the snapshot file (as a crash before
    // the state's checkpoint would leave it).
    let b = tmp.path().join("b");
    drop(open(&b));
    let name = leader.snapshot_dir().final_path(built.last_log_id);
    let to = b.join("snapshots").join(name.file_name().unwrap());
    std::fs::copy(&name, &to).unwrap();

    let mut sm = open(&b);
    assert_eq!(sm.applied().unwrap().last_applied, None);
    let current = sm.get_current_snapshot().await.unwrap().expect("kept");
    assert_eq!(current.meta, built);
    sm.install_snapshot(&current.meta, current.snapshot).await.unwrap();
    assert_eq!(dump(&sm), dump(&leader));
    let left: Vec<_> = std::fs::read_dir(b.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, [to], "the snapshot, no part beside it");
    assert_eq!(sm.get_current_snapshot().await.unwrap().unwrap().meta, built);
}

/// An install stopped by a crash after its switch (I4) and before its file
/// is complete (I7) leaves no older snapshot to be kept at the next start:
/// the current snapshot is never older than the state (whose applied id
/// openraft purges the log to). Before 2026-12-08 the older file was kept.
#[tokio::test]
async fn an_install_stopped_after_its_switch_keeps_no_older_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let leader = open(&tmp.path().join("a"));
    fill(&leader, 50, 1, "v");
    fill(&leader, 10, 3, "w");
    let snap = build(&leader).await;
    let fdir = tmp.path().join("b");
    let follower = open(&fdir);
    fill(&follower, 20, 1, "old");
    let older = build(&follower).await.meta;
    assert!(older.last_log_id < snap.meta.last_log_id);
    let (db, gens) = follower.parts();
    let r = install_until(
        db,
        gens,
        follower.snapshot_dir(),
        snap.snapshot.path(),
        &snap.meta,
        LIMITS,
        &mut Default::default(),
        Stop::BeforeRetire,
    );
    assert!(r.is_err());
    drop(follower);
    let mut reopened = open(&fdir);
    assert_eq!(reopened.applied().unwrap().last_applied, snap.meta.last_log_id);
    let current = reopened.get_current_snapshot().await.unwrap().expect("built on demand");
    assert!(
        current.meta.last_log_id >= snap.meta.last_log_id,
        "kept {:?}, older than the state",
        current.meta.last_log_id
    );
}
