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
    let leader = common::steady_leader(&cluster, &[1, 2, 3]).await;
    // The leader's blank entry of its term may still be applying: wait, so
    // that the transactions below all begin on one snapshot.
    cluster
        .wait_converged(&[1, 2, 3], Duration::from_secs(30))
        .await
        .unwrap();

    // Under load an election can still apply a new term's blank entry
    // between two begins: begin the eight again until they share a snapshot.
    let mut attempts = 0;
    let txns = loop {
        let txns: Vec<_> = (0..8).map(|_| leader.begin_local().unwrap()).collect();
        if txns.iter().all(|t| t.position() == txns[0].position()) {
            break txns;
        }
        attempts += 1;
        assert!(attempts < 100, "no eight begins on one snapshot in 100 attempts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut tasks = Vec::new();
    for (i, mut txn) in (0..8u32).zip(txns) {
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
