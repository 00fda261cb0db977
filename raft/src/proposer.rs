//! The leader-side proposer: batches the proposals of concurrent
//! transactions into log entries.
//!
//! openraft makes each client write one log entry, and every entry costs a
//! log commit on every replica (openraft 0.9's core also waited for each
//! append's flush before it took the next client write; 0.10's does not,
//! `design/replication.md` §10). The proposer instead
//! keeps at most [`IN_FLIGHT`] client writes outstanding; proposals that
//! arrive meanwhile queue, and the next client write carries all of them
//! (up to [`MAX_BATCH`]) as one [`Command::Batch`]. Each transaction still
//! gets its own decision (`design/replication.md` §3).
//!
//! **Gathering.** Clients run closed loops: the ones the last write
//! answered propose again a moment later. Sending the first of them alone
//! left the rest waiting a whole round (entries alternated between a few
//! proposals and many). So, while a batch holds fewer proposals than the
//! last write answered, the proposer waits up to [`GATHER`] for more
//! (never with one client: the last write answered one). With 8 clients this
//! raised `cluster -- 8 6` from 1,263-1,378 to 2,134-3,806 transfers/s
//! before the kill (README, "Replication").
//!
//! One client write in flight measured best on openraft 0.9 (`cargo run
//! --release -p bwtx-raft --example cluster -- 8 4`, transfers/s: 1 in flight
//! 4,470-5,240; 2: 2,280-2,690; 4: 1,700-1,810): its core took client
//! writes one at a time anyway, so more in flight only split the same
//! proposals into smaller entries. On 0.10, whose core does not wait, 2 in
//! flight measured no better (three runs each, alternating, load average
//! 8-11, 8 clients, ratio to single-node sync: in process 0.22-0.59x
//! against 0.40-0.71x with 1; TCP 0.33-0.43x against 0.28-0.42x): the 8
//! clients wait in the rounds in flight either way. Nor with the pipelined
//! TCP append stream (two runs each, load average 9-10, 8 clients: 0.26x
//! and 0.30x against 0.53x and 0.32x with 1): entries carried half as many
//! transactions (3.3-3.6 instead of 7.1-7.5) and the followers' log
//! commits merged only some of them (0.71-0.87 fsyncs per entry).
//!
//! **Forwarding.** A proposer on a node that is not the leader (a
//! transaction begun on a follower, or on a leader since deposed) sends its
//! batch to the leader its node's metrics name, through the node's
//! [`Link`] (in-process, or over TCP to the leader's address). A
//! proposal is valid on any node (`P` is a log position), and the choice is
//! made before the write, so a batch goes to a second node only if the
//! first never took it. Over TCP, a forward whose connection fails after
//! the request went out has an unknown outcome ([`Error::Raft`]); one whose
//! request is over the wire's frame limit is never sent
//! ([`Error::Rejected`], "not proposed").
//!
//! If the client write fails, every proposal of the batch gets the error:
//! [`Error::NotLeader`] when openraft answers `ForwardToLeader` (never
//! proposed), [`Error::Raft`] when the outcome is unknown (among them an
//! entry appended, then truncated or purged from this node's log, which
//! openraft answers `LogEntryDiscarded`: another leader may still commit a
//! copy).

use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::network::{Forwarded, Link, WriteResult};
use crate::types::{Command, NodeId, Proposal, Raft, Response, TypeConfig, MAX_PROPOSAL_BYTES};

/// Client writes outstanding at once (see the module doc for why 1).
pub const IN_FLIGHT: usize = 1;
/// Proposals in one entry at most.
pub const MAX_BATCH: usize = 256;
/// How long one client write (a batch) may wait for its answer, forwarded
/// or local, at least: past [`write_timeout`] the proposals' outcome is
/// unknown (`Error::Raft`) and the slot goes to the next batch. A leader
/// that hangs, or one without a quorum, would otherwise hold the one slot,
/// and so every later commit of this node, until it recovered. Well above
/// a small commit's time under load (milliseconds), and above
/// `Cluster::transaction`'s 5 s wait.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// [`WRITE_TIMEOUT`] plus 2 s per MiB of a command of `bytes` (as
/// [`Proposal::bytes`] counts them): a 32 MiB entry (`MAX_PROPOSAL_BYTES`)
/// is written and applied by every replica, which took more than 10 s in a
/// debug build on a loaded 2-core machine.
pub fn write_timeout(bytes: usize) -> Duration {
    WRITE_TIMEOUT + Duration::from_secs(2 * (bytes >> 20) as u64)
}

