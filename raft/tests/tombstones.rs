//! Tombstone collection through the client API, on a 3-node cluster: the
//! horizon set through the log, a delete's tombstone gone on every replica
//! once the floor passes it, and a transaction whose snapshot fell behind
//! the floor refused with `SnapshotTooOld`, writing nothing.

mod common;

use std::time::Duration;

use bwtx_raft::{Cluster, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tombstones_go_after_the_horizon_and_stale_commits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), &[1, 2, 3]).await.unwrap();
    let leader = common::steady_leader(&cluster, &[1, 2, 3]).await;
    let follower = cluster.running().into_iter().find(|&id| id != leader.id()).unwrap();
    let follower = cluster.node(follower).unwrap();
    common::knows_leader(&follower, leader.id()).await;

    // Set from a follower: forwarded to the leader like a commit.
    let set_at = follower.set_tombstone_horizon(4).await.unwrap();
    assert!(matches!(
        leader.set_tombstone_horizon(0).await,
        Err(Error::Bwtx(bwtx::Error::InvalidArgument(_)))
    ));

    let mut t = leader.begin().await.unwrap();
    t.put("doomed", "1").unwrap();
    t.commit().await.unwrap();
    let mut t = leader.begin().await.unwrap();
    t.delete("doomed").unwrap();
    let deleted_at = t.commit().await.unwrap();
    assert!(deleted_at > set_at);

    // A transaction begun now, committed after the floor passed it.
    let mut stale = leader.begin().await.unwrap();
    stale.put("stale", "x").unwrap();
    let begun_at = stale.position();

    let mut last = 0;
    for i in 0..6 {
        let mut t = leader.begin().await.unwrap();
        t.put(format!("filler/{i}"), "y").unwrap();
        last = t.commit().await.unwrap();
    }
    assert!(last - 4 > deleted_at, "the floor passed the delete");

    let err = stale.commit().await.unwrap_err();
    match &err {
        Error::Bwtx(bwtx::Error::SnapshotTooOld { requested, oldest }) => {
            assert_eq!(*requested, begun_at);
            assert!(*oldest > begun_at, "{err}");
        }
        other => panic!("expected SnapshotTooOld, got {other:?}"),
    }
    assert!(!err.is_conflict());

    let applied = cluster
        .wait_converged(&[1, 2, 3], Duration::from_secs(30))
        .await
        .unwrap();
    for id in [1, 2, 3] {
        let node = cluster.node(id).unwrap();
        let t = node.tombstones().unwrap();
        assert_eq!(t.horizon, 4, "node {id}");
        assert_eq!(t.floor, applied - 4, "node {id}");
        assert_eq!(t.stored, 0, "node {id}: the tombstone of 'doomed' is collected");
        let read = node.read_snapshot().unwrap();
        assert_eq!(read.get("doomed").unwrap(), None);
        assert_eq!(
            read.get("stale").unwrap(),
            None,
            "node {id}: a refused commit wrote nothing"
        );
        assert!(read.get("filler/5").unwrap().is_some());
    }
    cluster.shutdown().await.unwrap();
}
