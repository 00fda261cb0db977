//! Commit-only append requests held for the next request to carry them,
//! on both transports' replication streams (`RaftNetworkV2::stream_append`:
//! [`super::append_stream`] over TCP, [`super::local`] in process).
//!
//! **Definitions.** openraft's replication task hands a transport a stream
//! of append-entries requests. A *commit-only* request has no entries: the
//! leader's commit index moved and it has no newer entry to send yet. A
//! request *follows* another when both carry the same previous log id
//! under the same vote.
//!
//! **Operation.** `Held::next` yields the next request to send, with the
//! number of requests before it that it stands for. A commit-only request
//! is held up to [`HOLD`]: if the next request follows it (the usual case:
//! the next entry, a round later), the held one is dropped and the later
//! one stands for it; otherwise (another previous log id or vote, the
//! input's end, or [`HOLD`] passing) the held one is yielded as it is,
//! standing for the requests it replaced.
//!
//! **Invariants.**
//! - H1. Requests come out in input order; a dropped request is always a
//!   commit-only one followed by the request that stands for it.
//! - H2. The request that stands for a dropped one carries a commit index
//!   at least as high (openraft's leader commit index never decreases
//!   under one vote).
//!
//! **Why the answer of the later request is the answer of both.** The
//! transport gives each dropped request the later one's answer. It is true
//! for both: the follower matched the dropped request's previous log id
//! (the same) and the later entries, and openraft takes the greatest
//! matching log id of the answers (`drain_acked`). A leader lease stays
//! safe: openraft counts it from when it handed the request over, before
//! the follower got it (`design/replication.md` §7, invariant T4).
//!
//! **What it saves and costs.** Per follower and round, the commit-only
//! request and its answer, and a wake-up of the follower's core. With the
//! request sent at once, in one process the followers applied each entry
//! at the moment the leader did, on the same two processor cores
//! (`design/replication.md` §9); held, a follower applies it when the next
//! entry arrives, beside that entry's log write. The cost is the follower
//! learning the commit index (and applying) up to [`HOLD`] later when no
//! newer entry comes.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};

use crate::types::TypeConfig;

/// How long a commit-only request is held for a later one to carry its
/// commit index (tokio's timer rounds it up to its 1 ms tick).
pub const HOLD: Duration = Duration::from_millis(1);

type Request = AppendEntriesRequest<TypeConfig>;

/// The requests of a replication stream, commit-only ones held (module
/// docs).
pub(crate) struct Held<S> {
    input: S,
    /// A request read while one was held, which did not follow it.
    peeked: Option<Request>,
    /// The input ended (it is not polled again: a stream need not allow
    /// that).
    ended: bool,
}

impl<S: Stream<Item = Request> + Unpin> Held<S> {
    pub(crate) fn new(input: S) -> Self {
        Held {
            input,
            peeked: None,
            ended: false,
        }
    }

    /// The next request to send and how many requests before it (dropped)
    /// it stands for; `None` once the input ended and nothing is held.
    pub(crate) async fn next(&mut self) -> Option<(Request, usize)> {
        // A commit-only request held, and how many requests it stands for
        // (itself included).
        let mut held: Option<(Request, usize)> = None;
        loop {
            let next = match (self.peeked.take(), &held) {
                (Some(rpc), _) => Some(rpc),
                _ if self.ended => None,
                (None, None) => self.input.next().await,
                // `StreamExt::next` is cancel-safe: a timeout loses no item.
                (None, Some(_)) => match tokio::time::timeout(HOLD, self.input.next()).await {
                    Ok(next) => next,
                    Err(_) => return held.map(|(rpc, n)| (rpc, n - 1)),
                },
            };
            let Some(rpc) = next else {
                self.ended = true;
                return held.map(|(rpc, n)| (rpc, n - 1));
            };
            let before = match held.take() {
                Some((h, n)) if h.prev_log_id == rpc.prev_log_id && h.vote == rpc.vote => n,
                Some((h, n)) => {
                    self.peeked = Some(rpc);
                    return Some((h, n - 1));
                }
                None => 0,
            };
            if rpc.entries.is_empty() {
                held = Some((rpc, before + 1));
                continue;
            }
            return Some((rpc, before));
        }
    }
}

/// The answers a transport still owes to dropped requests: the answer of
/// the request that stood for them, once for each (module docs).
#[derive(Default)]
pub(crate) struct Owed(Option<(StreamAppendResult<TypeConfig>, usize)>);

impl Owed {
    /// `answer` answers `n` dropped requests too (nothing for 0).
    pub(crate) fn owe(&mut self, answer: &StreamAppendResult<TypeConfig>, n: usize) {
        if n > 0 {
            self.0 = Some((answer.clone(), n));
        }
    }

