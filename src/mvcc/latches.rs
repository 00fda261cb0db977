//! Commit latches: a striped table of spin latches, one stripe per key hash.
//!
//! A committer latches the stripes of its write set in ascending stripe order
//! (so no two committers can deadlock), validates, installs, and unlatches.
//! Latches are held only for validation and installation of that key set;
//! commits on disjoint keys take disjoint stripes (except for hash
//! collisions, which serialize but never cause a false conflict, because
//! validation looks at the keys themselves). Readers never take them;
//! serializable validation reads their stamps (`unchanged_since`).
//!
//! A latch word is `stamp << 1 | held`. The *stamp* is the commit timestamp
//! of the last commit that installed writes under the stripe (0: none
//! since open): a committer stores it when it unlatches, in the same store
//! that frees the latch, so snapshot-isolation commits pay nothing for it.
//! Serializable validation reads it ([`Latches::unchanged_since`]): a key
//! whose stripe is free and stamped at or below a snapshot was not written
//! by any commit after that snapshot that is already installed, so it needs
//! no descent (`design/mvcc.md`, section 10).

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

    /// The stripes covering `keys` of keyspaces (`(keyspace id, key)`): the
    /// same key bytes in two keyspaces usually fall on different stripes
    /// (keyspace 0's are the key's hash alone), in latching order. Sharing a
    /// stripe only serialises two commits; conflicts are decided per tree.
    pub(crate) fn stripes_in<'k>(keys: impl Iterator<Item = (u32, &'k [u8])>) -> StripeSet {
        let mut s: StripeSet = keys.map(|(ks, k)| stripe(ks, k)).collect();
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
            // Set the held bit, keeping the stamp: a compare-and-swap from
            // the word last seen, with the bit clear. While the bit is set,
            // each failed attempt writes nothing and reads the newest word.
            let mut seen = w.load(Ordering::Relaxed);
            loop {
                let free = seen & !1;
                match w.compare_exchange(free, free | 1, Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) => break,
                    Err(now) => {
                        if now & 1 == 1 {
                            backoff.snooze();
                        }
                        seen = now;
                    }
                }
            }
        }
        Held {
            latches: self,
            set,
            stamp: 0,
        }
    }

    /// Is `key` certainly unwritten by every commit after `snapshot` with a
    /// timestamp below the caller's? True if its stripe is free and stamped
    /// at or below `snapshot`. The caller (a serializable committer, before
    /// it waits for those commits' installs) took its own timestamp after
    /// them: each such commit latched the stripe before taking its
    /// timestamp (`Oracle::allocate`, a `SeqCst` read-modify-write of the
    /// counter the caller's allocation later read from), so this load sees
    /// its latch or a later word: held, or stamped at least as high as its
    /// timestamp. The ordering rests on that counter being at least
    /// acquire-release. False means "maybe": look in the tree.
    #[inline]
    pub(crate) fn unchanged_since(&self, ks: u32, key: &[u8], snapshot: u64) -> bool {
        let w = self.words[stripe(ks, key) as usize].load(Ordering::Acquire);
        w & 1 == 0 && w >> 1 <= snapshot
    }
}

pub(crate) struct Held<'l> {
    latches: &'l Latches,
    set: StripeSet,
    /// The commit timestamp to stamp the stripes with when they are
    /// unlatched (0: nothing was installed, keep the old stamps).
    stamp: u64,
}

impl Held<'_> {
    /// Writes were installed at commit timestamp `ts` under these stripes.
    /// `ts` is above every stamp they hold: those commits unlatched before
    /// this one latched, so before it took its timestamp.
    pub(crate) fn stamp(&mut self, ts: u64) {
        self.stamp = ts;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        for &i in &self.set {
            let w = &self.latches.words[i as usize];
            if self.stamp > 0 {
                w.store(self.stamp << 1, Ordering::Release);
            } else {
                w.fetch_and(!1, Ordering::Release);
            }
        }
    }
}

/// The stripe of `key` in keyspace `ks` (keyspace 0: the key's hash alone).
fn stripe(ks: u32, key: &[u8]) -> u32 {
    let mix = u64::from(ks).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17);
    ((hash(key) ^ mix) % STRIPES as u64) as u32
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
