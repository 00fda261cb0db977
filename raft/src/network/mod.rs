//! How replicas reach each other: openraft's `RaftNetworkFactory` /
//! `RaftNetworkV2` on two transports, and the forwarding of proposals to the
//! leader.
//!
//! - [`transport`]: [`Transport`] (chosen when a node starts), the
//!   dispatching [`Network`] factory, and a running node's [`Link`].
//! - [`local`]: in-process, RPCs as direct calls through a [`Router`], with
//!   partitions (tests, the example's default).
//! - [`tcp`]: TCP, client side (`host:port` from the membership's
//!   `BasicNode`; failures as `Unreachable` / `NetworkError`).
//! - [`append_stream`]: TCP, the pipelined replication stream (client
//!   side).
//! - [`hold`]: both transports' replication streams hold a commit-only
//!   request for the next request to carry.
//! - [`server`]: TCP, serving side (one node's port).
//! - [`receive`]: TCP, a snapshot's chunks written to a file as they
//!   arrive (serving side).
//! - [`wire`]: TCP messages, their encoding (postcard) and framing
//!   (length-delimited), and the versioned handshake.

pub mod append_stream;
pub mod hold;
pub mod local;
pub mod receive;
pub mod server;
pub mod tcp;
pub mod transport;
pub mod wire;

pub use local::Router;
pub use server::Server;
pub(crate) use tcp::Forwarded;
pub use transport::{Connection, Link, Network, Transport};
pub(crate) use wire::WriteResult;
pub use wire::{WireCounts, MAX_FRAME, WIRE_VERSION};
