//! # bwtx
//!
//! An embedded, transactional key-value store built on a latch-free,
//! multi-version Bw-Tree (Levandoski et al., ICDE 2013; Wang et al., SIGMOD 2018).
//!
//! Many threads run transactions over one ordered store, each reading a
//! consistent snapshot: [`Db`] hands out read-write [`Transaction`]s
//! (snapshot isolation, first committer wins; or [`Isolation::Serializable`],
//! which also validates what they read) and read-only [`Snapshot`]s.
//!
//! ```
//! let db = bwtx::Db::in_memory();
//! let mut tx = db.begin();
//! tx.put("apple", "red")?;
//! tx.put("banana", "yellow")?;
//! tx.commit()?;
//!
//! let mut a = db.begin();
//! let mut b = db.begin();
//! a.put("apple", "green")?;
//! b.put("apple", "brown")?;
//! a.commit()?;
//! assert!(b.commit().unwrap_err().is_conflict()); // first committer wins
//!
//! let snap = db.snapshot();
//! assert_eq!(snap.get("apple")?.as_deref(), Some(&b"green"[..]));
//! assert_eq!(snap.prefix("b").count(), 1);
//! # Ok::<(), bwtx::Error>(())
//! ```
//!
//! The storage core is [`tree::Tree`], an ordered index whose leaves hold
//! *versions* stamped with commit timestamps; it can be used on its own:
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
//! ```
//!
//! Design notes: `design/bwtree.md` (the tree), `design/mvcc.md` (transactions).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

/// The README's examples are compiled and run as doctests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// The layers and what each may import: `design/architecture.md`, section 1.
mod bwtree;
mod db;
mod engine;
mod error;
pub mod fs;
mod le;
mod mvcc;
mod options;
// Built bottom-up for issue 11 (`design/storage.md`): the engine's page file
// uses the segment store and the location table; value records are unused yet.
#[allow(dead_code)]
mod pagestore;
mod poison;
mod sync;
mod torn;
mod wal;

pub use db::{Changes, Db, Keyspace, KeyspaceStats, Savepoint, Snapshot, Transaction, TRANSACTION_ATTEMPTS};
pub use engine::{Change, Stats};
pub use error::{ConflictReason, Error, Result};
pub use mvcc::Iter;
pub use options::{Durability, Isolation, Options};

/// The multi-version Bw-Tree: the storage core the transaction layer builds on.
pub mod tree {
    #[cfg(feature = "leak-check")]
    pub use crate::bwtree::live_nodes;
    pub use crate::bwtree::{Config, Cursor, Tree, TreeStats, MAX_KEY_LEN, MAX_VALUE_LEN};
}
/// Offline checks of a database directory's files (used by `bwtx check`).
pub mod check;
#[cfg(feature = "history")]
pub mod history;
