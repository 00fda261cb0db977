//! [`Cluster`]: several [`Node`]s in one process, over the in-process
//! network ([`Router`]) or over loopback TCP (each node on a port of
//! 127.0.0.1 the OS chose at its first start, kept across restarts), each
//! in its own directory `node-<id>` under one base directory. The tests and
//! the example drive it: start, kill (raft's tasks stopped, the `Db`s
//! dropped, on TCP the port closed) and restart from the directory,
//! partition and heal, add a learner, change the voters; and find the
//! leader and run a transaction on it with retries.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::{BasicNode, Config, SnapshotPolicy};
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::network::{Link, Router, Transport};
use crate::node::{Node, Txn};
use crate::snapshot::Limits;
use crate::types::NodeId;

/// How long [`Cluster::leader`] waits for a leader.
const LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long a restart waits for the directory's lock (held until the last
/// transaction or read begun on the killed node is dropped).
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The longest timeout `wait_converged` and `transaction` keep (`Instant +
/// Duration::MAX` overflows): about a century.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// How long [`Cluster::transaction`] waits for one commit before trying
/// again (a leader cut off from its quorum never answers).
const COMMIT_WAIT: Duration = Duration::from_secs(5);

/// The least [`Cluster::transaction`] waits for a new leader to apply its
/// last commit, however little of its timeout is left: a leader just
/// elected catches up in milliseconds, and without a floor an attempt
/// near the deadline would fail with the wait's error although nothing
/// was proposed.
const APPLY_FLOOR: Duration = Duration::from_millis(200);

/// The raft configuration of a [`Cluster`] (either network): 50 ms heartbeats,
/// elections after 400-800 ms of silence, a snapshot every 5,000 entries
/// (openraft's default; each snapshot serializes the whole state and
/// checkpoints the state `Db`, so every 500 cost a build of about 15 ms per
/// replica every second or so under load), keeping 20 entries behind it.
///
/// The election timeout was 150-300 ms until 2026-12-06: on a loaded
/// 2-core machine a follower that missed the new leader's first heartbeats
/// for that long (the leader's first entry waits for an fsync) started an
/// election right after the cluster formed, and a test's first request met
/// `NotLeader { leader: None }`. A failover takes about two timeouts (the
/// followers refuse votes while the dead leader's lease lasts, then one
/// election): 1.30-1.44 s measured in the example, 471-940 ms before.
pub fn config() -> Result<Arc<Config>> {
    let c = Config {
        cluster_name: "bwtx".to_string(),
        heartbeat_interval: 50,
        election_timeout_min: 400,
        election_timeout_max: 800,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5000),
        max_in_snapshot_log_to_keep: 20,
        ..Default::default()
    };
    let c = c
        .validate()
        .map_err(|e| Error::Raft(format!("raft configuration: {e}")))?;
    Ok(Arc::new(c))
}

/// How the nodes of a [`Cluster`] reach each other.
enum Net {
    /// The in-process network.
    InProcess(Router),
    /// Loopback TCP; each node's address, once it started.
    Tcp(Mutex<BTreeMap<NodeId, SocketAddr>>),
}

/// Node `id` being started by [`Cluster::start_node`]; dropping it ends
/// the reservation.
struct Starting<'a> {
    cluster: &'a Cluster,
    id: NodeId,
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        let mut starting = self.cluster.starting.lock().unwrap_or_else(|p| p.into_inner());
        starting.remove(&self.id);
    }
}

/// Nodes in one process. Every method takes `&self`, so client tasks can
/// share it (`Arc<Cluster>`) while another task kills and restarts nodes.
pub struct Cluster {
    dir: PathBuf,
    config: Arc<Config>,
    net: Net,
    nodes: Mutex<BTreeMap<NodeId, Node>>,
    /// The ids a [`Cluster::start_node`] is starting (running ones are in
    /// `nodes`): a second start of one of them fails at once instead of
    /// waiting for its directory lock.
    starting: Mutex<BTreeSet<NodeId>>,
    /// The snapshot limits nodes start with from now on.
    limits: Mutex<Limits>,
    /// The highest log index a [`Cluster::transaction`] committed at (or
    /// read at): the next one reads at least that far, on whichever node
    /// leads, so the cluster's transactions never read older data than
    /// one they saw committed.
    seen: std::sync::atomic::AtomicU64,
}

