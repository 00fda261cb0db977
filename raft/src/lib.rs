//! Replication for bwtx on [openraft] 0.10 (`=0.10.0-alpha.37`, issue 14): a raft log store and a
//! state machine on bwtx [`Db`](bwtx::Db)s, replicated transactions with
//! bwtx's isolation levels (snapshot and serializable), transports between
//! replicas (in-process, and TCP), and a cluster in one process for tests
//! and the example.
//!
//! The protocol, the key layout and the failure cases are in
//! `design/replication.md`. The modules, bottom up:
//!
//! - [`types`]: the raft type configuration ([`TypeConfig`]) and the
//!   openraft types it fixes (log ids, entries, votes, snapshots, the
//!   `Raft` handle), the proposal ([`Command`]) and its outcome
//!   ([`Response`]).
//! - [`keys`]: where the log, the vote and the state machine live in a
//!   replica's two `Db`s and how a replicated value is encoded.
//! - [`log_store`]: [`LogStore`], openraft's `RaftLogStorage` on bwtx.
//! - [`validate`]: apply-time validation of one proposal (malformed?
//!   written, read or scanned keys written after its snapshot?).
//! - [`state_machine`]: [`StateMachine`], openraft's `RaftStateMachine`:
//!   apply with first-committer-wins (and, serializable, read and range)
//!   validation, one bwtx commit per batch.
//! - [`generation`]: which keyspace of the state `Db` holds the data (the
//!   active generation), and the switch a snapshot install makes.
//! - [`snapshot`]: snapshots larger than memory: built into a file from a
//!   bwtx `Snapshot`, sent in chunks, installed in bounded batches into a
//!   fresh generation.
//! - [`network`]: openraft's `RaftNetworkV2` in-process (with partitions)
//!   and over TCP, and forwarding proposals to the leader.
//! - [`proposer`]: batches concurrent transactions' proposals into one log
//!   entry.
//! - [`node`]: [`Node`], one replica: opening, the client API (begin,
//!   [`ReadSnapshot`]).
//! - [`txn`]: [`Txn`], a replicated transaction at either isolation level.
//! - [`cluster`]: [`Cluster`], several nodes in one process, in-process or
//!   on loopback TCP: start, kill, restart, partition, membership changes.
//! - [`bank`]: the bank-transfer workload the tests and the example share.
//! - [`trace`]: per-entry timestamps of a round's steps (the proposer, each
//!   node's log write, the apply), off unless enabled, and their breakdown
//!   (`cluster --trace`).
//!
//! Only bwtx's public API is used (`Db`, `Options`, `Transaction`,
//! `Snapshot`, `Keyspace`, `Error`).

pub mod bank;
pub mod cluster;
mod error;
pub mod generation;
pub mod keys;
mod log_memory;
pub mod log_store;
mod log_writer;
pub mod network;
pub mod node;
pub mod proposer;
pub mod snapshot;
pub mod state_machine;
pub mod trace;
pub mod txn;
pub mod types;
pub mod validate;

pub use cluster::Cluster;
pub use error::{Error, Result};
pub use log_store::LogStore;
pub use node::{Node, ReadSnapshot, TombstoneStats};
pub use state_machine::StateMachine;
pub use txn::Txn;
pub use types::{Command, Conflicted, KeyRange, NodeId, Proposal, Response, TypeConfig};
