//! The TCP transport's client side: openraft's `RaftNetworkFactory` and
//! `RaftNetworkV2` over loopback (or any) TCP, and the forwarding of a
//! proposal to the leader. The serving side is [`super::server`], the
//! messages [`super::wire`], the pipelined replication stream
//! [`super::append_stream`].
//!
//! A node reaches a peer at the `host:port` of the peer's
//! [`BasicNode::addr`] in the membership. Every TCP connection opens with
//! the handshake (`wire::handshake`: magic, wire version, mode).
//! Replication (openraft's `stream_append`) gets a connection of its own
//! per stream, on which append-entries requests are pipelined. Every other
//! RPC (heartbeats, votes, snapshots) goes over the openraft connection's
//! one RPC connection, opened on first use and reopened after any failure;
//! an RPC takes it out for its duration and puts it back only after a
//! whole request and reply, so an RPC that openraft cancels (its timeout)
//! or that failed half way drops the connection instead of leaving a stale
//! reply on it.
//!
//! **Failures map to openraft's retry classes.** A connection that cannot
//! be opened (refused: the port is closed; the node is cut off, see
//! [`Cut`]; or the peer speaks another wire version) is `Unreachable`,
//! after which openraft backs off; an I/O error or a closed connection
//! after the request went out is `NetworkError`, retried at once (on a
//! fresh connection, which then fails as `Unreachable` if the peer is
//! gone); the peer's own raft error (in 0.10 only `Fatal`) is
//! `Unreachable`. An append-entries RPC too large for one frame is cut to
//! its first half (again, until it fits) and the part sent answered as
//! `PartialSuccess` (openraft 0.10 has no `PayloadTooLarge`; it sends the
//! rest next); on an append stream it is sent as several requests
//! (`wire::append_frames`). A snapshot file goes in chunks
//! (`snapshot::Limits::chunk`, at most [`wire::SNAPSHOT_CHUNK`]) on one
//! connection, read from the file as they are sent.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

use futures_util::Stream;
use openraft::base::{BoxFuture, BoxStream};
use openraft::error::{NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkV2};
use tokio::net::TcpStream;

use super::append_stream;

use super::wire::{self, Conn, Mode, Reply, Request, WireCounts, WriteResult, MAX_FRAME};
use crate::types::{Command, NodeId, Snapshot, SnapshotData, TypeConfig, Vote};

/// Whether a node is cut off, and what it sent: shared by its server
/// (which closes its port) and its clients (which then open no
/// connection), all of which count their frames in it. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Cut {
    cut: Arc<Mutex<bool>>,
    sent: Arc<Mutex<WireCounts>>,
}

