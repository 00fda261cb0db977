//! The parts of an on-disk page chain as the page file works with them
//! (`super::pages`, `design/storage.md` §4): at most [`FLUSH_CHAIN`]
//! addresses, inline, a value copied without allocating (the chain map
//! stores them more compactly, `super::chain_map::Stored`). And [`AddrMap`], the hash
//! map by page-store address that the chain map and the cleaner's record
//! lengths use (each fault-in looks one up).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::bwtree::FLUSH_CHAIN;

/// A hash map keyed by page-store address (`seq << 32 | offset`, offsets
/// 8-aligned), hashed by [`AddrHasher`] instead of SipHash: the keys are
/// addresses this process wrote or read, not chosen by an adversary.
pub(crate) type AddrMap<V> = HashMap<u64, V, BuildHasherDefault<AddrHasher>>;

/// A set of page-store addresses, hashed as [`AddrMap`] is.
pub(crate) type AddrSet = HashSet<u64, BuildHasherDefault<AddrHasher>>;

/// The hasher of [`AddrMap`]: one multiplication by an odd constant, then
/// the high half folded into the low (the table takes its bucket from the
/// low bits, and an address's low three bits are always zero).
#[derive(Default)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are `u64`); any other input
        // still hashes, a byte at a time.
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        let h = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

/// A set of page-store addresses as a sorted vector without duplicates:
/// 8 bytes an address, where a `BTreeSet<u64>` took about 13 and the
/// vector it was built from 8 more, both alive at once. The cleaners and the
/// checkpoint take every part of every chain this way
/// ([`super::pages::PageFile::chain_parts`]: 780,000 parts at 5M keys, 17
/// MB of the heap's peak as a set, measured with heaptrack 2026-12-04).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AddrList(Vec<u64>);

impl AddrList {
    /// Is `addr` in the list? (A binary search.)
    pub(crate) fn contains(&self, addr: &u64) -> bool {
        self.0.binary_search(addr).is_ok()
    }
}

impl FromIterator<u64> for AddrList {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let mut v: Vec<u64> = iter.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        v.shrink_to_fit();
        AddrList(v)
    }
}

impl<'a> IntoIterator for &'a AddrList {
    type Item = &'a u64;
    type IntoIter = std::slice::Iter<'a, u64>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for AddrList {
    type Item = u64;
    type IntoIter = std::vec::IntoIter<u64>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// A chain's parts' addresses, the base image first: at most
/// [`FLUSH_CHAIN`], kept inline. The chain map kept them so until
/// 2026-12-05, for no allocation per entry (small long-lived allocations
/// placed between leaf pages can keep glibc from giving those pages back
/// once the leaves are freed); its entries now allocate the parts of a
/// chain of more than one, 121 bytes a bucket being more than that risk
/// was worth (`super::chain_map::Stored`; measured with jemalloc only).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Parts {
    len: u8,
    addrs: [u64; FLUSH_CHAIN],
}

impl Parts {
    /// The parts `addrs` (base first; at most [`FLUSH_CHAIN`] are kept).
    pub(crate) fn of(addrs: &[u64]) -> Self {
        let mut p = Parts {
            len: 0,
            addrs: [0; FLUSH_CHAIN],
        };
        for &a in addrs {
            p.push(a);
        }
        p
    }

    /// Add `addr` as the newest part (callers push only onto a chain
    /// shorter than [`FLUSH_CHAIN`]).
    pub(crate) fn push(&mut self, addr: u64) {
        debug_assert!((self.len as usize) < FLUSH_CHAIN);
        if let Some(slot) = self.addrs.get_mut(self.len as usize) {
            *slot = addr;
            self.len += 1;
        }
    }

    /// The first `n` parts (the base image and the `n - 1` oldest deltas).
    pub(crate) fn prefix(&self, n: usize) -> Self {
        let mut p = *self;
        p.len = n.min(self.len as usize) as u8;
        p
    }
}

impl std::ops::Deref for Parts {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        &self.addrs[..self.len as usize]
    }
}
