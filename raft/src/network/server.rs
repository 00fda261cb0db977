//! The TCP transport's serving side: one node's listening port, which
//! answers its peers' raft RPCs and the proposals they forward, by calling
//! the node's `Raft`.
//!
//! Every accepted connection gets a task. It reads the peer's hello and
//! answers it (`wire::accept_hello`; a connection without a valid one,
//! or of another wire version, is closed), then serves the mode the hello
//! chose. An RPC connection: read a request, await the node's answer,
//! write it back, one request at a time; a snapshot's chunks are written
//! per connection to a file in the node's snapshot directory
//! ([`super::receive`]) and the last one, once the file checks out,
//! installs it
//! (`Raft::install_full_snapshot`), unless its last entry is beyond the
//! sender's vote (openraft would panic on it; no protocol-following leader
//! sends one). An append stream: requests are handed to
//! `Raft::stream_append` as they arrive, and its answers written back in
//! order as they come (pipelined; see [`super::append_stream`]). A
//! connection that sends a frame that does not decode or is over the frame
//! limit is closed.
//!
//! **Closing the port.** [`Server::stop`] (the node is killed) and
//! [`Server::isolate`] (a partition, for tests) end the accepting task,
//! which drops the listening socket and ends every connection task (their
//! sockets close): peers then get a refused connection, which they report
//! to openraft as `Unreachable`. [`Server::heal`] listens again on the same
//! address, since the membership names the node by it.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use openraft::raft::AppendEntriesRequest;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::receive::{self, Incoming, Receiver};
use super::tcp::Cut;
use super::wire::{self, AppendReply, Conn, Mode, Reply, Request, WireCounts};
use crate::error::{Error, Result};
use crate::snapshot::{SnapshotDir, SnapshotFile};
use crate::types::{NodeId, Raft, Snapshot, SnapshotMeta, TypeConfig, Vote};

/// How long [`Server::heal`] retries binding its address (the old socket's
/// release is asynchronous).
const BIND_WAIT: Duration = Duration::from_secs(5);

/// A node's TCP server. Cloning shares it.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    /// The node's id (as [`crate::trace`] records its steps).
    id: NodeId,
    addr: SocketAddr,
    raft: Raft,
    cut: Cut,
    /// Where received snapshots are written, and a cut one's part.
    snapshots: Receiver,
    accepting: Mutex<Option<JoinHandle<()>>>,
}

impl Server {
    /// Serve `raft` on `listener`; `cut` is the node's isolation, shared
    /// with its clients; received snapshots go to `snapshots`.
    pub(crate) fn start(
        id: NodeId,
        listener: TcpListener,
        raft: Raft,
        cut: Cut,
        snapshots: SnapshotDir,
    ) -> Result<Server> {
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Raft(format!("the listening socket's address: {e}")))?;
        let snapshots = Receiver::new(snapshots);
        let task = tokio::spawn(accept(id, listener, raft.clone(), cut.clone(), snapshots.clone()));
        Ok(Server {
            inner: Arc::new(Inner {
                id,
                addr,
                raft,
                cut,
                snapshots,
                accepting: Mutex::new(Some(task)),
            }),
        })
    }

    /// The address the node listens on (its `BasicNode::addr`).
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The bytes of the snapshot part a cut transfer left on this node,
    /// kept for a resume (`network::receive`), if any.
    pub fn parked_snapshot_bytes(&self) -> Option<u64> {
        self.inner.snapshots.parked()
    }

    /// What the node sent over TCP so far, as a client and as a server.
    pub fn sent(&self) -> WireCounts {
        self.inner.cut.sent()
    }

    /// Close the port: no new connection is accepted and the open ones are
    /// closed. Returns once the listening socket is dropped.
    pub async fn stop(&self) {
        let task = self.inner.accepting.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            // An aborted task's future (the listener, the connection
            // tasks' set) is dropped before its handle resolves.
            let _ = task.await;
        }
    }

    /// Cut the node off: close its port ([`Server::stop`]) and let its own
    /// RPCs and forwarded proposals open no connection, until
    /// [`Server::heal`].
    pub async fn isolate(&self) {
        self.inner.cut.set_cut(true);
        self.stop().await;
    }

    /// Reconnect the node: listen again on the same address (retrying for
    /// up to 5 s while it is still in use) and let its clients connect. A
    /// node still listening only gets its clients back.
    pub async fn heal(&self) -> Result<()> {
        let listening = self
            .inner
            .accepting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|task| !task.is_finished());
        if listening {
            self.inner.cut.set_cut(false);
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + BIND_WAIT;
        let listener = loop {
            match TcpListener::bind(self.inner.addr).await {
                Ok(l) => break l,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(Error::Raft(format!("listen on {}: {e}", self.inner.addr))),
            }
        };
        let task = tokio::spawn(accept(
            self.inner.id,
            listener,
            self.inner.raft.clone(),
            self.inner.cut.clone(),
            self.inner.snapshots.clone(),
        ));
        let old = self
            .inner
            .accepting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(task);
        if let Some(old) = old {
            old.abort();
        }
        self.inner.cut.set_cut(false);
        Ok(())
    }
}

