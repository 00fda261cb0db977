//! `Cluster::transaction` keeps to its timeout while it waits for a leader:
//! with no quorum left, no leader is elected, and the call ends with
//! `NotLeader` soon after its timeout. Before 2026-12-07 (stop 57) each
//! attempt first waited the full 10 s of `Cluster::leader`, whatever the
//! timeout.

use std::time::Duration;

use bwtx_raft::{Cluster, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_without_a_leader_ends_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), &[1, 2, 3]).await.unwrap();
    let leader = cluster.leader().await.unwrap().id();
    // The leader and one follower gone: the last node cannot be elected.
    let other = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    cluster.kill(leader).await.unwrap();
    cluster.kill(other).await.unwrap();
    // A bound on a hang (half the old wait for a leader), not a measure of
    // speed: the timeout is 300 ms.
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        cluster.transaction(Duration::from_millis(300), |tx| tx.put("k", "v")),
    )
    .await
    .expect("the transaction ended within 5 s of its 300 ms timeout");
    assert!(matches!(r, Err(Error::NotLeader { leader: None })), "{r:?}");
    cluster.shutdown().await.unwrap();
}
