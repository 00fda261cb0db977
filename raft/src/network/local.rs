//! The in-process `RaftNetworkV2`: RPCs are direct calls on the target node's
//! `Raft` handle, found through a shared [`Router`], which can also cut a
//! node off (a partition) and heal it.
//!
//! An RPC to or from an isolated node, or to a node that is not running,
//! fails with openraft's `Unreachable`, as a dropped connection would.
//! A snapshot is handed over in one call (`RaftNetworkV2::full_snapshot`,
//! the target's `Raft::install_full_snapshot`): its open file, which the
//! target's state machine copies into its own snapshot directory a buffer
//! at a time before it installs it.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use openraft::error::{RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::{BasicNode, RaftNetworkV2};

use crate::types::{NodeId, Raft, Snapshot, SnapshotData, TypeConfig, Vote};

#[derive(Default)]
struct Routes {
    nodes: HashMap<NodeId, Raft>,
    isolated: HashSet<NodeId>,
}

/// Routes RPCs between the nodes of one process. Cloning it shares it.
#[derive(Clone, Default)]
pub struct Router {
    routes: Arc<Mutex<Routes>>,
}

impl Router {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make node `id` reachable at `raft`.
    pub fn register(&self, id: NodeId, raft: Raft) {
        self.routes().nodes.insert(id, raft);
    }

    /// Make node `id` unreachable (it stopped).
    pub fn unregister(&self, id: NodeId) {
        self.routes().nodes.remove(&id);
    }

    /// Cut node `id` off: no RPC reaches it or leaves it until
    /// [`Router::heal`].
    pub fn isolate(&self, id: NodeId) {
        self.routes().isolated.insert(id);
    }

    /// Reconnect node `id`.
    pub fn heal(&self, id: NodeId) {
        self.routes().isolated.remove(&id);
    }

    /// The target's `Raft` if an RPC from `from` can reach `to`, else why
    /// not (also how a proposer forwards a write to the leader).
    pub(crate) fn route(&self, from: NodeId, to: NodeId) -> Result<Raft, String> {
        let routes = self.routes();
        if routes.isolated.contains(&from) || routes.isolated.contains(&to) {
            return Err(format!("node {from} and node {to} are partitioned"));
        }
        match routes.nodes.get(&to) {
            Some(raft) => Ok(raft.clone()),
            None => Err(format!("node {to} is not running")),
        }
    }

    /// The network factory node `source` hands to openraft.
    pub fn network(&self, source: NodeId) -> Network {
        Network {
            router: self.clone(),
            source,
        }
    }
}

fn unreachable(msg: String) -> Unreachable<TypeConfig> {
    Unreachable::new(&std::io::Error::other(msg))
}

/// The target's own error: in openraft 0.10 an RPC's only one is `Fatal`
/// (the target stopped), which the sender treats as an unreachable node.
fn stopped(e: RaftError<TypeConfig>) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&e))
}

/// openraft's network factory for one node.
pub struct Network {
    router: Router,
    source: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            router: self.router.clone(),
            source: self.source,
            target,
        }
    }
}

/// A "connection" from one node to another: each RPC looks the target up.
pub struct Connection {
    router: Router,
    source: NodeId,
    target: NodeId,
}

impl RaftNetworkV2<TypeConfig> for Connection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self.router.route(self.source, self.target).map_err(unreachable)?;
        let traced: Vec<u64> = if crate::trace::on() {
            rpc.entries.iter().map(|e| e.log_id.index).collect()
        } else {
            Vec::new()
        };
        let reply = raft.append_entries(rpc).await.map_err(stopped)?;
        if reply.is_success() {
            crate::trace::events(self.target, traced, crate::trace::Step::Replied);
        }
        Ok(reply)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self.router.route(self.source, self.target).map_err(unreachable)?;
        raft.vote(rpc).await.map_err(stopped)
    }

    /// The snapshot's file handed to the target in one call (a stopped
    /// target is `Unreachable`); `cancel` (openraft closing the
    /// replication) ends it.
    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let raft = self.router.route(self.source, self.target).map_err(unreachable)?;
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = raft.install_full_snapshot(vote, snapshot) => {
                r.map_err(|fatal| StreamingError::Unreachable(Unreachable::new(&fatal)))
            }
        }
    }
}
