//! Bad arguments to a `Cluster` are errors that say what is wrong, at
//! once: no panic, and no wait for a directory lock that cannot come free.

use std::time::Duration;

use bwtx_raft::{Cluster, Error};

fn raft_error(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(Error::Raft(msg)) => msg,
        other => panic!("expected Error::Raft, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_arguments_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let msg = raft_error(Cluster::start(&dir.path().join("none"), &[]).await.map(|_| ()));
    assert!(msg.contains("at least one node"), "{msg}");
    // Before this check, the second node 1 waited 10 s for the first's
    // directory lock and then failed with `Locked`.
    let msg = raft_error(Cluster::start(&dir.path().join("twice"), &[1, 2, 1]).await.map(|_| ()));
    assert!(msg.contains("node id 1 is given twice"), "{msg}");

    let cluster = Cluster::start(&dir.path().join("ok"), &[1, 2, 3]).await.unwrap();
    let msg = raft_error(cluster.start_node(2).await.map(|_| ()));
    assert!(msg.contains("node 2 is already running"), "{msg}");
    // Two starts of one new node at once. The first waits for its log's
    // directory lock, which the test holds until the second start has
    // answered: the second is told the node is starting (it used to wait
    // 10 s for the same lock, then fail with `Locked`), and the first then
    // starts the node.
    let held = bwtx::Db::open(cluster.node_dir(4).join("log")).unwrap();
    let (first, second) = tokio::join!(cluster.start_node(4), async {
        let second = cluster.start_node(4).await.map(|n| n.id());
        drop(held);
        second
    });
    let msg = raft_error(second);
    assert!(msg.contains("node 4 is already starting"), "{msg}");
    assert_eq!(first.map(|n| n.id()).unwrap(), 4);
    assert_eq!(cluster.node(4).map(|n| n.id()), Some(4));
    let msg = raft_error(cluster.start_node(4).await.map(|_| ()));
    assert!(msg.contains("node 4 is already running"), "{msg}");
    cluster.kill(4).await.unwrap();
    let msg = raft_error(cluster.change_voters(Default::default(), false).await);
    assert!(msg.contains("empty"), "{msg}");
    let msg = raft_error(cluster.change_voters([7].into_iter().collect(), false).await);
    assert!(msg.contains("7 not found"), "{msg}");
    let msg = raft_error(cluster.wait_converged(&[9], Duration::from_secs(1)).await);
    assert!(msg.contains("node 9 is not running"), "{msg}");
    // Killing or healing a node that is not running does nothing.
    cluster.kill(9).await.unwrap();
    cluster.heal(9).await.unwrap();
    // The longest timeouts are waits, not an overflow of `Instant + Duration`.
    let (_, index) = cluster
        .transaction(Duration::MAX, |tx| {
            tx.put("k", "v")?;
            Ok(())
        })
        .await
        .unwrap();
    assert!(index > 0);
    assert!(cluster.wait_converged(&[1, 2, 3], Duration::MAX).await.unwrap() >= index);
    cluster.shutdown().await.unwrap();
}
