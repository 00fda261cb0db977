//! Replication over TCP, pipelined: openraft's `stream_append` on a
//! connection of its own ([`wire::Mode::Append`]).
//!
//! openraft 0.10's replication task hands the transport a stream of
//! append-entries requests, one as soon as new entries are submitted (or
//! the commit index moves), and reads a stream of answers in the same
//! order. Sent one at a time, each request would wait for the answer to
//! the one before: the next entry, or the new commit index, a whole
//! loopback round trip and the follower's core later. Here a writer task
//! sends every request as it comes (split into several if over the frame
//! limit, `wire::append_frames`) and tells the reader how many frames it
//! sent; the returned stream reads the answers in order and yields one per
//! request (the last part's, or the first error). The serving side feeds
//! the requests to `Raft::stream_append`, which answers each once it is
//! flushed (`super::server`).
//!
//! **Commit-only requests are held** for the next request to carry
//! ([`super::hold`]): the writer sends only the later request, and its
//! answer is yielded for both.
//!
//! **Bounds.** At most [`IN_FLIGHT`] requests are unanswered: the writer
//! waits for room before sending another. An answer that does not come
//! within [`STALL`] while one is awaited (a hung peer) ends the stream with
//! `NetworkError`, as does any I/O error, a closed connection, or an
//! answer that does not decode; openraft then opens a new stream. Dropping
//! the stream (openraft ending the session) aborts the writer and closes
//! the connection.

use std::io;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, Stream, StreamExt};
use openraft::base::BoxStream;
use openraft::error::{NetworkError, RPCError, Unreachable};
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::hold::{Held, Owed};
use super::tcp::{connect, rpc_error, Cut};
use super::wire::{self, AppendReply, Conn, Mode};
use crate::types::TypeConfig;

/// The most requests of one stream sent and not yet answered.
pub const IN_FLIGHT: usize = 32;

/// How long an awaited answer may take before the stream ends as a
/// network error (an append's answer waits for the follower's fsync, which
/// a loaded disk can make take a while; a stalled peer must not hold
/// replication to it forever).
pub const STALL: Duration = Duration::from_secs(3);

type Answer = Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

/// What the writer sent for one or more requests.
enum Sent {
    /// The last request went out as `frames` frames, each to be answered;
    /// its answer is also that of the `held` requests before it, not sent.
    /// `traced`: its entries' indexes, while [`crate::trace`] records.
    Frames {
        frames: usize,
        held: usize,
        traced: Vec<u64>,
    },
    /// It could not be sent (too large, or an I/O error): the stream ends.
    Failed(io::Error),
}

/// Open an append stream to `addr` (node `target`, as [`crate::trace`]
/// records its steps) and start sending `input` on it: the stream of
/// answers, one per request, in order. A connection that cannot be opened
/// is `Unreachable`.
pub(crate) async fn open<S>(
    addr: String,
    target: u64,
    cut: Cut,
    max_frame: usize,
    input: S,
) -> Result<BoxStream<'static, Answer>, RPCError<TypeConfig>>
where
    S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
{
    let conn = connect(&addr, &cut, Mode::Append).await.map_err(rpc_error)?;
    let (sink, source) = conn.split();
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    let writer = Writer(tokio::spawn(write(input, sink, tx, max_frame, cut, target)));
    let reader = Reader {
        addr,
        target,
        source,
        sent: rx,
        owed: Owed::default(),
        _writer: writer,
    };
    let answers = futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let answer = reader.next().await?;
        // After an error or a refused append the stream ends (openraft's
        // rule for stream_append).
        let go_on = matches!(answer, Ok(Ok(_)));
        Some((answer, go_on.then_some(reader)))
    });
    Ok(Box::pin(answers))
}

/// The writer task: send each request of `input` as it comes (holding
/// one without entries, [`super::hold`]), then tell the reader how many
/// frames it took.
async fn write<S>(
    input: S,
    mut sink: SplitSink<Conn, bytes::Bytes>,
    sent: mpsc::Sender<Sent>,
    max_frame: usize,
    cut: Cut,
    target: u64,
) where
    S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Unpin,
{
    let mut input = Held::new(input);
    while let Some((rpc, held)) = input.next().await {
        if !send(rpc, held, &mut sink, &sent, max_frame, &cut, target).await {
            return;
        }
    }
}

