//! Key order and sorted key arrays.
//!
//! - Key order: [`key_cmp`] and friends compare byte strings 8 bytes at a
//!   time, deciding most comparisons on the keys' heads ([`head_of`]: the
//!   first 8 bytes as a big-endian integer) without a call into `memcmp`.
//! - [`KeyArray`]: the keys of a base page. Their common prefix is stored once
//!   (as the first key's first `prefix_len` bytes, the first 16 of them also
//!   inline) and `heads[i]` is the next 8 bytes of key `i`, big-endian and
//!   zero-padded, so most comparisons in a binary search are one `u64`
//!   compare; offsets delimit each key's bytes inside one shared `Bytes`
//!   blob, so a cursor hands out keys as zero-copy slices.

use bytes::Bytes;

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

/// `a.cmp(b)` for byte strings, 8 bytes at a time. Key tails are short: a
/// call into `memcmp` costs more than the comparison it makes.
#[inline]
pub(crate) fn bytes_cmp(mut a: &[u8], mut b: &[u8]) -> std::cmp::Ordering {
    loop {
        match (a.split_first_chunk::<8>(), b.split_first_chunk::<8>()) {
            (Some((x, ra)), Some((y, rb))) => {
                let (x, y) = (u64::from_be_bytes(*x), u64::from_be_bytes(*y));
                if x != y {
                    return x.cmp(&y);
                }
                (a, b) = (ra, rb);
            }
            _ => return a.cmp(b),
        }
    }
}

/// Lexicographic key order, decided by the 8-byte heads whenever they differ
/// (no call into `memcmp` for short keys).
///
/// Equal heads mean equal first `min(len, 8)` bytes with the shorter key's
/// padding matching zeros: if either key has at most 8 bytes it is a prefix
/// of the other, so the lengths decide; otherwise the tails do.
#[inline]
pub(crate) fn key_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (head_a, head_b) = (head_of(a), head_of(b));
    if head_a != head_b {
        return head_a.cmp(&head_b);
    }
    if a.len() <= 8 || b.len() <= 8 {
        return a.len().cmp(&b.len());
    }
    bytes_cmp(&a[8..], &b[8..])
}

/// `a < b` in key order.
#[inline]
pub(crate) fn key_lt(a: &[u8], b: &[u8]) -> bool {
    key_cmp(a, b).is_lt()
}

/// `a == b`, cheapest test first.
#[inline]
pub(crate) fn key_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && head_of(a) == head_of(b) && (a.len() <= 8 || bytes_cmp(&a[8..], &b[8..]).is_eq())
}

/// Sorted keys in one blob with fixed-width heads, prefix-truncated: every
/// key starts with the same `prefix_len` bytes (the first key's), and `heads[i]` is
/// the head of key `i` *after* that prefix. Keys like `user000000123456`
/// share their first 8 bytes across a whole tree, so untruncated heads would
/// all tie and every comparison would fall through to `memcmp`.
#[derive(Debug)]
pub(crate) struct KeyArray {
    /// Keys in the array.
    n: u32,
    prefix_len: u32,
    /// The prefix's first [`PREFIX_INLINE_LEN`] bytes, kept with the array itself:
    /// checking a probe against the prefix then touches no key bytes (a
    /// cache miss on the blob was half of a point lookup's leaf search).
    prefix_inline: [u8; PREFIX_INLINE_LEN],
    /// The `n` heads, then the `n + 1` key offsets into `bytes`, two to a
    /// word (one allocation: the array stays 72 bytes with `prefix_inline` inline, so
    /// a leaf base still fits the 320-byte node).
    words: Box<[u64]>,
    bytes: Bytes,
}

impl KeyArray {
    pub(crate) fn len(&self) -> usize {
        self.n as usize
    }

    #[inline]
    fn heads(&self) -> &[u64] {
        &self.words[..self.n as usize]
    }

    /// Offset of key `i`'s first byte in `bytes` (`i <= n`).
    #[inline]
    fn off(&self, i: usize) -> usize {
        (self.words[self.n as usize + i / 2] >> ((i & 1) * 32)) as u32 as usize
    }

