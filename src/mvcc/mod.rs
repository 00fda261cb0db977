//! Multi-version concurrency control: snapshot isolation over the Bw-Tree
//! (index; see `design/mvcc.md`).
//!
//! - [`oracle`]: commit timestamps and the read (visibility) timestamp.
//! - [`watermark`]: registered snapshots and the GC low watermark.
//! - [`latches`]: striped commit latches for first-committer-wins validation.
//! - [`txn`]: [`Transaction`] and [`Snapshot`].
//! - [`iter`]: snapshot ranges merged with a transaction's own writes.
//! - [`gc`]: watermark refresh and the background sweep.
//! - [`counters`]: sharded event counters behind [`crate::Stats`].

pub(crate) mod counters;
pub(crate) mod gc;
pub(crate) mod iter;
pub(crate) mod latches;
pub(crate) mod oracle;
pub(crate) mod txn;
pub(crate) mod watermark;

pub use iter::Iter;
pub use txn::{Snapshot, Transaction};

pub(crate) use crate::db::Shared;
