//! Helpers the cluster tests share: concurrent transfer clients and the
//! end-of-test check that every replica holds the same state.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bwtx_raft::{bank, Cluster, Node, NodeId, ReadSnapshot};
use tokio::task::JoinHandle;

/// Wait until `node` knows `leader` as the leader. A follower that has not
/// heard from a new leader yet answers `NotLeader { leader: None }` to what
/// it would forward or refuse naming the leader (seen under load: a commit
/// needs only one of two followers).
pub async fn knows_leader(node: &Node, leader: NodeId) {
    node.raft()
        .wait(Some(Duration::from_secs(30)))
        .current_leader(leader, format!("node {} knows the leader", node.id()))
        .await
        .unwrap();
}

/// The leader, once every node of `ids` names it, with elections then
/// turned off on all of them (openraft's `RuntimeConfigHandle::elect`).
/// For the tests about something other than failover: on a loaded machine
/// a follower that misses the leader's heartbeats for an election timeout
/// starts an election, and a test that keeps the leader it found would
/// meet `NotLeader` (seen once, right after a cluster formed). The leader
/// still sends heartbeats; only the followers' timeouts are off. The
/// failover, partition and membership tests do not call this.
pub async fn steady_leader(cluster: &Cluster, ids: &[NodeId]) -> Node {
    let node = |id| cluster.node(id).expect("running");
    // Each node's term and leader, if all of them name `leader` in its term.
    let all_name = |leader: &Node, term: u64| {
        ids.iter().all(|&id| {
            let m = node(id).metrics();
            m.current_leader == Some(leader.id()) && m.current_term == term
        }) && leader.metrics().state == openraft::ServerState::Leader
    };
    for _ in 0..10 {
        let leader = cluster.leader().await.expect("a leader");
        let term = leader.metrics().current_term;
        // Every node names it, or an election moved the term: try again.
        for &id in ids {
            node(id)
                .raft()
                .wait(Some(Duration::from_secs(30)))
                .metrics(
                    |m| m.current_leader == Some(leader.id()) || m.current_term > term,
                    format!("node {id} knows leader {} or a newer term", leader.id()),
                )
                .await
                .expect("a leader known");
        }
        for &id in ids {
            node(id).raft().runtime_config().elect(false);
        }
        // A follower whose timer fired just before the switch may be a
        // candidate whose new term is not in its metrics yet (its vote is
        // persisted first): look again after four heartbeats. This narrows
        // that race; it cannot close it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if all_name(&leader, term) {
            return leader;
        }
        for &id in ids {
            node(id).raft().runtime_config().elect(true);
        }
    }
    panic!("no leader stayed through 10 tries");
}

/// Start nodes `ids` under `dir`, over loopback TCP if `tcp`, else on the
/// in-process network.
pub async fn start(dir: &std::path::Path, ids: &[NodeId], tcp: bool) -> Arc<Cluster> {
    let cluster = if tcp {
        Cluster::start_tcp(dir, ids).await
    } else {
        Cluster::start(dir, ids).await
    };
    Arc::new(cluster.expect("cluster starts"))
}

/// Accounts the tests open, and the balance each starts with.
pub const ACCOUNTS: u32 = 8;
pub const INITIAL: u64 = 1_000;

/// Run `clients` concurrent clients doing `per_client` transfers each
/// through the leader; transfer ids start at `first_id`. Returns the ids
/// of the acknowledged transfers.
pub async fn run_transfers(cluster: &Arc<Cluster>, clients: u64, per_client: u64, first_id: u64) -> Vec<u64> {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let cluster = cluster.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..per_client {
                let id = first_id + c * per_client + i;
                let from = (id * 7 + c) as u32 % ACCOUNTS;
                let to = (id * 3 + 1) as u32 % ACCOUNTS;
                bank::transfer(&cluster, id, from, to, 1 + id % 50)
                    .await
                    .expect("transfer");
                acked.push(id);
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("client task"));
    }
    acked
}

/// Start 4 clients of 40 transfers each (ids from 0) and return their task
/// and the leader once it applied log index 40 (some transfers went
/// through): the moment the failover tests kill it.
pub async fn transfers_until_applied_40(cluster: &Arc<Cluster>) -> (JoinHandle<Vec<u64>>, Node) {
    let clients = tokio::spawn({
        let cluster = cluster.clone();
        async move { run_transfers(&cluster, 4, 40, 0).await }
    });
    let leader = cluster.leader().await.expect("a leader");
    leader
        .raft()
        .wait(Some(Duration::from_secs(30)))
        .applied_index_at_least(Some(40), "some transfers")
        .await
        .expect("some transfers applied");
    (clients, leader)
}

/// Wait until `ids` applied the leader's log; then a read snapshot of each.
pub async fn converged_reads(cluster: &Cluster, ids: &[NodeId]) -> Vec<(NodeId, ReadSnapshot)> {
    cluster
        .wait_converged(ids, Duration::from_secs(30))
        .await
        .expect("replicas converge");
    ids.iter()
        .map(|&id| (id, cluster.node(id).expect("running").read_snapshot().expect("read")))
        .collect()
}

