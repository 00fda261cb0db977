//! The TCP transport's messages, their encoding and framing, and the
//! handshake that opens every connection.
//!
//! **Frames.** Each message is one frame of tokio-util's
//! `LengthDelimitedCodec` (a 4-byte big-endian length, then the body) whose
//! body is the message in postcard (`design/replication.md` §7: serde's
//! compact binary format, integers as varints, byte strings as a length and
//! the raw bytes). A frame over [`MAX_FRAME`] bytes is refused on both
//! sides: the sender does not send it, the receiver closes the connection.
//! A body that does not decode is an `InvalidData` error, never a panic.
//!
//! **Handshake.** The connecting node's first frame is `hello`: the magic
//! bytes `bwtx-raft`, the [`WIRE_VERSION`] and the connection's [`Mode`].
//! The serving node answers with its own magic and version, then serves the
//! connection in that mode, or closes it if the versions differ; either
//! side names both versions in its error (`check_hello`), so a node of
//! another version (the JSON transport before version 2 sent no hello) gets
//! a clear error, not a garbled message. Either side waits at most
//! [`HANDSHAKE_TIMEOUT`] for the other's part (and the connecting side as
//! long for the connection itself): a silent peer then costs an error, not
//! a task held forever.
//!
//! **Modes.** [`Mode::Rpc`]: requests one at a time, a [`Request`] then the
//! serving node's [`Reply`] of the same variant. [`Mode::Append`]: a
//! pipelined stream of append-entries requests (`AppendEntriesRequest`),
//! sent without waiting, each answered in order by an [`AppendReply`]
//! (`Raft::stream_append` on the serving side).
//!
//! A snapshot file travels as a run of [`Request::SnapshotChunk`] frames,
//! each at most the sender's chunk size of data (`snapshot::Limits::chunk`,
//! 1 MiB by default, never over [`SNAPSHOT_CHUNK`]), read from the file one
//! at a time, on one connection, each acknowledged; the receiver appends
//! them to a file and installs it when the last (`done`) arrives, after
//! checking its length, CRC and trailer (openraft 0.10's `full_snapshot`
//! hands the transport the whole snapshot; its own chunked
//! `InstallSnapshot` RPC of 0.9 is gone). The chunks are preceded by a
//! [`Request::SnapshotResume`]: a transfer cut off earlier continues at the
//! byte the receiver holds (`network::receive`).

use std::io;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, ClientWriteResponse, SnapshotResponse, StreamAppendResult,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::types::{Command, SnapshotMeta, TypeConfig, Vote};

/// The largest frame either side sends or accepts: 64 MiB. A snapshot chunk
/// ([`SNAPSHOT_CHUNK`]) is a few bytes more than its data; an
/// append-entries request over the limit is sent in parts
/// (`append_frames`).
pub const MAX_FRAME: usize = 64 << 20;

/// The snapshot bytes one [`Request::SnapshotChunk`] frame carries at
/// most: 4 MiB (a sender's configured chunk size is capped to it).
pub const SNAPSHOT_CHUNK: usize = 4 << 20;

/// The version of the wire format this build speaks: 5 (postcard bodies,
/// a handshake, pipelined append streams, snapshots as file chunks,
/// [`Request::SnapshotChunk`], and resumed after a cut,
/// [`Request::SnapshotResume`]; the entries may carry
/// `Command::SetTombstoneHorizon` and the answers `Response::TooOld`, and a
/// replica collects tombstones: a version 4 replica would decide old
/// proposals otherwise). Version 4 had no tombstone collection; version 3
/// had no resume; version 2 sent
/// the JSON snapshot of the build before streamed snapshots
/// (`Request::Snapshot`); version 1, JSON bodies without a handshake. None
/// of them is spoken.
pub const WIRE_VERSION: u8 = 5;

/// The first bytes of a hello.
const MAGIC: &[u8; 9] = b"bwtx-raft";

/// One connection's framed stream.
pub(crate) type Conn = Framed<TcpStream, LengthDelimitedCodec>;

