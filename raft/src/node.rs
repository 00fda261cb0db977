//! [`Node`]: one replica (two bwtx `Db`s in its directory: the log store's
//! and the state machine's; its snapshot files; and a running openraft
//! `Raft`), with the client
//! API: beginning replicated transactions ([`Txn`], in [`crate::txn`]) at
//! either isolation level, and reads at an applied position
//! ([`ReadSnapshot`]).

use std::net::SocketAddr;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{LinearizableReadError, RaftError};
use openraft::{Config, ReadPolicy};

use crate::error::{Error, Result};
use crate::keys::{self, AppliedState, DATA_PREFIX};
use crate::log_store::LogStore;
use crate::network::{self, Link, Transport};
use crate::proposer::Proposer;
use crate::snapshot::{Limits, SnapshotStats};
use crate::state_machine::{read_applied, StateMachine};
pub use crate::txn::Txn;
use crate::types::{Command, LogId, NodeId, Raft, Response, TypeConfig};

/// How often the state machine's `Db` syncs its buffered log in the
/// background. Applies need no fsync: the log holds every applied entry
/// until a snapshot, which is checkpointed first, covers it.
const STATE_SYNC: Duration = Duration::from_millis(100);

/// One running replica. Cloning it is cheap and shares it.
#[derive(Clone)]
pub struct Node {
    id: NodeId,
    raft: Raft,
    proposer: Proposer,
    link: Link,
    sm: StateMachine,
    log: bwtx::Db,
}

impl Node {
    /// Open (or create) the replica in directory `dir`, start raft on it
    /// with `config`, and make it reachable through `transport`: the log and
    /// the vote in a bwtx `Db` in `dir/log` with [`bwtx::Durability::Sync`],
    /// the state machine in one in `dir/state` with
    /// [`bwtx::Durability::Buffered`] (`design/replication.md` §2). A
    /// directory from an earlier run resumes from its log, vote and state.
    /// On TCP the node serves on the transport's listener; the membership
    /// must name it by that listener's address (`BasicNode::new(addr)`).
    pub async fn start(id: NodeId, dir: &Path, config: Arc<Config>, transport: Transport) -> Result<Node> {
        Node::start_with(id, dir, config, transport, Limits::default()).await
    }

