//! The page store's storage layer (index; `design/storage.md` §2): segment
//! files of opaque records, the location table's format, positional reads.
//! It knows nothing of the tree; like `wal`, it imports only `sync`, `error`
//! and `fs`, and every file goes through [`crate::fs::Fs`].
//!
//! - [`record`]: byte layouts of segment headers and records; addresses.
//! - [`segment`]: segment file names, creation, and the scan at open (torn
//!   tail versus corruption).
//! - [`store`]: [`store::SegmentStore`], appends with group sync, reads by
//!   address, live-byte counters, poisoning.
//! - [`table`]: the location table (checkpoint version 2).
//! - [`verify`]: offline verification of a segment file's bytes (public, for
//!   `bwtx check`).

pub(crate) mod record;
pub(crate) mod segment;
pub(crate) mod store;
pub(crate) mod table;
pub(crate) mod verify;

#[cfg(test)]
mod tests;