/// Accept connections until aborted; dropping this future drops the
/// listener and aborts every connection task.
async fn accept(id: NodeId, listener: TcpListener, raft: Raft, cut: Cut, snapshots: Receiver) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve(id, stream, raft.clone(), cut.clone(), snapshots.clone()));
                }
                // Out of file descriptors, or a connection reset before
                // it was accepted: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Answer one connection until it closes or sends garbage: its hello
/// first (a connection without a valid one is closed after this node's
/// answer), then its requests in the mode the hello chose.
async fn serve(id: NodeId, stream: TcpStream, raft: Raft, cut: Cut, snapshots: Receiver) {
    let mut conn = wire::framed(stream);
    match wire::accept_hello(&mut conn).await {
        Ok(Mode::Rpc) => serve_rpc(conn, raft, cut, snapshots).await,
        Ok(Mode::Append) => serve_append(id, conn, raft, cut).await,
        Err(_) => {}
    }
}

/// Requests of one append stream decoded and not yet taken by
/// `Raft::stream_append`, at most: while that many wait, the connection is
/// not read, so a peer that sends faster than this node flushes is held
/// back by TCP instead of growing a queue here. Above what a conforming
/// leader has outstanding ([`super::append_stream::IN_FLIGHT`] requests,
/// a few frames each only when over the frame limit).
pub const APPEND_QUEUE: usize = 2 * super::append_stream::IN_FLIGHT;

/// Serve an append stream: decoded requests go, in order, to
/// `Raft::stream_append` (through a channel of [`APPEND_QUEUE`] this task
/// owns, so that the node stops taking them once the connection closes or
/// the task is aborted), and its answers, each sent once the follower
/// flushed the entries, go back in the same order. The connection is read
/// only while the channel has room. Ends when the peer closes the
/// connection (after the answers still owed), on a frame that does not
/// decode, or when an answer is an error (the stream's end).
async fn serve_append(id: NodeId, conn: Conn, raft: Raft, cut: Cut) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<AppendEntriesRequest<TypeConfig>>(APPEND_QUEUE);
    let input = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let answers = raft.stream_append(input);
    let (sink, source) = conn.split();
    let requests = source.map(move |frame| {
        let rpc: AppendEntriesRequest<TypeConfig> = wire::decode(&frame?)?;
        crate::trace::events(
            id,
            rpc.entries.iter().map(|e| e.log_id.index),
            crate::trace::Step::Received,
        );
        Ok(rpc)
    });
    pump(requests, sink, tx, answers, |answer| {
        let last = !matches!(answer, Ok(Ok(_)));
        let reply: AppendReply = answer.map_err(|fatal| fatal.to_string());
        let body = wire::encode(&reply, wire::MAX_FRAME).ok()?;
        count_reply(&cut, body.len());
        Some((body, last))
    })
    .await
}

