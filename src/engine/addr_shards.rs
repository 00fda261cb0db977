//! [`AddrShards`]: an [`AddrMap`] split into [`SHARDS`] maps, each behind
//! its own mutex, whose prune rebuilds each shard instead of deleting in
//! place. The page file's chain map (`super::chain_map`) is one.
//!
//! Why (measured 2026-12-04, heaptrack of `cargo run --release --example
//! rss -- D 5000000 67108864 30`): the chain map was one `AddrMap` of about
//! 155,700 heads at 5M keys, 113 bytes a bucket, in a table of 262,144
//! buckets (29.6 MB). Its prunes deleted in place (`retain`), which leaves
//! tombstones, and hashbrown counts tombstones against the room a table
//! has left. Once entries and tombstones used that room up, an insert found
//! the table more than half full of live entries, so hashbrown grew it to
//! 524,288 buckets (59 MB) instead of rehashing it in place, copying from
//! the old table while both were allocated; the next prune's shrink then
//! allocated a 29.6 MB table beside the 59 MB one. The heap's peak held 95
//! MB of chain-map tables, a third of it.
//!
//! Here [`AddrShards::prune`] moves each shard's kept entries into a fresh
//! table with room for the growth the caller allows before its next prune:
//! no tombstones, so no growth between prunes as long as the caller prunes
//! by then, and a rebuild holds two tables of one shard (a sixteenth of the
//! map), never of the whole map.
//!
//! Invariants
//! - S1. A key is only ever in the shard [`shard_of`] names.
//! - S2. No code holds two shards' locks at once: there is no lock order
//!   to keep. An operation over every shard ([`AddrShards::len`],
//!   [`AddrShards::prune`], [`AddrShards::for_each`]) sees each shard at a
//!   different instant. A caller that needs more (no prune between reading
//!   heads and looking them up) holds a lock of its own around both: the
//!   page file's `prunes`.

use super::chain_parts::AddrMap;
use crate::sync::{lock, Mutex, MutexGuard};

/// Shards of an [`AddrShards`] (a power of two).
pub(crate) const SHARDS: usize = 16;

/// The shard of `addr`: the top bits of a multiplicative hash of the
/// address, independent of [`super::chain_parts::AddrHasher`]'s (whose low
/// bits pick a bucket inside the shard and whose top seven are hashbrown's
/// control bytes), so that every shard's table still spreads its keys.
pub(crate) fn shard_of(addr: u64) -> usize {
    ((addr >> 3).wrapping_mul(0xD6E8_FEB8_6659_FD93) >> (64 - SHARDS.trailing_zeros())) as usize
}

/// An [`AddrMap`] in [`SHARDS`] shards (module doc). The shards are on
/// the heap: inline, the page file's two maps made it large enough that
/// loom's model threads, which run on small stacks, overflowed them.
pub(crate) struct AddrShards<V> {
    shards: Box<[Mutex<AddrMap<V>>]>,
}

impl<V> Default for AddrShards<V> {
    fn default() -> Self {
        AddrShards {
            shards: (0..SHARDS).map(|_| Mutex::new(AddrMap::default())).collect(),
        }
    }
}