    /// The next answer owed, if any.
    pub(crate) fn next(&mut self) -> Option<StreamAppendResult<TypeConfig>> {
        let (answer, n) = self.0.take()?;
        if n > 1 {
            self.0 = Some((answer.clone(), n - 1));
        }
        Some(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{log_id, Entry, EntryPayload, Vote};
    use futures_util::stream;

    /// An append after `prev` with `entries` entries, commit index `commit`.
    fn req(prev: u64, entries: u64, commit: u64) -> Request {
        AppendEntriesRequest {
            vote: Vote::new_committed(2, 1),
            prev_log_id: Some(log_id(2, 1, prev)),
            leader_commit: Some(log_id(2, 1, commit)),
            entries: (prev + 1..=prev + entries)
                .map(|i| Entry {
                    log_id: log_id(2, 1, i),
                    payload: EntryPayload::Blank,
                })
                .collect(),
        }
    }

    /// (prev, entries, commit, stands for) of a yielded request.
    fn summary((rpc, n): (Request, usize)) -> (u64, usize, u64, usize) {
        let index = |l: Option<LogId>| l.map_or(0, |l| l.index);
        (index(rpc.prev_log_id), rpc.entries.len(), index(rpc.leader_commit), n)
    }

    /// What `Held` yields for `input`, then the input's end (asked twice:
    /// the input, an `Unfold`, panics if polled after its end).
    async fn drain(input: Vec<Request>) -> Vec<(u64, usize, u64, usize)> {
        let input = Box::pin(stream::unfold(input.into_iter(), |mut it| async move {
            it.next().map(|r| (r, it))
        }));
        let mut held = Held::new(input);
        let mut out = Vec::new();
        while let Some(next) = held.next().await {
            out.push(summary(next));
        }
        assert!(held.next().await.is_none());
        out
    }

    use crate::types::LogId;

    #[tokio::test]
    async fn a_commit_only_request_is_carried_by_the_next_that_follows_it() {
        // Entry 2, its commit, entry 3 (after 2), its commit, then the end.
        let out = drain(vec![req(1, 1, 1), req(2, 0, 2), req(2, 1, 2), req(3, 0, 3)]).await;
        assert_eq!(out, vec![(1, 1, 1, 0), (2, 1, 2, 1), (3, 0, 3, 0)]);
    }

    #[tokio::test]
    async fn commit_only_requests_in_a_row_are_all_carried() {
        let out = drain(vec![req(2, 0, 1), req(2, 0, 2), req(2, 2, 2)]).await;
        assert_eq!(out, vec![(2, 2, 2, 2)]);
    }

    #[tokio::test]
    async fn a_request_that_does_not_follow_sends_the_held_one_first() {
        // Another previous log id (a conflict's retry), then another vote.
        let mut other_vote = req(2, 1, 2);
        other_vote.vote = Vote::new_committed(3, 1);
        let out = drain(vec![req(2, 0, 2), req(1, 1, 2), req(2, 0, 2), other_vote]).await;
        assert_eq!(out, vec![(2, 0, 2, 0), (1, 1, 2, 0), (2, 0, 2, 0), (2, 1, 2, 0)]);
    }

    #[test]
    fn an_owed_answer_is_given_once_per_dropped_request() {
        let mut owed = Owed::default();
        owed.owe(&Ok(Some(log_id(2, 1, 5))), 0);
        assert!(owed.next().is_none());
        owed.owe(&Ok(Some(log_id(2, 1, 5))), 2);
        assert_eq!(owed.next(), Some(Ok(Some(log_id(2, 1, 5)))));
        assert_eq!(owed.next(), Some(Ok(Some(log_id(2, 1, 5)))));
        assert!(owed.next().is_none());
    }

    #[tokio::test]
    async fn a_held_request_goes_out_alone_when_nothing_comes() {
        // The input stays open and quiet: the held request is yielded
        // (after the hold), and the stream goes on.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut held = Held::new(tokio_stream_of(rx));
        tx.send(req(2, 0, 2)).unwrap();
        assert_eq!(summary(held.next().await.unwrap()), (2, 0, 2, 0));
        tx.send(req(2, 1, 2)).unwrap();
        assert_eq!(summary(held.next().await.unwrap()), (2, 1, 2, 0));
        drop(tx);
        assert!(held.next().await.is_none());
    }

    /// A receiver as a stream.
    fn tokio_stream_of(rx: tokio::sync::mpsc::UnboundedReceiver<Request>) -> impl Stream<Item = Request> + Unpin {
        Box::pin(stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
        ))
    }
}