/// An append stream's loop: `requests` (decoded frames) go to `tx` while it
/// has room, and each of `answers` goes back through `sink` as `reply`
/// encodes it (`None`: it cannot be; else the frame and whether it is the
/// stream's last), until the peer closes and every answer owed is sent, a
/// frame does not decode, a send fails or the last answer is sent.
async fn pump<Req, Ans, Sink>(
    requests: impl Stream<Item = io::Result<Req>>,
    mut sink: Sink,
    tx: tokio::sync::mpsc::Sender<Req>,
    answers: impl Stream<Item = Ans>,
    mut reply: impl FnMut(Ans) -> Option<(bytes::Bytes, bool)>,
) where
    Sink: futures_util::Sink<bytes::Bytes> + Unpin,
{
    let mut requests = std::pin::pin!(requests);
    let mut answers = std::pin::pin!(answers);
    let mut tx = Some(tx);
    loop {
        tokio::select! {
            // A full channel empties only as `stream_append` takes its
            // requests, and each one taken is answered (or ends the
            // stream): the answer wakes this loop to read again.
            request = requests.next(), if tx.as_ref().is_some_and(|tx| tx.capacity() > 0) => match request {
                Some(Ok(rpc)) => {
                    // Room was checked above, and this loop is the only sender.
                    if tx.as_ref().is_none_or(|tx| tx.try_send(rpc).is_err()) {
                        return;
                    }
                }
                // The peer closed: answer what was sent, then end.
                None => tx = None,
                // An I/O error, or garbage: close.
                Some(Err(_)) => return,
            },
            answer = answers.next() => {
                let Some(answer) = answer else { return };
                let Some((body, last)) = reply(answer) else { return };
                if sink.send(body).await.is_err() || last {
                    return;
                }
            }
        }
    }
}

/// Answer one RPC connection's requests, one at a time, until it closes or
/// sends garbage.
async fn serve_rpc(mut conn: Conn, raft: Raft, cut: Cut, snapshots: Receiver) {
    let mut incoming = Some(snapshots.incoming());
    while let Ok(Some(request)) = wire::recv::<Request>(&mut conn).await {
        let reply = match request {
            Request::AppendEntries(rpc) => Reply::AppendEntries(raft.append_entries(rpc).await),
            Request::Vote(rpc) => Reply::Vote(raft.vote(rpc).await),
            Request::SnapshotChunk {
                vote,
                meta,
                len,
                offset,
                done,
                data,
            } => match add_chunk(&mut incoming, &receive::snapshot_id(&meta), len, offset, data, done).await {
                Err(e) => Reply::Snapshot(Err(e)),
                Ok(None) => Reply::Snapshot(Ok(None)),
                // openraft asserts (panics) on a snapshot whose last entry is
                // beyond the sender's vote: no protocol-following leader sends
                // one, so a peer's damaged message is refused here instead.
                Ok(Some(_)) if beyond_vote(&vote, &meta) => Reply::Snapshot(Err(format!(
                    "a snapshot whose last log id {:?} is beyond the sender's vote {vote}",
                    meta.last_log_id
                ))),
                Ok(Some(file)) => match receive::check(file, meta.clone()).await {
                    Err(e) => Reply::Snapshot(Err(e)),
                    Ok(file) => {
                        let whole = Snapshot { meta, snapshot: file };
                        Reply::Snapshot(
                            raft.install_full_snapshot(vote, whole)
                                .await
                                .map(Some)
                                .map_err(|e| e.to_string()),
                        )
                    }
                },
            },
            Request::ClientWrite(cmd) => Reply::ClientWrite(raft.client_write(cmd).await),
            Request::SnapshotResume { meta, len } => Reply::SnapshotResume(
                incoming
                    .as_mut()
                    .map_or(0, |inc| inc.resume(&receive::snapshot_id(&meta), len)),
            ),
        };
        // A reply over the frame limit cannot be sent: close the
        // connection, the caller sees a network error.
        let Ok(body) = wire::encode(&reply, wire::MAX_FRAME) else {
            return;
        };
        count_reply(&cut, body.len());
        if wire::send(&mut conn, body).await.is_err() {
            return;
        }
    }
}

