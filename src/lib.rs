//! # bwtx
//!
//! An embedded, transactional key-value store built on a latch-free,
//! multi-version Bw-Tree (Levandoski et al., ICDE 2013; Wang et al., SIGMOD 2018).
//!
//! This release provides the storage core: [`tree::Tree`], an ordered index whose
//! leaves hold *versions* stamped with commit timestamps. Many threads read and
//! write it without locks; readers see the snapshot of any timestamp they name.
//!
//! ```
//! use bwtx::tree::Tree;
//!
//! let tree = Tree::new();
//! tree.put(b"apple", 1, b"red").unwrap();
//! tree.put(b"apple", 5, b"green").unwrap();
//! tree.delete(b"apple", 9).unwrap(); // a tombstone at ts 9
//!
//! assert_eq!(tree.get(b"apple", 3).unwrap().as_deref(), Some(&b"red"[..]));
//! assert_eq!(tree.get(b"apple", 7).unwrap().as_deref(), Some(&b"green"[..]));
//! assert_eq!(tree.get(b"apple", 9).unwrap(), None);
//! assert_eq!(tree.newest_ts(b"apple").unwrap(), Some(9));
//!
//! let keys: Vec<_> = tree.iter(8).map(|kv| kv.unwrap().0).collect();
//! assert_eq!(keys, vec![bytes::Bytes::from_static(b"apple")]);
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

/// The README's examples are compiled and run as doctests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod bwtree;
mod db;
mod error;
mod mvcc;
mod sync;

pub use db::{Db, Options, Stats, TRANSACTION_ATTEMPTS};
pub use error::{Error, Result};
pub use mvcc::{Iter, Snapshot, Transaction};

/// The multi-version Bw-Tree: the storage core the transaction layer builds on.
pub mod tree {
    #[cfg(feature = "leak-check")]
    pub use crate::bwtree::live_nodes;
    pub use crate::bwtree::{Config, Cursor, Tree, TreeStats, MAX_KEY_LEN, MAX_VALUE_LEN};
}
