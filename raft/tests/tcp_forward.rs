//! On loopback TCP, a transaction begun on a follower commits through the
//! leader: its proposal is forwarded over the follower's connection to the
//! leader's port (the follower's own raft would refuse it with
//! `ForwardToLeader`), and every replica applies it.

mod common;

use std::time::Duration;

use bwtx_raft::Cluster;
use common::converged_reads;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tcp_commit_on_a_follower_is_forwarded_to_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_tcp(dir.path(), &[1, 2, 3]).await.unwrap();
    let leader = cluster.leader().await.unwrap().id();
    let follower = cluster
        .node([1, 2, 3].into_iter().find(|&id| id != leader).unwrap())
        .unwrap();
    // Wait until the follower knows the leader and its address.
    follower
        .raft()
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.current_leader == Some(leader) && m.membership_config.membership().get_node(&leader).is_some(),
            "the follower knows the leader",
        )
        .await
        .unwrap();

    // An election under load may leave the follower without a leader for a
    // moment: `NotLeader` means nothing was proposed, so the test retries
    // (as a client would) until the forwarded commit goes through.
    let mut attempts = 0;
    let index = loop {
        let mut tx = follower.begin_local().unwrap();
        tx.put("forwarded", "yes").unwrap();
        match tx.commit().await {
            Ok(index) => break index,
            Err(e) if e.is_not_leader() && attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("forwarded commit: {e}"),
        }
    };
    assert!(index > 0);

    for (id, read) in converged_reads(&cluster, &[1, 2, 3]).await {
        assert_eq!(
            read.get("forwarded").unwrap().as_deref(),
            Some(&b"yes"[..]),
            "node {id}"
        );
        assert!(read.position() >= index);
    }
    drop(follower);
    cluster.shutdown().await.unwrap();
}
