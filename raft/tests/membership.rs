//! Membership changes under load: add a learner, promote it to a voter,
//! remove a node (the leader itself), and keep transferring; the remaining
//! members converge, the removed node is out of the membership.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use bwtx_raft::{bank, Cluster};
use common::{assert_converged, run_transfers, ACCOUNTS, INITIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_learner_promote_and_remove_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Arc::new(Cluster::start(dir.path(), &[1, 2, 3]).await.unwrap());
    bank::open_accounts(&cluster, ACCOUNTS, INITIAL).await.unwrap();
    let mut acked = run_transfers(&cluster, 2, 10, 0).await;

    cluster.add_learner(4).await.unwrap();
    cluster
        .change_voters(BTreeSet::from([1, 2, 3, 4]), false)
        .await
        .unwrap();
    acked.extend(run_transfers(&cluster, 2, 10, 1_000).await);

    let removed = cluster.leader().await.unwrap().id();
    let rest: BTreeSet<u64> = [1, 2, 3, 4].into_iter().filter(|&id| id != removed).collect();
    cluster.change_voters(rest.clone(), false).await.unwrap();
    acked.extend(run_transfers(&cluster, 2, 10, 2_000).await);

    let leader = cluster.leader().await.unwrap();
    assert!(rest.contains(&leader.id()), "the leader is one of the remaining voters");
    let m = leader.raft().metrics().borrow().clone();
    let voters: BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
    assert_eq!(voters, rest);
    assert!(!m.membership_config.membership().nodes().any(|(id, _)| *id == removed));

    let rest: Vec<u64> = rest.into_iter().collect();
    assert_converged(&cluster, &rest, &acked).await;
    cluster.shutdown().await.unwrap();
}
