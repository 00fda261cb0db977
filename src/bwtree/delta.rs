//! Delta records: what a node of a chain says ([`Body`]), a version's key
//! and value ([`Payload`]), the record of a merge ([`MergeRecord`]) and the
//! key filter of version deltas ([`key_bit`]).
//!
//! The nodes themselves, their links and memory are in `super::chain`.

use crate::sync::Arc;

use bytes::Bytes;

use super::base::{InnerBase, LeafBase, PageRange, ValRef};
use super::chain::Node;
use super::keys::head_of;
use super::mapping_table::Pid;
use crate::sync::AtomicBool;

/// The body of a node: a base page or a delta record.
pub(crate) enum Body {
    Leaf(LeafBase),
    Inner(InnerBase),
    /// A new version of a key committed at `ts`.
    Version {
        ts: u64,
        kv: Payload,
    },
    /// The page now ends at `range.high`; keys above moved to `range.sibling`.
    Split {
        range: PageRange,
    },
    /// Parent: keys in `[sep, hi)` are routed to `child` (a split's right half).
    IndexEntry {
        sep: Bytes,
        hi: Option<Bytes>,
        child: Pid,
    },
    /// Parent: the right child of a merge is gone; see [`MergeRecord`].
    IndexTermDelete(Arc<MergeRecord>),
    /// This page absorbed its right sibling: keys `>= sep` are in `content`
    /// (a copy of the removed page, consolidated); the range grew to `range`.
    NodeMerge {
        sep: Bytes,
        content: Box<Node>,
        range: PageRange,
    },
    /// The page is frozen: it is being merged into its left sibling (`merge`
    /// is the parent's record of that merge) or it is a root being replaced by
    /// its only child (`merge` is `None`).
    /// Every thread that meets it (reader or writer) helps finish the SMO and
    /// restarts its descent from the root.
    RemoveNode {
        merge: Option<Arc<MergeRecord>>,
    },
    /// The leaf's base lives on disk only: its image is at `addr` in the
    /// page store (`design/storage.md` §3). Only version deltas are ever
    /// prepended to it (blind writes, P4 in [`super::paging`]); whoever
    /// needs more of the page than those faults it in first.
    Evicted {
        addr: u64,
        range: PageRange,
        /// The image's newest version timestamp (its record header's
        /// `max_ts`): serializable validation reads it instead of faulting
        /// the page in.
        max_ts: u64,
        /// The GC watermark the evicted page was built with (0: unknown,
        /// restored from a table). Its on-disk chain may hold versions the
        /// page had dropped (a delta flush adds to the older parts): the
        /// fault-in drops them again by this watermark, uncounted, so GC
        /// counts each version once (`super::flush`, DF1).
        watermark: u64,
        /// The image's keys as [`super::blind::key_set`] fingerprints with
        /// their liveness: what lets a blind write count live keys without
        /// the image. `None` for a leaf restored from a table: the first
        /// blind write reads it from the on-disk chain (`design/storage.md`
        /// §5.5).
        keys: Option<Box<[u64]>>,
        /// The record bytes of the chain at `addr` if it is one part (a
        /// base image) whose length the page store knew when the stub was
        /// made ([`super::PageIo::read_hint`]), else 0: read-throughs and
        /// the fault-in pass it on and look nothing up.
        hint: u32,
    },
}

/// Bytes of key plus value a version delta stores inside its node. The
/// `Version` body then uses no more room than the largest body (a leaf base),
/// so a small write costs one allocation: the node.
pub(crate) const INLINE_KV: usize = 192;
const INLINE_TOMB: u16 = u16::MAX;

/// A version delta's key and value (or tombstone).
#[derive(Clone)]
pub(crate) enum Payload {
    /// Copied in, when key and value together fit [`INLINE_KV`].
    Inline { klen: u16, vlen: u16, buf: [u8; INLINE_KV] },
    /// Shared `Bytes`, kept as given (zero-copy installs and large values).
    Refcounted { key: Bytes, value: Option<Bytes> },
}

impl Payload {
    /// Copy `key` and `value` (`None`: tombstone) in if they fit, else share them.
    pub(crate) fn copy(key: &[u8], value: Option<&[u8]>) -> Self {
        let vlen = value.map_or(0, <[u8]>::len);
        if key.len() + vlen <= INLINE_KV {
            let mut buf = [0u8; INLINE_KV];
            buf[..key.len()].copy_from_slice(key);
            if let Some(v) = value {
                buf[key.len()..key.len() + vlen].copy_from_slice(v);
            }
            let vlen = if value.is_some() { vlen as u16 } else { INLINE_TOMB };
            return Payload::Inline {
                klen: key.len() as u16,
                vlen,
                buf,
            };
        }
        Payload::Refcounted {
            key: Bytes::copy_from_slice(key),
            value: value.map(Bytes::copy_from_slice),
        }
    }

    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        match self {
            Payload::Inline { klen, buf, .. } => &buf[..*klen as usize],
            Payload::Refcounted { key, .. } => key,
        }
    }

    /// The value, borrowed.
    #[inline]
    pub(crate) fn value(&self) -> ValRef<'_> {
        match self {
            Payload::Inline { vlen: INLINE_TOMB, .. } | Payload::Refcounted { value: None, .. } => ValRef::Tomb,
            Payload::Inline { klen, vlen, buf } => ValRef::Inline(&buf[*klen as usize..(*klen + *vlen) as usize]),
            Payload::Refcounted { value: Some(v), .. } => ValRef::Refcounted(v),
        }
    }

    /// The value as owned `Bytes` (a copy for inline payloads, which are small).
    pub(crate) fn value_bytes(&self) -> Option<Bytes> {
        match self.value() {
            ValRef::Tomb => None,
            ValRef::Inline(b) => Some(Bytes::copy_from_slice(b)),
            ValRef::Refcounted(b) => Some(b.clone()),
        }
    }
}

/// The record of a merge, the body of an index-term-delete delta: posted on
/// the parent first (the merge's commit point), and shared with the
/// `RemoveNode` delta that freezes the right page.
/// Keys in `[lo, hi)` are routed to `left`; `right` (which began at `right_low`)
/// will be frozen, copied into the page on its left, and unlinked.
pub(crate) struct MergeRecord {
    pub(crate) left: Pid,
    pub(crate) right: Pid,
    pub(crate) lo: Option<Bytes>,
    pub(crate) right_low: Bytes,
    pub(crate) hi: Option<Bytes>,
    /// Set once `right` is unlinked; until then the parent may not be
    /// consolidated, split or frozen (whoever wants to, finishes the merge first).
    pub(crate) done: AtomicBool,
}

/// One bit of a 64-bit key filter, from a hash of the key's head, its last
/// 8 bytes and its length (keys with a common prefix differ in their tails).
#[inline]
pub(crate) fn key_bit(key: &[u8]) -> u64 {
    let tail = match key.last_chunk::<8>() {
        Some(t) => u64::from_le_bytes(*t),
        None => 0,
    };
    let h = head_of(key) ^ tail.rotate_left(29) ^ (key.len() as u64).rotate_left(56);
    1 << (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
}