/// Frame `stream` (Nagle's algorithm off: every message is a whole
/// request or reply, sent at once), with TCP keepalive (see [`KEEPALIVE`]).
pub(crate) fn framed(stream: TcpStream) -> Conn {
    // Best effort both: without them messages are still delivered, only
    // later, and a dead peer is found by raft's own timeouts where it has
    // them.
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&KEEPALIVE);
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_framed(stream)
}

/// TCP keepalive on every connection: probes after 10 s without traffic,
/// every 5 s, 3 unanswered ones end it. A peer whose host died (no reset
/// sent: a power loss, a partition on a real network) while this node
/// waits for its reply, say to a snapshot's last chunk (whose install has
/// no time bound: it takes as long as the snapshot's size needs), is then
/// found within about 25 s instead of the system's 2 hours.
const KEEPALIVE: socket2::TcpKeepalive = socket2::TcpKeepalive::new()
    .with_time(std::time::Duration::from_secs(10))
    .with_interval(std::time::Duration::from_secs(5))
    .with_retries(3);

/// The largest hello (or hello answer) read: far above the few bytes one
/// takes, and far below [`MAX_FRAME`], so that a connection that is not a
/// peer's holds no more than this before its first frame is refused.
const HELLO_MAX: usize = 64 << 10;

/// What a connection carries, chosen by its hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One [`Request`] at a time, each answered by a [`Reply`].
    Rpc = 0,
    /// Append-entries requests sent back to back, each answered in order
    /// by an [`AppendReply`].
    Append = 1,
}

/// The hello that opens a connection in `mode`: the magic, the version,
/// the mode. The serving node answers with the magic and its version.
pub(crate) fn hello(mode: Mode) -> Bytes {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&[WIRE_VERSION, mode as u8]);
    Bytes::from(h)
}

/// The serving node's answer to a hello: the magic and its version.
fn hello_reply() -> Bytes {
    let mut h = MAGIC.to_vec();
    h.push(WIRE_VERSION);
    Bytes::from(h)
}

/// Check a hello (`with_mode`: one sent by a connecting node, which names
/// a mode) or a hello's answer: the mode it asks for, or an `InvalidData`
/// error naming what is wrong (not a bwtx-raft peer, another wire version,
/// an unknown mode).
pub(crate) fn check_hello(frame: &[u8], with_mode: bool) -> io::Result<Option<Mode>> {
    let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidData, msg));
    let Some(rest) = frame.strip_prefix(MAGIC.as_slice()) else {
        return bad(format!(
            "not a bwtx-raft wire version {WIRE_VERSION} peer: its first message ({} bytes) is no hello \
             (a node of wire version 1, JSON without a handshake, sends none)",
            frame.len()
        ));
    };
    match rest {
        [v, ..] if *v != WIRE_VERSION => bad(format!(
            "the peer speaks bwtx-raft wire version {v}, this node version {WIRE_VERSION}"
        )),
        [_] if !with_mode => Ok(None),
        [_, 0] if with_mode => Ok(Some(Mode::Rpc)),
        [_, 1] if with_mode => Ok(Some(Mode::Append)),
        _ => bad(format!("a malformed hello of {} bytes", frame.len())),
    }
}

/// How long either side of a handshake waits for the other's part, and a
/// connecting node for its TCP connection: far above a loopback or LAN
/// round trip, and short enough that a silent peer (a process stopped, a
/// port taken by something else) is given up on well before raft's
/// timeouts pile up behind it.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `fut` within [`HANDSHAKE_TIMEOUT`], or a `TimedOut` error naming `what`.
pub(crate) async fn within<T>(what: &str, fut: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: nothing within {HANDSHAKE_TIMEOUT:?}"),
        )),
    }
}

/// The connecting side's handshake: send the hello for `mode`, then check
/// the serving node's answer (see [`check_hello`]; a peer that closes
/// without one is an `UnexpectedEof` error, one silent for
/// [`HANDSHAKE_TIMEOUT`] a `TimedOut` one).
pub(crate) async fn handshake(conn: &mut Conn, mode: Mode) -> io::Result<()> {
    conn.codec_mut().set_max_frame_length(HELLO_MAX);
    let r = handshake_at_most(conn, mode).await;
    conn.codec_mut().set_max_frame_length(MAX_FRAME);
    r
}

