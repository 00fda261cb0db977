//! Base pages: the consolidated form of a page, in contiguous arrays.
//!
//! Layout (see `design/bwtree.md`):
//! - [`PageRange`]: the page's fences and right sibling (B-link).
//! - [`LeafBase`]: its keys (a [`KeyArray`]) and, per key, its versions
//!   newest first (`version_start[i]..version_start[i+1]` into `vers`; `version_start` is absent
//!   when every key has exactly one version); small values live in the
//!   page's `vals` blob, large ones as their own `Bytes` in `big` so
//!   consolidation never copies them.
//! - [`InnerBase`]: separators and child page ids; child `i` covers
//!   `[sep(i), sep(i+1))`, `child0` covers `[low, sep(0))`.

use bytes::Bytes;

use super::keys::{KeyArray, KeyArrayBuilder};
use super::mapping_table::{Pid, NO_PID};

/// A page's key range `[low, high)` and its right sibling (B-link).
/// `low == None` is minus infinity, `high == None` plus infinity. Nodes cache
/// the fences' heads and lengths in their header (see `chain::Node`).
#[derive(Clone, Debug)]
pub(crate) struct PageRange {
    pub(crate) low: Option<Bytes>,
    pub(crate) high: Option<Bytes>,
    pub(crate) sibling: Pid,
}

impl PageRange {
    pub(crate) fn new(low: Option<Bytes>, high: Option<Bytes>, sibling: Pid) -> Self {
        PageRange { low, high, sibling }
    }
    pub(crate) fn full() -> Self {
        Self::new(None, None, NO_PID)
    }
    pub(crate) fn low(&self) -> Option<&[u8]> {
        self.low.as_deref()
    }
    pub(crate) fn high(&self) -> Option<&[u8]> {
        self.high.as_deref()
    }
}

/// [`LeafBase::disk`] of a page with no image equal to it (dirty).
pub(crate) const NO_DISK: u64 = u64::MAX;

/// Flag in [`LeafBase::disk`] (page-store addresses are 8-aligned, so bit 0
/// is free): the page *builds on* the on-disk chain at `disk & !DIRTY` but
/// holds versions newer than it (`design/storage.md` §4: a delta flush
/// writes only those).
pub(crate) const DIRTY: u64 = 1;

/// Marker in [`Ver::len`]: the version is a tombstone.
pub(crate) const TOMBSTONE: u32 = u32::MAX;
/// Flag in [`Ver::len`]: the value is `big[off]`, not a slice of `vals`.
pub(crate) const BIG: u32 = 1 << 31;
/// Values longer than this are kept as their own `Bytes` instead of being
/// copied into the page blob at each consolidation.
pub(crate) const INLINE_MAX: usize = 256;

/// One version in a leaf base: commit timestamp and where its value lives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ver {
    pub(crate) ts: u64,
    pub(crate) off: u32,
    pub(crate) len: u32,
}

/// A consolidated leaf page.
#[derive(Debug)]
pub(crate) struct LeafBase {
    pub(crate) range: PageRange,
    /// The GC watermark this page was built with (0: none). A sweep skips
    /// pages built with its own watermark or a higher one: nothing more to drop.
    pub(crate) built_watermark: u64,
    /// The newest version timestamp on the page (0 if none), computed when
    /// the page is built: serializable validation skips a page whose bound
    /// (this, with the chain's deltas) is at or below a snapshot.
    max_ts: u64,
    /// The page-store address of an image equal to this page
    /// ([`NO_DISK`]: none; the page is dirty). Set only when the base is
    /// built (a fault-in, or a flush that wrote it whole): a clean page is
    /// evicted without a write (`design/storage.md` §3). With [`DIRTY`]
    /// set, the page builds on that chain (DF1 in `super::flush`).
    pub(crate) disk: u64,
    pub(crate) keys: KeyArray,
    /// `None` when every key has one version (the common case). Boxed
    /// twice (a thin pointer), like `big`, so that the base with `max_ts`
    /// and `disk` still fits the 320-byte node.
    version_start: Option<Box<Box<[u32]>>>,
    vers: Box<[Ver]>,
    vals: Bytes,
    /// `None` when the page has no large value (the common case). Boxed
    /// twice so the field is one word: with [`LeafBase::max_ts`] the base
    /// still fits the 320-byte node.
    big: Option<Box<BigValues>>,
}