impl Cut {
    /// Whether the node is cut off.
    pub fn is_cut(&self) -> bool {
        *self.cut.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_cut(&self, cut: bool) {
        *self.cut.lock().unwrap_or_else(|p| p.into_inner()) = cut;
    }

    /// What the node sent so far.
    pub fn sent(&self) -> WireCounts {
        *self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count frames sent.
    pub(crate) fn count(&self, add: impl FnOnce(&mut WireCounts)) {
        add(&mut self.sent.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Count one request of `bytes` bytes (a part of an append counts as one).
fn count_request(cut: &Cut, req: &Request, bytes: usize) {
    cut.count(|c| {
        match req {
            Request::AppendEntries(rpc) => c.add_append(rpc.entries.len() as u64, 1),
            _ => c.other_requests += 1,
        }
        c.bytes += bytes as u64;
    });
}

/// Why a call failed.
pub(crate) enum CallError {
    /// No connection could be opened: the request was not sent.
    Unreachable(io::Error),
    /// The request may have been sent; no reply came.
    Network(io::Error),
    /// The request is over the frame limit: not sent.
    TooLarge(io::Error),
}

/// Open a connection to `addr` in `mode` (the handshake done), unless the
/// node is cut off. Any failure is `Unreachable`: nothing was sent but the
/// hello (a refused connection, a peer of another wire version).
pub(crate) async fn connect(addr: &str, cut: &Cut, mode: Mode) -> Result<Conn, CallError> {
    if cut.is_cut() {
        return Err(CallError::Unreachable(io::Error::other("this node is cut off")));
    }
    let unreachable = |e: io::Error| CallError::Unreachable(io::Error::new(e.kind(), format!("{addr}: {e}")));
    let stream = wire::within("connecting", TcpStream::connect(addr))
        .await
        .map_err(unreachable)?;
    let mut conn = wire::framed(stream);
    wire::handshake(&mut conn, mode).await.map_err(unreachable)?;
    Ok(conn)
}

/// Whether a kept connection still looks open: the peer has not closed it
/// (a read would not return end-of-file at once) and sent nothing unasked.
/// A peer that was killed, or restarted on its port, closed its end; a
/// request sent on it could not be answered, and, for a forwarded
/// proposal, would leave its outcome unknown for nothing.
fn looks_open(conn: &Conn) -> bool {
    let mut byte = [0u8; 1];
    matches!(conn.get_ref().try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Send `req` on `conn` (opened first if `None`, or if the kept one was
/// closed by the peer) and read the reply. `conn` is `Some` again only
/// after a whole exchange.
async fn call(slot: &mut Option<Conn>, addr: &str, cut: &Cut, req: &Request, limit: usize) -> Result<Reply, CallError> {
    let body = wire::encode(req, limit).map_err(CallError::TooLarge)?;
    let mut conn = match slot.take() {
        Some(c) if !cut.is_cut() && looks_open(&c) => c,
        _ => connect(addr, cut, Mode::Rpc).await?,
    };
    count_request(cut, req, body.len());
    wire::send(&mut conn, body).await.map_err(CallError::Network)?;
    match wire::recv::<Reply>(&mut conn).await {
        Ok(Some(reply)) => {
            *slot = Some(conn);
            Ok(reply)
        }
        Ok(None) => Err(CallError::Network(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{addr} closed the connection before replying"),
        ))),
        Err(e) => Err(CallError::Network(e)),
    }
}

/// openraft's network factory for one node on TCP.
pub struct TcpNetwork {
    cut: Cut,
    chunk: usize,
}

impl TcpNetwork {
    /// The factory of a node whose isolation is `cut` (snapshot chunks of
    /// the default size, `snapshot::Limits::default().chunk`).
    pub fn new(cut: Cut) -> TcpNetwork {
        TcpNetwork {
            cut,
            chunk: crate::snapshot::Limits::default().chunk,
        }
    }

    /// Send snapshots in chunks of `chunk` bytes (at least 1, at most
    /// [`wire::SNAPSHOT_CHUNK`]).
    pub fn with_snapshot_chunk(mut self, chunk: usize) -> TcpNetwork {
        self.chunk = chunk.clamp(1, wire::SNAPSHOT_CHUNK);
        self
    }
}

impl RaftNetworkFactory<TypeConfig> for TcpNetwork {
    type Network = TcpConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> TcpConnection {
        let mut c = TcpConnection::new(node.addr.clone(), self.cut.clone(), MAX_FRAME);
        c.chunk = self.chunk;
        c.target = target;
        c
    }
}

/// A connection to one peer: at most one TCP connection for its RPCs,
/// reopened as needed, and one more for each append stream
/// ([`super::append_stream`]).
pub struct TcpConnection {
    addr: String,
    cut: Cut,
    conn: Option<Conn>,
    /// The largest frame it sends ([`MAX_FRAME`]; smaller in tests).
    max_frame: usize,
    /// Snapshot bytes per chunk.
    chunk: usize,
    /// The peer's node id, as [`crate::trace`] records its steps
    /// (`u64::MAX` when not known).
    target: NodeId,
}

impl TcpConnection {
    /// A connection to the node at `addr` from a node whose isolation is
    /// `cut`, sending frames of at most `max_frame` bytes.
    pub(crate) fn new(addr: String, cut: Cut, max_frame: usize) -> TcpConnection {
        TcpConnection {
            addr,
            cut,
            conn: None,
            max_frame,
            chunk: wire::SNAPSHOT_CHUNK,
            target: u64::MAX,
        }
    }
}

pub(crate) fn rpc_error(e: CallError) -> RPCError<TypeConfig> {
    match e {
        CallError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
        CallError::Network(e) | CallError::TooLarge(e) => RPCError::Network(NetworkError::new(&e)),
    }
}

fn wrong_reply(addr: &str) -> NetworkError<TypeConfig> {
    let e = io::Error::new(io::ErrorKind::InvalidData, format!("{addr} answered another request"));
    NetworkError::new(&e)
}

/// The peer's own error: in openraft 0.10 an RPC's only one is `Fatal`
/// (the peer's raft stopped), which the sender treats as an unreachable
/// node.
pub(crate) fn remote(e: RaftError<TypeConfig>) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&e))
}

impl RaftNetworkV2<TypeConfig> for TcpConnection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let mut cut = false;
        loop {
            let last = rpc.entries.last().map(|e| e.log_id);
            let req = Request::AppendEntries(rpc);
            match call(&mut self.conn, &self.addr, &self.cut, &req, self.max_frame).await {
                Ok(Reply::AppendEntries(Ok(AppendEntriesResponse::Success))) if cut => {
                    // Only a prefix was sent: openraft sends the rest next.
                    return Ok(AppendEntriesResponse::PartialSuccess(last));
                }
                Ok(Reply::AppendEntries(r)) => return r.map_err(remote),
                Ok(_) => return Err(RPCError::Network(wrong_reply(&self.addr))),
                // Over the frame limit: send the first half alone.
                Err(CallError::TooLarge(_)) => {
                    let Request::AppendEntries(mut back) = req else {
                        return Err(RPCError::Network(wrong_reply(&self.addr)));
                    };
                    if back.entries.len() < 2 {
                        return Err(rpc_error(CallError::TooLarge(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "one log entry is over the frame limit",
                        ))));
                    }
                    back.entries.truncate(back.entries.len() / 2);
                    rpc = back;
                    cut = true;
                }
                Err(e) => return Err(rpc_error(e)),
            }
        }
    }

    /// Replication's append-entries, pipelined on a connection of its own
    /// (`append_stream::open`): requests go out as openraft makes them,
    /// without waiting for the answers to the ones before.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        _option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>>, RPCError<TypeConfig>>,
    >
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        let (addr, cut, max_frame) = (self.addr.clone(), self.cut.clone(), self.max_frame);
        let target = self.target;
        Box::pin(async move {
            let answers: BoxStream<'s, _> = append_stream::open(addr, target, cut, max_frame, input).await?;
            Ok(answers)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match call(
            &mut self.conn,
            &self.addr,
            &self.cut,
            &Request::Vote(rpc),
            self.max_frame,
        )
        .await
        {
            Ok(Reply::Vote(r)) => r.map_err(remote),
            Ok(_) => Err(RPCError::Network(wrong_reply(&self.addr))),
            Err(e) => Err(rpc_error(e)),
        }
    }

    /// Send the snapshot file in chunks of the factory's chunk size on one
    /// connection, each read from the file (on tokio's blocking pool) just
    /// before it is sent and acknowledged before the next: memory holds one
    /// chunk. The chunks start where the receiver's part of a transfer cut
    /// off earlier ends (`Request::SnapshotResume`, `network::receive`).
    /// The last chunk's reply is the install's. `cancel` (openraft closing
    /// the replication) ends it.
    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let Snapshot { meta, snapshot: file } = snapshot;
        let len = file.len();
        let chunk = self.chunk;
        let send = async {
            // Where the receiver's part of a transfer cut off earlier ends.
            let resume = Request::SnapshotResume {
                meta: meta.clone(),
                len,
            };
            let mut offset = match call(&mut self.conn, &self.addr, &self.cut, &resume, self.max_frame).await {
                Ok(Reply::SnapshotResume(at)) if at <= len => at,
                Ok(_) => return Err(StreamingError::Network(wrong_reply(&self.addr))),
                Err(e) => return Err(streaming_error(e)),
            };
            let mut file = Some(seek(file, offset).await?);
            loop {
                let (f, data) = read_chunk(file.take(), chunk).await?;
                file = Some(f);
                let done = offset + data.len() as u64 >= len;
                if data.is_empty() && !done {
                    let e = io::Error::other(format!("the snapshot file ended at byte {offset} of {len}"));
                    return Err(StreamingError::Network(NetworkError::new(&e)));
                }
                let n = data.len() as u64;
                let req = Request::SnapshotChunk {
                    vote,
                    meta: meta.clone(),
                    len,
                    offset,
                    done,
                    data,
                };
                offset += n;
                match call(&mut self.conn, &self.addr, &self.cut, &req, self.max_frame).await {
                    Ok(Reply::Snapshot(Ok(Some(resp)))) if done => return Ok(resp),
                    Ok(Reply::Snapshot(Ok(None))) if !done => {}
                    Ok(Reply::Snapshot(Err(msg))) => {
                        return Err(StreamingError::Unreachable(Unreachable::new(&io::Error::other(msg))))
                    }
                    Ok(_) => return Err(StreamingError::Network(wrong_reply(&self.addr))),
                    Err(e) => return Err(streaming_error(e)),
                }
            }
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = send => r,
        }
    }
}

/// A failed call as openraft's snapshot error.
fn streaming_error(e: CallError) -> StreamingError<TypeConfig> {
    match e {
        CallError::Unreachable(e) => StreamingError::Unreachable(Unreachable::new(&e)),
        CallError::Network(e) | CallError::TooLarge(e) => StreamingError::Network(NetworkError::new(&e)),
    }
}

/// `file` with its read position at byte `at` (where a resumed transfer
/// continues), on tokio's blocking pool.
async fn seek(mut file: SnapshotData, at: u64) -> Result<SnapshotData, StreamingError<TypeConfig>> {
    let net = |e: io::Error| StreamingError::Network(NetworkError::new(&e));
    let sought = tokio::task::spawn_blocking(move || file.seek_to(at).map(|()| file)).await;
    match sought {
        Ok(Ok(file)) => Ok(file),
        Ok(Err(e)) => Err(net(io::Error::other(e.to_string()))),
        Err(e) => Err(net(io::Error::other(format!("seeking the snapshot file: {e}")))),
    }
}

/// Read the next chunk of up to `chunk` bytes from `file` (at its current
/// position; fewer only at its end) on tokio's blocking pool.
async fn read_chunk(
    file: Option<SnapshotData>,
    chunk: usize,
) -> Result<(SnapshotData, Vec<u8>), StreamingError<TypeConfig>> {
    let net = |e: io::Error| StreamingError::Network(NetworkError::new(&e));
    let Some(mut file) = file else {
        return Err(net(io::Error::other("no snapshot file")));
    };
    let read = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; chunk];
        let mut n = 0;
        while n < chunk {
            match file.read_some(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
        }
        buf.truncate(n);
        Ok((file, buf))
    })
    .await;
    match read {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(net(e)),
        Err(e) => Err(net(io::Error::other(format!("reading the snapshot file: {e}")))),
    }
}

