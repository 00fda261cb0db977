//! A 3-node bwtx cluster, in one process or on loopback TCP: bank transfers
//! through the leader, the leader killed midway and restarted, then
//! throughput, failover time and the conserved total on every node; then
//! the replicated throughput with 1 and 8 clients as a ratio to single-node
//! bwtx in sync mode.
//!
//! ```text
//! cargo run --release -p bwtx-raft --example cluster [-- [--tcp] [--no-compare] [--trace] [CLIENTS [SECONDS]]]
//! ```
//!
//! `--tcp`: the nodes talk over TCP on 127.0.0.1, each on a port the OS
//! chose (else the in-process network). CLIENTS concurrent clients
//! (default 8) run transfers for SECONDS (default 6): half before the kill,
//! half after. Then, unless `--no-compare`, for 1 and for 8 clients: 2 s of
//! transfers on a fresh cluster (same network, no kill) and 2 s of the same
//! transfers on one bwtx `Db` in `Durability::Sync` mode with as many
//! threads, and their ratio; after each replicated run, what it cost: log
//! entries (rounds) and transfers per entry, each node's log fsyncs per
//! entry and, on TCP, the requests, replies and bytes all nodes sent per
//! transfer (`Node::log_stats`, `Link::sent`). `--trace`: after each of
//! those replicated runs, where its rounds' time went, step by step
//! (`bwtx_raft::trace::breakdown`: the proposer, the leader's and the
//! fastest follower's log writes, the leader's apply; recording costs a
//! mutex per step, so the run is a little slower).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bwtx_raft::network::WireCounts;
use bwtx_raft::{bank, Cluster};

const ACCOUNTS: u32 = 100;
const INITIAL: u64 = 1_000;
/// How long each comparison run measures.
const COMPARE: Duration = Duration::from_secs(2);

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The command line: flags anywhere, then CLIENTS and SECONDS in order.
struct Args {
    tcp: bool,
    compare: bool,
    trace: bool,
    clients: u64,
    seconds: u64,
}

fn args() -> Args {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let numbers: Vec<u64> = all.iter().filter_map(|a| a.parse().ok()).collect();
    Args {
        tcp: all.iter().any(|a| a == "--tcp"),
        compare: !all.iter().any(|a| a == "--no-compare"),
        trace: all.iter().any(|a| a == "--trace"),
        clients: numbers.first().copied().unwrap_or(8),
        seconds: numbers.get(1).copied().unwrap_or(6),
    }
}

async fn start(dir: &Path, tcp: bool) -> Res<Arc<Cluster>> {
    let cluster = if tcp {
        Cluster::start_tcp(dir, &[1, 2, 3]).await?
    } else {
        Cluster::start(dir, &[1, 2, 3]).await?
    };
    let cluster = Arc::new(cluster);
    bank::open_accounts(&cluster, ACCOUNTS, INITIAL).await?;
    Ok(cluster)
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
async fn main() -> Res<()> {
    let args = args();
    let net = if args.tcp { "on loopback TCP" } else { "in one process" };
    let before = failover(&args, net).await?;
    let single = single_node(args.clients, COMPARE)?.per_second;
    println!(
        "single-node bwtx (Durability::Sync, {} threads): {single:.0} transfers/s; ratio before the kill {:.2}x",
        args.clients,
        before / single
    );
    if args.compare {
        println!(
            "3 nodes {net} vs single-node sync, {:.0} s each, no kill:",
            COMPARE.as_secs_f64()
        );
        for clients in [1, 8] {
            let dir = tempfile::tempdir()?;
            let cluster = start(dir.path(), args.tcp).await?;
            let replicated = steady(&cluster, clients, COMPARE, args.trace).await?;
            cluster.shutdown().await?;
            drop(cluster);
            let single = single_node(clients, COMPARE)?;
            println!(
                "  {clients} client(s): replicated {:.0} transfers/s, single node {:.0}, ratio {:.2}x; \
                 CPU per transfer {:.0} us replicated, {:.0} us single",
                replicated.per_second,
                single.per_second,
                replicated.per_second / single.per_second,
                replicated.cpu * 1e6,
                single.cpu * 1e6
            );
        }
    }
    Ok(())
}

/// Transfers per second of `clients` clients on `cluster`, over `run`
/// after a short warm-up.
async fn steady(cluster: &Arc<Cluster>, clients: u64, run: Duration, trace: bool) -> Res<Rate> {
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = spawn_clients(cluster, clients, &acked, &stop);
    tokio::time::sleep(Duration::from_millis(250)).await;
    if trace {
        bwtx_raft::trace::enable();
    }
    let (from, t, cpu) = (acked.load(Ordering::Relaxed), Instant::now(), cpu_seconds());
    let before = counters(cluster);
    tokio::time::sleep(run).await;
    bwtx_raft::trace::disable();
    let done = acked.load(Ordering::Relaxed) - from;
    let rate = done as f64 / t.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - cpu) / done.max(1) as f64;
    let after = counters(cluster);
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    print_counts(cluster, &before, &after, done);
    if trace {
        println!("    where a round's time went, in microseconds (mean / median / p90, entries):");
        for i in bwtx_raft::trace::breakdown(&bwtx_raft::trace::take()) {
            println!(
                "      {:<56} {:>7.0} {:>7.0} {:>7.0}  ({})",
                i.name, i.mean_us, i.median_us, i.p90_us, i.count
            );
        }
    }
    Ok(Rate { per_second: rate, cpu })
}