    /// [`Node::start`] with `limits` on snapshot transfers (the TCP chunk
    /// size) and installs (the batch size), and the page caches of the
    /// state `Db` (`Limits::state_cache_size`) and the log `Db`
    /// (`Limits::log_cache_size`); snapshot files go to `dir/snapshots`
    /// (`design/replication.md` §5).
    pub async fn start_with(
        id: NodeId,
        dir: &Path,
        config: Arc<Config>,
        transport: Transport,
        limits: Limits,
    ) -> Result<Node> {
        // Opening is blocking work that grows with the data (both
        // databases' recovery, a half-loaded generation's drop, the kept
        // snapshot's check): on the blocking pool, not on a worker that
        // other nodes' timers share (before 2026-12-08 it ran inline).
        let dir_owned = dir.to_path_buf();
        let (log, sm) = tokio::task::spawn_blocking(move || -> Result<_> {
            let dir = dir_owned;
            let mut log = bwtx::Options::new();
            if let Some(bytes) = limits.log_cache_size {
                log = log.cache_size(bytes);
            }
            let log = log.open(dir.join("log"))?;
            let mut state = bwtx::Options::new().durability(bwtx::Durability::Buffered(STATE_SYNC));
            if let Some(bytes) = limits.state_cache_size {
                state = state.cache_size(bytes);
            }
            let db = state.open(dir.join("state"))?;
            check_pair(&log, &db)?;
            let sm = StateMachine::open(db, &dir.join("snapshots"), limits)?;
            Ok((log, sm))
        })
        .await
        .map_err(|e| Error::Raft(format!("opening node {id}'s databases: {e}")))??;
        sm.traced(id);
        let (net, cut) = network::transport::network(id, &transport, limits.chunk);
        let raft = Raft::new(id, config, net, LogStore::new(log.clone())?.traced(id), sm.clone())
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        let link = match Link::connect(id, &raft, transport, cut, sm.snapshot_dir().clone()) {
            Ok(link) => link,
            Err(e) => {
                let _ = raft.shutdown().await;
                return Err(e);
            }
        };
        let proposer = Proposer::spawn(id, raft.clone(), link.clone());
        Ok(Node {
            id,
            raft,
            proposer,
            link,
            sm,
            log,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The openraft handle (metrics, membership changes, `wait`).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The node's current raft metrics (a copy: its state, leader, term,
    /// log and applied positions, membership).
    pub fn metrics(&self) -> openraft::RaftMetrics<TypeConfig> {
        self.raft.metrics().borrow_watched().clone()
    }

    /// The term this node leads in, if its metrics say it is the leader
    /// and a voter of its membership (a leader that a membership change
    /// removed can linger as leader for a while, committing nothing). Read
    /// in place, without the copy [`Node::metrics`] makes: a client asks
    /// before every transaction ([`crate::Cluster::transaction`]).
    pub(crate) fn leading_term(&self) -> Option<u64> {
        let rx = self.raft.metrics();
        let m = rx.borrow_watched();
        let voter = m.membership_config.membership().voter_ids().any(|v| v == self.id);
        (m.state == openraft::ServerState::Leader && m.current_leader == Some(self.id) && voter)
            .then_some(m.current_term)
    }

    /// The counters of the node's log `Db` (`log_syncs`: its fsyncs;
    /// `commits`: its appends, votes, truncations and purges, several
    /// appends to a commit).
    pub fn log_stats(&self) -> bwtx::Stats {
        self.log.stats()
    }

    /// Evict every resident leaf of the node's log `Db` to its page store
    /// (a test hook: [`bwtx::Db::evict_all`]); returns how many leaves were
    /// evicted. A failed page write is the error.
    #[doc(hidden)]
    pub fn evict_log(&self) -> bwtx::Result<usize> {
        self.log.evict_all()
    }

    /// Hold (or, with `false`, resume) applying committed entries on this
    /// node: it lags behind the log as a slow replica does (a test hook:
    /// [`StateMachine::hold_apply`]). Keep holds short: past about a
    /// thousand queued applies openraft's core waits for the state machine
    /// (heartbeats and votes too). A shutdown ends the hold.
    #[doc(hidden)]
    pub fn hold_apply(&self, held: bool) {
        self.sm.hold_apply(held);
    }

    /// The node's end of its transport (on TCP, its server).
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The address the node listens on, if it is on TCP.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.link.addr()
    }

    /// Stop raft's tasks (on TCP, close the node's port first). The `Db`s
    /// close when the last clone of this node, and the last transaction or
    /// read begun on it, is dropped.
    pub async fn shutdown(self) -> Result<()> {
        if let Link::Tcp(server, _) = &self.link {
            server.stop().await;
        }
        // An apply waiting on a test hold would keep the state machine, and
        // its `Db`, alive past the shutdown (openraft does not join it).
        self.sm.hold_apply(false);
        self.raft
            .shutdown()
            .await
            .map_err(|e| Error::Raft(format!("shutdown: {e}")))
    }

    /// A snapshot read at this node's applied position, without asking the
    /// leader: on a follower it may lag the leader, but it is one
    /// consistent prefix of the log ([`ReadSnapshot::applied_log_id`]).
    pub fn read_snapshot(&self) -> Result<ReadSnapshot> {
        ReadSnapshot::of(&self.sm)
    }

    /// [`Node::read_snapshot`] at an applied position of at least `index`
    /// (a commit's log index, from [`Txn::commit`]), waiting up to
    /// `timeout` for this node to apply that far: read-your-writes on a
    /// follower that forwarded the commit, or monotonic reads across nodes
    /// with the index as a session token. [`Error::Raft`] if this node has
    /// not applied it in time.
    pub async fn read_snapshot_at_least(&self, index: u64, timeout: Duration) -> Result<ReadSnapshot> {
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "a read at a commit's index")
            .await
            .map_err(|e| Error::Raft(format!("node {} did not apply index {index}: {e}", self.id)))?;
        self.read_snapshot()
    }

    /// Set the cluster's tombstone horizon to `entries` log entries,
    /// through the log (so every replica applies it at the same position):
    /// a delete's tombstone is collected once that many entries are applied
    /// after it, and a transaction whose snapshot fell further behind than
    /// that is refused at commit with [`bwtx::Error::SnapshotTooOld`]. The
    /// default is [`crate::keys::DEFAULT_TOMBSTONE_HORIZON`]. Returns the
    /// entry's log index. 0 is [`bwtx::Error::InvalidArgument`]. Forwarded
    /// to the leader from a follower, as a commit is.
    pub async fn set_tombstone_horizon(&self, entries: u64) -> Result<u64> {
        if entries == 0 {
            return Err(bwtx::Error::InvalidArgument("a tombstone horizon of 0 entries").into());
        }
        match self.proposer.write(Command::SetTombstoneHorizon { entries }).await? {
            Response::Committed { index } => Ok(index),
            other => Err(Error::Raft(format!(
                "setting the tombstone horizon applied as {other:?}"
            ))),
        }
    }

    /// The tombstone horizon and floor this node has applied, and how many
    /// tombstones it stores (counted: a scan of the tombstone index).
    pub fn tombstones(&self) -> Result<TombstoneStats> {
        let (snap, ks) = self.sm.read();
        let applied = read_applied(&snap)?;
        let mut stored = 0;
        for kv in snap.prefix_in(&ks, keys::TOMB_PREFIX) {
            kv?;
            stored += 1;
        }
        Ok(TombstoneStats {
            horizon: applied.horizon(),
            floor: applied.floor(),
            stored,
        })
    }

    /// What this node's snapshot builds and installs did so far.
    pub fn snapshot_stats(&self) -> SnapshotStats {
        self.sm.snapshot_stats()
    }

    /// A linearizable read: confirms through raft's read-index
    /// (`ensure_linearizable`: a heartbeat round to a quorum) that this node
    /// is the leader, waits until it applied up to the read index, then
    /// reads. It sees every transaction acknowledged before the call.
    pub async fn read_linearizable(&self) -> Result<ReadSnapshot> {
        self.raft
            .ensure_linearizable(ReadPolicy::ReadIndex)
            .await
            .map_err(|e| match e {
                RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => {
                    Error::NotLeader { leader: f.leader_id }
                }
                RaftError::APIError(other) => Error::Raft(other.to_string()),
                RaftError::Fatal(f) => Error::Raft(f.to_string()),
            })?;
        self.read_snapshot()
    }

    /// Begin a snapshot-isolation transaction on a linearizable snapshot
    /// (see [`Node::read_linearizable`]): it reads every transaction
    /// acknowledged before it began. [`Node::begin_with`] chooses the level.
    pub async fn begin(&self) -> Result<Txn> {
        self.begin_with(bwtx::Isolation::Snapshot).await
    }

    /// Begin a transaction at isolation level `level` on a linearizable
    /// snapshot. A serializable one records the keys it reads and the
    /// ranges it scans, and its commit is validated against them too
    /// (`design/replication.md` §3).
    pub async fn begin_with(&self, level: bwtx::Isolation) -> Result<Txn> {
        Ok(Txn::new(self.proposer.clone(), self.read_linearizable().await?, level))
    }

    /// Begin a snapshot-isolation transaction on this node's applied state,
    /// without a leadership check: still snapshot isolation (the commit
    /// validates against everything applied after the snapshot), but its
    /// reads may miss transactions acknowledged elsewhere. Its commit goes
    /// to the leader (forwarded from a follower).
    pub fn begin_local(&self) -> Result<Txn> {
        self.begin_local_with(bwtx::Isolation::Snapshot)
    }

    /// [`Node::begin_local`] at isolation level `level` (serializable
    /// holds as well: the commit validates reads against every entry
    /// applied after the snapshot; a snapshot older than the tombstone
    /// horizon is refused, [`bwtx::Error::SnapshotTooOld`]).
    pub fn begin_local_with(&self, level: bwtx::Isolation) -> Result<Txn> {
        Ok(Txn::new(self.proposer.clone(), self.read_snapshot()?, level))
    }

    /// [`Node::begin_local_with`] on a snapshot at an applied position of
    /// at least `index` ([`Node::read_snapshot_at_least`]): it reads every
    /// transaction committed at or below `index`, such as the caller's own
    /// last one, wherever it committed.
    pub async fn begin_local_at_least(&self, index: u64, timeout: Duration, level: bwtx::Isolation) -> Result<Txn> {
        Ok(Txn::new(
            self.proposer.clone(),
            self.read_snapshot_at_least(index, timeout).await?,
            level,
        ))
    }
}

/// A replica's tombstones ([`Node::tombstones`]; `design/replication.md`
/// §3, "Tombstone collection").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TombstoneStats {
    /// Entries a tombstone outlives its delete by.
    pub horizon: u64,
    /// Every tombstone written at or below this index is collected; a
    /// commit whose snapshot is below it is refused as too old.
    pub floor: u64,
    /// Tombstones stored now.
    pub stored: u64,
}