/// [`handshake`] with the hello's frame limit set.
async fn handshake_at_most(conn: &mut Conn, mode: Mode) -> io::Result<()> {
    within("the answer to the hello", async {
        conn.send(hello(mode)).await?;
        match conn.next().await {
            Some(frame) => check_hello(&frame?, false).map(|_| ()),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection without answering the hello (a node of another wire version?)",
            )),
        }
    })
    .await
}

/// The serving side's handshake: read the hello, answer with this node's
/// version (whether or not the peer's matches, so that it can name both),
/// and return the mode asked for; an error if the hello is missing or
/// wrong, or does not come within [`HANDSHAKE_TIMEOUT`] (the caller closes
/// the connection).
pub(crate) async fn accept_hello(conn: &mut Conn) -> io::Result<Mode> {
    conn.codec_mut().set_max_frame_length(HELLO_MAX);
    let r = accept_hello_at_most(conn).await;
    conn.codec_mut().set_max_frame_length(MAX_FRAME);
    r
}

/// [`accept_hello`] with the hello's frame limit set.
async fn accept_hello_at_most(conn: &mut Conn) -> io::Result<Mode> {
    within("a connecting peer's hello", async {
        let frame = match conn.next().await {
            Some(frame) => frame?,
            None => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before its hello")),
        };
        let checked = check_hello(&frame, true);
        if frame.starts_with(MAGIC) {
            conn.send(hello_reply()).await?;
        }
        checked?.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a hello without a mode"))
    })
    .await
}

/// A request from one node to another on a [`Mode::Rpc`] connection.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Raft's append-entries (and heartbeat) RPC.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft's vote RPC.
    Vote(VoteRequest<TypeConfig>),
    /// A chunk of a snapshot file of `len` bytes: `data` goes at byte
    /// `offset` of it (0 starts a snapshot afresh; any other offset must be
    /// where the chunks received before on this connection end); `done`
    /// marks the last, after which the receiver checks that it holds `len`
    /// bytes and installs the file (`Raft::install_full_snapshot`, which
    /// checks its CRC and trailer first) with `vote` and `meta`.
    SnapshotChunk {
        /// The leader's vote.
        vote: Vote,
        /// The snapshot's description.
        meta: SnapshotMeta,
        /// The whole file's length.
        len: u64,
        /// Where `data` goes in the file.
        offset: u64,
        /// Whether this is the last chunk.
        done: bool,
        /// The chunk's bytes.
        data: Vec<u8>,
    },
    /// A proposal forwarded to the leader (`Raft::client_write`).
    ClientWrite(Command),
    /// Before a snapshot's chunks (wire version 4): where to resume the
    /// transfer of the snapshot `meta` describes, `len` bytes long; the
    /// answer is [`Reply::SnapshotResume`], and the chunks then start at
    /// that byte (`network::receive`).
    SnapshotResume {
        /// The snapshot's description (its id names it).
        meta: SnapshotMeta,
        /// The whole file's length.
        len: u64,
    },
}

/// A client write's outcome, as openraft returns it.
pub type WriteResult = Result<ClientWriteResponse<TypeConfig>, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>;

/// The serving node's answer on a [`Mode::Rpc`] connection, the variant of
/// the request.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The answer to [`Request::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<TypeConfig>, RaftError<TypeConfig>>),
    /// The answer to [`Request::Vote`].
    Vote(Result<VoteResponse<TypeConfig>, RaftError<TypeConfig>>),
    /// The answer to [`Request::SnapshotChunk`]: `None` for a chunk
    /// written, the install's response after the last, or why not (a chunk
    /// out of order, a short or corrupt file, a failed write, or the
    /// receiving node stopped).
    Snapshot(Result<Option<SnapshotResponse<TypeConfig>>, String>),
    /// The answer to [`Request::ClientWrite`].
    ClientWrite(WriteResult),
    /// The answer to [`Request::SnapshotResume`]: the byte the chunks start
    /// at (what a part cut off earlier holds, or 0).
    SnapshotResume(u64),
}

