//! `Cluster::transaction` reads what the cluster acknowledged before it,
//! also on a new leader that has not applied it yet (`design/replication.md`
//! §6, the read floor): the followers log a commit but apply nothing (a
//! test hold, `Node::hold_apply`), the leader that applied it is killed,
//! and the next transaction, on whichever follower is elected, must see the
//! commit. Without the floor it begins at once on the new leader's stale
//! state and reads nothing.

mod common;

use std::time::Duration;

use common::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_behind_in_applying_serves_the_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path(), &[1, 2, 3], false).await;
    // Every replica applied something first (a node that applied nothing
    // yet waits for its first entry anyway).
    cluster
        .transaction(Duration::from_secs(30), |tx| tx.put("floor/key", "first"))
        .await
        .unwrap();
    cluster
        .wait_converged(&[1, 2, 3], Duration::from_secs(30))
        .await
        .unwrap();
    let old = cluster.leader().await.unwrap().id();
    let followers: Vec<u64> = [1, 2, 3].into_iter().filter(|&id| id != old).collect();
    for &f in &followers {
        cluster.node(f).unwrap().hold_apply(true);
    }
    let ((), index) = cluster
        .transaction(Duration::from_secs(30), |tx| tx.put("floor/key", "acknowledged"))
        .await
        .unwrap();
    // The scenario: the commit is in the followers' logs, not in their state.
    for &f in &followers {
        let node = cluster.node(f).unwrap();
        node.raft()
            .wait(Some(Duration::from_secs(30)))
            .metrics(|m| m.last_log_index >= Some(index), "the commit logged")
            .await
            .unwrap();
        let applied = node.metrics().last_applied.map_or(0, |l| l.index);
        assert!(applied < index, "node {f} applied {applied}, the commit is {index}");
    }
    cluster.kill(old).await.unwrap();

    // The holds end a while after a new leader is elected.
    let lift = tokio::spawn({
        let cluster = cluster.clone();
        async move {
            let leader = cluster.leader().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let behind = leader.map(|l| l.read_snapshot().unwrap().position());
            // The holds end before anything is asserted (else a failure
            // here would leave the transaction waiting out its timeout).
            for &f in &followers {
                cluster.node(f).unwrap().hold_apply(false);
            }
            let behind = behind.expect("a new leader");
            assert!(behind < index, "the new leader applied the commit while held");
        }
    });
    let (read, _) = cluster
        .transaction(Duration::from_secs(30), |tx| tx.get("floor/key"))
        .await
        .unwrap();
    assert_eq!(
        read.as_deref(),
        Some(&b"acknowledged"[..]),
        "a transaction after an acknowledged commit did not see it"
    );
    lift.await.unwrap();
    cluster.shutdown().await.unwrap();
}
