//! A 3-node cluster on loopback TCP with one node's port closed: first a
//! follower's (the leader's RPCs to it are refused, `Unreachable`; the
//! other two keep committing; it applies nothing), then the leader's (a new
//! leader is elected; the old one's proposals and RPCs reach no one). Each
//! comes back on the same port, catches up, and every node ends with the
//! same state, the total conserved and every acknowledged transfer present.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bwtx_raft::{bank, Cluster};
use common::{assert_converged, converged_follower, run_transfers, ACCOUNTS, INITIAL};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tcp_port_closed_then_back() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Arc::new(Cluster::start_tcp(dir.path(), &[1, 2, 3]).await.unwrap());
    bank::open_accounts(&cluster, ACCOUNTS, INITIAL).await.unwrap();
    // Healing a node that was never cut off changes nothing.
    cluster.heal(1).await.expect("heal of a connected node");
    let mut acked = run_transfers(&cluster, 2, 10, 0).await;

    // A follower's port closed.
    let (_, follower) = converged_follower(&cluster, &[1, 2, 3]).await;
    let addr = cluster.addr(follower).unwrap();
    cluster.isolate(follower).await;
    assert!(TcpStream::connect(addr).await.is_err(), "the follower's port is closed");
    let cut_at = cluster.node(follower).unwrap().read_snapshot().unwrap().position();

    acked.extend(run_transfers(&cluster, 4, 20, 1_000).await);
    let behind = cluster.node(follower).unwrap().read_snapshot().unwrap();
    assert_eq!(behind.position(), cut_at, "the unreachable follower applied nothing");
    assert!(behind.get(bank::marker(1_000)).unwrap().is_none());
    drop(behind);

    cluster.heal(follower).await.unwrap();
    assert!(TcpStream::connect(addr).await.is_ok(), "the follower listens again");
    assert_converged(&cluster, &[1, 2, 3], &acked).await;

    // The leader's port closed: the other two elect a new leader.
    let old = cluster.leader().await.unwrap().id();
    cluster.isolate(old).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let new = loop {
        let l = cluster.leader().await.unwrap().id();
        if l != old {
            break l;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    acked.extend(run_transfers(&cluster, 4, 10, 2_000).await);
    cluster.heal(old).await.unwrap();
    acked.extend(run_transfers(&cluster, 2, 5, 3_000).await);
    assert_ne!(new, old);
    assert_converged(&cluster, &[1, 2, 3], &acked).await;
    cluster.shutdown().await.unwrap();
}
