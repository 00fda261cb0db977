//! A log `Db` with a page cache far smaller than its entries
//! (`Limits::log_cache_size`, 64 KiB): a follower cut off while more
//! entries are written than the log store keeps in memory catches up from
//! the leader's log `Db`, whose leaves were evicted and are read back from
//! its page store; the leader is then killed and restarted from its
//! directory. Every replica ends with every acknowledged write, and the
//! leader's log `Db` evicted and read back leaves, and its purge left only
//! the entries after it.

mod common;

use std::time::Duration;

use bwtx_raft::snapshot::Limits;
use bwtx_raft::Cluster;
use common::{converged_follower, snapshot_and_purge};

const CACHE: u64 = 64 << 10;
/// More entries than the log store keeps in memory (its 1,024 most recent
/// durable ones, `log_memory::RECENT_ENTRIES`), so the follower's catch-up
/// reads the leader's log `Db`.
const WRITES: usize = 1024 + 200;

fn value(i: usize) -> String {
    format!("{i:0512}")
}

async fn write(cluster: &Cluster, range: std::ops::Range<usize>) {
    for i in range {
        cluster
            .transaction(Duration::from_secs(30), |tx| tx.put(format!("key{i:06}"), value(i)))
            .await
            .unwrap();
    }
}

/// Every running node in `ids` holds exactly keys `0..n`, each with its
/// value, and the same applied log id.
async fn assert_all(cluster: &Cluster, ids: &[u64], n: usize) {
    cluster.wait_converged(ids, Duration::from_secs(60)).await.unwrap();
    let mut applied = None;
    for &id in ids {
        let read = cluster.node(id).unwrap().read_snapshot().unwrap();
        let got = read.scan_prefix("key").unwrap();
        assert_eq!(got.len(), n, "node {id}");
        for (i, (k, v)) in got.iter().enumerate() {
            assert_eq!(k.as_ref(), format!("key{i:06}").as_bytes(), "node {id}");
            assert_eq!(v.as_ref(), value(i).as_bytes(), "node {id} key {i}");
        }
        let id_now = read.applied_log_id();
        assert!(applied.is_none_or(|a| a == id_now), "node {id} applied {id_now:?}");
        applied = Some(id_now);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_follower_catches_up_from_an_evicted_log() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        log_cache_size: Some(CACHE),
        state_cache_size: Some(CACHE),
        ..Limits::default()
    };
    let cluster = Cluster::start_tcp_with(dir.path(), &[1, 2, 3], limits).await.unwrap();
    write(&cluster, 0..10).await;
    let (leader, follower) = converged_follower(&cluster, &[1, 2, 3]).await;
    cluster.isolate(follower).await;
    write(&cluster, 10..WRITES).await;

    let before = cluster.node(leader).unwrap().log_stats();
    assert!(before.evictions > 0, "the leader's log evicted nothing: {before:?}");
    // Blind appends sit as deltas over evicted leaves, where the catch-up
    // could read them: evict those too, so that it reads the page store.
    // Both nodes that were not cut off: an election under a loaded machine
    // can hand the leadership to the other one, which then sends the
    // catch-up.
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|&id| id != follower).collect();
    let reads = |cluster: &Cluster, id: u64| -> u64 {
        let s = cluster.node(id).unwrap().log_stats();
        s.cache_misses + s.read_throughs
    };
    for &id in &others {
        cluster.node(id).unwrap().evict_log().unwrap();
    }
    let before: Vec<u64> = others.iter().map(|&id| reads(&cluster, id)).collect();
    cluster.heal(follower).await.unwrap();
    assert_all(&cluster, &[1, 2, 3], WRITES).await;
    let after: Vec<u64> = others.iter().map(|&id| reads(&cluster, id)).collect();
    let now = cluster.leader().await.unwrap().id();
    if now == leader {
        // The usual case: the leader that took the writes sent the catch-up.
        let i = others.iter().position(|&id| id == leader).unwrap();
        assert!(
            after[i] > before[i],
            "the catch-up read no evicted leaf of the leader's log: {before:?} then {after:?} reads"
        );
    } else {
        // The leadership moved: one of the two sent (a part of) it.
        assert!(
            after.iter().sum::<u64>() > before.iter().sum::<u64>(),
            "the catch-up read no evicted leaf of either log: {before:?} then {after:?} reads"
        );
    }
    let leader = now;

    // A purge of the evicted entries leaves only those after it.
    let node = cluster.node(leader).unwrap();
    let purged = snapshot_and_purge(&node).await;
    let after = node.log_stats();
    let last = node.metrics().last_log_index.unwrap();
    assert!(
        purged + 1 >= WRITES as u64 && last >= purged,
        "purged {purged}, last {last}"
    );
    // The entries after `purged`, and the vote and the purged id.
    assert!(
        after.live_keys <= last - purged + 4,
        "{} keys left in the log, {} entries after the purge",
        after.live_keys,
        last - purged
    );
    drop(node);

    // The leader killed and restarted from its directory (its log read
    // back from its page store), then more writes.
    cluster.kill(leader).await.unwrap();
    write(&cluster, WRITES..WRITES + 20).await;
    cluster.start_node(leader).await.unwrap();
    write(&cluster, WRITES + 20..WRITES + 40).await;
    assert_all(&cluster, &[1, 2, 3], WRITES + 40).await;
    cluster.shutdown().await.unwrap();
}
