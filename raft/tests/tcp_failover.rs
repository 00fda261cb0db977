//! A 3-node cluster on loopback TCP: the leader is killed (its port closed,
//! raft's tasks stopped, its `Db`s dropped) while clients transfer money;
//! a new leader is elected through RPCs that fail as `Unreachable`, the
//! transfers go on, the old leader restarts from its directory on the same
//! address and catches up, and every replica ends with the same state, the
//! total conserved and every acknowledged transfer present.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use bwtx_raft::{bank, Cluster};
use common::{rejoined_and_converged, transfers_until_applied_40, ACCOUNTS, INITIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tcp_leader_killed_and_restarted_from_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Arc::new(Cluster::start_tcp(dir.path(), &[1, 2, 3]).await.unwrap());
    let addrs: BTreeSet<_> = [1, 2, 3].iter().map(|&id| cluster.addr(id).unwrap()).collect();
    assert_eq!(addrs.len(), 3, "one port each");
    // The membership names every node by its listening address.
    let m = cluster.leader().await.unwrap().metrics().membership_config.clone();
    for id in [1, 2, 3] {
        assert!(cluster.node(id).unwrap().addr().unwrap().ip().is_loopback());
        let named = m.membership().get_node(&id).unwrap().addr.clone();
        assert_eq!(named, cluster.addr(id).unwrap().to_string());
    }
    bank::open_accounts(&cluster, ACCOUNTS, INITIAL).await.unwrap();

    // Kill the leader once some transfers went through.
    let (clients, old) = transfers_until_applied_40(&cluster).await;
    let old_id = old.id();
    let old_addr = old.addr().unwrap();
    drop(old);
    cluster.kill(old_id).await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(old_addr).await.is_err(),
        "the killed node's port is closed"
    );

    let new = cluster.leader().await.unwrap();
    assert_ne!(new.id(), old_id, "a new leader among the survivors");
    drop(new);

    let acked = clients.await.unwrap();
    assert_eq!(acked.len(), 160, "every client finished through the new leader");

    let restarted = cluster.start_node(old_id).await.unwrap();
    assert_eq!(restarted.addr(), Some(old_addr), "back on its address");
    drop(restarted);
    rejoined_and_converged(&cluster, old_id, acked).await;
}
