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
//!
//! A snapshot travels as a run of [`Request::Snapshot`] frames of at most
//! [`SNAPSHOT_CHUNK`] bytes of data each, on one connection, each
//! acknowledged; the receiver installs it when the last (`done`) arrives
//! (openraft 0.10's `full_snapshot` hands the transport the whole
//! snapshot; its own chunked `InstallSnapshot` RPC of 0.9 is gone).

use std::io;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, ClientWriteResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::types::{Command, SnapshotMeta, TypeConfig, Vote};

/// The largest frame either side sends or accepts: 64 MiB. A snapshot chunk
/// ([`SNAPSHOT_CHUNK`]) is at most 4 times its size in JSON (bytes as
/// decimal numbers); an append-entries request over the limit is sent in
/// parts (`TcpConnection::append_entries`).
pub const MAX_FRAME: usize = 64 << 20;

/// The snapshot bytes one [`Request::Snapshot`] frame carries at most:
/// 4 MiB.
pub const SNAPSHOT_CHUNK: usize = 4 << 20;

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
    Vote(VoteRequest<TypeConfig>),
    /// A part of a snapshot: `data` goes at byte `offset` of it (0 starts
    /// a snapshot afresh; any other offset must be where the parts received
    /// before on this connection end); `done` marks the last, after which
    /// the receiver installs the whole (`Raft::install_full_snapshot`) with
    /// `vote` and `meta`.
    Snapshot {
        /// The leader's vote.
        vote: Vote,
        /// The snapshot's description.
        meta: SnapshotMeta,
        /// Where `data` goes in the snapshot.
        offset: u64,
        /// Whether this is the last part.
        done: bool,
        /// The part's bytes.
        data: Vec<u8>,
    },
    /// A proposal forwarded to the leader (`Raft::client_write`).
    ClientWrite(Command),
}

/// A client write's outcome, as openraft returns it.
pub type WriteResult = Result<ClientWriteResponse<TypeConfig>, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>;

/// The serving node's answer, the variant of the request.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The answer to [`Request::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<TypeConfig>, RaftError<TypeConfig>>),
    /// The answer to [`Request::Vote`].
    Vote(Result<VoteResponse<TypeConfig>, RaftError<TypeConfig>>),
    /// The answer to [`Request::Snapshot`]: `None` for a part received,
    /// the install's response after the last, or why not (a part out of
    /// order, or the receiving node stopped).
    Snapshot(Result<Option<SnapshotResponse<TypeConfig>>, String>),
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
