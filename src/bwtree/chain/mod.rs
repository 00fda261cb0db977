//! Delta chains in memory: the one place in the tree with raw pointers.
//!
//! - [`node`]: [`Node`], a node of a chain, with its header caches and the
//!   raw links (`next`, `range`, `skip`) that only its constructors set and
//!   safe accessors read.
//! - [`mem`]: node memory: allocation (with a per-thread pool), the
//!   unpublished [`Delta`] and [`Chain`] handles, retiring an unlinked chain
//!   through the epoch, and destroying a chain.
//!
//! Invariants both files rely on are listed in [`node`]'s header; the
//! mapping table (`super::mapping_table`) is the only code that publishes,
//! unlinks and retires chains.

mod mem;
mod node;

#[cfg(feature = "leak-check")]
pub use mem::counter::live_nodes;
pub(in crate::bwtree) use mem::{destroy_chain, retire_chain};
pub(crate) use mem::{Chain, Delta};
pub(crate) use node::Node;
