//! Page images and delta flushes: the payloads the page store writes
//! (`design/storage.md` §2.2, §2.3), encoded from and decoded into the tree's
//! in-memory forms. Pure: no I/O; the page store frames and checksums them.
//!
//! - [`wire`]: the shared pieces: the decode error ([`Malformed`]), the
//!   value-log hook ([`ValueSink`](wire::ValueSink)), bounds-checked little-endian reads.
//! - [`leaf`]: a [`LeafBase`](super::base::LeafBase) to a page image and
//!   back ([`encode_leaf`], [`decode_leaf_with`]).
//! - [`delta`]: a list of versions to a delta-flush payload and back
//!   ([`encode_delta`], [`decode_delta`], the validated view [`DeltaFlush`]).
//! - [`layout`]: a leaf image's sections, parsed from its header (shared
//!   by the decode and the look-up).
//! - [`find`]: one key's version at a snapshot, looked up in an image or a
//!   delta flush without decoding the page (read-through, [`find_in_leaf`],
//!   [`find_in_delta`]).
//! - [`chain`]: a base image and its delta flushes merged into one base
//!   page ([`merge_chain_at`], for fault-in; the deltas' value-log references
//!   read through a [`RefSource`](chain::RefSource)), and the GC rule applied to it
//!   ([`collect_base`]).
//!
//! Decoding never panics on any input and allocates less than 1.5 times the
//! input's length (a decoded page's key heads, 8 bytes a key, are not in the
//! image; everything else is at most its image's size or a zero-copy slice):
//! it validates every length, offset and order a later read relies on, and
//! names the first offset that breaks one.

mod chain;
mod delta;
mod find;
mod layout;
mod leaf;
mod wire;

#[cfg(all(test, not(loom)))]
mod tests;
#[cfg(all(test, not(loom)))]
mod tests_delta;
#[cfg(all(test, not(loom)))]
mod tests_find;

#[cfg(all(test, not(loom)))]
pub(crate) use chain::merge_chain;
pub(crate) use chain::{collect_base, collect_counted, merge_chain_at};
#[cfg(all(test, not(loom)))]
pub(crate) use delta::encode_delta_fixed;
pub(crate) use delta::{decode_delta, encode_delta, DeltaFlush, DeltaValue, COMPACT_DELTA};
pub(crate) use find::{find_in_delta, find_in_leaf, newest, newest_in_leaf, Found};
#[cfg(all(test, not(loom)))]
pub(crate) use leaf::decode_leaf;
// What the unit tests name besides (they `use super::*`).
pub(crate) use leaf::{decode_leaf_with, encode_leaf};
pub(crate) use wire::{Fetched, Malformed};
