//! Three nodes in three processes over loopback TCP, the leader's process
//! killed with SIGKILL mid-run and started again from its directory.
//!
//! Each child (this test binary re-invoked, running `node_process_entry`)
//! runs one node with `Node::start` and `Transport::Tcp`, as an application
//! on its own machine would, and two clients that run bank transfers
//! through it (`begin_local`; a follower's commits are forwarded to the
//! leader), printing every acknowledged transfer. Node 1 initializes the
//! cluster and opens the accounts. The parent kills the process whose node
//! reported itself leader last, without warning: no task stopped, no `Db`
//! closed, no shutdown path taken. It restarts it from its directory on the
//! same port, lets all three run on, does the same to the next leader,
//! then asks each to stop and report its state, and lets them exit only
//! once all three have reported.
//!
//! Checked on every node: the same applied log index, the total of the
//! accounts conserved, the same set of transfer markers, and every transfer
//! acknowledged by any process (the killed one included) among them. And
//! transfers were acknowledged after the restart: the cluster failed over.
//!
//! Files: `child.rs` (the node process), this file (the parent).

mod child;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

/// The child's entry: a node process until the parent stops or kills it.
/// The parent runs this test by its exact name with `BWTX_RAFT_NODE` set;
/// without it, it returns at once.
#[test]
fn node_process_entry() {
    if let Ok(id) = std::env::var("BWTX_RAFT_NODE") {
        child::run(id.parse().expect("BWTX_RAFT_NODE is a node id"));
    }
}

/// One line a child printed, with the child's node id.
type Line = (u64, String);

struct Proc {
    child: Child,
}

impl Drop for Proc {
    /// A failed test leaves no node process behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(id: u64, dir: &Path, addrs: &str, run: u32, init: bool, lines: Sender<Line>) -> Proc {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "node_process_entry", "--nocapture", "--test-threads=1"])
        .env("BWTX_RAFT_NODE", id.to_string())
        .env("BWTX_RAFT_DIR", dir.join(format!("n{id}")))
        .env("BWTX_RAFT_ADDRS", addrs)
        .env("BWTX_RAFT_RUN", run.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if init {
        cmd.env("BWTX_RAFT_INIT", "1");
    }
    let mut child = cmd.spawn().expect("spawn a node process");
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { return };
            if lines.send((id, line)).is_err() {
                return;
            }
        }
    });
    Proc { child }
}

/// What the parent learned from the children's lines.
#[derive(Default)]
struct Seen {
    acked: BTreeSet<u64>,
    /// The highest term a node reported leading in, and that node.
    leader: Option<(u64, u64)>,
    opened: bool,
    /// Per node: its final report (applied index, total, markers).
    state: BTreeMap<u64, (u64, u64, usize)>,
    markers: BTreeMap<u64, BTreeSet<u64>>,
    ended: BTreeSet<u64>,
}

impl Seen {
    fn take(&mut self, (id, line): Line) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["A", x] => {
                self.acked.insert(x.parse().unwrap());
            }
            ["L", term] => {
                let term: u64 = term.parse().unwrap();
                if self.leader.is_none_or(|(t, _)| term >= t) {
                    self.leader = Some((term, id));
                }
            }
            ["OPENED"] => self.opened = true,
            ["M", x] => {
                self.markers
                    .entry(id)
                    .or_default()
                    .insert(u64::from_str_radix(x, 16).unwrap());
            }
            ["S", applied, total, markers] => {
                let s = (
                    applied.parse().unwrap(),
                    total.parse().unwrap(),
                    markers.parse().unwrap(),
                );
                self.state.insert(id, s);
            }
            ["END"] => {
                self.ended.insert(id);
            }
            _ => {} // the test harness's own lines
        }
    }

    /// Take lines for `d`.
    fn run_for(&mut self, rx: &Receiver<Line>, d: Duration) {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(l) => self.take(l),
                Err(_) => return,
            }
        }
    }

    /// Take lines until `done` holds, or panic after `limit`.
    fn until(&mut self, rx: &Receiver<Line>, limit: Duration, what: &str, done: impl Fn(&Seen) -> bool) {
        let end = Instant::now() + limit;
        while !done(self) {
            let left = end.checked_duration_since(Instant::now());
            match left.map(|l| rx.recv_timeout(l)) {
                Some(Ok(l)) => self.take(l),
                _ => panic!("no {what} within {limit:?}"),
            }
        }
    }
}