/// The bytes of `cmd`'s proposals, as [`Proposal::bytes`] counts them.
/// (A batch's are summed as it is gathered; this is for the commands
/// proposed alone.)
pub fn command_bytes(cmd: &Command) -> usize {
    match cmd {
        Command::Txn {
            writes, reads, ranges, ..
        } => crate::types::proposal_bytes(writes, reads, ranges),
        Command::Batch { txns } => txns.iter().map(Proposal::bytes).sum(),
        Command::SetTombstoneHorizon { .. } => 0,
    }
}
/// How long the proposer waits for the clients its last write answered to
/// propose again before it sends a smaller batch (tokio's timer rounds it
/// up to its 1 ms tick).
pub const GATHER: Duration = Duration::from_micros(500);

/// Proposals a node's queue holds before [`Proposer::propose`] waits for
/// room (before 2026-12-08 the queue had no bound: clients retrying past a
/// stalled leader grew it without limit).
pub const QUEUE: usize = 4 * MAX_BATCH;

struct Waiting {
    proposal: Proposal,
    reply: oneshot::Sender<Result<Response>>,
}

/// A handle on a node's proposer task. Cloning shares it; the task ends
/// when the last handle is dropped.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Waiting>,
    target: Target,
}

impl Proposer {
    /// Start the proposer of node `id`'s `raft` (on the current tokio
    /// runtime); `link` reaches the leader when this node is not it.
    pub fn spawn(id: NodeId, raft: Raft, link: Link) -> Proposer {
        let (queue, rx) = mpsc::channel(QUEUE);
        let target = Target { id, raft, link };
        tokio::spawn(run(target.clone(), rx));
        Proposer { queue, target }
    }

    /// Propose `cmd` as a log entry of its own (not batched; forwarded to
    /// the leader as a batch is) and wait for its outcome.
    pub async fn write(&self, cmd: Command) -> Result<Response> {
        let limit = write_timeout(command_bytes(&cmd));
        match self.target.client_write(cmd, limit).await {
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(e)) => Err(write_error(&e)),
            Err(unanswered) => Err(unanswered.error()),
        }
    }

    /// Propose `proposal` and wait for its decision (waiting first for
    /// room in the queue, [`QUEUE`]). A caller that stops waiting (drops
    /// this future) before its proposal is sent has it dropped unsent; once
    /// sent, it may still commit.
    pub async fn propose(&self, proposal: Proposal) -> Result<Response> {
        let (reply, wait) = oneshot::channel();
        self.queue
            .send(Waiting { proposal, reply })
            .await
            .map_err(|_| Error::Raft("the proposer stopped; the transaction was not proposed".to_string()))?;
        wait.await
            .map_err(|_| Error::Raft("the proposer stopped; outcome unknown".to_string()))?
    }
}

/// Where a proposer sends its writes: its own node, or the leader.
#[derive(Clone)]
struct Target {
    id: NodeId,
    raft: Raft,
    link: Link,
}

impl Target {
    /// Propose `cmd` to the leader: to the node its metrics name as the
    /// leader if that is another node and the link reaches it, else to this
    /// node's `Raft`. Deciding before the write, not after a
    /// `ForwardToLeader` error, means a write is sent to a second node only
    /// if the first never took it (an entry it appended and then truncated,
    /// which another leader may still commit, is answered
    /// `LogEntryDiscarded`, not `ForwardToLeader`). `Err`: the leader may
    /// have taken it, no answer came ([`Unanswered::Lost`]), or it could
    /// not be sent at all ([`Unanswered::Refused`]).
    /// Each wait is bounded by `limit` ([`write_timeout`] of the command's
    /// bytes).
    async fn client_write(&self, cmd: Command, limit: Duration) -> std::result::Result<WriteResult, Unanswered> {
        let (leader, node) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            let leader = m.current_leader.filter(|&l| l != self.id);
            let node = leader.and_then(|l| m.membership_config.membership().get_node(&l).cloned());
            (leader, node)
        };
        if let Some(l) = leader {
            match self.link.forward(self.id, l, node.as_ref(), cmd.clone(), limit).await {
                Forwarded::Answered(r) => return Ok(r),
                Forwarded::Lost(msg) => return Err(Unanswered::Lost(msg)),
                Forwarded::Refused(msg) => return Err(Unanswered::Refused(msg)),
                Forwarded::NotSent => {}
            }
        }
        tokio::time::timeout(limit, self.raft.client_write(cmd))
            .await
            .map_err(|_| Unanswered::Lost(format!("no answer from this node's raft within {limit:?}")))
    }
}

