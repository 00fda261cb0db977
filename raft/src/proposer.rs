//! The leader-side proposer: batches the proposals of concurrent
//! transactions into log entries.
//!
//! openraft 0.9's core appends each client write on its own and waits for
//! that append's flush before it takes the next, so one entry per
//! transaction costs one log fsync per transaction. The proposer instead
//! keeps at most [`IN_FLIGHT`] client writes outstanding; proposals that
//! arrive meanwhile queue, and the next client write carries all of them
//! (up to [`MAX_BATCH`]) as one [`Command::Batch`]. Each transaction still
//! gets its own decision (`design/replication.md` §3).
//!
//! One client write in flight measured best (`cargo run --release -p
//! bwtx-raft --example cluster -- 8 4`, transfers/s: 1 in flight 4,470-5,240;
//! 2: 2,280-2,690; 4: 1,700-1,810): the core takes client writes one at a
//! time anyway, so more in flight only splits the same proposals into
//! smaller entries.
//!
//! If the client write fails, every proposal of the batch gets the error:
//! [`Error::NotLeader`] when openraft knows the entry was not committed,
//! [`Error::Raft`] when the outcome is unknown.

use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use openraft::Raft;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::{Error, Result};
use crate::types::{Command, NodeId, Proposal, Response, TypeConfig};

/// Client writes outstanding at once (see the module doc for why 1).
pub const IN_FLIGHT: usize = 1;
/// Proposals in one entry at most.
pub const MAX_BATCH: usize = 256;

struct Waiting {
    proposal: Proposal,
    reply: oneshot::Sender<Result<Response>>,
}

/// A handle on a node's proposer task. Cloning shares it; the task ends
/// when the last handle is dropped.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::UnboundedSender<Waiting>,
}

impl Proposer {
    /// Start the proposer of `raft` (on the current tokio runtime).
    pub fn spawn(raft: Raft<TypeConfig>) -> Proposer {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Proposer { queue }
    }

    /// Propose `proposal` and wait for its decision.
    pub async fn propose(&self, proposal: Proposal) -> Result<Response> {
        let (reply, wait) = oneshot::channel();
        self.queue.send(Waiting { proposal, reply }).map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Raft("the proposer stopped; outcome unknown".to_string())
}

async fn run(raft: Raft<TypeConfig>, mut rx: mpsc::UnboundedReceiver<Waiting>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // While every slot is taken, later proposals queue up behind this one.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            submit(&raft, batch).await;
            drop(slot);
        });
    }
}

async fn submit(raft: &Raft<TypeConfig>, mut batch: Vec<Waiting>) {
    let cmd = if batch.len() == 1 {
        batch[0].proposal.clone().into_command()
    } else {
        Command::Batch {
            txns: batch.iter().map(|w| w.proposal.clone()).collect(),
        }
    };
    match raft.client_write(cmd).await {
        Ok(resp) => match resp.data {
            Response::Batch { outcomes } if outcomes.len() == batch.len() => {
                for (w, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = w.reply.send(Ok(outcome));
                }
            }
            single if batch.len() == 1 => {
                let _ = batch.remove(0).reply.send(Ok(single));
            }
            other => {
                for w in batch {
                    let _ = w.reply.send(Err(Error::Raft(format!("unexpected outcome {other:?}"))));
                }
            }
        },
        Err(e) => {
            for w in batch {
                let _ = w.reply.send(Err(write_error(&e)));
            }
        }
    }
}

fn write_error(e: &RaftError<NodeId, ClientWriteError<NodeId, openraft::EmptyNode>>) -> Error {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => Error::NotLeader { leader: f.leader_id },
        other => Error::Raft(other.to_string()),
    }
}
