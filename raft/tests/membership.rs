//! Membership changes under load: add a learner, promote it to a voter,
//! remove a node (the leader itself), and keep transferring, with two more
//! clients transferring all along (through every change); the remaining
//! members converge on every acknowledged transfer, the removed node is out
//! of the membership. On both networks: over TCP the learner joins by its
//! address.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bwtx_raft::bank;
use common::{assert_converged, run_transfers, start, transfers_until, ACCOUNTS, INITIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_learner_promote_and_remove_a_node() {
    scenario(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tcp_add_learner_promote_and_remove_a_node() {
    scenario(true).await;
}

async fn scenario(tcp: bool) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path(), &[1, 2, 3], tcp).await;
    bank::open_accounts(&cluster, ACCOUNTS, INITIAL).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let load = transfers_until(&cluster, 2, 100_000, stop.clone(), counter.clone());
    let mut acked = run_transfers(&cluster, 2, 10, 0).await;

    cluster.add_learner(4).await.unwrap();
    cluster
        .change_voters(BTreeSet::from([1, 2, 3, 4]), false)
        .await
        .unwrap();
    acked.extend(run_transfers(&cluster, 2, 10, 1_000).await);

    let removed = cluster.leader().await.unwrap().id();
    let rest: BTreeSet<u64> = [1, 2, 3, 4].into_iter().filter(|&id| id != removed).collect();
    let before_removal = counter.load(Ordering::Relaxed);
    cluster.change_voters(rest.clone(), false).await.unwrap();
    acked.extend(run_transfers(&cluster, 2, 10, 2_000).await);
    stop.store(true, Ordering::Relaxed);
    let during = load.await.unwrap();
    // The load ran before the removal and after it (its clients stop only
    // once `stop` is set, after the removal): not a proof that a transfer
    // was in flight during it, which the timing decides. Every transfer it
    // started was acknowledged (else `transfers_until` panics), and every
    // one is on every remaining member below.
    assert!(
        before_removal > 0 && during.len() as u64 > before_removal,
        "the load ran on both sides of the removal: {before_removal} acknowledged before it, {} in all",
        during.len()
    );
    acked.extend(during);

    let leader = cluster.leader().await.unwrap();
    assert!(rest.contains(&leader.id()), "the leader is one of the remaining voters");
    let m = leader.metrics();
    let voters: BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
    assert_eq!(voters, rest);
    assert!(!m.membership_config.membership().nodes().any(|(id, _)| *id == removed));
    if tcp {
        // Every member is named by its listening address.
        for (id, node) in m.membership_config.membership().nodes() {
            assert_eq!(node.addr, cluster.addr(*id).unwrap().to_string());
        }
    }

    let rest: Vec<u64> = rest.into_iter().collect();
    assert_converged(&cluster, &rest, &acked).await;
    cluster.shutdown().await.unwrap();
}
