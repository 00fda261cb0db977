//! Commit latches: a striped table of spin latches, one stripe per key hash.
//!
//! A committer latches the stripes of its write set in ascending stripe order
//! (so no two committers can deadlock), validates, installs, and unlatches.
//! Latches are held only for validation and installation of that key set;
//! commits on disjoint keys take disjoint stripes (except for hash
//! collisions, which serialize but never cause a false conflict, because
//! validation looks at the keys themselves). Readers never touch them.

use smallvec::SmallVec;

use crate::sync::{AtomicU64, Backoff, Ordering};

#[cfg(not(loom))]
const STRIPES: usize = 1 << 14;
#[cfg(loom)]
const STRIPES: usize = 4;

pub(crate) struct Latches {
    words: Box<[AtomicU64]>,
}

/// Stripe indexes of a write set, sorted and deduplicated.
pub(crate) type StripeSet = SmallVec<[u32; 8]>;

impl Latches {
    pub(crate) fn new() -> Self {
        Latches {
            words: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The stripes covering `keys`, in latching order.
    pub(crate) fn stripes<'k>(keys: impl Iterator<Item = &'k [u8]>) -> StripeSet {
        let mut s: StripeSet = keys.map(|k| (hash(k) % STRIPES as u64) as u32).collect();
        s.sort_unstable();
        s.dedup();
        s
    }

    /// Latch every stripe in `set` (ascending), spinning (then yielding) on
    /// one held by another committer. Unlatched when the guard drops.
    pub(crate) fn lock(&self, set: StripeSet) -> Held<'_> {
        for &i in &set {
            let w = &self.words[i as usize];
            let backoff = Backoff::new();
            while w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
                backoff.snooze();
            }
        }
        Held { latches: self, set }
    }
}

pub(crate) struct Held<'l> {
    latches: &'l Latches,
    set: StripeSet,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        for &i in &self.set {
            self.latches.words[i as usize].store(0, Ordering::Release);
        }
    }
}

/// A fast 64-bit hash of a key (8 bytes at a time, multiply-xorshift mixing).
pub(crate) fn hash(key: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^ (h >> 32)
}
