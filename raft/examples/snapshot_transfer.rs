//! Measures a streamed snapshot of a large state: its build on the leader,
//! its transfer over loopback TCP to a new learner and its install there,
//! with each phase's wall time and the process's peak RSS above what it
//! held before the phase.
//!
//! ```text
//! cargo run --release -p bwtx-raft --example snapshot_transfer -- [KEYS] [CACHE_MIB] [LOG_CACHE_MIB]
//! ```
//!
//! One voter (node 1) and a learner (node 2) on loopback TCP, in one
//! process, under a directory in the system's temporary directory (removed
//! at the end); `KEYS` keys (default 1,000,000) of 12 bytes with 100-byte
//! values, written in transactions of 5,000; each node's state `Db` with a
//! page cache of `CACHE_MIB` MiB (default 64), and its log `Db` with one of
//! `LOG_CACHE_MIB` MiB (default 0: none, the log in memory until the
//! snapshot purges it). The peak RSS of a phase is
//! measured by resetting the kernel's high-water mark (`/proc/self/clear_refs`)
//! before it and reading `VmHWM` after it (Linux only; elsewhere `n/a`).

use std::time::{Duration, Instant};

use bwtx_raft::snapshot::Limits;
use bwtx_raft::Cluster;

const PER_TXN: usize = 5_000;

fn status(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib << 10)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn mib(b: Option<u64>) -> String {
    b.map_or("n/a".to_string(), |b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64))
}

/// Run `phase`, printing its time, the RSS before it and its peak above.
async fn measure<T>(name: &str, phase: impl std::future::Future<Output = T>) -> T {
    let before = status("VmRSS:");
    reset_peak();
    let t = Instant::now();
    let out = phase.await;
    let took = t.elapsed();
    let peak = status("VmHWM:");
    let above = before.zip(peak).map(|(b, p)| p.saturating_sub(b));
    println!(
        "{name}: {:.2} s; RSS before {}, peak {} ({} above)",
        took.as_secs_f64(),
        mib(before),
        mib(peak),
        mib(above)
    );
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let keys: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let cache_mib: u64 = args.next().map_or(Ok(64), |a| a.parse())?;
    let dir = std::env::temp_dir().join(format!("bwtx-snapshot-transfer-{}", std::process::id()));
    let log_mib: u64 = args.next().map_or(Ok(0), |a| a.parse())?;
    let limits = Limits {
        state_cache_size: Some(cache_mib << 20),
        log_cache_size: (log_mib > 0).then_some(log_mib << 20),
        ..Limits::default()
    };
    println!(
        "{keys} keys, 100-byte values; page caches per node: state {cache_mib} MiB, log {log_mib} MiB (0: none); {limits:?}"
    );
    let cluster = Cluster::start_tcp_with(&dir, &[1], limits).await?;

    measure("load", async {
        for t in 0..keys.div_ceil(PER_TXN) {
            let end = ((t + 1) * PER_TXN).min(keys);
            cluster
                .transaction(Duration::from_secs(120), |tx| {
                    for i in t * PER_TXN..end {
                        tx.put(format!("key{i:09}"), format!("{i:0100}"))?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok::<_, bwtx_raft::Error>(())
    })
    .await?;

    let leader = cluster.leader().await?;
    let applied = leader.read_snapshot()?.position();
    let snap_index = measure("build", async {
        leader.raft().trigger().snapshot().await?;
        let m = leader
            .raft()
            .wait(Some(Duration::from_secs(600)))
            .metrics(|m| m.snapshot.is_some_and(|s| s.index >= applied), "snapshot built")
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(m.snapshot.map_or(0, |s| s.index))
    })
    .await?;
    let file: u64 = std::fs::read_dir(cluster.node_dir(1).join("snapshots"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0);
    println!(
        "snapshot file: {file} bytes ({:.1} MiB)",
        file as f64 / (1 << 20) as f64
    );
    leader.raft().trigger().purge_log(snap_index).await?;
    leader
        .raft()
        .wait(Some(Duration::from_secs(60)))
        .metrics(|m| m.purged.is_some_and(|p| p.index >= snap_index), "log purged")
        .await?;

    let sent = leader.link().sent().map_or(0, |s| s.other_requests);
    measure("transfer + install on a new learner", async {
        cluster.add_learner(2).await?;
        let learner = cluster.node(2).ok_or("the learner stopped")?;
        learner
            .raft()
            .wait(Some(Duration::from_secs(600)))
            .metrics(|m| m.snapshot.is_some_and(|s| s.index >= snap_index), "installed")
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
    .await?;
    let learner = cluster.node(2).ok_or("the learner stopped")?;
    let chunks = leader.link().sent().map_or(0, |s| s.other_requests) - sent;
    let stats = learner.snapshot_stats();
    println!(
        "learner: {stats:?}; {chunks} RPCs other than appends sent by the leader meanwhile (the chunks among them)"
    );
    if stats.records != keys as u64 {
        return Err(format!("the learner loaded {} records, not {keys}", stats.records).into());
    }
    drop((leader, learner));
    cluster.shutdown().await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
