//! The raft type configuration and the replicated command.
//!
//! A client transaction runs on a leader against a bwtx snapshot taken at
//! applied log index `snapshot`; its commit proposes a [`Command::Txn`] with
//! its write set. Every replica's state machine decides the same
//! [`Response`] for it at apply (`design/replication.md` §3).

use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// A node's id in the cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's types for bwtx: [`Command`] in, [`Response`] out, nodes
    /// without addresses (the in-process network routes by id), snapshots
    /// as bytes.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = openraft::EmptyNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// A replicated proposal: the payload of a normal raft log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A transaction's write set, with the applied log index of the
    /// snapshot it read (its position `P`).
    Txn {
        /// The applied log index the transaction's snapshot reflects.
        snapshot: u64,
        /// Key, and the new value or `None` for a delete; keys unique.
        writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    },
    /// Several transactions' proposals in one entry (the leader's
    /// proposer batches those that queue while earlier entries are in
    /// flight). Each is decided in order as a `Txn` at this entry's index
    /// would be, after the ones before it in the batch.
    Batch {
        /// The proposals, in decision order.
        txns: Vec<Proposal>,
    },
}

/// One transaction's proposal inside a [`Command::Batch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The applied log index the transaction's snapshot reflects.
    pub snapshot: u64,
    /// Key, and the new value or `None` for a delete; keys unique.
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// The state machine's outcome for one log entry; every replica computes
/// the same one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A blank or membership entry: nothing to report.
    Empty,
    /// The transaction committed; its writes carry log index `index`.
    Committed {
        /// The entry's log index: the commit's position in the log.
        index: u64,
    },
    /// First committer wins: an entry applied after the transaction's
    /// snapshot (at log index `winner` > `snapshot`) wrote `key`, so
    /// nothing was written.
    Conflict {
        /// The first written key (in the proposal's order) found written
        /// after the snapshot.
        key: Vec<u8>,
        /// The log index of that later write.
        winner: u64,
        /// The transaction's snapshot position.
        snapshot: u64,
    },
    /// The proposal is malformed (a key or value over bwtx's limits, a key
    /// written twice, a snapshot position not before the entry): nothing
    /// was written. Clients built on `Txn` never propose one.
    Rejected {
        /// What is wrong.
        reason: String,
    },
    /// The outcomes of a [`Command::Batch`], one per proposal, in order.
    Batch {
        /// One outcome per proposal.
        outcomes: Vec<Response>,
    },
}
