//! Base pages: the consolidated form of a page, in contiguous arrays.
//!
//! Layout (see `design/bwtree.md`):
//! - [`KeyArray`]: `heads[i]` is the first 8 bytes of key `i`, big-endian and
//!   zero-padded, so most comparisons in a binary search are one `u64` compare;
//!   `offs` delimits each key's bytes inside one shared `Bytes` blob, so a cursor
//!   hands out keys as zero-copy slices.
//! - [`LeafBase`]: per key, its versions newest first (`vstart[i]..vstart[i+1]`
//!   into `vers`; `vstart` is empty when every key has exactly one version); small values live in the page's `vals` blob, large ones as
//!   their own `Bytes` in `big` so consolidation never copies them.
//! - [`InnerBase`]: separators and child page ids; child `i` covers
//!   `[sep(i), sep(i+1))`, `child0` covers `[low, sep(0))`.

use bytes::Bytes;

use super::mapping_table::{Pid, NO_PID};

/// First 8 bytes of a key as a big-endian integer (zero padded).
#[inline]
pub(crate) fn head_of(key: &[u8]) -> u64 {
    if let Some(h) = key.first_chunk::<8>() {
        return u64::from_be_bytes(*h);
    }
    let mut b = [0u8; 8];
    b[..key.len()].copy_from_slice(key);
    u64::from_be_bytes(b)
}

/// Lexicographic key order, decided by the 8-byte heads whenever they differ
/// (no call into `memcmp` for short keys).
///
/// Equal heads mean equal first `min(len, 8)` bytes with the shorter key's
/// padding matching zeros: if either key has at most 8 bytes it is a prefix
/// of the other, so the lengths decide; otherwise the tails do.
#[inline]
pub(crate) fn key_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (ha, hb) = (head_of(a), head_of(b));
    if ha != hb {
        return ha.cmp(&hb);
    }
    if a.len() <= 8 || b.len() <= 8 {
        return a.len().cmp(&b.len());
    }
    a[8..].cmp(&b[8..])
}

/// `a < b` in key order.
#[inline]
pub(crate) fn key_lt(a: &[u8], b: &[u8]) -> bool {
    key_cmp(a, b).is_lt()
}

/// `a == b`, cheapest test first.
#[inline]
pub(crate) fn key_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && head_of(a) == head_of(b) && (a.len() <= 8 || a[8..] == b[8..])
}

/// A page's key range `[low, high)` and its right sibling (B-link).
/// `low == None` is minus infinity, `high == None` plus infinity. Nodes cache
/// the fences' heads and lengths in their header (see `delta::Node`).
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

/// Sorted keys in one blob with fixed-width heads.
#[derive(Debug)]
pub(crate) struct KeyArray {
    heads: Box<[u64]>,
    offs: Box<[u32]>,
    bytes: Bytes,
}

impl KeyArray {
    pub(crate) fn len(&self) -> usize {
        self.heads.len()
    }

    #[inline]
    fn key_len(&self, i: usize) -> usize {
        (self.offs[i + 1] - self.offs[i]) as usize
    }

    /// `key(i)` against `key`, whose head equals `heads[i]`: short keys are
    /// decided by their lengths (see [`key_cmp`]) without reading key bytes.
    #[inline]
    fn cmp_same_head(&self, i: usize, key: &[u8]) -> std::cmp::Ordering {
        let len = self.key_len(i);
        if len <= 8 || key.len() <= 8 {
            return len.cmp(&key.len());
        }
        self.key(i)[8..].cmp(&key[8..])
    }

