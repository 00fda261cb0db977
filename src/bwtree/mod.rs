//! The multi-version Bw-Tree (index; see `design/bwtree.md`).
//!
//! - [`mapping_table`]: page id -> newest node of the page's chain.
//! - [`node`]: base page layouts (key heads, blobs, versions).
//! - [`delta`]: delta records and chain ownership.
//! - [`search`]: searching one chain (leaf lookup, inner routing).
//! - [`leaf_merge`]: the one merge of a leaf chain's deltas with its bases,
//!   which consolidation and cursors read leaves through.
//! - [`consolidate`]: gathering a chain's content, GC, building bases.
//! - [`smo`]: split, merge, index entries, root grow/shrink (help-along).
//! - [`cursor`]: range cursors as of a snapshot.
//! - [`tree`]: descent and the public operations.
//! - [`commit`]: the commit path's contract: validate a write set, install
//!   it at one timestamp, consolidate afterwards.

mod commit;
mod consolidate;
mod cursor;
mod delta;
mod leaf_merge;
mod mapping_table;
mod node;
mod search;
mod smo;
mod stats;
mod tree;

pub use cursor::Cursor;
#[cfg(feature = "leak-check")]
pub use delta::counter::live_nodes;
pub use stats::TreeStats;
pub use tree::{Config, Tree, MAX_KEY_LEN, MAX_VALUE_LEN};

impl Tree {
    /// Counters of structure modifications and garbage collection.
    pub fn stats(&self) -> TreeStats {
        let mut s = self.stats.snapshot();
        s.page_ids = self.table.high_water();
        s
    }
}
