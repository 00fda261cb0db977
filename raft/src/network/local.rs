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

use futures_util::{Stream, StreamExt};
use openraft::base::{BoxFuture, BoxStream};
use openraft::error::{RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetworkV2};

use super::hold::{Held, Owed};
use crate::types::{NodeId, Raft, Snapshot, SnapshotData, TypeConfig, Vote};

#[derive(Default)]
struct Routes {
    nodes: HashMap<NodeId, Raft>,
    isolated: HashSet<NodeId>,
    /// Each id's generation, raised by [`Router::network`] (a new
    /// instance) and by [`Router::unregister`] (the instance stopped): an
    /// instance sends as the generation its network got, so that it can
    /// send from its start, before it registers (openraft may: a restarted
    /// leader resumes leading), and a killed instance's handles (its
    /// proposer, kept alive by a transaction) send nothing, also once a new
    /// instance took its id.
    gens: HashMap<NodeId, u64>,
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

    /// Make node `id` reachable at `raft` (the instance whose network
    /// [`Router::network`] made last).
    pub fn register(&self, id: NodeId, raft: Raft) {
        self.routes().nodes.insert(id, raft);
    }

    /// A new instance of node `id`: its generation.
    fn new_gen(&self, id: NodeId) -> u64 {
        let mut routes = self.routes();
        let gen = routes.gens.entry(id).or_default();
        *gen += 1;
        *gen
    }

    /// The generation of node `id`'s current instance.
    pub(crate) fn gen(&self, id: NodeId) -> u64 {
        self.routes().gens.get(&id).copied().unwrap_or(0)
    }

    /// Make node `id` unreachable (it stopped): it neither receives nor,
    /// through any handle left of it, sends.
    pub fn unregister(&self, id: NodeId) {
        let mut routes = self.routes();
        routes.nodes.remove(&id);
        *routes.gens.entry(id).or_default() += 1;
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

    /// The target's `Raft` if an RPC from `from` (the instance registered
    /// as generation `gen`) can reach `to`, else why not (also how a
    /// proposer forwards a write to the leader). A node that is not
    /// running sends nothing either: a killed node's tasks and proposer may
    /// outlive its unregistering (on TCP its connections are cut at once),
    /// also past a new instance's registration under its id.
    pub(crate) fn route(&self, from: NodeId, gen: u64, to: NodeId) -> Result<Raft, String> {
        let routes = self.routes();
        if routes.isolated.contains(&from) || routes.isolated.contains(&to) {
            return Err(format!("node {from} and node {to} are partitioned"));
        }
        if routes.gens.get(&from) != Some(&gen) {
            return Err(format!("node {from} is not running"));
        }
        match routes.nodes.get(&to) {
            Some(raft) => Ok(raft.clone()),
            None => Err(format!("node {to} is not running")),
        }
    }

    /// The network factory a new instance of node `source` hands to
    /// openraft: it sends as that instance (a new generation), which
    /// [`Router::register`] then makes reachable.
    pub fn network(&self, source: NodeId) -> Network {
        Network {
            router: self.clone(),
            source,
            gen: self.new_gen(source),
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
    gen: u64,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            router: self.router.clone(),
            source: self.source,
            gen: self.gen,
            target,
        }
    }
}

type Answer = Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

/// An append stream in progress.
struct Streaming<'s, S> {
    conn: &'s mut Connection,
    input: Held<S>,
    /// Answers still owed to dropped requests.
    owed: Owed,
    option: RPCOption,
}

