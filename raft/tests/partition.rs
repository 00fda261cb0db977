//! A follower is partitioned away while the other two keep committing; it
//! falls behind, then rejoins and catches up to the same state.

mod common;

use std::sync::Arc;

use bwtx_raft::{bank, Cluster};
use common::{assert_converged, converged_follower, run_transfers, ACCOUNTS, INITIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitioned_follower_rejoins_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Arc::new(Cluster::start(dir.path(), &[1, 2, 3]).await.unwrap());
    bank::open_accounts(&cluster, ACCOUNTS, INITIAL).await.unwrap();
    let mut acked = run_transfers(&cluster, 2, 10, 0).await;

    let (_, follower) = converged_follower(&cluster, &[1, 2, 3]).await;
    cluster.isolate(follower).await;
    let cut_at = cluster.node(follower).unwrap().read_snapshot().unwrap().position();

    acked.extend(run_transfers(&cluster, 4, 20, 1_000).await);
    let behind = cluster.node(follower).unwrap().read_snapshot().unwrap();
    assert_eq!(behind.position(), cut_at, "the isolated follower applied nothing");
    assert!(behind.get(bank::marker(1_000)).unwrap().is_none());
    // Its snapshot reads still see one consistent prefix.
    assert_eq!(bank::total(&behind).unwrap(), ACCOUNTS as u64 * INITIAL);

    cluster.heal(follower).await.unwrap();
    assert_converged(&cluster, &[1, 2, 3], &acked).await;
    cluster.shutdown().await.unwrap();
}