    #[inline]
    fn key_len(&self, i: usize) -> usize {
        self.off(i + 1) - self.off(i)
    }

    /// `key` without the shared prefix, or (`Err`) the index every bound of
    /// `key` is when `key` does not start with the prefix: 0 if it sorts
    /// before the prefix, `len()` if after.
    #[inline]
    fn suffix<'k>(&self, key: &'k [u8]) -> Result<&'k [u8], usize> {
        let p = self.prefix_len as usize;
        if p == 0 {
            return Ok(key);
        }
        // A probe shorter than the prefix that matches it sorts first.
        let k = &key[..p.min(key.len())];
        let ord = if p <= PREFIX_INLINE_LEN {
            bytes_cmp(k, &self.prefix_inline[..p])
        } else {
            let n = PREFIX_INLINE_LEN.min(k.len());
            bytes_cmp(&k[..n], &self.prefix_inline[..n]).then_with(|| bytes_cmp(k, &self.bytes[..p]))
        };
        match ord {
            std::cmp::Ordering::Equal if key.len() >= p => Ok(&key[p..]),
            std::cmp::Ordering::Greater => Err(self.len()),
            _ => Err(0),
        }
    }

    /// `key(i)` against the suffix `s` (see [`KeyArray::suffix`]), whose head
    /// equals `heads[i]`: short suffixes are decided by their lengths (see
    /// [`key_cmp`]) without reading key bytes.
    #[inline]
    fn cmp_same_head(&self, i: usize, s: &[u8]) -> std::cmp::Ordering {
        let p = self.prefix_len as usize;
        let len = self.key_len(i) - p;
        if len <= 8 || s.len() <= 8 {
            return len.cmp(&s.len());
        }
        bytes_cmp(&self.key(i)[p + 8..], &s[8..])
    }

    #[inline]
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        &self.bytes[self.off(i)..self.off(i + 1)]
    }

    /// Bytes of all keys together.
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn key_bytes(&self, i: usize) -> Bytes {
        self.bytes.slice(self.off(i)..self.off(i + 1))
    }

    /// First index whose head is `>= h`, by a branch-free binary search.
    #[inline]
    fn head_lower_bound(&self, h: u64) -> usize {
        let heads = self.heads();
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

    /// First index with `key(i) >= key` (`strict`: `key(i) > key`).
    #[inline]
    fn bound(&self, key: &[u8], strict: bool) -> usize {
        let s = match self.suffix(key) {
            Ok(s) => s,
            Err(i) => return i,
        };
        let h = head_of(s);
        let i = self.head_lower_bound(h);
        let n = self.len();
        if i == n || self.heads()[i] != h {
            return i;
        }
        let past = |c: std::cmp::Ordering| c.is_lt() || (strict && c.is_eq());
        if i + 1 == n || self.heads()[i + 1] != h {
            // The usual case: one key with this head.
            return i + past(self.cmp_same_head(i, s)) as usize;
        }
        // Keys sharing the head: finish with full comparisons over that run.
        let (mut lo, mut hi) = (i, i + self.heads()[i..].partition_point(|&x| x == h));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if past(self.cmp_same_head(mid, s)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// `head_of(key(i))`: the untruncated head (fences cache it).
    #[inline]
    pub(crate) fn full_head(&self, i: usize) -> u64 {
        if self.prefix_len == 0 {
            self.heads()[i]
        } else {
            head_of(self.key(i))
        }
    }

    /// `lower_bound` among the keys from index `from` on, relative to `from`.
    #[inline]
    pub(crate) fn lower_bound_from(&self, from: usize, key: &[u8]) -> usize {
        let s = match self.suffix(key) {
            Ok(s) => s,
            Err(i) => return i.max(from) - from,
        };
        // Deltas are few: a short linear probe usually finds the spot first.
        let n = self.len();
        let h = head_of(s);
        let mut i = from;
        while i < n && i < from + 4 {
            if self.heads()[i] > h || (self.heads()[i] == h && !self.cmp_same_head(i, s).is_lt()) {
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
        let s = self.suffix(key).ok()?;
        let h = head_of(s);
        let i = self.head_lower_bound(h);
        let n = self.len();
        if i == n || self.heads()[i] != h {
            return None;
        }
        if i + 1 == n || self.heads()[i + 1] != h {
            return self.cmp_same_head(i, s).is_eq().then_some(i);
        }
        // The lower bound may lie past the run of equal heads, where the
        // lengths alone would not tell keys apart.
        let i = self.lower_bound(key);
        (i < n && self.heads()[i] == h && self.cmp_same_head(i, s).is_eq()).then_some(i)
    }
}

/// Bytes of a [`KeyArray`]'s shared prefix stored inline.
const PREFIX_INLINE_LEN: usize = 16;

/// Builds a [`KeyArray`] from keys pushed in ascending order.
#[derive(Default)]
pub(crate) struct KeyArrayBuilder {
    offs: Vec<u32>,
    bytes: Vec<u8>,
}

impl KeyArrayBuilder {
    pub(crate) fn with_capacity(n: usize, bytes: usize) -> Self {
        let mut offs = Vec::with_capacity(n + 1);
        offs.push(0);
        KeyArrayBuilder {
            offs,
            bytes: Vec::with_capacity(bytes),
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, key: &[u8]) {
        if self.offs.is_empty() {
            self.offs.push(0);
        }
        debug_assert!(
            self.offs.len() == 1 || {
                let last = &self.bytes[self.offs[self.offs.len() - 2] as usize..];
                last < key
            }
        );
        self.bytes.extend_from_slice(key);
        self.offs.push(self.bytes.len() as u32);
    }

    /// The array, with the shared prefix of its keys found (the first and
    /// last keys' common prefix, as the keys are sorted) and the heads taken
    /// after it.
    pub(crate) fn finish(mut self) -> KeyArray {
        if self.offs.is_empty() {
            self.offs.push(0);
        }
        let n = self.offs.len() - 1;
        let offs = self.offs;
        KeyArray::from_offsets(n, |i| offs[i], Bytes::from(self.bytes))
    }
}

impl KeyArray {
    /// The array of `n` keys stored in `bytes` (zero-copy), key `i` being
    /// `bytes[off(i)..off(i + 1)]`. The caller guarantees `off(0) == 0`,
    /// offsets nondecreasing up to `off(n) == bytes.len()` and the keys
    /// strictly ascending (a page image's decoder checks these first).
    pub(crate) fn from_offsets(n: usize, off: impl Fn(usize) -> u32, bytes: Bytes) -> KeyArray {
        let key = |i: usize| &bytes[off(i) as usize..off(i + 1) as usize];
        let prefix_len = if n < 2 {
            0
        } else {
            let (a, b) = (key(0), key(n - 1));
            a.iter().zip(b).take_while(|(x, y)| x == y).count()
        };
        let mut words = Vec::with_capacity(n + n.div_ceil(2) + 1);
        words.extend((0..n).map(|i| head_of(&key(i)[prefix_len..])));
        words.extend((0..=n).step_by(2).map(|i| {
            let hi = if i < n { off(i + 1) } else { 0 };
            off(i) as u64 | (hi as u64) << 32
        }));
        let mut prefix_inline = [0u8; PREFIX_INLINE_LEN];
        let m = prefix_len.min(PREFIX_INLINE_LEN);
        prefix_inline[..m].copy_from_slice(&bytes[..m]);
        KeyArray {
            n: u32::try_from(n).expect("a page holds fewer than 2^32 keys"),
            prefix_len: prefix_len as u32,
            prefix_inline,
            words: words.into_boxed_slice(),
            bytes,
        }
    }

    /// The keys' bytes, concatenated in key order (key `i` starts at
    /// [`KeyArray::key_offset`]`(i)`).
    pub(crate) fn all_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Offset of key `i`'s first byte in [`KeyArray::all_bytes`] (`i <= len()`;
    /// `key_offset(len())` is the total length).
    pub(crate) fn key_offset(&self, i: usize) -> u32 {
        self.off(i) as u32
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
        check_against_slice(&keys, &probes);
        // A run of equal heads ("a", "a\0") whose lower bound for the probe
        // lies past the run, at a key of the probe's length.
        let keys = vec![b"a".to_vec(), b"a\0".to_vec(), b"b\0\0".to_vec()];
        check_against_slice(&keys, &[b"a\0\0".to_vec(), b"b\0".to_vec()]);
    }

    /// Every search of a [`KeyArray`] agrees with a search of the sorted slice.
    fn check_against_slice(keys: &[Vec<u8>], probes: &[Vec<u8>]) {
        let mut b = KeyArrayBuilder::default();
        for k in keys {
            b.push(k);
        }
        let ka = b.finish();
        for p in probes {
            let lb = keys.partition_point(|k| k < p);
            assert_eq!(ka.lower_bound(p), lb, "lb {p:?}");
            assert_eq!(ka.upper_bound(p), keys.partition_point(|k| k <= p), "ub {p:?}");
            assert_eq!(ka.find(p), keys.binary_search(p).ok(), "find {p:?}");
            for from in [0, keys.len() / 2, keys.len()] {
                assert_eq!(
                    ka.lower_bound_from(from, p),
                    lb.max(from) - from,
                    "lb from {from} {p:?}"
                );
            }
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(ka.full_head(i), head_of(k));
        }
    }

    /// Short keys over a tiny alphabet with many zero bytes: runs of equal
    /// (zero-padded) heads everywhere, the case heads alone cannot decide.
    #[test]
    fn zero_padded_head_runs_agree_with_slice_search() {
        use proptest::prelude::*;
        let key = prop::collection::vec(prop::sample::select(vec![0u8, 0, b'a', b'b']), 0..11);
        let strat = (
            prop::collection::vec(key.clone(), 0..24),
            prop::collection::vec(key, 0..12),
        );
        proptest!(ProptestConfig::with_cases(1000), |((mut keys, probes) in strat)| {
            keys.sort();
            keys.dedup();
            check_against_slice(&keys, &probes);
        });
    }

    /// The word-at-a-time comparisons agree with slice order.
    #[test]
    fn word_comparisons_agree_with_slice_order() {
        use proptest::prelude::*;
        let byte = prop::sample::select(vec![0u8, 1, b'a', 0x7f, 0x80, 0xff]);
        let key = prop::collection::vec(byte, 0..30);
        proptest!(ProptestConfig::with_cases(2000), |((a, b) in (key.clone(), key))| {
            prop_assert_eq!(bytes_cmp(&a, &b), a.cmp(&b));
            prop_assert_eq!(key_cmp(&a, &b), a.cmp(&b));
            prop_assert_eq!(key_eq(&a, &b), a == b);
            let ab = [&a[..], &b[..]].concat();
            prop_assert_eq!(key_cmp(&ab, &a), ab.cmp(&a));
        });
    }

    /// Keys sharing long prefixes (the prefix-truncated heads), probed with
    /// keys inside, before, after and cut short of that prefix.
    #[test]
    fn prefix_truncated_bounds_agree_with_slice_search() {
        use proptest::prelude::*;
        let byte = prop::sample::select(vec![0u8, 1, b'0', b'9', b'a', 0xfe, 0xff]);
        let prefix = prop::sample::select(vec![
            &b""[..],
            b"user0000",
            b"user00000012",
            b"user000000000000000012",
            b"a",
            b"\xff\xff",
        ]);
        let tail = prop::collection::vec(byte, 0..20);
        let strat = (
            prefix,
            prop::collection::vec(tail.clone(), 0..40),
            prop::collection::vec(tail, 0..10),
        );
        proptest!(ProptestConfig::with_cases(400), |((prefix, tails, probe_tails) in strat)| {
            let mut keys: Vec<Vec<u8>> = tails.iter().map(|t| [prefix, &t[..]].concat()).collect();
            keys.sort();
            keys.dedup();
            let mut probes: Vec<Vec<u8>> = keys.clone();
            for t in &probe_tails {
                probes.push([prefix, &t[..]].concat());
                probes.push(t.clone());
                probes.push([&prefix[..prefix.len() / 2], &t[..]].concat());
            }
            probes.push(prefix[..prefix.len().saturating_sub(1)].to_vec());
            check_against_slice(&keys, &probes);
        });
    }
}
