//! A commit on a node that is not (or no longer) the leader is forwarded to
//! the leader: a transaction begun on a follower commits, one begun on a
//! leader that lost its leadership before the commit commits, first
//! committer wins still holds across forwarded commits, and every replica
//! agrees.

mod common;

use std::time::{Duration, Instant};

use bwtx_raft::{Cluster, Node};
use common::converged_reads;

/// Wait until `node` knows a leader other than itself; returns it.
async fn knows_other_leader(node: &Node) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leader = node.metrics().current_leader;
        match leader {
            Some(l) if l != node.id() => return l,
            _ if Instant::now() > deadline => panic!("node {} learns of no new leader", node.id()),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_are_forwarded_to_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), &[1, 2, 3]).await.unwrap();
    let leader = cluster.leader().await.unwrap();
    let follower = cluster
        .node([1, 2, 3].into_iter().find(|&i| i != leader.id()).unwrap())
        .unwrap();
    assert_eq!(knows_other_leader(&follower).await, leader.id());

    // Begun and committed on a follower.
    let mut txn = follower.begin_local().unwrap();
    txn.put("from-follower", "1").unwrap();
    let index = txn.commit().await.expect("forwarded to the leader");
    assert!(leader.read_linearizable().await.unwrap().position() >= index);

    // The same key from the follower and the leader, one snapshot: one wins.
    cluster
        .wait_converged(&[1, 2, 3], Duration::from_secs(10))
        .await
        .unwrap();
    let mut a = follower.begin_local().unwrap();
    let mut b = leader.begin_local().unwrap();
    assert_eq!(a.position(), b.position());
    a.put("hot", "follower").unwrap();
    b.put("hot", "leader").unwrap();
    let (ra, rb) = (a.commit().await, b.commit().await);
    assert!(ra.is_ok() != rb.is_ok(), "exactly one commits: {ra:?} {rb:?}");
    assert!(ra.as_ref().err().or(rb.as_ref().err()).unwrap().is_conflict());

    // Begun on the leader, which loses its leadership before the commit.
    let old = leader;
    let mut txn = old.begin().await.unwrap();
    txn.put("across-election", "1").unwrap();
    // Cut it off until the others elect a new leader, then reconnect it:
    // it hears the higher term and steps down.
    cluster.isolate(old.id()).await;
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|&i| i != old.id()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let l = cluster.node(others[0]).unwrap().metrics().current_leader;
        if l.is_some_and(|l| l != old.id()) {
            break;
        }
        assert!(Instant::now() < deadline, "no new leader elected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.heal(old.id()).await.unwrap();
    let new = knows_other_leader(&old).await;
    assert_ne!(new, old.id());
    txn.commit().await.expect("forwarded to the new leader");

    let mut states = Vec::new();
    for (id, read) in converged_reads(&cluster, &[1, 2, 3]).await {
        assert!(read.get("from-follower").unwrap().is_some(), "node {id}");
        assert!(read.get("across-election").unwrap().is_some(), "node {id}");
        states.push((read.applied_log_id(), read.scan_prefix("").unwrap()));
    }
    assert!(states.windows(2).all(|w| w[0] == w[1]), "every replica agrees");
    cluster.shutdown().await.unwrap();
}
