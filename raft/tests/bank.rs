//! Concurrent bank transfers through the leader of a 3-node cluster: every
//! replica ends with the same state, the total conserved and every
//! acknowledged transfer present.

mod common;

use std::sync::Arc;

use bwtx_raft::{bank, Cluster};
use common::{assert_converged, run_transfers, ACCOUNTS, INITIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_conserve_the_total_on_every_replica() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Arc::new(Cluster::start(dir.path(), &[1, 2, 3]).await.unwrap());
    bank::open_accounts(&cluster, ACCOUNTS, INITIAL).await.unwrap();

    let acked = run_transfers(&cluster, 8, 25, 0).await;
    assert_eq!(acked.len(), 200);
    assert_converged(&cluster, &[1, 2, 3], &acked).await;
    let read = cluster.node(1).unwrap().read_snapshot().unwrap();
    assert_eq!(
        bank::transfers(&read).unwrap(),
        200,
        "each transfer applied exactly once"
    );
    // Opening the accounts again (as a retry of an attempt whose outcome
    // was unknown does) leaves the balances the transfers left.
    bank::open_accounts(&cluster, ACCOUNTS, INITIAL).await.unwrap();
    let read = cluster.leader().await.unwrap().read_snapshot().unwrap();
    bank::ledger_matches(&read, ACCOUNTS, INITIAL).unwrap();
    cluster.shutdown().await.unwrap();
}