/// A consistent read of the replicated data at one applied log position.
pub struct ReadSnapshot {
    snap: bwtx::Snapshot,
    /// The keyspace holding the data keys in `snap` (its active
    /// generation).
    ks: bwtx::Keyspace,
    applied: AppliedState,
}

impl ReadSnapshot {
    fn of(sm: &StateMachine) -> Result<ReadSnapshot> {
        let (snap, ks) = sm.read();
        let applied = read_applied(&snap)?;
        Ok(ReadSnapshot { snap, ks, applied })
    }

    /// The applied log index the read reflects (a transaction's `P`).
    pub fn position(&self) -> u64 {
        self.applied.index()
    }

    /// The applied log id the read reflects.
    pub fn applied_log_id(&self) -> Option<LogId> {
        self.applied.last_applied
    }

    /// The value of `key`, or `None`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        match self.snap.get_in(&self.ks, keys::data_key(key.as_ref()))? {
            Some(raw) => Ok(keys::decode_value(&raw)?.1),
            None => Ok(None),
        }
    }

    /// Every live key starting with `prefix` and its value, in key order.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Vec<(Bytes, Bytes)>> {
        let prefix = prefix.as_ref();
        let end = keys::prefix_end(prefix);
        let mut out = Vec::new();
        for kv in self.scan_raw(prefix, end.as_deref()) {
            if let (k, Some(v)) = kv? {
                out.push((k, v));
            }
        }
        Ok(out)
    }

    /// Every stored user key from `start` (included) to `end` (excluded;
    /// `None`: no bound) in key order, with its value or `None` for a
    /// tombstone.
    pub(crate) fn scan_raw(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<(Bytes, Option<Bytes>)>> + '_ {
        let start = keys::data_key(start);
        let end = end.map_or_else(keys::data_end, keys::data_key);
        self.snap
            .range_in(&self.ks, (Bound::Included(start), Bound::Excluded(end)))
            .map(|kv| {
                let (k, raw) = kv?;
                let (_, v) = keys::decode_value(&raw)?;
                Ok((k.slice(DATA_PREFIX.len()..), v))
            })
    }
}

/// The log and state `Db`s of one node belong together: a log that holds
/// nothing (no vote, no entry, no purge mark) beside a state machine that
/// applied entries, or a log purged past a snapshot beside a state machine
/// that applied none, means a directory was lost (`Options::open` creates
/// a missing one empty). Starting anyway would let the node vote again in
/// a term it voted in, or stop raft at its first commit
/// (`design/replication.md` §8).
fn check_pair(log: &bwtx::Db, state: &bwtx::Db) -> Result<()> {
    let (l, s) = (log.snapshot(), state.snapshot());
    let purged = l.get(crate::keys::PURGED)?.is_some();
    let log_empty =
        !purged && l.get(crate::keys::VOTE)?.is_none() && l.prefix(crate::keys::LOG_PREFIX).next().is_none();
    let applied = s.get(crate::keys::APPLIED)?.is_some();
    if log_empty && applied {
        return Err(Error::Corrupt(
            "the log database is empty (its directory lost?) but the state machine applied entries".to_string(),
        ));
    }
    if purged && !applied {
        return Err(Error::Corrupt(
            "the state database applied nothing (its directory lost?) but the log was purged past a snapshot"
                .to_string(),
        ));
    }
    Ok(())
}
