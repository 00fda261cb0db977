//! A node whose log or state directory was lost (deleted by hand, a disk
//! replaced) does not start as if it were new: `Node::start` is an error.
//! (Before: `Options::open` created the missing directory empty and the
//! node started; with its log lost it could vote a second time in a term,
//! and with its state lost after a purge raft stopped at its first commit.)

mod common;

use std::sync::Arc;

use bwtx_raft::{bank, Cluster};
use common::{run_transfers, snapshot_and_purge, ACCOUNTS, INITIAL};

async fn lost(sub: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Arc::new(Cluster::start(dir.path(), &[1, 2, 3]).await.unwrap());
    bank::open_accounts(&cluster, ACCOUNTS, INITIAL).await.unwrap();
    run_transfers(&cluster, 2, 10, 0).await;
    let leader = cluster.leader().await.unwrap();
    let f = [1, 2, 3].into_iter().find(|&i| i != leader.id()).unwrap();
    drop(leader);
    let node = cluster.node(f).unwrap();
    snapshot_and_purge(&node).await;
    drop(node);
    cluster.kill(f).await.unwrap();
    std::fs::remove_dir_all(cluster.node_dir(f).join(sub)).unwrap();
    match cluster.start_node(f).await {
        Err(e) => assert!(e.to_string().contains("lost"), "{sub}: {e}"),
        Ok(_) => panic!("{sub} lost, yet the node started"),
    }
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_state_directory_is_an_error() {
    lost("state").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_log_directory_is_an_error() {
    lost("log").await;
}
