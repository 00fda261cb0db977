//! A new learner joins after the leader built a snapshot and purged the
//! log it covers: it can only catch up by installing the snapshot, and
//! ends with the same state as the voters. On both networks: over TCP the
//! snapshot travels in `Snapshot` frames (4 MiB parts) to the learner's port.

mod common;

use std::time::Duration;

use bwtx_raft::bank;
use common::{assert_converged, run_transfers, snapshot_and_purge, start, ACCOUNTS, INITIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_installed_on_a_new_learner() {
    scenario(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tcp_snapshot_installed_on_a_new_learner() {
    scenario(true).await;
}

async fn scenario(tcp: bool) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path(), &[1, 2, 3], tcp).await;
    bank::open_accounts(&cluster, ACCOUNTS, INITIAL).await.unwrap();
    let mut acked = run_transfers(&cluster, 4, 15, 0).await;

    let leader = common::steady_leader(&cluster, &[1, 2, 3]).await;
    let snap_index = snapshot_and_purge(&leader).await;
    drop(leader);

    cluster.add_learner(4).await.unwrap();
    let learner = cluster.node(4).unwrap();
    // Entries up to the snapshot are gone from every log the learner could
    // read: only an installed snapshot brings it there.
    let m = learner
        .raft()
        .wait(Some(Duration::from_secs(30)))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= snap_index),
            "snapshot installed",
        )
        .await
        .unwrap();
    assert!(m.last_applied.unwrap().index >= snap_index);
    let log = learner.metrics().purged;
    assert!(log.is_none_or(|p| p.index <= snap_index));

    // Transfers go on; the learner follows them through the log.
    acked.extend(run_transfers(&cluster, 2, 10, 1_000).await);
    assert_converged(&cluster, &[1, 2, 3, 4], &acked).await;
    cluster.shutdown().await.unwrap();
}
