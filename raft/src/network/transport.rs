//! [`Transport`]: how a node reaches the others, in-process ([`Router`])
//! or over TCP (a listening socket); and the two dispatchers built from
//! it: the network factory a node hands to openraft ([`Network`]) and
//! the way its proposer forwards proposals to the leader ([`Link`]).

use std::future::Future;
use std::net::SocketAddr;

use futures_util::Stream;
use openraft::base::{BoxFuture, BoxStream};
use openraft::error::{RPCError, ReplicationClosed, StreamingError};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkV2};
use tokio::net::TcpListener;

use super::local::{self, Router};
use super::server::Server;
use super::tcp::{self, Forwarded, Forwarder};
use super::wire::WireCounts;
use crate::error::Result;
use crate::snapshot::SnapshotDir;
use crate::types::{Command, NodeId, Raft, Snapshot, SnapshotData, TypeConfig, Vote};

/// How a node being started reaches the others.
pub enum Transport {
    /// Direct calls within the process, routed by node id.
    InProcess(Router),
    /// TCP: the node serves on this listener and reaches each peer at the
    /// `host:port` of its `BasicNode::addr` in the membership.
    Tcp(TcpListener),
}

/// openraft's network factory for one node: either transport.
pub enum Network {
    /// See [`local::Network`].
    InProcess(local::Network),
    /// See [`tcp::TcpNetwork`].
    Tcp(tcp::TcpNetwork),
}

/// A connection from one node to a peer: either transport.
pub enum Connection {
    /// See [`local::Connection`].
    InProcess(local::Connection),
    /// See [`tcp::TcpConnection`] (boxed: it holds a framed stream).
    Tcp(Box<tcp::TcpConnection>),
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Connection {
        match self {
            Network::InProcess(n) => Connection::InProcess(n.new_client(target, node).await),
            Network::Tcp(n) => Connection::Tcp(Box::new(n.new_client(target, node).await)),
        }
    }
}

impl RaftNetworkV2<TypeConfig> for Connection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self {
            Connection::InProcess(c) => c.append_entries(rpc, option).await,
            Connection::Tcp(c) => c.append_entries(rpc, option).await,
        }
    }

    /// In process openraft's default (one request at a time, through
    /// `append_entries`); on TCP pipelined on a connection of its own.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>>, RPCError<TypeConfig>>,
    >
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        match self {
            Connection::InProcess(c) => c.stream_append(input, option),
            Connection::Tcp(c) => c.stream_append(input, option),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self {
            Connection::InProcess(c) => c.vote(rpc, option).await,
            Connection::Tcp(c) => c.vote(rpc, option).await,
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        match self {
            Connection::InProcess(c) => c.full_snapshot(vote, snapshot, cancel, option).await,
            Connection::Tcp(c) => c.full_snapshot(vote, snapshot, cancel, option).await,
        }
    }
}

/// A running node's end of its transport: what its proposer forwards
/// through, and, on TCP, its server. Cloning shares it.
#[derive(Clone)]
pub enum Link {
    /// Registered with this router, as this generation of the node's id
    /// (`Router::register`).
    InProcess(Router, u64),
    /// Serving on this server; forwarding through this forwarder.
    Tcp(Server, Forwarder),
}

/// The network factory node `id` gives openraft on `transport` (on TCP
/// sending snapshots in chunks of `chunk` bytes), and the node's cut-off
/// flag, which the factory shares with the server [`Link::connect`] starts
/// on TCP.
pub(crate) fn network(id: NodeId, transport: &Transport, chunk: usize) -> (Network, tcp::Cut) {
    let link = tcp::Cut::default();
    match transport {
        Transport::InProcess(router) => (Network::InProcess(router.network(id)), link),
        Transport::Tcp(_) => (
            Network::Tcp(tcp::TcpNetwork::new(link.clone()).with_snapshot_chunk(chunk)),
            link,
        ),
    }
}

impl Link {
    /// Make node `id`'s `raft` reachable through `transport`; `cut` is the
    /// cut-off flag [`network`] gave its factory; on TCP, snapshots it
    /// receives are written to `snapshots`.
    pub(crate) fn connect(
        id: NodeId,
        raft: &Raft,
        transport: Transport,
        cut: tcp::Cut,
        snapshots: SnapshotDir,
    ) -> Result<Link> {
        match transport {
            Transport::InProcess(router) => {
                router.register(id, raft.clone());
                let gen = router.gen(id);
                Ok(Link::InProcess(router, gen))
            }
            Transport::Tcp(listener) => {
                let server = Server::start(id, listener, raft.clone(), cut.clone(), snapshots)?;
                Ok(Link::Tcp(server, Forwarder::new(cut)))
            }
        }
    }

    /// The TCP address the node listens on, if it is on TCP.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            Link::InProcess(..) => None,
            Link::Tcp(server, _) => Some(server.addr()),
        }
    }

    /// What the node sent over TCP so far, if it is on TCP.
    pub fn sent(&self) -> Option<WireCounts> {
        match self {
            Link::InProcess(..) => None,
            Link::Tcp(server, _) => Some(server.sent()),
        }
    }

    /// Forward `cmd` from node `from` to the leader `to` (`node`: its
    /// entry in the membership), waiting at most `limit` for its answer
    /// (`crate::proposer::write_timeout`): a leader that hangs (stopped, or
    /// cut off without a reset) must not hold the proposer's slot, and so
    /// every later commit of this node, forever. Past it the outcome is
    /// unknown (`Lost`).
    pub(crate) async fn forward(
        &self,
        from: NodeId,
        to: NodeId,
        node: Option<&BasicNode>,
        cmd: Command,
        limit: std::time::Duration,
    ) -> Forwarded {
        match self {
            Link::InProcess(router, gen) => match router.route(from, *gen, to) {
                Ok(raft) => match tokio::time::timeout(limit, raft.client_write(cmd)).await {
                    Ok(r) => Forwarded::Answered(r),
                    Err(_) => Forwarded::Lost(format!("forwarding to node {to}: no answer within {limit:?}")),
                },
                Err(_) => Forwarded::NotSent,
            },
            Link::Tcp(_, forwarder) => match node {
                Some(n) => forwarder.client_write(&n.addr, cmd, limit).await,
                None => Forwarded::NotSent,
            },
        }
    }
}