/// The answer to one append-entries request on a [`Mode::Append`]
/// connection: `Raft::stream_append`'s result (the last log id the
/// follower flushed, or a conflict or a higher vote, after which the stream
/// ends), or why the follower's raft stopped.
pub type AppendReply = Result<StreamAppendResult<TypeConfig>, String>;

/// What one node sent over TCP so far (as a client: its RPCs, append
/// streams and forwarded proposals; as a server: its replies), for
/// measurements: the example prints it per transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireCounts {
    /// Append-entries requests sent (on append streams and as RPCs, such
    /// as heartbeats; each part of a split append counts).
    pub appends: u64,
    /// Those of them that carried log entries.
    pub appends_with_entries: u64,
    /// Log entries in them.
    pub entries: u64,
    /// Other requests sent: votes, snapshot chunks, forwarded proposals.
    pub other_requests: u64,
    /// Replies and append answers sent.
    pub replies: u64,
    /// Bytes of frame bodies sent (requests and replies; hellos and the
    /// 4-byte length prefixes not counted).
    pub bytes: u64,
}

impl WireCounts {
    /// Count `frames` append-entries requests carrying `entries` entries
    /// in all.
    pub(crate) fn add_append(&mut self, entries: u64, frames: u64) {
        self.appends += frames;
        if entries > 0 {
            self.appends_with_entries += frames;
        }
        self.entries += entries;
    }
}

/// `msg` encoded as a frame body, or an `InvalidInput` error if it is over
/// `limit` bytes.
pub(crate) fn encode<T: Serialize>(msg: &T, limit: usize) -> io::Result<Bytes> {
    let body = postcard::to_allocvec(msg).map_err(io::Error::other)?;
    if body.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a message of {} bytes is over the {limit}-byte frame limit", body.len()),
        ));
    }
    Ok(Bytes::from(body))
}

/// Decode a frame body; one that does not decode, or has bytes left over,
/// is an `InvalidData` error.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> io::Result<T> {
    crate::keys::from_postcard(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
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
        Some(frame) => decode(&frame?).map(Some),
    }
}

/// `rpc` encoded as the frames of one or more append-entries requests, each
/// at most `limit` bytes: the whole if it fits, else its two halves
/// (the second's previous log id the first's last), each split again
/// until it fits. One entry over the limit is an `InvalidInput` error.
pub(crate) fn append_frames(rpc: AppendEntriesRequest<TypeConfig>, limit: usize) -> io::Result<Vec<Bytes>> {
    let mut frames = Vec::new();
    push_frames(rpc, limit, &mut frames)?;
    Ok(frames)
}

fn push_frames(rpc: AppendEntriesRequest<TypeConfig>, limit: usize, out: &mut Vec<Bytes>) -> io::Result<()> {
    match encode(&rpc, limit) {
        Ok(body) => {
            out.push(body);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidInput && rpc.entries.len() >= 2 => {
            let (first, second) = halves(rpc);
            push_frames(first, limit, out)?;
            push_frames(second, limit, out)
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("one log entry is over the frame limit: {e}"),
        )),
        Err(e) => Err(e),
    }
}

/// Split an append-entries request of at least two entries into two that,
/// sent in order, append the same entries.
pub(crate) fn halves(
    mut first: AppendEntriesRequest<TypeConfig>,
) -> (AppendEntriesRequest<TypeConfig>, AppendEntriesRequest<TypeConfig>) {
    let rest = first.entries.split_off(first.entries.len() / 2);
    let second = AppendEntriesRequest {
        vote: first.vote,
        prev_log_id: first.entries.last().map(|e| e.log_id),
        leader_commit: first.leader_commit,
        entries: rest,
    };
    (first, second)
}

#[cfg(test)]
mod tests;
