//! A 3-node bwtx cluster in one process: bank transfers through the leader,
//! the leader killed midway and restarted, then throughput, failover time
//! and the conserved total on every node.
//!
//! ```text
//! cargo run --release -p bwtx-raft --example cluster [-- CLIENTS SECONDS]
//! ```
//!
//! CLIENTS concurrent clients (default 8) run transfers for SECONDS
//! (default 6): half before the kill, half after. For scale, the same
//! transfers then run for 2 s on one bwtx `Db` in `Durability::Sync` mode
//! with as many threads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bwtx_raft::{bank, Cluster};

const ACCOUNTS: u32 = 100;
const INITIAL: u64 = 1_000;

fn arg(n: usize, default: u64) -> u64 {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// Clients that transfer until `stop`, counting acknowledged transfers.
fn spawn_clients(
    cluster: &Arc<Cluster>,
    clients: u64,
    acked: &Arc<AtomicU64>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|c| {
            let (cluster, acked, stop) = (cluster.clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let id = c << 32 | i;
                    let (from, to) = (
                        (id.wrapping_mul(7919) % ACCOUNTS as u64) as u32,
                        ((i * 31 + c) % ACCOUNTS as u64) as u32,
                    );
                    bank::transfer(&cluster, id, from, to, 1 + i % 20)
                        .await
                        .expect("transfer");
                    acked.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clients = arg(1, 8);
    let seconds = arg(2, 6);
    let half = Duration::from_millis(seconds * 500);
    let dir = tempfile::tempdir()?;
    let cluster = Arc::new(Cluster::start(dir.path(), &[1, 2, 3]).await?);
    bank::open_accounts(&cluster, ACCOUNTS, INITIAL).await?;
    println!("3 nodes in one process, {clients} clients, {ACCOUNTS} accounts of {INITIAL}");

    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = spawn_clients(&cluster, clients, &acked, &stop);
    tokio::time::sleep(half).await;
    let before = acked.load(Ordering::Relaxed);
    println!(
        "before the kill: {before} transfers in {:.1} s = {:.0} transfers/s",
        half.as_secs_f64(),
        before as f64 / half.as_secs_f64()
    );

    let old = cluster.leader().await?.id();
    let killed = Instant::now();
    cluster.kill(old).await?;
    let new = cluster.leader().await?.id();
    let elected = killed.elapsed();
    while acked.load(Ordering::Relaxed) == before {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let resumed = killed.elapsed();
    println!(
        "killed leader {old}: node {new} elected after {:.0} ms; transfers resumed after {:.0} ms",
        elected.as_secs_f64() * 1e3,
        resumed.as_secs_f64() * 1e3
    );

    cluster.start_node(old).await?;
    println!("node {old} restarted from its directory");
    let at_restart = acked.load(Ordering::Relaxed);
    let t = Instant::now();
    tokio::time::sleep(half).await;
    let after = acked.load(Ordering::Relaxed) - at_restart;
    println!(
        "after the restart: {after} transfers in {:.1} s = {:.0} transfers/s",
        t.elapsed().as_secs_f64(),
        after as f64 / t.elapsed().as_secs_f64()
    );
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }

    let index = cluster.wait_converged(&[1, 2, 3], Duration::from_secs(30)).await?;
    let total = acked.load(Ordering::Relaxed);
    for id in [1, 2, 3] {
        let read = cluster.node(id).ok_or("node missing")?.read_snapshot()?;
        println!(
            "node {id}: applied index {}, total {} (expected {}), transfers {}",
            read.position(),
            bank::total(&read)?,
            ACCOUNTS as u64 * INITIAL,
            bank::transfers(&read)?
        );
        assert_eq!(read.position(), index);
        assert_eq!(bank::total(&read)?, ACCOUNTS as u64 * INITIAL);
        assert_eq!(bank::transfers(&read)? as u64, total);
    }
    cluster.shutdown().await?;
    println!("{total} acknowledged transfers, each present once on every node; total conserved");

    let single = single_node(clients, Duration::from_secs(2))?;
    println!("single-node bwtx (Durability::Sync, {clients} threads): {single:.0} transfers/s");
    Ok(())
}

/// Transfers per second on one bwtx `Db` in sync mode, `threads` threads.
fn single_node(threads: u64, run: Duration) -> Result<f64, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = bwtx::Db::open(dir.path())?;
    db.transaction(|tx| {
        for i in 0..ACCOUNTS {
            tx.put(bank::account(i), INITIAL.to_string())?;
        }
        Ok(())
    })?;
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for c in 0..threads {
            let (db, done) = (&db, &done);
            s.spawn(move || {
                let mut i = 0u64;
                while start.elapsed() < run {
                    let (from, to) = ((i * 7919 + c) % ACCOUNTS as u64, (i * 31 + c) % ACCOUNTS as u64);
                    db.transaction(|tx| {
                        let (fk, tk) = (bank::account(from as u32), bank::account(to as u32));
                        let fb: u64 = parse(tx.get(&fk)?);
                        let moved = (1 + i % 20).min(fb);
                        if from != to {
                            let tb: u64 = parse(tx.get(&tk)?);
                            tx.put(&fk, (fb - moved).to_string())?;
                            tx.put(&tk, (tb + moved).to_string())?;
                        }
                        tx.put(bank::marker(c << 32 | i), "x")
                    })
                    .expect("local transfer");
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
    });
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

fn parse(v: Option<bytes::Bytes>) -> u64 {
    v.and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok()).unwrap_or(0)
}
