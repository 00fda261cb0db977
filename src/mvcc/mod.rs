//! Multi-version concurrency control: the protocol pieces of snapshot
//! isolation (and serializable validation) over the Bw-Tree (index; see `design/mvcc.md`). The engine
//! (`crate::engine`) puts them together; nothing here knows it.
//!
//! - [`oracle`]: commit timestamps and the read (visibility) timestamp.
//! - [`registry`]: registered snapshots and the GC low watermark.
//! - [`latches`]: striped commit latches for first-committer-wins validation.
//! - [`iter`]: snapshot ranges merged with a transaction's own writes, and
//!   the [`WriteSet`] they merge.
//! - [`readset`]: a serializable transaction's read set (keys and scanned
//!   ranges, narrowed to what an iterator yielded) for commit validation.
//! - [`counters`]: sharded event counters behind `crate::Stats`.

pub(crate) mod counters;
pub(crate) mod iter;
pub(crate) mod latches;
pub(crate) mod oracle;
pub(crate) mod readset;
pub(crate) mod registry;

pub use iter::Iter;
pub(crate) use iter::WriteSet;