/// A page's large values (see [`LeafBase`]'s `big`).
#[derive(Debug)]
struct BigValues(Box<[Bytes]>);

/// `big` as stored: `None` for no large values.
fn big_box(big: Box<[Bytes]>) -> Option<Box<BigValues>> {
    (!big.is_empty()).then(|| Box::new(BigValues(big)))
}

impl LeafBase {
    pub(crate) fn empty(range: PageRange) -> Self {
        LeafBuilder::new(0).finish(range)
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The newest version timestamp on the page (0 for an empty page).
    #[inline]
    pub(crate) fn max_ts(&self) -> u64 {
        self.max_ts
    }

    /// A base page from its arrays (a decoded page image, zero-copy). The
    /// caller guarantees the layout [`LeafBuilder::finish`] produces: every
    /// key has at least one version, newest first; `version_start` is empty
    /// iff `vers.len() == keys.len()`, else it has `keys.len() + 1`
    /// increasing entries from 0 to `vers.len()`; each version's `off`/`len`
    /// is in bounds of `vals` or (with [`BIG`]) indexes `big`.
    pub(crate) fn from_parts(
        range: PageRange,
        keys: KeyArray,
        version_start: Box<[u32]>,
        vers: Box<[Ver]>,
        vals: Bytes,
        big: Box<[Bytes]>,
    ) -> Self {
        // O(versions), next to the decode that produced them.
        let max_ts = vers.iter().map(|v| v.ts).max().unwrap_or(0);
        LeafBase {
            range,
            built_watermark: 0,
            max_ts,
            disk: NO_DISK,
            keys,
            version_start: (!version_start.is_empty()).then(|| Box::new(version_start)),
            vers,
            vals,
            big: big_box(big),
        }
    }

    /// This page, known to equal the image at `addr` (clean).
    pub(crate) fn with_disk(mut self, addr: u64) -> Self {
        self.disk = addr;
        self
    }

    /// Is the page clean: does the on-disk chain at `disk` equal it?
    #[inline]
    pub(crate) fn is_clean(&self) -> bool {
        self.disk != NO_DISK && self.disk & DIRTY == 0
    }

    /// The on-disk chain this page equals or builds on, if any.
    #[inline]
    pub(crate) fn disk_head(&self) -> Option<u64> {
        (self.disk != NO_DISK).then_some(self.disk & !DIRTY)
    }

    /// The page blob of inline values (versions without [`BIG`] index it).
    pub(crate) fn inline_vals(&self) -> &[u8] {
        &self.vals
    }

    /// The values kept as their own `Bytes` (versions with [`BIG`] index it).
    pub(crate) fn big_values(&self) -> &[Bytes] {
        self.big.as_deref().map_or(&[], |b| &b.0)
    }

    /// Versions of entry `i`, newest first.
    #[inline]
    pub(crate) fn versions(&self, i: usize) -> &[Ver] {
        match &self.version_start {
            // Every key has exactly one version: `vers` is indexed by key.
            None => std::slice::from_ref(&self.vers[i]),
            Some(vs) => &self.vers[vs[i] as usize..vs[i + 1] as usize],
        }
    }

    /// Bytes of the values kept inline in the page blob.
    pub(crate) fn inline_value_bytes(&self) -> usize {
        self.vals.len()
    }

    pub(crate) fn has_tombstone(&self) -> bool {
        self.vers.iter().any(|v| v.len == TOMBSTONE)
    }

    /// Estimated bytes of the page, as consolidation estimates a view's.
    pub(crate) fn byte_size(&self) -> usize {
        self.keys.byte_len() + self.len() * 16 + self.vers.len() * 16 + self.vals.len()
    }

    /// Does every key hold exactly one version?
    pub(crate) fn single_version(&self) -> bool {
        self.version_start.is_none()
    }

    pub(crate) fn version_count(&self) -> usize {
        self.vers.len()
    }

    /// Versions a consolidation at `watermark` would drop (the GC rule,
    /// `design/bwtree.md` §5): per key, every version at or below it but
    /// the newest such, and that one too if it is a tombstone.
    pub(crate) fn droppable(&self, watermark: u64) -> usize {
        (0..self.len())
            .map(|i| {
                let vs = self.versions(i);
                vs.iter()
                    .position(|v| v.ts <= watermark)
                    .map_or(0, |p| vs.len() - p - 1 + usize::from(vs[p].len == TOMBSTONE))
            })
            .sum()
    }

    /// The value of a version, `None` for a tombstone. Zero-copy.
    #[inline]
    pub(crate) fn value(&self, v: &Ver) -> Option<Bytes> {
        match v.len {
            TOMBSTONE => None,
            l if l & BIG != 0 => Some(self.big_values()[v.off as usize].clone()),
            l => Some(self.vals.slice(v.off as usize..(v.off + l) as usize)),
        }
    }

    /// The value bytes of a version, borrowed.
    #[inline]
    pub(crate) fn value_ref(&self, v: &Ver) -> ValRef<'_> {
        match v.len {
            TOMBSTONE => ValRef::Tomb,
            l if l & BIG != 0 => ValRef::Refcounted(&self.big_values()[v.off as usize]),
            l => ValRef::Inline(&self.vals[v.off as usize..(v.off + l) as usize]),
        }
    }
}