impl Cluster {
    /// Start nodes `ids` on the in-process network in directories under
    /// `dir` (resuming any a previous run left), make `ids` the voters if
    /// the cluster is new, and wait for a leader.
    pub async fn start(dir: &Path, ids: &[NodeId]) -> Result<Cluster> {
        Cluster::start_on(dir, ids, Net::InProcess(Router::default()), Limits::default()).await
    }

    /// [`Cluster::start`] over loopback TCP: each node listens on a port of
    /// 127.0.0.1 the OS chooses, and the membership names it by that
    /// `host:port`. (A cluster resumed from `dir` gets new ports, so its
    /// stored membership would name the old ones: resume nodes within one
    /// `Cluster`, with [`Cluster::start_node`].)
    pub async fn start_tcp(dir: &Path, ids: &[NodeId]) -> Result<Cluster> {
        Cluster::start_on(dir, ids, Net::Tcp(Mutex::default()), Limits::default()).await
    }

    /// [`Cluster::start_tcp`] with `limits` on snapshot transfers and
    /// installs for every node (see [`Cluster::set_snapshot_limits`]).
    pub async fn start_tcp_with(dir: &Path, ids: &[NodeId], limits: Limits) -> Result<Cluster> {
        Cluster::start_on(dir, ids, Net::Tcp(Mutex::default()), limits).await
    }

    async fn start_on(dir: &Path, ids: &[NodeId], net: Net, limits: Limits) -> Result<Cluster> {
        let Some(&first) = ids.first() else {
            return Err(Error::Raft("a cluster needs at least one node".to_string()));
        };
        if let Some(id) = ids
            .iter()
            .enumerate()
            .find_map(|(i, id)| ids[..i].contains(id).then_some(id))
        {
            return Err(Error::Raft(format!("node id {id} is given twice")));
        }
        let cluster = Cluster {
            dir: dir.to_path_buf(),
            config: config()?,
            net,
            nodes: Mutex::new(BTreeMap::new()),
            starting: Mutex::new(BTreeSet::new()),
            limits: Mutex::new(limits),
            seen: std::sync::atomic::AtomicU64::new(0),
        };
        for &id in ids {
            cluster.start_node(id).await?;
        }
        let first = cluster
            .node(first)
            .ok_or(Error::Raft("the first node stopped".to_string()))?;
        let initialized = first
            .raft()
            .is_initialized()
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        if !initialized {
            let members: BTreeMap<NodeId, BasicNode> = ids.iter().map(|&id| (id, cluster.member(id))).collect();
            first
                .raft()
                .initialize(members)
                .await
                .map_err(|e| Error::Raft(e.to_string()))?;
        }
        cluster.leader().await?;
        Ok(cluster)
    }