/// Why a client write got no answer ([`Target::client_write`]).
#[derive(Debug)]
enum Unanswered {
    /// The leader may have taken it: outcome unknown.
    Lost(String),
    /// Nothing was sent: not proposed.
    Refused(String),
}

impl Unanswered {
    /// The error a client gets: [`Error::Raft`] ("outcome unknown", which
    /// `Cluster::transaction` retries), or [`Error::Rejected`] ("not
    /// proposed": sending it again would fail alike).
    fn error(&self) -> Error {
        match self {
            Unanswered::Lost(m) => Error::Raft(format!("{m}; outcome unknown")),
            Unanswered::Refused(m) => Error::Rejected(format!("{m}; not proposed")),
        }
    }
}

async fn run(raft: Target, mut rx: mpsc::Receiver<Waiting>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    // How many proposals the last finished client write answered.
    let (answered_tx, answered) = watch::channel(1usize);
    let answered_tx = Arc::new(answered_tx);
    // A proposal that would have taken the last batch past its byte budget.
    let mut carried: Option<Waiting> = None;
    loop {
        let first = match carried.take() {
            Some(w) => w,
            None => match rx.recv().await {
                Some(w) => w,
                None => return,
            },
        };
        // While every slot is taken, later proposals queue up behind this one.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let expected = (*answered.borrow()).clamp(1, MAX_BATCH);
        let (mut batch, mut bytes, over) = gather(&mut rx, first, expected).await;
        carried = over;
        if let Some(left) = drop_abandoned(&mut batch) {
            bytes = left;
            if batch.is_empty() {
                continue;
            }
        }
        let (raft, answered_tx) = (raft.clone(), answered_tx.clone());
        tokio::spawn(async move {
            let n = batch.len();
            submit(&raft, batch, bytes).await;
            answered_tx.send_replace(n);
            drop(slot);
        });
    }
}

/// Drop from `batch` the proposals whose clients stopped waiting (a
/// timeout around `commit`): they are never sent (before 2026-12-08 they
/// were proposed however late, after their clients had moved on). If any
/// went, the bytes of those left.
fn drop_abandoned(batch: &mut Vec<Waiting>) -> Option<usize> {
    if !batch.iter().any(|w| w.reply.is_closed()) {
        return None;
    }
    batch.retain(|w| !w.reply.is_closed());
    Some(batch.iter().map(|w| w.proposal.bytes()).sum())
}

/// The next batch: `first`, every proposal queued, and, while fewer than
/// `expected` (the clients the last write answered, who are likely about
/// to propose again), those that arrive within [`GATHER`]; at most
/// [`MAX_BATCH`] proposals, and no more bytes than
/// [`MAX_PROPOSAL_BYTES`] (but for `first`): a proposal that would pass it
/// is returned apart, to begin the next batch. With the batch, its bytes.
async fn gather(
    rx: &mut mpsc::Receiver<Waiting>,
    first: Waiting,
    expected: usize,
) -> (Vec<Waiting>, usize, Option<Waiting>) {
    let mut bytes = first.proposal.bytes();
    let mut batch = vec![first];
    let mut take = |batch: &mut Vec<Waiting>, w: Waiting| {
        let b = w.proposal.bytes();
        if bytes.saturating_add(b) > MAX_PROPOSAL_BYTES {
            return Some(w);
        }
        bytes += b;
        batch.push(w);
        None
    };
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(w) => {
                if let Some(over) = take(&mut batch, w) {
                    return (batch, bytes, Some(over));
                }
            }
            Err(_) => break,
        }
    }
    let deadline = Instant::now() + GATHER;
    while batch.len() < expected {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(w)) => {
                if let Some(over) = take(&mut batch, w) {
                    return (batch, bytes, Some(over));
                }
            }
            _ => break,
        }
    }
    (batch, bytes, None)
}