/// [`Incoming::add`] on tokio's blocking pool (a chunk's write, and the
/// last one's fsync, would otherwise hold a tokio worker). `incoming` is
/// moved there and back; if the blocking task fails it is gone (its part
/// removed as it dropped) and every later chunk on this connection is
/// refused.
async fn add_chunk(
    incoming: &mut Option<Incoming>,
    id: &str,
    len: u64,
    offset: u64,
    data: Vec<u8>,
    done: bool,
) -> Result<Option<SnapshotFile>, String> {
    let Some(mut inc) = incoming.take() else {
        return Err("an earlier snapshot chunk of this connection failed".to_string());
    };
    let id = id.to_string();
    let added = tokio::task::spawn_blocking(move || {
        let r = inc.add(&id, len, offset, &data, done);
        (inc, r)
    })
    .await;
    match added {
        Ok((inc, r)) => {
            *incoming = Some(inc);
            r
        }
        Err(e) => Err(format!("writing a snapshot chunk: {e}")),
    }
}

/// Count one reply of `bytes` bytes.
fn count_reply(cut: &Cut, bytes: usize) {
    cut.count(|c| {
        c.replies += 1;
        c.bytes += bytes as u64;
    });
}

/// Is the snapshot's last entry from a leader after the vote's (a message
/// no protocol-following leader sends)?
fn beyond_vote(vote: &Vote, meta: &SnapshotMeta) -> bool {
    meta.last_log_id
        .as_ref()
        .is_some_and(|last| last.committed_leader_id() > vote.leader_id())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::{beyond_vote, pump, APPEND_QUEUE};
    use crate::types::{log_id, SnapshotMeta, Vote};

    /// A peer that sends faster than the node takes its requests is read
    /// only while the queue to `stream_append` has room: at most
    /// `APPEND_QUEUE` requests wait, and each one taken lets one more in.
    #[tokio::test(start_paused = true)]
    async fn an_append_stream_reads_no_further_than_its_queue() {
        let sent = 10 * APPEND_QUEUE;
        let (read, replied) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let counter = read.clone();
        let requests = futures_util::stream::iter(0..sent).map(move |i| {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(i)
        });
        let (tx, mut rx) = tokio::sync::mpsc::channel(APPEND_QUEUE);
        let (answer, mut answers) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let answers = futures_util::stream::poll_fn(move |cx| answers.poll_recv(cx));
        let counter = replied.clone();
        let reply = move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
            Some((bytes::Bytes::new(), false))
        };
        let task = tokio::spawn(pump(requests, futures_util::sink::drain(), tx, answers, reply));
        let settle = || tokio::time::sleep(Duration::from_secs(1));

        settle().await;
        assert_eq!(read.load(Ordering::Relaxed), APPEND_QUEUE);
        // The node takes and answers 5: 5 more are read, no further.
        for _ in 0..5 {
            answer.send(rx.recv().await.unwrap()).unwrap();
        }
        settle().await;
        assert_eq!(read.load(Ordering::Relaxed), APPEND_QUEUE + 5);
        assert_eq!(replied.load(Ordering::Relaxed), 5);
        // Taken and answered one by one, every request is read in order,
        // and the stream ends once the peer has closed and the node's
        // answers end.
        for expected in 5..sent {
            let request = rx.recv().await.unwrap();
            assert_eq!(request, expected);
            answer.send(request).unwrap();
        }
        assert!(rx.recv().await.is_none(), "the peer closed: the queue closes");
        drop(answer);
        task.await.unwrap();
        assert_eq!(
            (read.load(Ordering::Relaxed), replied.load(Ordering::Relaxed)),
            (sent, sent)
        );
    }

    #[test]
    fn a_snapshot_beyond_the_senders_vote_is_refused() {
        let meta = |last_log_id| SnapshotMeta {
            last_log_id,
            last_membership: Default::default(),
        };
        let vote = Vote::new(3, 1);
        assert!(!beyond_vote(&vote, &meta(None)));
        assert!(!beyond_vote(&vote, &meta(Some(log_id(3, 1, 10)))));
        assert!(!beyond_vote(&vote, &meta(Some(log_id(2, 2, 10)))));
        assert!(beyond_vote(&vote, &meta(Some(log_id(4, 1, 10)))));
    }
}