    #[inline]
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        &self.bytes[self.offs[i] as usize..self.offs[i + 1] as usize]
    }

    pub(crate) fn key_bytes(&self, i: usize) -> Bytes {
        self.bytes.slice(self.offs[i] as usize..self.offs[i + 1] as usize)
    }

    /// First index whose head is `>= h`, by a branch-free binary search.
    #[inline]
    fn head_lower_bound(&self, h: u64) -> usize {
        let heads = &self.heads[..];
        let mut size = heads.len();
        if size == 0 {
            return 0;
        }
        let mut base = 0usize;
        while size > 1 {
            let half = size / 2;
            let mid = base + half;
            // compiles to a conditional move
            base = if heads[mid] < h { mid } else { base };
            size -= half;
        }
        base + (heads[base] < h) as usize
    }

    /// First index `i` with `key(i) >= key` (or `> key` when `strict`).
    #[inline]
    fn bound(&self, key: &[u8], strict: bool) -> usize {
        let h = head_of(key);
        let i = self.head_lower_bound(h);
        let n = self.len();
        if i == n || self.heads[i] != h {
            return i;
        }
        let past = |c: std::cmp::Ordering| c.is_lt() || (strict && c.is_eq());
        if i + 1 == n || self.heads[i + 1] != h {
            // The usual case: one key with this head.
            return i + past(self.cmp_same_head(i, key)) as usize;
        }
        // Keys sharing the head: finish with full comparisons over that run.
        let (mut lo, mut hi) = (i, i + self.heads[i..].partition_point(|&x| x == h));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if past(self.cmp_same_head(mid, key)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Head and length of key `i`, without reading its bytes.
    #[inline]
    pub(crate) fn head_len(&self, i: usize) -> (u64, usize) {
        (self.heads[i], self.key_len(i))
    }

    /// `lower_bound` among the keys from index `from` on, relative to `from`.
    #[inline]
    pub(crate) fn lower_bound_from(&self, from: usize, key: &[u8]) -> usize {
        // Deltas are few: a short linear probe usually finds the spot first.
        let n = self.len();
        let h = head_of(key);
        let mut i = from;
        while i < n && i < from + 4 {
            if self.heads[i] > h || (self.heads[i] == h && !self.cmp_same_head(i, key).is_lt()) {
                return i - from;
            }
            i += 1;
        }
        if i == n {
            return n - from;
        }
        self.lower_bound(key).max(from) - from
    }

    /// First index with `key(i) >= key`.
    #[inline]
    pub(crate) fn lower_bound(&self, key: &[u8]) -> usize {
        self.bound(key, false)
    }

    /// First index with `key(i) > key`.
    #[inline]
    pub(crate) fn upper_bound(&self, key: &[u8]) -> usize {
        self.bound(key, true)
    }

    /// Index of `key` if present.
    #[inline]
    pub(crate) fn find(&self, key: &[u8]) -> Option<usize> {
        let h = head_of(key);
        let i = self.head_lower_bound(h);
        let n = self.len();
        if i == n || self.heads[i] != h {
            return None;
        }
        if i + 1 == n || self.heads[i + 1] != h {
            return self.cmp_same_head(i, key).is_eq().then_some(i);
        }
        let i = self.lower_bound(key);
        (i < n && self.cmp_same_head(i, key).is_eq()).then_some(i)
    }
}

/// Builds a [`KeyArray`] from keys pushed in ascending order.
#[derive(Default)]
pub(crate) struct KeyArrayBuilder {
    heads: Vec<u64>,
    offs: Vec<u32>,
    bytes: Vec<u8>,
}

impl KeyArrayBuilder {
    pub(crate) fn with_capacity(n: usize, bytes: usize) -> Self {
        let mut offs = Vec::with_capacity(n + 1);
        offs.push(0);
        KeyArrayBuilder {
            heads: Vec::with_capacity(n),
            offs,
            bytes: Vec::with_capacity(bytes),
        }
    }
    pub(crate) fn push(&mut self, key: &[u8]) {
        self.push_with_head(head_of(key), key)
    }

    /// `push` with the key's head already known.
    #[inline]
    pub(crate) fn push_with_head(&mut self, head: u64, key: &[u8]) {
        if self.offs.is_empty() {
            self.offs.push(0);
        }
        debug_assert!(
            self.heads.is_empty() || {
                let last = &self.bytes[self.offs[self.offs.len() - 2] as usize..];
                last < key
            }
        );
        self.heads.push(head);
        self.bytes.extend_from_slice(key);
        self.offs.push(self.bytes.len() as u32);
    }
    pub(crate) fn finish(mut self) -> KeyArray {
        if self.offs.is_empty() {
            self.offs.push(0);
        }
        KeyArray {
            heads: self.heads.into_boxed_slice(),
            offs: self.offs.into_boxed_slice(),
            bytes: Bytes::from(self.bytes),
        }
    }
}

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
    pub(crate) gc_wm: u64,
    pub(crate) keys: KeyArray,
    vstart: Box<[u32]>,
    vers: Box<[Ver]>,
    vals: Bytes,
    big: Box<[Bytes]>,
}