/// Send `rpc`, whose answer is also that of the `held` requests before it;
/// tell the reader. `false` once the stream is over (the reader gone, or
/// the send failed).
async fn send(
    rpc: AppendEntriesRequest<TypeConfig>,
    held: usize,
    sink: &mut SplitSink<Conn, bytes::Bytes>,
    sent: &mpsc::Sender<Sent>,
    max_frame: usize,
    cut: &Cut,
    target: u64,
) -> bool {
    {
        // Room for one more unanswered request; none when the reader is
        // gone.
        let Ok(permit) = sent.reserve().await else { return false };
        let entries = rpc.entries.len() as u64;
        let traced: Vec<u64> = if crate::trace::on() {
            rpc.entries.iter().map(|e| e.log_id.index).collect()
        } else {
            Vec::new()
        };
        let frames = match wire::append_frames(rpc, max_frame) {
            Ok(frames) => frames,
            Err(e) => {
                permit.send(Sent::Failed(e));
                return false;
            }
        };
        let count = frames.len();
        let bytes: usize = frames.iter().map(|f| f.len()).sum();
        cut.count(|c| {
            c.add_append(entries, count as u64);
            c.bytes += bytes as u64;
        });
        for frame in frames {
            if let Err(e) = sink.feed(frame).await {
                permit.send(Sent::Failed(e));
                return false;
            }
        }
        if let Err(e) = sink.flush().await {
            permit.send(Sent::Failed(e));
            return false;
        }
        crate::trace::events(target, traced.iter().copied(), crate::trace::Step::Sent);
        permit.send(Sent::Frames {
            frames: count,
            held,
            traced,
        });
        true
    }
}

/// Aborts the writer task when the stream is dropped.
struct Writer(JoinHandle<()>);

impl Drop for Writer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The reading end of an append stream.
struct Reader {
    addr: String,
    /// The peer's node id ([`crate::trace`]).
    target: u64,
    source: SplitStream<Conn>,
    sent: mpsc::Receiver<Sent>,
    /// Answers still owed to held requests.
    owed: Owed,
    _writer: Writer,
}

impl Reader {
    /// The answer to the next request, or `None` once the input ended and
    /// every request was answered.
    async fn next(&mut self) -> Option<Answer> {
        if let Some(answer) = self.owed.next() {
            return Some(Ok(answer));
        }
        let (frames, held, traced) = match self.sent.recv().await? {
            Sent::Frames { frames, held, traced } => (frames, held, traced),
            Sent::Failed(e) => return Some(Err(rpc_error(super::tcp::CallError::Network(e)))),
        };
        let answer = self.answers(frames).await;
        if let Some(Ok(Ok(_))) = &answer {
            crate::trace::events(self.target, traced, crate::trace::Step::Replied);
        }
        // The held requests get the answer first, then the one sent; an
        // error ends the stream, so it is yielded once.
        if let Some(Ok(ok @ Ok(_))) = &answer {
            self.owed.owe(ok, held);
        }
        answer
    }

    /// The answer to one request sent as `frames` frames.
    async fn answers(&mut self, frames: usize) -> Option<Answer> {
        let mut last = None;
        for _ in 0..frames {
            match self.answer().await {
                Ok(Ok(Ok(flushed))) => last = Some(flushed),
                Ok(Ok(Err(refused))) => return Some(Ok(Err(refused))),
                // The follower's raft stopped: unreachable, as on an RPC.
                Ok(Err(fatal)) => {
                    return Some(Err(RPCError::Unreachable(Unreachable::new(&io::Error::other(
                        format!("{}: {fatal}", self.addr),
                    )))))
                }
                Err(e) => return Some(Err(RPCError::Network(NetworkError::new(&e)))),
            }
        }
        // `frames` is at least one: every request is one frame or more.
        last.map(|flushed| Ok(Ok(flushed)))
    }

    /// Read and decode one answer.
    async fn answer(&mut self) -> io::Result<AppendReply> {
        let addr = &self.addr;
        match tokio::time::timeout(STALL, self.source.next()).await {
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{addr} did not answer an append within {STALL:?}"),
            )),
            Ok(None) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{addr} closed the append stream before answering"),
            )),
            Ok(Some(frame)) => wire::decode(&frame?),
        }
    }
}

#[cfg(test)]
mod tests;
