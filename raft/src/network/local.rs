//! The in-process `RaftNetwork`: RPCs are direct calls on the target node's
//! `Raft` handle, found through a shared [`Router`], which can also cut a
//! node off (a partition) and heal it.
//!
//! An RPC to or from an isolated node, or to a node that is not running,
//! fails with openraft's `Unreachable`, as a dropped connection would.
//! Snapshots travel through openraft's default `full_snapshot`, which sends
//! them in chunks (`Config::snapshot_max_chunk_size`) through
//! `install_snapshot` below.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, Raft};

use crate::types::{NodeId, TypeConfig};

#[derive(Default)]
struct Routes {
    nodes: HashMap<NodeId, Raft<TypeConfig>>,
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
    pub fn register(&self, id: NodeId, raft: Raft<TypeConfig>) {
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
    pub(crate) fn route(&self, from: NodeId, to: NodeId) -> Result<Raft<TypeConfig>, String> {
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

fn unreachable<E: std::error::Error>(msg: String) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(msg)))
}

fn remote<E: std::error::Error>(target: NodeId, e: E) -> RPCError<NodeId, BasicNode, E> {
    RPCError::RemoteError(RemoteError::new(target, e))
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

type RpcResult<T, E = openraft::error::Infallible> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let raft = self.router.route(self.source, self.target).map_err(unreachable)?;
        raft.append_entries(rpc).await.map_err(|e| remote(self.target, e))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let raft = self.router.route(self.source, self.target).map_err(unreachable)?;
        raft.install_snapshot(rpc).await.map_err(|e| remote(self.target, e))
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, _option: RPCOption) -> RpcResult<VoteResponse<NodeId>> {
        let raft = self.router.route(self.source, self.target).map_err(unreachable)?;
        raft.vote(rpc).await.map_err(|e| remote(self.target, e))
    }
}
