//! The multi-version Bw-Tree (index; see `design/bwtree.md`).
//!
//! - [`mapping_table`]: page id -> newest node of the page's chain; the only
//!   code that publishes, unlinks and retires chains.
//! - [`chain`]: nodes of a delta chain and their memory (the raw links,
//!   allocation, pool, retire, destroy).
//! - [`cold`]: cold stubs: an evicted leaf packed into a small record in
//!   its mapping-table slot, and rebuilt on its next use.
//! - [`clock`]: the eviction clock's 2-bit use counts, and the 5-bit
//!   read-through counts of read-through's admission.
//! - [`resident`]: the sharded resident-byte counter, which wakes the
//!   evictor past the budget.
//! - [`keys`]: key order and sorted key arrays.
//! - [`base`]: base page layouts (key arrays, blobs, versions).
//! - [`delta`]: delta records (bodies, payloads, merge records).
//! - [`image`]: page images and delta flushes, the page store's payloads
//!   (encode and decode), a chain of them merged for fault-in, and one
//!   key's version looked up in them in place (read-through).
//! - [`search`]: searching one chain (leaf lookup, inner routing).
//! - [`leaf_merge`]: the one merge of a leaf chain's deltas with its bases,
//!   which consolidation and cursors read leaves through.
//! - [`consolidate`]: gathering a chain's content, GC, building bases.
//! - [`smo`]: split, merge, index entries, root grow/shrink (help-along).
//! - [`cursor`]: range cursors as of a snapshot.
//! - [`paging`]: evicted leaves: fault-in, eviction and the commit gate.
//! - [`paging_hooks`]: the resident leaves in key order, and the test hooks
//!   that evict, pack and unpack every leaf.
//! - [`read_through`]: point reads and scans answered from an evicted
//!   leaf's on-disk chain without a fault-in, and the admission rule.
//! - [`page_io`]: the `PageIo` contract the engine implements.
//! - [`blind`]: blind writes: version deltas over an evicted leaf's stub
//!   (validation without the image, key fingerprints, their flush).
//! - [`gate`]: the commit gate and the structure-modification gate.
//! - [`flush`]: a checkpoint's flushes and its list of leaves, with
//!   structure modifications paused.
//! - [`relocate`]: segment cleaning's side: the published image addresses,
//!   and a page's image moved to a new address by CAS.
//! - [`restore`]: a tree rebuilt from a location table, every leaf evicted.
//! - [`config`]: the tuning knobs (`Config`), and the smaller leaves of
//!   a tree with paging.
//! - [`tree`]: descent and the public operations.
//! - [`commit`]: the commit path's contract: validate a write set, install
//!   it at one timestamp, consolidate afterwards.
//! - [`validate`]: serializable read validation: versions committed in a
//!   timestamp window on a key range, skipping leaves whose bound says none.
//! - [`stats`]: structure-modification and GC counters.

mod base;
mod blind;
mod chain;
mod clock;
mod cold;
mod commit;
mod config;
mod consolidate;
mod cursor;
mod delta;
mod flush;
#[cfg(all(test, not(loom)))]
mod flush_tests;
mod gate;
mod hand;
mod image;
mod keys;
mod leaf_merge;
mod mapping_table;
mod page_io;
mod paging;
mod paging_hooks;
mod read_through;
mod relocate;
mod resident;
mod restore;
mod search;
mod smo;
#[cfg(all(test, not(loom)))]
mod smo_tests;
mod stats;
#[cfg(all(test, not(loom)))]
mod test_pages;
mod tree;
mod validate;

pub(crate) use base::{LeafBase, INLINE_MAX};
pub(crate) use blind::fingerprint;
#[cfg(feature = "leak-check")]
pub use chain::live_nodes;
pub(crate) use chain::trim_allocator;
pub(crate) use commit::PrepareError;
pub use cursor::Cursor;
pub(crate) use flush::FLUSH_CHAIN;
#[cfg(all(test, not(loom)))]
pub(crate) use image::encode_delta_fixed;
pub(crate) use image::{
    collect_base, decode_delta, decode_leaf_with, encode_delta, encode_leaf, find_in_delta, find_in_leaf,
    merge_chain_at, newest, newest_in_leaf, DeltaFlush, DeltaValue, Fetched, Found, Malformed, COMPACT_DELTA,
};
#[cfg(test)]
pub(crate) use paging::PagingCounters;
pub(crate) use paging::{CleanEviction, DeltaVersion, Over, PageIo, Unread};
pub(crate) use resident::reclaim_until;
pub use stats::TreeStats;
pub use tree::{Config, Tree, MAX_KEY_LEN, MAX_VALUE_LEN};