/// A measured run: transfers per second, and the process's CPU time per
/// transfer (seconds).
struct Rate {
    per_second: f64,
    cpu: f64,
}

/// Each node's applied index, log fsyncs and TCP counts.
type Counts = Vec<(u64, u64, Option<WireCounts>)>;

fn counters(cluster: &Cluster) -> Counts {
    [1, 2, 3]
        .iter()
        .filter_map(|&id| cluster.node(id))
        .map(|n| {
            let applied = n.metrics().last_applied.map_or(0, |l| l.index);
            (applied, n.log_stats().log_syncs, n.link().sent())
        })
        .collect()
}

/// Print what a steady run cost: entries (rounds) per transfer, each
/// node's log fsyncs per entry and, on TCP, the requests and bytes sent.
fn print_counts(cluster: &Cluster, before: &Counts, after: &Counts, transfers: u64) {
    let Some((first, last)) = before.first().zip(after.first()) else {
        return;
    };
    let entries = last.0.saturating_sub(first.0).max(1) as f64;
    let per = |x: u64| x as f64 / transfers.max(1) as f64;
    let fsyncs: Vec<String> = before
        .iter()
        .zip(after)
        .map(|(b, a)| format!("{:.2}", a.1.saturating_sub(b.1) as f64 / entries))
        .collect();
    let leader = cluster.node(1).and_then(|n| n.metrics().current_leader);
    println!(
        "    {entries:.0} entries, {:.1} transfers each; log fsyncs per entry on nodes 1-3 (leader {}): {}",
        transfers as f64 / entries,
        leader.map_or("?".to_string(), |l| l.to_string()),
        fsyncs.join(", ")
    );
    let sum = |side: &Counts| {
        side.iter().filter_map(|c| c.2).fold(WireCounts::default(), |mut t, c| {
            t.appends += c.appends;
            t.appends_with_entries += c.appends_with_entries;
            t.entries += c.entries;
            t.other_requests += c.other_requests;
            t.replies += c.replies;
            t.bytes += c.bytes;
            t
        })
    };
    let (b, a) = (sum(before), sum(after));
    if a == WireCounts::default() {
        return;
    }
    let appends = a.appends - b.appends;
    let with_entries = a.appends_with_entries - b.appends_with_entries;
    println!(
        "    TCP, all nodes, per transfer: {:.2} append requests ({:.2} with entries, {:.2} entries each), \
         {:.3} other requests, {:.2} replies, {:.0} bytes",
        per(appends),
        per(with_entries),
        (a.entries - b.entries) as f64 / with_entries.max(1) as f64,
        per(a.other_requests - b.other_requests),
        per(a.replies - b.replies),
        per(a.bytes - b.bytes),
    );
}

/// The failover run; returns the throughput before the kill.
async fn failover(args: &Args, net: &str) -> Res<f64> {
    let (clients, half) = (args.clients, Duration::from_millis(args.seconds * 500));
    let dir = tempfile::tempdir()?;
    let cluster = start(dir.path(), args.tcp).await?;
    println!("3 nodes {net}, {clients} clients, {ACCOUNTS} accounts of {INITIAL}");
    if args.tcp {
        for id in [1, 2, 3] {
            println!("node {id} listens on {}", cluster.addr(id).ok_or("no address")?);
        }
    }

    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = spawn_clients(&cluster, clients, &acked, &stop);
    tokio::time::sleep(half).await;
    let before = acked.load(Ordering::Relaxed);
    let rate = before as f64 / half.as_secs_f64();
    println!(
        "before the kill: {before} transfers in {:.1} s = {rate:.0} transfers/s",
        half.as_secs_f64(),
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
    Ok(rate)
}

/// Transfers per second on one bwtx `Db` in sync mode, `threads` threads.
fn single_node(threads: u64, run: Duration) -> Res<Rate> {
    let dir = tempfile::tempdir()?;
    let db = bwtx::Db::open(dir.path())?;
    db.transaction(|tx| {
        for i in 0..ACCOUNTS {
            tx.put(bank::account(i), INITIAL.to_string())?;
        }
        Ok(())
    })?;
    let done = AtomicU64::new(0);
    let (start, cpu) = (Instant::now(), cpu_seconds());
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
    let done = done.load(Ordering::Relaxed);
    Ok(Rate {
        per_second: done as f64 / start.elapsed().as_secs_f64(),
        cpu: (cpu_seconds() - cpu) / done.max(1) as f64,
    })
}

/// This process's CPU time so far (user + system, `/proc/self/stat`; 0 where
/// that file is not there). Linux counts it in ticks of 1/100 s.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line: 12 and 13 here.
    (ticks(11) + ticks(12)) / 100.0
}

fn parse(v: Option<bytes::Bytes>) -> u64 {
    v.and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok()).unwrap_or(0)
}
