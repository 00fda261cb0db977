//! Delta chains in memory: nodes and their raw links, which only this module
//! writes or dereferences.
//!
//! - [`node`]: [`Node`], a node of a chain, with its header caches and the
//!   raw links (`next`, `range`, `skip`) that only its constructors set and
//!   safe accessors read.
//! - [`mem`]: node memory: allocation (with a per-thread pool), the
//!   unpublished [`Delta`] and [`Chain`] handles, retiring an unlinked chain
//!   through the epoch, and destroying a chain.
//!
//! Invariants: N1-N4 in [`node`]'s header, A1-A2 in [`mem`]'s; the
//! mapping table (`super::mapping_table`) is the only code that publishes,
//! unlinks and retires chains.

mod mem;
mod node;

pub(crate) use mem::bytes::{chain_bytes, node_bytes, shared_bytes};
#[cfg(feature = "leak-check")]
pub use mem::counter::live_nodes;
pub(crate) use mem::{counter, trim_allocator, Chain, Delta};
pub(in crate::bwtree) use mem::{destroy_chain, retire_chain};
pub(crate) use node::Node;