/// What became of a proposal forwarded to the leader.
pub(crate) enum Forwarded {
    /// It was not sent (the leader is unknown, unreachable or this node is
    /// cut off): the caller may propose it elsewhere.
    NotSent,
    /// The leader's answer.
    Answered(WriteResult),
    /// It may have been sent, but no answer came: outcome unknown.
    Lost(String),
    /// It was not sent and cannot be (its request is over the wire's frame
    /// limit): nothing was proposed, and proposing it elsewhere would not
    /// help.
    Refused(String),
}

/// Forwards proposals to the leader over TCP, keeping idle connections per
/// address for reuse. Cloning shares them.
#[derive(Clone, Default)]
pub struct Forwarder {
    cut: Cut,
    idle: Arc<Mutex<HashMap<String, Vec<Conn>>>>,
}

impl Forwarder {
    /// A forwarder for a node whose isolation is `cut`.
    pub(crate) fn new(cut: Cut) -> Forwarder {
        Forwarder {
            cut,
            idle: Arc::default(),
        }
    }

    /// Send `cmd` to the node at `addr` as a client write and wait for its
    /// answer, at most `limit` (`crate::proposer::write_timeout`). Past it
    /// the outcome is unknown (`Lost`), and the connection is dropped.
    pub(crate) async fn client_write(&self, addr: &str, cmd: Command, limit: std::time::Duration) -> Forwarded {
        match tokio::time::timeout(limit, self.client_write_unbounded(addr, cmd)).await {
            Ok(f) => f,
            Err(_) => Forwarded::Lost(format!("forwarding to {addr}: no answer within {limit:?}")),
        }
    }

