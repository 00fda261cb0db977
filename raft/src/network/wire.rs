//! The TCP transport's messages and their framing.
//!
//! A connection carries requests one at a time, each answered before the
//! next is sent: a [`Request`] from the connecting node, then the serving
//! node's [`Reply`] of the same variant. Each message is one frame of
//! tokio-util's `LengthDelimitedCodec` (a 4-byte big-endian length, then
//! the body) whose body is the message in JSON (`serde_json`, as the log
//! store encodes entries). A frame over [`MAX_FRAME`] bytes is refused on
//! both sides: the sender does not send it, the receiver closes the
//! connection.

use std::io;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use openraft::error::{ClientWriteError, InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, ClientWriteResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::types::{Command, NodeId, TypeConfig};

/// The largest frame either side sends or accepts: 64 MiB. A snapshot chunk
/// (`Config::snapshot_max_chunk_size`, 3 MiB by default) is about 4 times
/// its size in JSON (bytes as decimal numbers); an append-entries request
/// over the limit is split by openraft (`PayloadTooLarge`).
pub const MAX_FRAME: usize = 64 << 20;

/// One connection's framed stream.
pub(crate) type Conn = Framed<TcpStream, LengthDelimitedCodec>;

/// Frame `stream` (Nagle's algorithm off: every message is a whole
/// request or reply, sent at once).
pub(crate) fn framed(stream: TcpStream) -> Conn {
    // Best effort: without it messages are still delivered, only later.
    let _ = stream.set_nodelay(true);
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_framed(stream)
}

/// A request from one node to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Raft's append-entries (and heartbeat) RPC.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft's vote RPC.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A proposal forwarded to the leader (`Raft::client_write`).
    ClientWrite(Command),
}

/// A client write's outcome, as openraft returns it.
pub type WriteResult = Result<ClientWriteResponse<TypeConfig>, RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>>;

/// The serving node's answer, the variant of the request.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The answer to [`Request::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// The answer to [`Request::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// The answer to [`Request::InstallSnapshot`].
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// The answer to [`Request::ClientWrite`].
    ClientWrite(WriteResult),
}

/// `msg` encoded as a frame body, or an `InvalidInput` error if it is over
/// [`MAX_FRAME`].
pub(crate) fn encode<T: Serialize>(msg: &T) -> io::Result<Bytes> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a message of {} bytes is over the {MAX_FRAME}-byte frame limit",
                body.len()
            ),
        ));
    }
    Ok(Bytes::from(body))
}

/// Send one encoded frame.
pub(crate) async fn send(conn: &mut Conn, body: Bytes) -> io::Result<()> {
    conn.send(body).await
}

/// Receive and decode one message; `None` when the peer closed the
/// connection between messages. A body that does not decode is an
/// `InvalidData` error.
pub(crate) async fn recv<T: DeserializeOwned>(conn: &mut Conn) -> io::Result<Option<T>> {
    match conn.next().await {
        None => Ok(None),
        Some(frame) => {
            let frame = frame?;
            serde_json::from_slice(&frame)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
    }
}