    fn nodes(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Node>> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory of node `id`.
    pub fn node_dir(&self, id: NodeId) -> PathBuf {
        self.dir.join(format!("node-{id}"))
    }

    /// Node `id`'s entry in the membership: on TCP its address (once it
    /// started), else empty.
    fn member(&self, id: NodeId) -> BasicNode {
        match &self.addr(id) {
            Some(addr) => BasicNode::new(addr),
            None => BasicNode::default(),
        }
    }

    /// The TCP address of node `id`, if the cluster is on TCP and the node
    /// started once.
    pub fn addr(&self, id: NodeId) -> Option<SocketAddr> {
        match &self.net {
            Net::InProcess(_) => None,
            Net::Tcp(addrs) => addrs.lock().unwrap_or_else(|p| p.into_inner()).get(&id).copied(),
        }
    }

    /// The transport for starting node `id`: on TCP, a listener on its
    /// address (a new port of 127.0.0.1 the first time).
    async fn transport(&self, id: NodeId) -> Result<Transport> {
        let addrs = match &self.net {
            Net::InProcess(router) => return Ok(Transport::InProcess(router.clone())),
            Net::Tcp(addrs) => addrs,
        };
        let addr = self.addr(id).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let deadline = Instant::now() + LOCK_WAIT;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                // The killed node's port is released asynchronously.
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(Error::Raft(format!("node {id}: listen on {addr}: {e}"))),
            }
        };
        let bound = listener
            .local_addr()
            .map_err(|e| Error::Raft(format!("node {id}: its listening address: {e}")))?;
        addrs.lock().unwrap_or_else(|p| p.into_inner()).insert(id, bound);
        Ok(Transport::Tcp(listener))
    }

    /// Start nodes from now on (started, restarted or added) with `limits`
    /// on snapshot transfers and installs (tests use tiny ones: many
    /// chunks and batches).
    pub fn set_snapshot_limits(&self, limits: Limits) {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    /// Start node `id` from its directory (new or left by a killed node).
    /// It joins nothing by itself: a new node needs [`Cluster::add_learner`].
    /// Starting a node that is running, or that another call is starting,
    /// is an [`Error::Raft`] at once.
    pub async fn start_node(&self, id: NodeId) -> Result<Node> {
        let _starting = self.reserve(id)?;
        let deadline = Instant::now() + LOCK_WAIT;
        let node = loop {
            let transport = self.transport(id).await?;
            let limits = *self.limits.lock().unwrap_or_else(|p| p.into_inner());
            match Node::start_with(id, &self.node_dir(id), self.config.clone(), transport, limits).await {
                Err(Error::Bwtx(bwtx::Error::Locked { .. })) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => break other?,
            }
        };
        self.nodes().insert(id, node.clone());
        Ok(node)
    }

    /// Mark `id` as starting until the guard drops (the start finished, or
    /// failed, or its future was dropped), or say why it cannot start.
    fn reserve(&self, id: NodeId) -> Result<Starting<'_>> {
        // Lock order: `starting`, then `nodes` (nothing takes them the
        // other way round).
        let mut starting = self.starting.lock().unwrap_or_else(|p| p.into_inner());
        if self.nodes().contains_key(&id) {
            return Err(Error::Raft(format!("node {id} is already running")));
        }
        if !starting.insert(id) {
            return Err(Error::Raft(format!("node {id} is already starting")));
        }
        Ok(Starting { cluster: self, id })
    }

    /// Kill node `id`: unreachable at once (on TCP its port closed), raft's
    /// tasks stopped, its `Db`s dropped (closed once no transaction begun on
    /// it is left).
    pub async fn kill(&self, id: NodeId) -> Result<()> {
        if let Net::InProcess(router) = &self.net {
            router.unregister(id);
        }
        let node = self.nodes().remove(&id);
        match node {
            Some(n) => n.shutdown().await,
            None => Ok(()),
        }
    }

    /// Cut node `id` off the network until [`Cluster::heal`]: no RPC or
    /// forwarded proposal reaches it or leaves it. On TCP its port is
    /// closed (peers' connections are refused) and it opens no connection.
    pub async fn isolate(&self, id: NodeId) {
        match &self.net {
            Net::InProcess(router) => router.isolate(id),
            Net::Tcp(_) => {
                if let Some(Link::Tcp(server, _)) = self.node(id).as_ref().map(Node::link) {
                    server.isolate().await;
                }
            }
        }
    }

    /// Reconnect node `id` (on TCP: listen again on its address).
    pub async fn heal(&self, id: NodeId) -> Result<()> {
        match &self.net {
            Net::InProcess(router) => router.heal(id),
            Net::Tcp(_) => {
                if let Some(Link::Tcp(server, _)) = self.node(id).as_ref().map(Node::link) {
                    server.heal().await?;
                }
            }
        }
        Ok(())
    }

    /// The running node `id`.
    pub fn node(&self, id: NodeId) -> Option<Node> {
        self.nodes().get(&id).cloned()
    }

    /// The ids of the running nodes.
    pub fn running(&self) -> Vec<NodeId> {
        self.nodes().keys().copied().collect()
    }

    /// The current leader among the running nodes, waiting up to 10 s for
    /// one (after a kill, until the election ends). If several nodes think
    /// they lead (a leader cut off from the others does not know it was
    /// replaced), the one of the highest term.
    pub async fn leader(&self) -> Result<Node> {
        self.leader_within(LEADER_WAIT).await
    }

    /// [`Cluster::leader`], waiting up to `limit` for one.
    async fn leader_within(&self, limit: Duration) -> Result<Node> {
        let deadline = Instant::now() + limit.min(FOREVER);
        loop {
            let mut best: Option<(u64, Node)> = None;
            for n in self.nodes().values() {
                if let Some(term) = n.leading_term() {
                    if best.as_ref().is_none_or(|(t, _)| term > *t) {
                        best = Some((term, n.clone()));
                    }
                }
            }
            if let Some((_, n)) = best {
                return Ok(n);
            }
            if Instant::now() >= deadline {
                return Err(Error::NotLeader { leader: None });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Start node `id` (a fresh directory or one it left) and add it as a
    /// learner through the leader; returns once it caught up with the log
    /// (or installed a snapshot).
    pub async fn add_learner(&self, id: NodeId) -> Result<()> {
        self.start_node(id).await?;
        let leader = self.leader().await?;
        leader
            .raft()
            .add_learner(id, self.member(id), true)
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        Ok(())
    }

    /// Make `voters` the voting members (joint consensus through openraft);
    /// voters this removes stay as learners if `keep_learners`, else leave
    /// (existing learners stay either way: openraft's `retain` concerns the
    /// removed voters only). If leadership is lost between the joint entry
    /// and the final one, the cluster stays in the joint configuration and
    /// this returns [`Error::Raft`]: call it again to finish the change.
    pub async fn change_voters(&self, voters: BTreeSet<NodeId>, keep_learners: bool) -> Result<()> {
        let leader = self.leader().await?;
        leader
            .raft()
            .change_membership(voters, keep_learners)
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        Ok(())
    }

    /// Wait until every node in `ids` applied the leader's last log entry
    /// (re-read each round: an election after a heal appends a blank entry),
    /// up to `timeout`. Returns that entry's index.
    pub async fn wait_converged(&self, ids: &[NodeId], timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout.min(FOREVER);
        loop {
            let leader = self.leader().await?;
            let last = leader.metrics().last_log_index;
            let mut done = true;
            for &id in ids {
                let node = self.node(id).ok_or(Error::Raft(format!("node {id} is not running")))?;
                let applied = node.metrics().last_applied.map(|l| l.index);
                done &= applied == last;
            }
            if done {
                return Ok(last.unwrap_or(0));
            }
            if Instant::now() >= deadline {
                return Err(Error::Raft(format!("nodes {ids:?} did not all apply index {last:?}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Run `f` in a transaction on the leader and commit it, retrying on a
    /// conflict, on a snapshot below the tombstone floor
    /// ([`bwtx::Error::SnapshotTooOld`]), on a change of leader and on an
    /// unknown outcome (a leader
    /// that stopped after proposing) until `timeout`. Because of the last,
    /// `f` must make the transaction idempotent: for example write a unique
    /// marker key and return early if it finds it already there (a retry of
    /// a commit that did land then sees the marker or conflicts on it).
    /// Returns `f`'s result and the commit's log index (for a retry that
    /// found its marker and wrote nothing, the log position it read at).
    ///
    /// If it gives up (the timeout passed, or an error it does not retry)
    /// after a commit whose outcome was unknown ([`Error::Raft`], or a
    /// commit's [`Error::NotLeader`]), the error is [`Error::Raft`]
    /// ("outcome unknown") whatever the last attempt's was: a conflict there
    /// may be with the earlier attempt's own commit, so it does not mean
    /// that nothing was written.
    ///
    /// The waits before a commit (for a leader, for the leader to have
    /// applied this cluster's last commit) end at `timeout` (the second
    /// waits at least 200 ms); a commit proposed before it waits up to 5 s
    /// more for its outcome.
    pub async fn transaction<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&mut Txn) -> Result<T>,
    ) -> Result<(T, u64)> {
        let deadline = Instant::now() + timeout.min(FOREVER);
        let mut unknown = false;
        loop {
            // An error, and whether it came from proposing (the commit).
            let attempt = async {
                let before = |e| (e, false);
                // What is left of the timeout (at least a look).
                let left = || deadline.saturating_duration_since(Instant::now());
                let leader = self.leader_within(left().min(LEADER_WAIT)).await.map_err(before)?;
                // A leader elected since may not have applied what an
                // earlier transaction committed: wait for it (before
                // 2026-12-08 the next transaction read without it).
                let seen = self.seen.load(std::sync::atomic::Ordering::Acquire);
                let mut txn = leader
                    .begin_local_at_least(seen, left().clamp(APPLY_FLOOR, COMMIT_WAIT), bwtx::Isolation::Snapshot)
                    .await
                    .map_err(before)?;
                let out = f(&mut txn).map_err(before)?;
                match tokio::time::timeout(COMMIT_WAIT, txn.commit()).await {
                    Ok(index) => Ok((out, index.map_err(|e| (e, true))?)),
                    Err(_) => Err((Error::Raft("commit timed out; outcome unknown".to_string()), true)),
                }
            };
            match attempt.await {
                Ok(done) => {
                    self.seen.fetch_max(done.1, std::sync::atomic::Ordering::AcqRel);
                    return Ok(done);
                }
                Err((e, proposed)) => {
                    let late = Instant::now() >= deadline;
                    let conflict = after_failure(e, proposed, &mut unknown, late)?;
                    if !conflict {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }

    /// Stop every node.
    pub async fn shutdown(&self) -> Result<()> {
        for id in self.running() {
            self.kill(id).await?;
        }
        Ok(())
    }
}

/// [`Cluster::transaction`]'s decision after a failed attempt `e`
/// (`proposed`: from the commit, after the proposal went out): retry
/// (`Ok`: whether `e` was a conflict, retried at once), or give up with the
/// error to return (`late`: the timeout has passed). `unknown` records that
/// some attempt's outcome was unknown: an error from a commit that may
/// still land (`Error::Raft`, among them an entry truncated here that may
/// still commit through another node, which openraft 0.10 answers
/// `LogEntryDiscarded`; `NotLeader` too, to be safe, although it now means
/// the entry was never proposed: `design/replication.md` §8). Giving up
/// after one, whatever the error, is `Error::Raft` ("outcome unknown").
fn after_failure(e: Error, proposed: bool, unknown: &mut bool, late: bool) -> Result<bool> {
    *unknown |= proposed && (matches!(e, Error::Raft(_)) || e.is_not_leader());
    if retryable(&e) && !late {
        return Ok(e.is_conflict());
    }
    match e {
        Error::Raft(_) => Err(e),
        e if *unknown => Err(Error::Raft(format!(
            "gave up after {e}, but an attempt's outcome is unknown: it may have committed"
        ))),
        e => Err(e),
    }
}

pub(crate) fn retryable(e: &Error) -> bool {
    let too_old = matches!(e, Error::Bwtx(bwtx::Error::SnapshotTooOld { .. }));
    e.is_conflict() || too_old || e.is_not_leader() || matches!(e, Error::Raft(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Response;

    /// A proposal every replica refused as malformed fails at once: it is
    /// refused alike however often it is proposed. (Before, it was an
    /// `Error::Raft`, "outcome unknown", and `Cluster::transaction` proposed
    /// it again until its timeout.) A snapshot below the tombstone floor is
    /// still retried, on a fresh snapshot.
    #[test]
    fn a_rejected_proposal_is_not_retried() {
        let e = crate::txn::outcome(Response::Rejected {
            reason: "a key written twice".to_string(),
        })
        .unwrap_err();
        assert!(matches!(&e, Error::Rejected(r) if r == "a key written twice"), "{e:?}");
        assert!(!retryable(&e));
        let e = crate::txn::outcome(Response::TooOld { snapshot: 3, oldest: 5 }).unwrap_err();
        assert!(retryable(&e), "{e:?}");
        assert_eq!(crate::txn::outcome(Response::Committed { index: 7 }).unwrap(), 7);
    }

    /// A commit whose outcome was unknown, then a conflict as the time runs
    /// out (perhaps with that commit's own): the caller hears "outcome
    /// unknown", not a conflict that would mean nothing was written; so
    /// too for any error it gives up with after such a commit. Errors
    /// before a proposal, and a conflict without an unknown commit before
    /// it, are reported as such; before the timeout, retried.
    #[test]
    fn a_timeout_after_an_unknown_outcome_stays_unknown() {
        let conflict = || {
            Error::Bwtx(bwtx::Error::Conflict {
                key: bytes::Bytes::from_static(b"xfer/1"),
                winner: 2,
                snapshot: 1,
                reason: Box::new(bwtx::ConflictReason::Write),
            })
        };
        let unknown = || Error::Raft("leader stopped; outcome unknown".to_string());
        // Each attempt's error and whether the timeout had passed by then;
        // the error given up with, if any.
        let not_leader = || Error::NotLeader { leader: None };
        let rejected = || Error::Rejected("a key written twice".to_string());
        // Each attempt's error, whether it came from the commit, and whether
        // the timeout had passed by then; the error given up with, if any.
        let run = |script: Vec<(Error, bool, bool)>| {
            let mut unknown = false;
            for (e, proposed, late) in script {
                if let Err(e) = after_failure(e, proposed, &mut unknown, late) {
                    return Some(e);
                }
            }
            None
        };
        let is_unknown = |e: &Error| matches!(e, Error::Raft(m) if m.contains("unknown"));
        // The timeout passes during the second attempt: a conflict, a
        // `NotLeader`, or an error that is never retried, after a commit of
        // unknown outcome: all unknown.
        for last in [conflict(), not_leader(), rejected()] {
            let e = run(vec![(unknown(), true, false), (last, true, true)]).unwrap();
            assert!(is_unknown(&e), "{e:?}");
        }
        // An error that is never retried, before the timeout, too.
        let e = run(vec![(unknown(), true, false), (rejected(), true, false)]).unwrap();
        assert!(is_unknown(&e), "{e:?}");
        let e = run(vec![(not_leader(), true, false), (conflict(), true, true)]).unwrap();
        assert!(is_unknown(&e), "a commit's NotLeader may still land: {e:?}");
        // Errors before anything was proposed leave the outcome known.
        let e = run(vec![(not_leader(), false, false), (conflict(), true, true)]).unwrap();
        assert!(e.is_conflict(), "{e:?}");
        let e = run(vec![(unknown(), false, false), (rejected(), false, false)]).unwrap();
        assert!(matches!(e, Error::Rejected(_)), "{e:?}");
        let e = run(vec![(conflict(), true, true)]).unwrap();
        assert!(e.is_conflict(), "{e:?}");
        assert!(
            run(vec![(unknown(), true, false), (conflict(), true, false)]).is_none(),
            "retried"
        );
    }
}