    async fn client_write_unbounded(&self, addr: &str, cmd: Command) -> Forwarded {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(addr)
            .and_then(Vec::pop);
        let mut slot = pooled;
        match call(&mut slot, addr, &self.cut, &Request::ClientWrite(cmd), MAX_FRAME).await {
            Ok(Reply::ClientWrite(r)) => {
                if let Some(conn) = slot {
                    let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                    idle.entry(addr.to_string()).or_default().push(conn);
                }
                Forwarded::Answered(r)
            }
            Ok(_) => Forwarded::Lost(format!("{addr} answered another request")),
            Err(CallError::Unreachable(_)) => Forwarded::NotSent,
            // Encoding failed before anything was sent (the connection,
            // untouched, goes back to the pool).
            Err(CallError::TooLarge(e)) => {
                if let Some(conn) = slot {
                    let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                    idle.entry(addr.to_string()).or_default().push(conn);
                }
                Forwarded::Refused(format!("forwarding to {addr}: {e}"))
            }
            Err(CallError::Network(e)) => Forwarded::Lost(format!("forwarding to {addr}: {e}")),
        }
    }
}

#[cfg(test)]
mod resume_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A leader that takes a forwarded write and never answers (stopped, or
    /// cut off without a reset): the forward ends as `Lost` (outcome
    /// unknown) once its time is up. Before, it waited forever, and with it
    /// every later commit of the forwarding node.
    #[tokio::test]
    async fn a_forward_to_a_leader_that_never_answers_ends() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let peer = tokio::spawn(async move {
            let mut conn = wire::framed(listener.accept().await.unwrap().0);
            wire::accept_hello(&mut conn).await.unwrap();
            let _request = wire::recv::<Request>(&mut conn).await;
            // Holds the connection open, answering nothing.
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        });
        let cmd = Command::Txn {
            snapshot: 0,
            writes: vec![(b"k".to_vec(), Some(b"v".to_vec()))],
            reads: vec![],
            ranges: vec![],
        };
        let forwarded = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            Forwarder::new(Cut::default()).client_write(&addr, cmd, std::time::Duration::from_millis(300)),
        )
        .await
        .expect("the forward ended");
        assert!(matches!(forwarded, Forwarded::Lost(_)));
        peer.abort();
    }

    /// A forward whose request is over the frame limit is refused before
    /// anything is sent (`Refused`: not proposed), not reported as an
    /// unknown outcome (`Lost`) as it was before 2026-12-07 (stop 57).
    /// Encoding fails before connecting, so no peer is needed.
    #[tokio::test]
    async fn a_forward_over_the_frame_limit_is_refused_unsent() {
        let cmd = Command::Txn {
            snapshot: 0,
            writes: vec![(b"k".to_vec(), Some(vec![7; wire::MAX_FRAME + 1]))],
            reads: vec![],
            ranges: vec![],
        };
        let forwarded = Forwarder::new(Cut::default())
            .client_write("127.0.0.1:9", cmd, std::time::Duration::from_secs(5))
            .await;
        assert!(matches!(forwarded, Forwarded::Refused(_)));
    }

    #[tokio::test]
    async fn a_connection_the_peer_closed_does_not_look_open() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conn = wire::framed(TcpStream::connect(addr).await.unwrap());
        let (served, _) = listener.accept().await.unwrap();
        assert!(looks_open(&conn), "open while the peer holds its end");
        drop(served);
        // The peer's FIN arrives asynchronously.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while looks_open(&conn) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the peer's close was never seen"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// An append of `n` entries after index 4, each with a 1,000-byte value.
    fn append(n: u64) -> AppendEntriesRequest<TypeConfig> {
        use crate::types::{log_id, Entry, EntryPayload};
        AppendEntriesRequest {
            vote: Vote::new_committed(2, 1),
            prev_log_id: Some(log_id(2, 1, 4)),
            leader_commit: None,
            entries: (5..5 + n)
                .map(|i| Entry {
                    log_id: log_id(2, 1, i),
                    payload: EntryPayload::Normal(Command::Txn {
                        snapshot: 0,
                        writes: vec![(b"k".to_vec(), Some(vec![1; 1000]))],
                        reads: vec![],
                        ranges: vec![],
                    }),
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn an_append_rpc_over_the_frame_limit_sends_a_prefix_as_partial_success() {
        // A peer that answers every append RPC with success and reports the
        // entries it got.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let peer = tokio::spawn(async move {
            let mut conn = wire::framed(listener.accept().await.unwrap().0);
            assert_eq!(wire::accept_hello(&mut conn).await.unwrap(), Mode::Rpc);
            let mut got = Vec::new();
            while let Ok(Some(Request::AppendEntries(rpc))) = wire::recv::<Request>(&mut conn).await {
                got.push(rpc.entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>());
                let ok = wire::encode(&Reply::AppendEntries(Ok(AppendEntriesResponse::Success)), MAX_FRAME);
                wire::send(&mut conn, ok.unwrap()).await.unwrap();
            }
            got
        });
        let whole = append(8);
        let size = wire::encode(&Request::AppendEntries(whole.clone()), MAX_FRAME)
            .unwrap()
            .len();
        let mut conn = TcpConnection::new(addr, Cut::default(), size / 3);
        let option = RPCOption::new(std::time::Duration::from_secs(5));
        let r = conn.append_entries(whole, option.clone()).await.unwrap();
        // Halved until it fits a third of the size: the first 2 entries.
        assert_eq!(
            r,
            AppendEntriesResponse::PartialSuccess(Some(crate::types::log_id(2, 1, 6)))
        );
        // Small enough: sent whole, plain success.
        let r = conn.append_entries(append(1), option.clone()).await.unwrap();
        assert_eq!(r, AppendEntriesResponse::Success);
        // One entry over the limit: a network error, nothing sent.
        let mut tiny = TcpConnection::new(conn.addr.clone(), Cut::default(), 100);
        assert!(matches!(
            tiny.append_entries(append(1), option).await,
            Err(RPCError::Network(_))
        ));
        drop(conn);
        assert_eq!(peer.await.unwrap(), vec![vec![5, 6], vec![5]]);
    }
}