/// The log entry's command for `proposals` (moved in: the leader's path
/// copies none of them).
fn command(mut proposals: Vec<Proposal>) -> Command {
    if proposals.len() == 1 {
        proposals.remove(0).into_command()
    } else {
        Command::Batch { txns: proposals }
    }
}

async fn submit(target: &Target, batch: Vec<Waiting>, bytes: usize) {
    let proposed = crate::trace::now();
    let (proposals, replies): (Vec<Proposal>, Vec<oneshot::Sender<Result<Response>>>) =
        batch.into_iter().map(|w| (w.proposal, w.reply)).unzip();
    let result = match target.client_write(command(proposals), write_timeout(bytes)).await {
        Ok(r) => r,
        Err(unanswered) => {
            for reply in replies {
                let _ = reply.send(Err(unanswered.error()));
            }
            return;
        }
    };
    if let Ok(resp) = &result {
        let index = resp.log_id.index;
        crate::trace::event_at(target.id, index, crate::trace::Step::Propose, proposed);
        crate::trace::event(target.id, index, crate::trace::Step::Answered);
    }
    match result {
        Ok(resp) => match resp.data {
            Response::Batch { outcomes } if outcomes.len() == replies.len() => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            single if replies.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Ok(single));
                }
            }
            other => {
                for reply in replies {
                    let _ = reply.send(Err(Error::Raft(format!("unexpected outcome {other:?}"))));
                }
            }
        },
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(write_error(&e)));
            }
        }
    }
}

