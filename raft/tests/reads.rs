//! Reads: a linearizable read on the leader sees every acknowledged
//! transaction; on a follower it is refused with the leader's id; a
//! follower's snapshot read reports its applied position and, once caught
//! up, matches the leader's; a transaction begun linearizably reads the
//! latest commit and conflicts like a local one.

mod common;

use std::time::Duration;

use bwtx_raft::{Cluster, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_and_follower_reads() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), &[1, 2, 3]).await.unwrap();
    let leader = cluster.leader().await.unwrap();

    let mut tx = leader.begin().await.unwrap();
    tx.put("k", "1").unwrap();
    let first = tx.commit().await.unwrap();

    let read = leader.read_linearizable().await.unwrap();
    assert!(read.position() >= first);
    assert_eq!(read.get("k").unwrap().as_deref(), Some(&b"1"[..]));

    let follower = cluster
        .node([1, 2, 3].into_iter().find(|&id| id != leader.id()).unwrap())
        .unwrap();
    common::knows_leader(&follower, leader.id()).await;
    match follower.read_linearizable().await {
        Err(Error::NotLeader { leader: Some(l) }) => assert_eq!(l, leader.id()),
        other => panic!(
            "a follower must refuse a linearizable read, got {:?}",
            other.map(|r| r.position())
        ),
    }
    cluster
        .wait_converged(&[follower.id()], Duration::from_secs(30))
        .await
        .unwrap();
    let on_follower = follower.read_snapshot().unwrap();
    assert_eq!(
        on_follower.applied_log_id(),
        leader.read_snapshot().unwrap().applied_log_id()
    );
    assert_eq!(on_follower.get("k").unwrap().as_deref(), Some(&b"1"[..]));

    // Two linearizable transactions on one snapshot: first committer wins.
    let mut a = leader.begin().await.unwrap();
    let mut b = leader.begin().await.unwrap();
    assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"1"[..]));
    a.put("k", "2").unwrap();
    b.put("k", "3").unwrap();
    let won = a.commit().await.unwrap();
    let lost = b.commit().await.unwrap_err();
    assert!(lost.is_conflict(), "{lost}");
    match lost {
        Error::Bwtx(bwtx::Error::Conflict { winner, snapshot, .. }) => {
            assert_eq!(winner, won);
            assert!(snapshot < won);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let mut c = leader.begin().await.unwrap();
    assert_eq!(
        c.get("k").unwrap().as_deref(),
        Some(&b"2"[..]),
        "a new transaction reads the winner"
    );
    c.delete("k").unwrap();
    c.commit().await.unwrap();
    assert_eq!(leader.read_linearizable().await.unwrap().get("k").unwrap(), None);
    cluster.shutdown().await.unwrap();
}
