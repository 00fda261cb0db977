//! The node process: one node on TCP, two transfer clients, a leadership
//! reporter, and a final report when the parent writes `STOP`.
//!
//! Lines printed (stdout): `OPENED` (node 1, the accounts exist), `L
//! <term>` (this node leads in that term), `A <id>` (transfer `id`
//! acknowledged), and after `STOP`: `M <marker>` for every transfer marker,
//! `S <applied index> <total> <markers>`, `END`; it exits at `EXIT`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bwtx_raft::network::Transport;
use bwtx_raft::{bank, cluster, Error, Node};
use openraft::{BasicNode, ServerState};

pub const ACCOUNTS: u32 = 20;
pub const INITIAL: u64 = 1000;
const CLIENTS: u64 = 2;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

pub fn run(id: u64) {
    // End the harness's "test node_process_entry ... " line first.
    println!();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(node(id));
    // Leave without the harness's own output or the runtime's shutdown.
    std::process::exit(0);
}

async fn node(id: u64) {
    let dir = PathBuf::from(env("BWTX_RAFT_DIR"));
    let run: u64 = env("BWTX_RAFT_RUN").parse().unwrap();
    let addrs: BTreeMap<u64, SocketAddr> = env("BWTX_RAFT_ADDRS")
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.parse().unwrap(), v.parse().unwrap())
        })
        .collect();
    // The port of a killed process may take a moment to be free again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let listener = loop {
        match tokio::net::TcpListener::bind(addrs[&id]).await {
            Ok(l) => break l,
            Err(e) if Instant::now() < deadline => {
                eprintln!("node {id}: bind {}: {e}; retrying", addrs[&id]);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("node {id}: bind {}: {e}", addrs[&id]),
        }
    };
    let node = Node::start(id, &dir, cluster::config().unwrap(), Transport::Tcp(listener))
        .await
        .unwrap();
    if std::env::var_os("BWTX_RAFT_INIT").is_some() {
        let members: BTreeMap<u64, BasicNode> =
            addrs.iter().map(|(&i, a)| (i, BasicNode::new(a.to_string()))).collect();
        node.raft().initialize(members).await.unwrap();
        open_accounts(&node).await;
        println!("OPENED");
    }

    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn(report_leadership(node.clone(), stop.clone()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client(node.clone(), id << 40 | run << 32 | c << 24, stop.clone())))
        .collect();

    // The parent's lines: STOP, then EXIT (its end, stdin closed, ends
    // both waits).
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if lines_tx.send(line.trim().to_string()).is_err() {
                return;
            }
        }
    });
    let mut wait_for = async |word: &str| {
        while let Some(line) = lines.recv().await {
            if line == word {
                return;
            }
        }
    };
    wait_for("STOP").await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    settle(&node).await;
    report(&node);
    // Stay up until every node reported: a node gone now would start an
    // election, whose blank entry the others would apply after reporting.
    wait_for("EXIT").await;
}

/// Open the accounts, retrying until this node leads and the commit lands.
async fn open_accounts(node: &Node) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let mut tx = node.begin().await?;
            for i in 0..ACCOUNTS {
                tx.put(bank::account(i), INITIAL.to_string())?;
            }
            tx.commit().await
        };
        let attempt = async {
            tokio::time::timeout(Duration::from_secs(2), attempt)
                .await
                .unwrap_or_else(|_| Err(Error::Raft("opening the accounts timed out".into())))
        };
        match attempt.await {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                let m = node.metrics();
                eprintln!(
                    "node {}: opening the accounts: {e}; retrying ({:?}, term {}, leader {:?})",
                    node.id(),
                    m.state,
                    m.current_term,
                    m.current_leader
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("opening the accounts: {e}"),
        }
    }
}

async fn report_leadership(node: Node, stop: Arc<AtomicBool>) {
    let mut last = None;
    while !stop.load(Ordering::Relaxed) {
        let m = node.metrics();
        if m.state == ServerState::Leader && last != Some(m.current_term) {
            last = Some(m.current_term);
            println!("L {}", m.current_term);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Transfers with ids from `base` until `stop`, each retried until it
/// commits or its marker shows an earlier try did.
async fn client(node: Node, base: u64, stop: Arc<AtomicBool>) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let id = base | i;
        let (from, to) = ((id % ACCOUNTS as u64) as u32, ((i * 7 + 3) % ACCOUNTS as u64) as u32);
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match transfer(&node, id, from, to, 1 + i % 9).await {
                Ok(()) => break,
                Err(e) if retryable(&e) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(e) => panic!("transfer {id}: {e}"),
            }
        }
        println!("A {id}");
        i += 1;
    }
}

async fn transfer(node: &Node, id: u64, from: u32, to: u32, amount: u64) -> bwtx_raft::Result<()> {
    let mut tx = node.begin_local()?;
    // Not yet opened (or not yet applied here): retried.
    if tx.get(bank::account(0))?.is_none() {
        return Err(Error::Raft("the accounts are not open here yet".into()));
    }
    if bank::transfer_in(&mut tx, id, from, to, amount)? {
        tx.commit().await?;
    }
    Ok(())
}

fn retryable(e: &Error) -> bool {
    e.is_conflict() || e.is_not_leader() || matches!(e, Error::Raft(_))
}

/// Wait until this node applied its whole log and nothing moved for a
/// while (the clients everywhere stopped; heartbeats carry the commit
/// index).
async fn settle(node: &Node) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stable_since = Instant::now();
    let mut last = None;
    loop {
        let m = node.metrics();
        let now = (m.last_applied.map(|l| l.index), m.last_log_index);
        if Some(now) != last || now.0 != now.1 {
            last = Some(now);
            stable_since = Instant::now();
        }
        if stable_since.elapsed() > Duration::from_millis(700) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {}: applied {:?} of its log {:?}, still moving after 30 s",
            node.id(),
            now.0,
            now.1
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn report(node: &Node) {
    let read = node.read_snapshot().unwrap();
    let total = bank::total(&read).unwrap();
    let markers = read.scan_prefix("xfer/").unwrap();
    for (k, _) in &markers {
        println!("M {}", String::from_utf8_lossy(&k["xfer/".len()..]));
    }
    println!("S {} {total} {}", read.position(), markers.len());
    println!("END");
}