/// A borrowed value during consolidation.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ValRef<'a> {
    Tomb,
    Inline(&'a [u8]),
    Refcounted(&'a Bytes),
}

/// Builds a [`LeafBase`] from entries pushed in key order, versions newest first.
pub(crate) struct LeafBuilder {
    keys: KeyArrayBuilder,
    version_start: Vec<u32>,
    vers: Vec<Ver>,
    vals: Vec<u8>,
    big: Vec<Bytes>,
    max_ts: u64,
    /// The inline-value blob's limit: `Ver.off` and `off + len` are `u32`s.
    blob_max: usize,
}

impl LeafBuilder {
    pub(crate) fn new(n: usize) -> Self {
        Self::with_capacity(n, n * 8, n, n * 8)
    }

    /// A builder sized for `n` keys of `key_bytes` in all, `vers` versions
    /// and `val_bytes` of inline values: consolidation knows these, and
    /// growing the arrays as it goes cost a tenth of a YCSB-A profile in
    /// `realloc`.
    pub(crate) fn with_capacity(n: usize, key_bytes: usize, vers: usize, val_bytes: usize) -> Self {
        let mut version_start = Vec::with_capacity(n + 1);
        version_start.push(0);
        LeafBuilder {
            keys: KeyArrayBuilder::with_capacity(n, key_bytes),
            version_start,
            vers: Vec::with_capacity(vers),
            vals: Vec::with_capacity(val_bytes),
            big: Vec::new(),
            max_ts: 0,
            blob_max: u32::MAX as usize,
        }
    }

    /// A builder whose inline blob holds at most `bytes` (tests of the
    /// spill past it, which 4 GiB would take in earnest).
    #[cfg(test)]
    pub(crate) fn with_blob_max(mut self, bytes: usize) -> Self {
        self.blob_max = bytes;
        self
    }

    pub(crate) fn push_key(&mut self, key: &[u8]) {
        self.keys.push(key);
    }

    pub(crate) fn push_version(&mut self, ts: u64, v: ValRef<'_>) {
        self.max_ts = self.max_ts.max(ts);
        let ver = match v {
            ValRef::Tomb => Ver {
                ts,
                off: 0,
                len: TOMBSTONE,
            },
            ValRef::Refcounted(b) if b.len() > INLINE_MAX => {
                self.big.push(b.clone());
                Ver {
                    ts,
                    off: (self.big.len() - 1) as u32,
                    len: BIG | b.len() as u32,
                }
            }
            ValRef::Refcounted(b) => self.inline(ts, b),
            ValRef::Inline(b) if b.len() > INLINE_MAX => {
                self.big.push(Bytes::copy_from_slice(b));
                Ver {
                    ts,
                    off: (self.big.len() - 1) as u32,
                    len: BIG | b.len() as u32,
                }
            }
            ValRef::Inline(b) => self.inline(ts, b),
        };
        self.vers.push(ver);
    }

    fn inline(&mut self, ts: u64, b: &[u8]) -> Ver {
        if self.vals.len() + b.len() > self.blob_max {
            // Past what a `u32` offset reaches (one key's history of
            // millions of small versions, kept by snapshots or retention):
            // the value is held apart, as a large one is, not at an offset
            // that would wrap and read another version's bytes.
            self.big.push(Bytes::copy_from_slice(b));
            return Ver {
                ts,
                off: (self.big.len() - 1) as u32,
                len: BIG | b.len() as u32,
            };
        }
        let off = self.vals.len() as u32;
        self.vals.extend_from_slice(b);
        Ver {
            ts,
            off,
            len: b.len() as u32,
        }
    }

    /// Copy entry `i` of a single-version base page (key and version).
    #[inline]
    pub(crate) fn push_base_entry(&mut self, base: &LeafBase, i: usize) {
        self.keys.push(base.keys.key(i));
        let v = base.vers[i];
        self.push_version(v.ts, base.value_ref(&v));
        self.end_key();
    }

    /// Close the entry whose key was pushed last.
    pub(crate) fn end_key(&mut self) {
        self.version_start.push(self.vers.len() as u32);
    }

    pub(crate) fn finish(self, range: PageRange) -> LeafBase {
        LeafBase {
            range,
            built_watermark: 0,
            max_ts: self.max_ts,
            disk: NO_DISK,
            keys: self.keys.finish(),
            // One version per key (the common case): no version index.
            version_start: if self.vers.len() == self.version_start.len() - 1 {
                None
            } else {
                Some(Box::new(self.version_start.into_boxed_slice()))
            },
            vers: self.vers.into_boxed_slice(),
            vals: Bytes::from(self.vals),
            big: big_box(self.big.into_boxed_slice()),
        }
    }
}

/// A consolidated inner page.
#[derive(Debug)]
pub(crate) struct InnerBase {
    pub(crate) range: PageRange,
    pub(crate) child0: Pid,
    pub(crate) seps: KeyArray,
    pub(crate) children: Box<[Pid]>,
}

impl InnerBase {
    pub(crate) fn new(range: PageRange, child0: Pid, entries: &[(&[u8], Pid)]) -> Self {
        let mut keys = KeyArrayBuilder::with_capacity(entries.len(), entries.len() * 8);
        for (k, _) in entries {
            keys.push(k);
        }
        InnerBase {
            range,
            child0,
            seps: keys.finish(),
            children: entries.iter().map(|e| e.1).collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.seps.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inline values past the blob's limit (4 GiB in earnest: a `u32`
    /// offset) are held apart, and every version reads back its own bytes.
    /// Before, the offsets wrapped past 4 GiB and a version read another's.
    #[test]
    fn inline_values_past_the_blob_limit_spill_apart() {
        let mut b = LeafBuilder::new(1).with_blob_max(1000);
        b.push_key(b"k");
        let value = |i: u64| vec![i as u8; 100];
        for i in (1..=50u64).rev() {
            b.push_version(i, ValRef::Inline(&value(i)));
        }
        b.end_key();
        let leaf = b.finish(PageRange::full());
        assert!(leaf.inline_value_bytes() <= 1000);
        assert_eq!(leaf.big_values().len(), 40);
        let vers = leaf.versions(0);
        assert_eq!(vers.len(), 50);
        for v in vers {
            assert_eq!(leaf.value(v).as_deref(), Some(&value(v.ts)[..]), "ts {}", v.ts);
        }
    }
}
