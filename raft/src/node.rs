//! [`Node`]: one replica (two bwtx `Db`s in its directory: the log store's
//! and the state machine's, and a running openraft `Raft`), with the client
//! API: replicated transactions ([`Txn`]) and reads at an applied position
//! ([`ReadSnapshot`]).
//!
//! A transaction reads a local bwtx snapshot at applied log index `P`
//! ([`ReadSnapshot::position`]) and buffers its writes; `commit` proposes
//! the write set with `P` through the node's proposer (which batches
//! concurrent proposals into one raft entry, [`crate::proposer`]) and
//! returns what the state machine decided (`design/replication.md` §3):
//! the commit's log index, or [`bwtx::Error::Conflict`] whose `winner` and
//! `snapshot` are log indexes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::error::{CheckIsLeaderError, RaftError};
use openraft::{Config, LogId, Raft};

use crate::error::{Error, Result};
use crate::keys::{self, AppliedState, DATA_PREFIX, MAX_USER_KEY_LEN, MAX_USER_VALUE_LEN};
use crate::log_store::LogStore;
use crate::network::Router;
use crate::proposer::Proposer;
use crate::state_machine::{read_applied, StateMachine};
use crate::types::{NodeId, Proposal, Response, TypeConfig};

/// How often the state machine's `Db` syncs its buffered log in the
/// background. Applies need no fsync: the log holds every applied entry
/// until a snapshot, which is checkpointed first, covers it.
const STATE_SYNC: Duration = Duration::from_millis(100);

/// One running replica. Cloning it is cheap and shares it.
#[derive(Clone)]
pub struct Node {
    id: NodeId,
    raft: Raft<TypeConfig>,
    proposer: Proposer,
    db: bwtx::Db,
}

impl Node {
    /// Open (or create) the replica in directory `dir`, start raft on it
    /// with `config`, and make it reachable through `router`: the log and
    /// the vote in a bwtx `Db` in `dir/log` with [`bwtx::Durability::Sync`],
    /// the state machine in one in `dir/state` with
    /// [`bwtx::Durability::Buffered`] (`design/replication.md` §2). A
    /// directory from an earlier run resumes from its log, vote and state.
    pub async fn start(id: NodeId, dir: &Path, config: Arc<Config>, router: &Router) -> Result<Node> {
        let log = bwtx::Options::new().open(dir.join("log"))?;
        let db = bwtx::Options::new()
            .durability(bwtx::Durability::Buffered(STATE_SYNC))
            .open(dir.join("state"))?;
        let raft = Raft::new(
            id,
            config,
            router.network(id),
            LogStore::new(log)?,
            StateMachine::new(db.clone()),
        )
        .await
        .map_err(|e| Error::Raft(e.to_string()))?;
        router.register(id, raft.clone());
        let proposer = Proposer::spawn(raft.clone());
        Ok(Node { id, raft, proposer, db })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The openraft handle (metrics, membership changes, `wait`).
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// Stop raft's tasks. The `Db`s close when the last clone of this node,
    /// and the last transaction or read begun on it, is dropped.
    pub async fn shutdown(self) -> Result<()> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| Error::Raft(format!("shutdown: {e}")))
    }

    /// A snapshot read at this node's applied position, without asking the
    /// leader: on a follower it may lag the leader, but it is one
    /// consistent prefix of the log ([`ReadSnapshot::applied_log_id`]).
    pub fn read_snapshot(&self) -> Result<ReadSnapshot> {
        ReadSnapshot::of(&self.db)
    }

    /// A linearizable read: confirms through raft's read-index
    /// (`ensure_linearizable`: a heartbeat round to a quorum) that this node
    /// is the leader, waits until it applied up to the read index, then
    /// reads. It sees every transaction acknowledged before the call.
    pub async fn read_linearizable(&self) -> Result<ReadSnapshot> {
        self.raft.ensure_linearizable().await.map_err(|e| match e {
            RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => Error::NotLeader { leader: f.leader_id },
            RaftError::APIError(other) => Error::Raft(other.to_string()),
            RaftError::Fatal(f) => Error::Raft(f.to_string()),
        })?;
        self.read_snapshot()
    }

    /// Begin a transaction on a linearizable snapshot (see
    /// [`Node::read_linearizable`]): it reads every transaction acknowledged
    /// before it began.
    pub async fn begin(&self) -> Result<Txn> {
        Ok(Txn::new(self.proposer.clone(), self.read_linearizable().await?))
    }

    /// Begin a transaction on this node's applied state, without a
    /// leadership check: still snapshot isolation (the commit validates
    /// against everything applied after the snapshot), but its reads may
    /// miss transactions acknowledged elsewhere. Commit it on the leader.
    pub fn begin_local(&self) -> Result<Txn> {
        Ok(Txn::new(self.proposer.clone(), self.read_snapshot()?))
    }
}

