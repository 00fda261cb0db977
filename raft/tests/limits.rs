//! A replicated transaction larger than `MAX_PROPOSAL_BYTES` is refused at
//! commit with `bwtx::Error::InvalidArgument`, and nothing is proposed: the
//! cluster goes on committing. (Before: it was proposed, and a log entry
//! that a replica's bwtx refused to commit stopped that replica; batches
//! and catch-up applies had no byte bound either.)

mod common;

use std::time::Duration;

use bwtx_raft::types::MAX_PROPOSAL_BYTES;
use bwtx_raft::{Cluster, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_over_the_proposal_limit_is_refused_and_the_cluster_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), &[1, 2, 3]).await.unwrap();
    let leader = common::steady_leader(&cluster, &[1, 2, 3]).await;

    let mut txn = leader.begin_local().unwrap();
    txn.put("huge", vec![7u8; MAX_PROPOSAL_BYTES + 1]).unwrap();
    match txn.commit().await {
        Err(Error::Bwtx(bwtx::Error::InvalidArgument(why))) => assert!(why.contains("32 MiB"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Just under the limit commits, and so does a small one after it.
    let mut txn = leader.begin_local().unwrap();
    txn.put("large", vec![7u8; MAX_PROPOSAL_BYTES - 16]).unwrap();
    txn.commit().await.unwrap();
    let mut txn = leader.begin_local().unwrap();
    txn.put("small", "s").unwrap();
    txn.commit().await.unwrap();
    cluster
        .wait_converged(&[1, 2, 3], Duration::from_secs(60))
        .await
        .unwrap();
    for id in [1, 2, 3] {
        let node = cluster.node(id).unwrap();
        let snap = node.read_snapshot().unwrap();
        assert_eq!(snap.get("huge").unwrap(), None, "node {id}");
        assert_eq!(
            snap.get("large").unwrap().map(|v| v.len()),
            Some(MAX_PROPOSAL_BYTES - 16),
            "node {id}"
        );
        assert_eq!(snap.get("small").unwrap().as_deref(), Some(&b"s"[..]), "node {id}");
    }
}
