//! Durability: the write-ahead log, recovery and checkpoints (index; see
//! `design/durability.md`).
//!
//! - [`record`]: byte layout of segments and commit records.
//! - [`writer`]: appending with group commit; poisoning on failure.
//! - [`reader`]: reading segments back; torn tails versus corruption.
//! - [`recovery`]: checkpoint + log replay on open.
//! - [`checkpoint`]: checkpoint files.
//! - [`hist`]: history files (what a restart needs to keep the retention
//!   window).
//! - [`changes`]: reading commits back out of the log (the change stream).
//! - [`store`]: a database's directory, log and checkpoints together.

pub(crate) mod changes;
pub(crate) mod checkpoint;
pub(crate) mod hist;
pub(crate) mod reader;
pub(crate) mod record;
pub(crate) mod recovery;
pub(crate) mod store;
pub(crate) mod writer;