/// A consistent read of the replicated data at one applied log position.
pub struct ReadSnapshot {
    snap: bwtx::Snapshot,
    applied: AppliedState,
}

impl ReadSnapshot {
    fn of(db: &bwtx::Db) -> Result<ReadSnapshot> {
        let snap = db.snapshot();
        let applied = read_applied(&snap)?;
        Ok(ReadSnapshot { snap, applied })
    }

    /// The applied log index the read reflects (a transaction's `P`).
    pub fn position(&self) -> u64 {
        self.applied.index()
    }

    /// The applied log id the read reflects.
    pub fn applied_log_id(&self) -> Option<LogId<NodeId>> {
        self.applied.last_applied
    }

    /// The value of `key`, or `None`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        match self.snap.get(keys::data_key(key.as_ref()))? {
            Some(raw) => Ok(keys::decode_value(&raw)?.1),
            None => Ok(None),
        }
    }

    /// Every live key starting with `prefix` and its value, in key order.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Vec<(Bytes, Bytes)>> {
        let mut out = Vec::new();
        for kv in self.snap.prefix(keys::data_key(prefix.as_ref())) {
            let (k, raw) = kv?;
            if let (_, Some(v)) = keys::decode_value(&raw)? {
                out.push((k.slice(DATA_PREFIX.len()..), v));
            }
        }
        Ok(out)
    }
}

/// A replicated read-write transaction: reads one snapshot plus its own
/// writes, commits through raft with first-committer-wins.
pub struct Txn {
    proposer: Proposer,
    read: ReadSnapshot,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Txn {
    fn new(proposer: Proposer, read: ReadSnapshot) -> Txn {
        Txn {
            proposer,
            read,
            writes: BTreeMap::new(),
        }
    }

    /// The applied log index the transaction's snapshot reflects.
    pub fn position(&self) -> u64 {
        self.read.position()
    }

    /// The value of `key`: the transaction's own write, else the snapshot's.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        match self.writes.get(key.as_ref()) {
            Some(w) => Ok(w.as_ref().map(|v| Bytes::copy_from_slice(v))),
            None => self.read.get(key),
        }
    }

    /// Buffer a write of `value` to `key`. Keys and values over the limits
    /// ([`keys::MAX_USER_KEY_LEN`], [`keys::MAX_USER_VALUE_LEN`]) are
    /// refused here, as bwtx refuses them.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        check_key(key)?;
        if value.len() > MAX_USER_VALUE_LEN {
            return Err(bwtx::Error::ValueTooLarge {
                len: value.len(),
                max: MAX_USER_VALUE_LEN,
            }
            .into());
        }
        self.writes.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    /// Buffer a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        check_key(key.as_ref())?;
        self.writes.insert(key.as_ref().to_vec(), None);
        Ok(())
    }

    /// Propose the writes through raft and wait for the outcome: the
    /// commit's log index (the snapshot's position if nothing was written),
    /// or [`bwtx::Error::Conflict`] (see [`Error::is_conflict`]) if an entry
    /// applied after the snapshot wrote one of the keys. Not on the leader:
    /// [`Error::NotLeader`], and nothing was proposed. [`Error::Raft`] means
    /// the outcome is unknown (the node stopped after proposing).
    pub async fn commit(self) -> Result<u64> {
        if self.writes.is_empty() {
            return Ok(self.read.position());
        }
        let snapshot = self.read.position();
        drop(self.read);
        let proposal = Proposal {
            snapshot,
            writes: self.writes.into_iter().collect(),
        };
        let resp = self.proposer.propose(proposal).await?;
        match resp {
            Response::Committed { index } => Ok(index),
            Response::Conflict { key, winner, snapshot } => Err(bwtx::Error::Conflict {
                key: Bytes::from(key),
                winner,
                snapshot,
                // The replicated protocol validates written keys only
                // (snapshot isolation, first committer wins).
                reason: Box::new(bwtx::ConflictReason::Write),
            }
            .into()),
            Response::Rejected { reason } => Err(Error::Raft(format!("proposal rejected: {reason}"))),
            other => Err(Error::Raft(format!("a transaction's entry applied as {other:?}"))),
        }
    }
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_USER_KEY_LEN {
        return Err(bwtx::Error::KeyTooLarge {
            len: key.len(),
            max: MAX_USER_KEY_LEN,
        }
        .into());
    }
    Ok(())
}
