//! State-machine snapshots larger than memory: built into a file from a
//! bwtx `Snapshot`, sent in chunks, installed in bounded batches
//! (`design/replication.md` §5).
//!
//! - [`format`](mod@format): the file's byte layout (magic, version, applied state,
//!   length-prefixed records in key order, a trailer with the count and a
//!   CRC32C), its streaming writer and its checking reader.
//! - [`store`]: the snapshot directory (`<node dir>/snapshots`: `.part`
//!   files written, fsynced, renamed, the directory fsynced; older ones
//!   removed) and [`SnapshotFile`], the open file openraft passes around as
//!   the crate's `SnapshotData`.
//! - [`build`](mod@build): a snapshot file from a bwtx snapshot, beside commits.
//! - [`install`](mod@install): a checked file loaded into a fresh generation
//!   ([`crate::generation`]) in batches, then one commit switches to it.
//!
//! Values keep their last-written log indexes, so a follower that installed
//! a snapshot validates later transactions exactly as the leader.

pub mod build;
pub mod format;
pub mod install;
pub mod store;
#[cfg(test)]
mod tests;

pub use build::{build, Built};
pub use install::{install, Limits, SnapshotStats};
pub use store::{SnapshotDir, SnapshotFile};