impl<V> AddrShards<V> {
    /// The shard that holds `addr` (S1), locked.
    pub(crate) fn shard(&self, addr: u64) -> MutexGuard<'_, AddrMap<V>> {
        lock(&self.shards[shard_of(addr)])
    }

    /// Entries over every shard.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Entries the shards hold without growing, over every shard (tests).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.shards.iter().map(|s| lock(s).capacity()).sum()
    }

    /// Call `f` on every entry, one shard at a time.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u64, &V)) {
        for s in &self.shards {
            for (&k, v) in lock(s).iter() {
                f(k, v);
            }
        }
    }

    /// Take every shard's map out, leaving empty ones in their place (a
    /// walk over the maps that lets inserts go on meanwhile; give them back
    /// with [`AddrShards::put_back`]). `maps[i]` is shard `i`'s
    /// ([`shard_of`]).
    pub(crate) fn take_all(&self) -> Vec<AddrMap<V>> {
        self.shards.iter().map(|s| std::mem::take(&mut *lock(s))).collect()
    }

    /// Put back maps taken by [`AddrShards::take_all`], with the entries
    /// inserted since added to them (S1: `maps[i]` holds only keys of shard
    /// `i`).
    pub(crate) fn put_back(&self, maps: Vec<AddrMap<V>>) {
        for (shard, map) in self.shards.iter().zip(maps) {
            let mut now = lock(shard);
            let newer = std::mem::replace(&mut *now, map);
            now.extend(newer);
        }
    }

    /// Keep the entries `keep` accepts; each shard is rebuilt into a fresh
    /// table that holds its `n` kept entries and `room(n)` more without
    /// growing (no tombstones left behind: module doc). Returns the entries
    /// kept.
    pub(crate) fn prune(&self, mut keep: impl FnMut(u64, &V) -> bool, room: impl Fn(usize) -> usize) -> usize {
        let mut kept = 0;
        for s in &self.shards {
            let mut map = lock(s);
            map.retain(|&k, v| keep(k, v));
            let n = map.len();
            rebuild(&mut map, room(n));
            kept += n;
        }
        kept
    }
}

/// Move `map`'s entries into a fresh table with room for `room` more:
/// after deletions in place (`retain`), a table whose tombstones used up
/// its room grows to twice its buckets at the next insert once more than
/// half of them hold entries (module doc); a fresh table has none.
pub(crate) fn rebuild<V>(map: &mut AddrMap<V>, room: usize) {
    let mut fresh = AddrMap::with_capacity_and_hasher(map.len() + room, Default::default());
    fresh.extend(map.drain());
    *map = fresh;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Page-store addresses as the page file writes them: segment numbers
    /// from 1, 8-aligned offsets.
    fn addrs(n: u64) -> impl Iterator<Item = u64> {
        (0..n).map(|i| ((1 + i / 4096) << 32) | ((i % 4096) * 136))
    }

    #[test]
    fn every_address_finds_its_entry_and_the_shards_share_them() {
        let map = AddrShards::default();
        for a in addrs(20_000) {
            map.shard(a).insert(a, a ^ 7);
        }
        assert_eq!(map.len(), 20_000);
        for a in addrs(20_000) {
            assert_eq!(map.shard(a).get(&a), Some(&(a ^ 7)));
        }
        // Spread: every shard holds between half and twice its share.
        for s in &map.shards {
            let n = lock(s).len();
            assert!((625..=2_500).contains(&n), "a shard holds {n} of 20,000");
        }
        let mut seen = 0;
        map.for_each(|k, v| {
            assert_eq!(*v, k ^ 7);
            seen += 1;
        });
        assert_eq!(seen, 20_000);
    }

    /// The chain map's cycle: prune to the current heads, then add a
    /// quarter more before the next prune. With deletions in place the
    /// tables grew to twice the room needed (tombstones); rebuilt, they
    /// never grow between prunes.
    #[test]
    fn a_prune_leaves_room_for_the_growth_until_the_next_one() {
        let map = AddrShards::default();
        let mut all = addrs(400_000);
        let mut live: Vec<u64> = all.by_ref().take(80_000).collect();
        for &a in &live {
            map.shard(a).insert(a, ());
        }
        for round in 0..8 {
            // Replace a quarter of the heads (delta flushes on them).
            let n = live.len();
            let fresh: Vec<u64> = all.by_ref().take(n / 4).collect();
            let current: std::collections::HashSet<u64> = live[n / 4..].iter().chain(&fresh).copied().collect();
            let kept = map.prune(|k, _| current.contains(&k), |n| n / 4 + 64);
            assert_eq!(kept, 80_000 - n / 4, "round {round}");
            let cap = map.capacity();
            for &a in &fresh {
                map.shard(a).insert(a, ());
            }
            assert_eq!(map.capacity(), cap, "round {round}: a table grew between prunes");
            assert!(cap < 2 * 80_000, "round {round}: capacity {cap} for 80,000 entries");
            live = current.into_iter().collect();
        }
    }
}