fn write_error(e: &RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> Error {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => Error::NotLeader { leader: f.leader_id },
        other => Error::Raft(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that could not be sent at all is `Rejected` (not retried by
    /// `Cluster::transaction`); one that went unanswered is an unknown
    /// outcome (`Error::Raft`, retried).
    #[test]
    fn a_refused_write_is_rejected_and_a_lost_one_unknown() {
        let refused = Unanswered::Refused("too large".into()).error();
        assert!(
            matches!(&refused, Error::Rejected(m) if m.contains("not proposed")),
            "{refused:?}"
        );
        assert!(!crate::cluster::retryable(&refused));
        let lost = Unanswered::Lost("no answer".into()).error();
        assert!(
            matches!(&lost, Error::Raft(m) if m.contains("outcome unknown")),
            "{lost:?}"
        );
        assert!(crate::cluster::retryable(&lost));
    }

    fn waiting(bytes: usize) -> Waiting {
        Waiting {
            proposal: Proposal {
                snapshot: 0,
                writes: vec![(b"k".to_vec(), Some(vec![0; bytes]))],
                reads: vec![],
                ranges: vec![],
            },
            reply: oneshot::channel().0,
        }
    }

    /// An entry's encoding is at most its proposals' counted bytes and a
    /// few per proposal, whatever their shape: many tiny writes (the
    /// densest encoding per byte of key), reads, unbounded ranges with
    /// empty starts, values near a varint's next length.
    #[test]
    fn an_entry_encodes_within_its_counted_bytes() {
        use crate::types::{Command, KeyRange};
        let shapes: Vec<Proposal> = vec![
            Proposal {
                snapshot: u64::MAX,
                writes: (0..100_000u32)
                    .map(|i| (i.to_be_bytes()[1..].to_vec(), Some(vec![])))
                    .collect(),
                reads: vec![],
                ranges: vec![],
            },
            Proposal {
                snapshot: 1 << 40,
                writes: (0..50_000u32).map(|i| (i.to_be_bytes().to_vec(), None)).collect(),
                reads: vec![vec![]; 50_000],
                ranges: vec![
                    KeyRange {
                        start: vec![],
                        end: None
                    };
                    50_000
                ],
            },
            Proposal {
                snapshot: 3,
                writes: vec![(vec![1; 16_384], Some(vec![2; 2_097_152]))],
                reads: vec![vec![3; 128]],
                ranges: vec![KeyRange {
                    start: vec![4; 16_384],
                    end: Some(vec![5; 16_384]),
                }],
            },
        ];
        for p in &shapes {
            let alone = crate::keys::encode_entry(&entry_of(p.clone().into_command())).len();
            assert!(alone <= p.bytes() + 128, "{alone} bytes encoded, {} counted", p.bytes());
        }
        let total: usize = shapes.iter().map(Proposal::bytes).sum();
        let batch = crate::keys::encode_entry(&entry_of(Command::Batch { txns: shapes }));
        assert!(
            batch.len() <= total + 3 * 128,
            "{} bytes encoded, {total} counted",
            batch.len()
        );
    }

    /// An entry of `cmd` at the largest log id (the longest varints).
    fn entry_of(cmd: crate::types::Command) -> crate::types::Entry {
        crate::types::Entry {
            log_id: crate::types::log_id(u64::MAX, u64::MAX, u64::MAX),
            payload: crate::types::EntryPayload::Normal(cmd),
        }
    }

    /// Proposals whose clients stopped waiting are dropped before the
    /// batch is sent; the bytes are those left; a batch all of live
    /// clients is left alone.
    #[test]
    fn abandoned_proposals_are_not_sent() {
        let live = |bytes| {
            let (reply, wait) = oneshot::channel();
            (
                Waiting {
                    proposal: waiting(bytes).proposal,
                    reply,
                },
                wait,
            )
        };
        let (a, _wait_a) = live(10);
        let (b, _wait_b) = live(20);
        let mut batch = vec![a, b];
        assert_eq!(drop_abandoned(&mut batch), None);
        assert_eq!(batch.len(), 2);
        let (c, wait_c) = live(30);
        drop(wait_c);
        batch.insert(1, c);
        batch.push(waiting(40)); // its receiver is gone already
        let kept = batch[0].proposal.bytes() + batch[2].proposal.bytes();
        assert_eq!(drop_abandoned(&mut batch), Some(kept));
        assert_eq!(batch.len(), 2);
        let mut gone = vec![waiting(1)];
        assert_eq!(drop_abandoned(&mut gone), Some(0));
        assert!(gone.is_empty());
    }

    /// A batch stops before the proposal that would take it past
    /// `MAX_PROPOSAL_BYTES`, which begins the next one; a proposal over
    /// the budget goes alone; small ones batch as before.
    #[tokio::test]
    async fn a_batch_keeps_to_its_byte_budget() {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let third = MAX_PROPOSAL_BYTES / 3;
        for _ in 0..3 {
            tx.try_send(waiting(third)).ok().unwrap();
        }
        tx.try_send(waiting(MAX_PROPOSAL_BYTES + 1)).ok().unwrap();
        for _ in 0..5 {
            tx.try_send(waiting(10)).ok().unwrap();
        }
        // The bytes returned are the batch's.
        let sum = |b: &[Waiting]| b.iter().map(|w| w.proposal.bytes()).sum::<usize>();
        let (batch, bytes, over) = gather(&mut rx, waiting(third), 1).await;
        assert_eq!(batch.len(), 2, "two thirds and a bit fit, the third third does not");
        assert_eq!(bytes, sum(&batch));
        let (batch, bytes, over) = gather(&mut rx, over.expect("carried"), 1).await;
        assert_eq!((batch.len(), bytes), (2, sum(&batch)));
        let over = over.expect("the large one carried");
        assert_eq!(
            over.proposal.bytes(),
            MAX_PROPOSAL_BYTES + 2 + crate::types::WRITE_OVERHEAD
        );
        let (batch, bytes, over) = gather(&mut rx, over, 1).await;
        assert_eq!(batch.len(), 1, "over the budget: alone");
        assert_eq!(bytes, MAX_PROPOSAL_BYTES + 2 + crate::types::WRITE_OVERHEAD);
        assert!(write_timeout(bytes) >= WRITE_TIMEOUT + Duration::from_secs(64));
        let (batch, bytes, over) = gather(&mut rx, over.expect("the small ones"), 1).await;
        assert_eq!(bytes, sum(&batch));
        assert_eq!((batch.len(), over.is_none()), (5, true));
    }
}