impl<S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Unpin> Streaming<'_, S> {
    /// The answer to the next request and whether the stream goes on
    /// (openraft's rule: not after an error, a refusal or a partial
    /// success); `None` once the input ended.
    async fn next(&mut self) -> Option<(Answer, bool)> {
        if let Some(answer) = self.owed.next() {
            return Some((Ok(answer), true));
        }
        let (rpc, held) = self.input.next().await?;
        let prev = rpc.prev_log_id;
        let last = rpc.entries.last().map(|e| e.log_id).or(prev);
        match self.conn.append_entries(rpc, self.option.clone()).await {
            Ok(reply) => {
                let whole = match &reply {
                    AppendEntriesResponse::PartialSuccess(p) => *p == last,
                    _ => true,
                };
                let result = reply.into_stream_result(prev, last);
                let go_on = whole && result.is_ok();
                if go_on {
                    self.owed.owe(&result, held);
                }
                Some((Ok(result), go_on))
            }
            Err(e) => Some((Err(e), false)),
        }
    }
}

/// A "connection" from one node to another: each RPC looks the target up.
pub struct Connection {
    router: Router,
    source: NodeId,
    gen: u64,
    target: NodeId,
}

impl RaftNetworkV2<TypeConfig> for Connection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self
            .router
            .route(self.source, self.gen, self.target)
            .map_err(unreachable)?;
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

    /// Replication: each request as a direct call in turn (as openraft's
    /// default does), commit-only requests held for the next to carry
    /// ([`super::hold`]; a dropped request gets the answer of the one
    /// that stands for it).
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, Answer>, RPCError<TypeConfig>>>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    {
        let state = Streaming {
            conn: self,
            input: Held::new(input),
            owed: Owed::default(),
            option,
        };
        let answers = futures_util::stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            let (answer, go_on) = state.next().await?;
            Some((answer, go_on.then_some(state)))
        })
        // openraft may poll the stream once more after its end.
        .fuse();
        Box::pin(async move { Ok(Box::pin(answers) as BoxStream<'s, Answer>) })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self
            .router
            .route(self.source, self.gen, self.target)
            .map_err(unreachable)?;
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
        let raft = self
            .router
            .route(self.source, self.gen, self.target)
            .map_err(unreachable)?;
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = raft.install_full_snapshot(vote, snapshot) => {
                r.map_err(|fatal| StreamingError::Unreachable(Unreachable::new(&fatal)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Router;
    use crate::network::transport::Transport;
    use crate::node::Node;

    /// A node reaches another only while both run and neither is cut off,
    /// and only as its current instance.
    #[tokio::test]
    async fn only_running_nodes_send_and_receive() {
        let dir = tempfile::tempdir().unwrap();
        let router = Router::default();
        let config = crate::cluster::config().unwrap();
        let mut nodes = Vec::new();
        for id in [1, 2] {
            let transport = Transport::InProcess(router.clone());
            nodes.push(
                Node::start(id, &dir.path().join(id.to_string()), config.clone(), transport)
                    .await
                    .unwrap(),
            );
        }
        assert!(router.route(1, 1, 2).is_ok());
        assert!(router.route(2, 1, 1).is_ok());
        router.isolate(2);
        assert!(router.route(1, 1, 2).unwrap_err().contains("partitioned"));
        router.heal(2);
        router.unregister(1);
        let refused = "node 1 is not running";
        assert_eq!(router.route(1, 1, 2).unwrap_err(), refused, "a killed node sent");
        assert_eq!(router.route(2, 1, 1).unwrap_err(), refused);
        // A new instance under id 1 (generation 3: the kill was 2): it
        // sends from the start, before it registers; it is reached once it
        // registers; the killed one's handles (generation 1) still send
        // nothing.
        let _network = router.network(1);
        assert!(router.route(1, 3, 2).is_ok(), "a starting instance could not send");
        assert_eq!(router.route(2, 1, 1).unwrap_err(), refused);
        router.register(1, nodes[0].raft().clone());
        assert_eq!(router.route(1, 1, 2).unwrap_err(), refused, "a killed instance sent");
        assert!(router.route(1, 3, 2).is_ok());
        assert!(router.route(2, 1, 1).is_ok());
        for n in nodes {
            n.shutdown().await.unwrap();
        }
    }
}
