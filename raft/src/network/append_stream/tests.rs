//! The pipelined append stream against a scripted peer (no raft): requests
//! go out before earlier ones are answered, an append over the frame limit
//! goes as several requests answered as one, a refusal or a silent peer
//! ends the stream.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use openraft::raft::StreamAppendError;
use tokio::net::TcpListener;

use super::*;
use crate::types::{log_id, Entry, EntryPayload, Vote};

/// An append of entries `first..first + n`, each with a value of `size`
/// bytes, after `first - 1`.
fn append(first: u64, n: u64, size: usize) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new_committed(2, 1),
        prev_log_id: (first > 1).then(|| log_id(2, 1, first - 1)),
        leader_commit: None,
        entries: (first..first + n)
            .map(|i| Entry {
                log_id: log_id(2, 1, i),
                payload: EntryPayload::Normal(crate::types::Command::Txn {
                    snapshot: 0,
                    writes: vec![(b"k".to_vec(), Some(vec![7; size]))],
                    reads: vec![],
                    ranges: vec![],
                }),
            })
            .collect(),
    }
}

/// A peer that accepts one append stream, reads `wait_for` requests before
/// answering any, then answers each request it reads with `answer`; it
/// returns the requests it got, as (previous log id index, entry indexes).
async fn peer(
    wait_for: usize,
    answer: fn(&AppendEntriesRequest<TypeConfig>) -> Option<AppendReply>,
) -> (String, tokio::task::JoinHandle<Vec<(Option<u64>, Vec<u64>)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut conn = wire::framed(listener.accept().await.unwrap().0);
        assert_eq!(wire::accept_hello(&mut conn).await.unwrap(), Mode::Append);
        let (mut got, mut owed) = (Vec::new(), Vec::new());
        while let Some(Ok(frame)) = conn.next().await {
            let rpc: AppendEntriesRequest<TypeConfig> = wire::decode(&frame).unwrap();
            got.push((
                rpc.prev_log_id.map(|l| l.index),
                rpc.entries.iter().map(|e| e.log_id.index).collect(),
            ));
            owed.push(answer(&rpc));
            if got.len() >= wait_for {
                for reply in owed.drain(..).flatten() {
                    conn.send(wire::encode(&reply, wire::MAX_FRAME).unwrap()).await.unwrap();
                }
            }
        }
        got
    });
    (addr, task)
}

fn flushed(rpc: &AppendEntriesRequest<TypeConfig>) -> Option<AppendReply> {
    Some(Ok(Ok(rpc.entries.last().map(|e| e.log_id).or(rpc.prev_log_id))))
}

#[tokio::test]
async fn requests_go_out_before_earlier_ones_are_answered() {
    // The peer answers nothing until it holds three requests: one request
    // at a time would wait forever.
    let (addr, peer) = peer(3, flushed).await;
    let input = futures_util::stream::iter([append(1, 1, 8), append(2, 2, 8), append(4, 1, 8)]);
    let mut answers = open(addr, u64::MAX, Cut::default(), wire::MAX_FRAME, input)
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(a) = tokio::time::timeout(Duration::from_secs(10), answers.next())
        .await
        .unwrap()
    {
        got.push(a.unwrap().unwrap().map(|l| l.index));
    }
    assert_eq!(got, [Some(1), Some(3), Some(4)]);
    drop(answers);
    assert_eq!(peer.await.unwrap().len(), 3);
}

#[tokio::test]
async fn an_append_over_the_frame_limit_goes_as_parts_answered_once() {
    let (addr, parts_peer) = peer(1, flushed).await;
    let whole = append(5, 8, 1000);
    let size = wire::encode(&whole, wire::MAX_FRAME).unwrap().len();
    let input = futures_util::stream::iter([whole, append(13, 1, 10)]);
    let mut answers = open(addr, u64::MAX, Cut::default(), size / 3, input).await.unwrap();
    let first = answers.next().await.unwrap().unwrap().unwrap();
    assert_eq!(first, Some(log_id(2, 1, 12)), "the last part's answer");
    let second = answers.next().await.unwrap().unwrap().unwrap();
    assert_eq!(second, Some(log_id(2, 1, 13)));
    assert!(answers.next().await.is_none());
    drop(answers);
    let got = parts_peer.await.unwrap();
    assert!(got.len() >= 4, "the first request went in 3 parts or more: {got:?}");
    let mut prev = Some(4);
    for (p, indexes) in &got {
        assert_eq!(*p, prev, "parts chain: {got:?}");
        prev = indexes.last().copied();
    }
    assert_eq!(prev, Some(13));

    // One entry over the limit: the stream ends with a network error.
    let (addr, _peer) = peer(1, flushed).await;
    let input = futures_util::stream::iter([append(1, 1, 1000)]);
    let mut answers = open(addr, u64::MAX, Cut::default(), 100, input).await.unwrap();
    assert!(matches!(answers.next().await, Some(Err(RPCError::Network(_)))));
    assert!(answers.next().await.is_none());
}