impl LeafBase {
    pub(crate) fn empty(range: PageRange) -> Self {
        LeafBuilder::new(0).finish(range)
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Versions of entry `i`, newest first.
    #[inline]
    pub(crate) fn versions(&self, i: usize) -> &[Ver] {
        if self.vstart.is_empty() {
            // Every key has exactly one version: `vers` is indexed by key.
            return std::slice::from_ref(&self.vers[i]);
        }
        &self.vers[self.vstart[i] as usize..self.vstart[i + 1] as usize]
    }

    pub(crate) fn has_tombstone(&self) -> bool {
        self.vers.iter().any(|v| v.len == TOMBSTONE)
    }

    /// Estimated bytes of the page, as consolidation estimates a view's.
    pub(crate) fn byte_size(&self) -> usize {
        self.keys.bytes.len() + self.len() * 16 + self.vers.len() * 16 + self.vals.len()
    }

    /// Does every key hold exactly one version?
    pub(crate) fn single_version(&self) -> bool {
        self.vstart.is_empty()
    }

    pub(crate) fn version_count(&self) -> usize {
        self.vers.len()
    }

    /// The value of a version, `None` for a tombstone. Zero-copy.
    #[inline]
    pub(crate) fn value(&self, v: &Ver) -> Option<Bytes> {
        match v.len {
            TOMBSTONE => None,
            l if l & BIG != 0 => Some(self.big[v.off as usize].clone()),
            l => Some(self.vals.slice(v.off as usize..(v.off + l) as usize)),
        }
    }

    /// The value bytes of a version, borrowed.
    #[inline]
    pub(crate) fn value_ref(&self, v: &Ver) -> ValRef<'_> {
        match v.len {
            TOMBSTONE => ValRef::Tomb,
            l if l & BIG != 0 => ValRef::Shared(&self.big[v.off as usize]),
            l => ValRef::Inline(&self.vals[v.off as usize..(v.off + l) as usize]),
        }
    }
}

/// A borrowed value during consolidation.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ValRef<'a> {
    Tomb,
    Inline(&'a [u8]),
    Shared(&'a Bytes),
}

/// Builds a [`LeafBase`] from entries pushed in key order, versions newest first.
pub(crate) struct LeafBuilder {
    keys: KeyArrayBuilder,
    vstart: Vec<u32>,
    vers: Vec<Ver>,
    vals: Vec<u8>,
    big: Vec<Bytes>,
}

impl LeafBuilder {
    pub(crate) fn new(n: usize) -> Self {
        let mut vstart = Vec::with_capacity(n + 1);
        vstart.push(0);
        LeafBuilder {
            keys: KeyArrayBuilder::with_capacity(n, n * 8),
            vstart,
            vers: Vec::with_capacity(n),
            vals: Vec::with_capacity(n * 8),
            big: Vec::new(),
        }
    }

    pub(crate) fn push_key(&mut self, key: &[u8]) {
        self.keys.push(key);
    }

    pub(crate) fn push_version(&mut self, ts: u64, v: ValRef<'_>) {
        let ver = match v {
            ValRef::Tomb => Ver {
                ts,
                off: 0,
                len: TOMBSTONE,
            },
            ValRef::Shared(b) if b.len() > INLINE_MAX => {
                self.big.push(b.clone());
                Ver {
                    ts,
                    off: (self.big.len() - 1) as u32,
                    len: BIG | b.len() as u32,
                }
            }
            ValRef::Shared(b) => self.inline(ts, b),
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
        self.keys.push_with_head(base.keys.heads[i], base.keys.key(i));
        let v = base.vers[i];
        self.push_version(v.ts, base.value_ref(&v));
        self.end_key();
    }

    /// Close the entry whose key was pushed last.
    pub(crate) fn end_key(&mut self) {
        self.vstart.push(self.vers.len() as u32);
    }

    pub(crate) fn finish(self, range: PageRange) -> LeafBase {
        LeafBase {
            range,
            gc_wm: 0,
            keys: self.keys.finish(),
            // One version per key (the common case): no version index.
            vstart: if self.vers.len() == self.vstart.len() - 1 {
                Box::default()
            } else {
                self.vstart.into_boxed_slice()
            },
            vers: self.vers.into_boxed_slice(),
            vals: Bytes::from(self.vals),
            big: self.big.into_boxed_slice(),
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
        let mut kb = KeyArrayBuilder::with_capacity(entries.len(), entries.len() * 8);
        for (k, _) in entries {
            kb.push(k);
        }
        InnerBase {
            range,
            child0,
            seps: kb.finish(),
            children: entries.iter().map(|e| e.1).collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.seps.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn bounds_agree_with_slice_search() {
        let mut keys: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            b"a\0".to_vec(),
            b"abcdefgh".to_vec(),
            b"abcdefgh\0".to_vec(),
            b"abcdefghij".to_vec(),
            b"abcdefghik".to_vec(),
            b"abcdefgi".to_vec(),
            b"b".to_vec(),
            vec![0xff; 12],
        ];
        keys.sort();
        let mut b = KeyArrayBuilder::default();
        for k in &keys {
            b.push(k);
        }
        let ka = b.finish();
        let probes: Vec<Vec<u8>> = keys
            .iter()
            .cloned()
            .chain([
                b"abcdefghi".to_vec(),
                b"0".to_vec(),
                vec![0xff; 13],
                b"abcdefgh\0\0".to_vec(),
            ])
            .collect();
        for p in &probes {
            assert_eq!(ka.lower_bound(p), keys.partition_point(|k| k < p), "lb {p:?}");
            assert_eq!(ka.upper_bound(p), keys.partition_point(|k| k <= p), "ub {p:?}");
        }
    }
}