/// Three free loopback ports (bound, then released for the children).
fn ports() -> String {
    let ls: Vec<TcpListener> = (0..3).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let addrs: Vec<SocketAddr> = ls.iter().map(|l| l.local_addr().unwrap()).collect();
    addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn a_leader_process_killed_with_sigkill_loses_nothing_acknowledged() {
    if std::env::var_os("BWTX_RAFT_NODE").is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let addrs = ports();
    let (tx, rx) = mpsc::channel();
    let mut procs: BTreeMap<u64, Proc> = (1..=3)
        .map(|id| (id, spawn(id, dir.path(), &addrs, 0, id == 1, tx.clone())))
        .collect();
    let mut seen = Seen::default();
    seen.until(&rx, Duration::from_secs(30), "accounts opened", |s| s.opened);
    seen.run_for(&rx, Duration::from_millis(1000));
    seen.until(&rx, Duration::from_secs(30), "transfers before the kill", |s| {
        s.acked.len() > 20
    });
    let before = seen.acked.len();

    // Twice: SIGKILL the leader (nothing flushed, nothing closed), start it
    // again from its directory, run on.
    let mut killed = Vec::new();
    for run in 1..=2 {
        let (term, leader) = seen.leader.expect("a node reported leading");
        let mut victim = procs.remove(&leader).unwrap();
        victim.child.kill().unwrap();
        victim.child.wait().unwrap();
        killed.push(leader);
        let at_kill = seen.acked.len();
        // Down for longer than an election timeout (400-800 ms,
        // `cluster::config`) and an election, so the others elect a new
        // leader (a leader back sooner may keep its term: its vote and log
        // are durable).
        seen.run_for(&rx, Duration::from_millis(2000));
        procs.insert(leader, spawn(leader, dir.path(), &addrs, run, false, tx.clone()));
        seen.run_for(&rx, Duration::from_millis(1000));
        // Then (bounded: a loaded machine is slow, not wrong) until a new
        // leader took transfers.
        let what = format!("new leader and transfers after killing leader {leader} of term {term}");
        seen.until(&rx, Duration::from_secs(30), &what, |s| {
            s.acked.len() > at_kill + 20 && s.leader.is_some_and(|(t, _)| t > term)
        });
    }

    for p in procs.values_mut() {
        writeln!(p.child.stdin.as_mut().unwrap(), "STOP").unwrap();
    }
    seen.until(&rx, Duration::from_secs(60), "final reports", |s| s.ended.len() == 3);
    for p in procs.values_mut() {
        writeln!(p.child.stdin.as_mut().unwrap(), "EXIT").unwrap();
    }
    for p in procs.values_mut() {
        assert!(p.child.wait().unwrap().success());
    }

    let (applied, total, count) = seen.state[&1];
    assert_eq!(
        total,
        child::ACCOUNTS as u64 * child::INITIAL,
        "node 1: total conserved"
    );
    for id in [2, 3] {
        assert_eq!(seen.state[&id], (applied, total, count), "node {id} against node 1");
        assert_eq!(
            seen.markers[&id], seen.markers[&1],
            "node {id}: the same transfers as node 1"
        );
    }
    let missing: Vec<_> = seen.acked.difference(&seen.markers[&1]).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged transfers missing, among them {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    eprintln!(
        "killed leaders {killed:?}; {before} transfers acknowledged before, {} in all, {count} present, applied {applied}",
        seen.acked.len()
    );
}