#[tokio::test]
async fn a_refusal_ends_the_stream() {
    fn conflict(rpc: &AppendEntriesRequest<TypeConfig>) -> Option<AppendReply> {
        match rpc.prev_log_id {
            Some(prev) if prev.index >= 2 => Some(Ok(Err(StreamAppendError::Conflict(prev)))),
            _ => flushed(rpc),
        }
    }
    let (addr, _peer) = peer(1, conflict).await;
    let input = futures_util::stream::iter([append(1, 2, 8), append(3, 1, 8), append(4, 1, 8)]);
    let mut answers = open(addr, u64::MAX, Cut::default(), wire::MAX_FRAME, input)
        .await
        .unwrap();
    assert_eq!(answers.next().await.unwrap().unwrap().unwrap(), Some(log_id(2, 1, 2)));
    assert_eq!(
        answers.next().await.unwrap().unwrap(),
        Err(StreamAppendError::Conflict(log_id(2, 1, 2)))
    );
    assert!(answers.next().await.is_none(), "nothing after a refusal");
}

#[tokio::test]
async fn a_silent_peer_or_a_closed_port_is_an_error() {
    // Never answers: a network error after STALL.
    let (addr, _peer) = peer(usize::MAX, flushed).await;
    let input = futures_util::stream::iter([append(1, 1, 8)]);
    let mut answers = open(addr, u64::MAX, Cut::default(), wire::MAX_FRAME, input)
        .await
        .unwrap();
    assert!(matches!(answers.next().await, Some(Err(RPCError::Network(_)))));
    // A closed port: unreachable; a cut-off node: unreachable.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let input = futures_util::stream::iter([append(1, 1, 8)]);
    assert!(matches!(
        open(addr, u64::MAX, Cut::default(), wire::MAX_FRAME, input).await,
        Err(RPCError::Unreachable(_))
    ));
    let (addr, _peer) = peer(1, flushed).await;
    let cut = Cut::default();
    cut.set_cut(true);
    let input = futures_util::stream::iter([append(1, 1, 8)]);
    assert!(matches!(
        open(addr, u64::MAX, cut, wire::MAX_FRAME, input).await,
        Err(RPCError::Unreachable(_))
    ));
}

/// The answers of `answers` until it ends, as the matched indexes.
async fn all(mut answers: BoxStream<'static, Answer>) -> Vec<Option<u64>> {
    let mut got = Vec::new();
    while let Some(a) = tokio::time::timeout(Duration::from_secs(10), answers.next())
        .await
        .unwrap()
    {
        got.push(a.unwrap().unwrap().map(|l| l.index));
    }
    got
}

#[tokio::test]
async fn a_commit_only_request_is_held_and_carried_by_the_next() {
    // Commit-only requests after 4 (two of them, the commit moving twice),
    // then the next entry after 4: only the entry goes out, answered for
    // all three.
    let (addr, peer_got) = peer(1, flushed).await;
    let input = futures_util::stream::iter([append(5, 0, 0), append(5, 0, 0), append(5, 1, 8)]);
    let answers = open(addr, u64::MAX, Cut::default(), wire::MAX_FRAME, input)
        .await
        .unwrap();
    assert_eq!(all(answers).await, [Some(5), Some(5), Some(5)]);
    assert_eq!(peer_got.await.unwrap(), [(Some(4), vec![5])]);

    // The next request follows another log id: both go out.
    let (addr, peer_got) = peer(1, flushed).await;
    let input = futures_util::stream::iter([append(5, 0, 0), append(7, 1, 8)]);
    let answers = open(addr, u64::MAX, Cut::default(), wire::MAX_FRAME, input)
        .await
        .unwrap();
    assert_eq!(all(answers).await, [Some(4), Some(7)]);
    assert_eq!(peer_got.await.unwrap(), [(Some(4), vec![]), (Some(6), vec![7])]);
}

#[tokio::test]
async fn a_held_request_goes_out_alone_when_nothing_follows() {
    // A commit-only request and then nothing (the input stays open): it
    // goes out after `hold::HOLD` and is answered.
    let (addr, peer_got) = peer(1, flushed).await;
    let input = futures_util::stream::iter([append(5, 0, 0)]).chain(futures_util::stream::pending());
    let mut answers = open(addr, u64::MAX, Cut::default(), wire::MAX_FRAME, Box::pin(input))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), answers.next())
        .await
        .unwrap();
    assert_eq!(first.unwrap().unwrap().unwrap(), Some(log_id(2, 1, 4)));
    drop(answers);
    assert_eq!(peer_got.await.unwrap(), [(Some(4), vec![])]);
}
