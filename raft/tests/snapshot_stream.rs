//! A snapshot many times the chunk and batch sizes (tiny limits: 4 KiB
//! chunks, 50-key batches) built on the leader, sent over TCP in chunks and
//! installed on a new learner in batches: the learner ends with the
//! leader's state, every batch held at most 50 records, and the transfer
//! took as many chunks as the file has 4 KiB parts.

mod common;

use std::time::Duration;

use bwtx_raft::snapshot::Limits;
use bwtx_raft::Cluster;
use common::snapshot_and_purge;

const KEYS: usize = 2_000;
const LIMITS: Limits = Limits {
    chunk: 4096,
    batch_keys: 50,
    batch_bytes: 1 << 20,
    state_cache_size: None,
    log_cache_size: None,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_snapshot_streams_to_a_new_learner_in_chunks_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_tcp_with(dir.path(), &[1, 2, 3], LIMITS).await.unwrap();
    for t in 0..KEYS / 100 {
        cluster
            .transaction(Duration::from_secs(30), |tx| {
                for i in t * 100..(t + 1) * 100 {
                    tx.put(format!("key{i:06}"), format!("{i:0200}"))?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    let leader = common::steady_leader(&cluster, &[1, 2, 3]).await;
    let snap_index = snapshot_and_purge(&leader).await;
    let file_len: u64 = std::fs::read_dir(cluster.node_dir(leader.id()).join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .max()
        .unwrap();
    assert!(file_len > 100 * LIMITS.chunk as u64, "a {file_len}-byte snapshot");
    let sent_before = leader.link().sent().unwrap().other_requests;

    cluster.add_learner(4).await.unwrap();
    let learner = cluster.node(4).unwrap();
    learner
        .raft()
        .wait(Some(Duration::from_secs(60)))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= snap_index),
            "snapshot installed",
        )
        .await
        .unwrap();
    let chunks = leader.link().sent().unwrap().other_requests - sent_before;
    assert!(
        chunks >= file_len.div_ceil(LIMITS.chunk as u64),
        "{chunks} requests for {file_len} bytes"
    );
    let s = learner.snapshot_stats();
    assert!(s.installs >= 1 && s.records >= KEYS as u64, "{s:?}");
    assert!(s.peak_batch_keys <= LIMITS.batch_keys as u64, "{s:?}");
    assert!(s.batches >= (KEYS / LIMITS.batch_keys) as u64, "{s:?}");

    let want = leader.read_snapshot().unwrap().scan_prefix("key").unwrap();
    assert_eq!(want.len(), KEYS);
    learner
        .raft()
        .wait(Some(Duration::from_secs(30)))
        .applied_index_at_least(leader.metrics().last_applied.map(|l| l.index), "learner caught up")
        .await
        .unwrap();
    assert_eq!(learner.read_snapshot().unwrap().scan_prefix("key").unwrap(), want);
    drop((leader, learner));
    cluster.shutdown().await.unwrap();
}
