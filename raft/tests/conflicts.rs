//! Conflicting transactions proposed concurrently through the leader: all
//! read the same snapshot and write the same key; exactly one commits,
//! the others get a conflict, and every replica agrees on which one won.
//! Transactions with disjoint write sets from the same snapshot all commit.

mod common;

use std::time::Duration;

use bwtx_raft::Cluster;
use common::converged_reads;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_replica_agrees_on_the_winner() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), &[1, 2, 3]).await.unwrap();
    let leader = cluster.leader().await.unwrap();
    // The leader's blank entry of its term may still be applying: wait, so
    // that the transactions below all begin on one snapshot.
    cluster
        .wait_converged(&[1, 2, 3], Duration::from_secs(30))
        .await
        .unwrap();

    let mut tasks = Vec::new();
    let mut position = None;
    for i in 0..8u32 {
        let mut txn = leader.begin_local().unwrap();
        assert_eq!(*position.get_or_insert(txn.position()), txn.position());
        txn.put("hot", i.to_string()).unwrap();
        txn.put(format!("mark/{i}"), "x").unwrap();
        tasks.push(tokio::spawn(async move { (i, txn.commit().await) }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (i, Ok(index)) => winners.push((i, index)),
            (_, Err(e)) => assert!(e.is_conflict(), "a loser gets a conflict, not {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of the conflicting transactions commits");
    let (winner, _) = winners[0];

    // Disjoint write sets from one snapshot all commit.
    let mut tasks = Vec::new();
    for i in 0..4u32 {
        let mut txn = leader.begin_local().unwrap();
        txn.put(format!("cold/{i}"), "y").unwrap();
        tasks.push(tokio::spawn(txn.commit()));
    }
    for t in tasks {
        t.await.unwrap().expect("disjoint writes never conflict");
    }

    for (id, read) in converged_reads(&cluster, &[1, 2, 3]).await {
        assert_eq!(
            read.get("hot").unwrap().as_deref(),
            Some(winner.to_string().as_bytes()),
            "node {id}"
        );
        let marks: Vec<_> = read.scan_prefix("mark/").unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            marks,
            [format!("mark/{winner}")],
            "node {id} holds only the winner's writes"
        );
        assert_eq!(read.scan_prefix("cold/").unwrap().len(), 4, "node {id}");
    }
    cluster.shutdown().await.unwrap();
}
