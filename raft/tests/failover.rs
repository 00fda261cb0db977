//! The leader is killed (raft's tasks stopped, its `Db` dropped) while
//! clients transfer money; a new leader is elected, the transfers go on,
//! the old leader restarts from its directory and catches up, and every
//! replica ends with the same state, the total conserved and every
//! acknowledged transfer present.

mod common;

use std::sync::Arc;

use bwtx_raft::{bank, Cluster};
use common::{rejoined_and_converged, transfers_until_applied_40, ACCOUNTS, INITIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_and_restarted_from_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Arc::new(Cluster::start(dir.path(), &[1, 2, 3]).await.unwrap());
    bank::open_accounts(&cluster, ACCOUNTS, INITIAL).await.unwrap();

    // Kill the leader once some transfers went through.
    let (clients, old) = transfers_until_applied_40(&cluster).await;
    let old_id = old.id();
    drop(old);
    cluster.kill(old_id).await.unwrap();

    let new = cluster.leader().await.unwrap();
    assert_ne!(new.id(), old_id, "a new leader among the survivors");
    drop(new);

    let acked = clients.await.unwrap();
    assert_eq!(acked.len(), 160, "every client finished through the new leader");

    cluster.start_node(old_id).await.unwrap();
    rejoined_and_converged(&cluster, old_id, acked).await;
}