/// The leader's id and a follower's, once the follower applied the
/// leader's log.
pub async fn converged_follower(cluster: &Cluster, ids: &[NodeId]) -> (NodeId, NodeId) {
    let leader = cluster.leader().await.expect("a leader").id();
    let follower = ids.iter().copied().find(|&id| id != leader).expect("a follower");
    cluster
        .wait_converged(&[follower], Duration::from_secs(30))
        .await
        .expect("the follower converges");
    (leader, follower)
}

/// Wait until `ids` applied the leader's log, then check that every one of
/// them holds the same data and applied log id, the conserved total, a
/// marker for every transfer in `acked`, and balances that match their
/// ledger (so no transfer applied twice). Returns the applied log index.
pub async fn assert_converged(cluster: &Cluster, ids: &[NodeId], acked: &[u64]) -> u64 {
    let index = cluster
        .wait_converged(ids, Duration::from_secs(30))
        .await
        .expect("replicas converge");
    let mut first = None;
    for &id in ids {
        let read = cluster.node(id).expect("running").read_snapshot().expect("read");
        assert_eq!(
            bank::total(&read).unwrap(),
            ACCOUNTS as u64 * INITIAL,
            "total on node {id}"
        );
        bank::ledger_matches(&read, ACCOUNTS, INITIAL).unwrap_or_else(|e| panic!("node {id}: {e}"));
        for &t in acked {
            assert!(
                read.get(bank::marker(t)).unwrap().is_some(),
                "node {id} lacks acknowledged transfer {t}"
            );
        }
        let state = (read.applied_log_id(), read.scan_prefix("").unwrap());
        match &first {
            None => first = Some(state),
            Some(f) => assert_eq!(f, &state, "node {id} differs from node {}", ids[0]),
        }
    }
    index
}

/// The end of a failover test, once the killed leader `old_id` is running
/// again: more transfers, then every replica converged on every
/// acknowledged one, none applied twice on the restarted node, and the
/// cluster shut down.
pub async fn rejoined_and_converged(cluster: &Arc<Cluster>, old_id: NodeId, mut acked: Vec<u64>) {
    acked.extend(run_transfers(cluster, 4, 10, 1_000).await);
    assert_converged(cluster, &[1, 2, 3], &acked).await;
    let read = cluster.node(old_id).unwrap().read_snapshot().unwrap();
    assert_eq!(
        bank::transfers(&read).unwrap(),
        acked.len(),
        "no transfer applied twice"
    );
    cluster.shutdown().await.unwrap();
}

/// Build a snapshot on `leader` covering everything it has applied, then
/// purge the log up to it (so that a new or lagging node must take the
/// snapshot); returns the snapshot's index.
pub async fn snapshot_and_purge(leader: &Node) -> u64 {
    let applied = leader.read_snapshot().unwrap().position();
    leader.raft().trigger().snapshot().await.unwrap();
    let m = leader
        .raft()
        .wait(Some(Duration::from_secs(30)))
        .metrics(|m| m.snapshot.is_some_and(|s| s.index >= applied), "snapshot built")
        .await
        .unwrap();
    let snap_index = m.snapshot.unwrap().index;
    leader.raft().trigger().purge_log(snap_index).await.unwrap();
    leader
        .raft()
        .wait(Some(Duration::from_secs(30)))
        .metrics(|m| m.purged.is_some_and(|p| p.index >= snap_index), "log purged")
        .await
        .unwrap();
    snap_index
}

/// Start `clients` clients that transfer through the leader until `stop`
/// is set (each does at least one transfer); transfer ids start at
/// `first_id`, client `c`'s at `first_id + c * 100_000`. The task returns
/// the ids of the acknowledged transfers; `counter` counts them as they are.
pub fn transfers_until(
    cluster: &Arc<Cluster>,
    clients: u64,
    first_id: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
    counter: Arc<std::sync::atomic::AtomicU64>,
) -> JoinHandle<Vec<u64>> {
    let cluster = cluster.clone();
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (cluster, stop, counter) = (cluster.clone(), stop.clone(), counter.clone());
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut id = first_id + c * 100_000;
                while acked.is_empty() || !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let from = (id * 7 + c) as u32 % ACCOUNTS;
                    let to = (id * 3 + 1) as u32 % ACCOUNTS;
                    bank::transfer(&cluster, id, from, to, 1 + id % 50)
                        .await
                        .unwrap_or_else(|e| panic!("transfer {id}: {e}"));
                    acked.push(id);
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    id += 1;
                }
                acked
            }));
        }
        let mut acked = Vec::new();
        for t in tasks {
            acked.extend(t.await.expect("client task"));
        }
        acked
    })
}
