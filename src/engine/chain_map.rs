//! The page file's chain map (`design/storage.md` §4, §5.4, §5.7): what
//! [`PageFile`] knows of each on-disk chain, by its head address
//! ([`ChainMeta`]: its parts, sizes, newest timestamps and the extra records
//! its reads read), the look-ups that use it (a flush's `chain_upto`, a
//! read's [`ChainLens`], a clean eviction's [`CleanEviction`], a stub's
//! read hint), and its pruning to the heads the mapping tables name.
//! Split from `super::pages`, which writes the chains.
//!
//! Every write of a chain head adds an entry ([`PageFile::remember`]); the
//! evictor, and a checkpoint before and during its phase 1 flushes, prune
//! the map once it grew by a quarter ([`PageFile::prune_chains`]), and a
//! checkpoint's deletion forgets the chains it no longer references
//! (`PageFile::delete_unreferenced`). The map is in shards
//! ([`super::addr_shards`]), each rebuilt by a prune into a table with room
//! for the growth until the next one, so a table grows between prunes only
//! if the map outgrows the prune's trigger before a prune runs.

use super::addr_shards::SHARDS;
use super::chain_parts::{AddrList, AddrSet, Parts};
use super::pages::PageFile;
use crate::bwtree::CleanEviction;
use crate::pagestore::record::record_bytes;
use crate::sync::{lock, Ordering};

/// The chain map is pruned again once it holds a `1 / PRUNE_GROWTH` more
/// entries than its last prune kept (or [`PRUNE_SLACK`] more, if that is
/// more): at most about 1.25 entries per chain head, so that the map's
/// tables stay at the power of two above that instead of growing to four
/// times the heads between prunes (30 MB instead of 59 at 5M keys, 155,000
/// leaves, measured when a bucket took 121 bytes; with [`Stored`], 57).
const PRUNE_GROWTH: u64 = 4;

/// See [`PRUNE_GROWTH`].
const PRUNE_SLACK: u64 = 1024;

/// The room a pruned shard of the chain map keeps for its `n` entries to
/// grow before the next prune: the growth that triggers one
/// ([`PRUNE_GROWTH`], or the shard's share of [`PRUNE_SLACK`]) and a
/// sixteenth more, since one shard may grow faster than the map and the
/// evictor looks only every round (`super::addr_shards`). Tables are
/// powers of two, so most have more.
pub(super) fn prune_room(n: usize) -> usize {
    (n / PRUNE_GROWTH as usize).max(PRUNE_SLACK as usize / SHARDS) + n / 16
}

/// What the file knows of one on-disk chain, by its head address.
#[derive(Clone, Debug)]
pub(super) struct ChainMeta {
    /// The newest version timestamp in the chain (its `upto`).
    pub(super) max_ts: u64,
    /// The newest version timestamp in its base image.
    pub(super) base_max_ts: u64,
    /// The parts' addresses, the base image first.
    pub(super) parts: Parts,
    /// Payload bytes of the base image.
    pub(super) base_bytes: u64,
    /// Payload bytes of the delta flushes.
    pub(super) delta_bytes: u64,
    /// Records read beyond the first by reads of the whole chain
    /// (read-throughs, fault-ins, key-set reads): `parts - 1` each. A clean
    /// page on a chain whose count reached one per
    /// [`REWRITE_BYTES_PER_READ`] of its bytes is written whole when
    /// evicted (P8 in `bwtree::paging`).
    pub(super) extra_reads: u32,
}

/// A [`ChainMeta`] as the chain map stores it, by its head address: 48
/// bytes (56 with the key) where the [`ChainMeta`] took 112 (its [`Parts`]
/// inline), so a bucket of the map's tables is 57 bytes instead of 121:
/// 14.9 MB instead of 31.7 for the 262,144 buckets of 5M keys' 155,000
/// leaves. Most chains are one part, their head; only longer ones allocate
/// their parts (at most [`crate::bwtree::FLUSH_CHAIN`] addresses).
#[derive(Debug)]
pub(super) struct Stored {
    max_ts: u64,
    base_max_ts: u64,
    delta_bytes: u64,
    /// A record's payload length is a `u32` (`crate::pagestore::record`).
    base_bytes: u32,
    extra_reads: u32,
    /// The parts, base first, unless they are the head alone.
    parts: Option<Box<[u64]>>,
}

impl Stored {
    /// `meta` of the chain at `head`, to be stored.
    fn of(head: u64, meta: &ChainMeta) -> Self {
        Stored {
            max_ts: meta.max_ts,
            base_max_ts: meta.base_max_ts,
            delta_bytes: meta.delta_bytes,
            base_bytes: u32::try_from(meta.base_bytes).unwrap_or(u32::MAX),
            extra_reads: meta.extra_reads,
            parts: (*meta.parts != [head]).then(|| meta.parts.to_vec().into_boxed_slice()),
        }
    }

    /// The parts of the chain at `head` (this entry's key), base first.
    pub(super) fn parts(&self, head: u64) -> Parts {
        match &self.parts {
            None => Parts::of(&[head]),
            Some(p) => Parts::of(p),
        }
    }

    /// How many parts the chain has.
    fn parts_len(&self) -> usize {
        self.parts.as_ref().map_or(1, |p| p.len())
    }

    /// The whole [`ChainMeta`] of the chain at `head` (this entry's key).
    pub(super) fn meta(&self, head: u64) -> ChainMeta {
        ChainMeta {
            max_ts: self.max_ts,
            base_max_ts: self.base_max_ts,
            parts: self.parts(head),
            base_bytes: u64::from(self.base_bytes),
            delta_bytes: self.delta_bytes,
            extra_reads: self.extra_reads,
        }
    }
}

/// The record lengths a read of a whole chain takes from the chain map
/// ([`PageFile::chain_for_read`]), so that it reads each of those parts
/// with one positional read and no look-up of the record lengths
/// (`CleanState::len_of`, another mutex and hash look-up a part).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ChainLens {
    /// The head part's record bytes: known for a chain of one part (its
    /// base image) or two (its one delta flush holds all the delta bytes).
    pub(super) head: Option<u64>,
    /// The base image's address and record bytes.
    pub(super) base: Option<(u64, u64)>,
}

impl ChainLens {
    /// What `meta` tells of the record lengths of its chain at `head`.
    fn of_meta(head: u64, meta: &Stored) -> Self {
        let base = record_bytes(meta.base_bytes as usize);
        ChainLens {
            head: match meta.parts_len() {
                1 => Some(base),
                // The one delta flush holds every delta byte.
                2 => Some(record_bytes(meta.delta_bytes as usize)),
                _ => None,
            },
            base: meta.parts(head).first().map(|&a| (a, base)),
        }
    }

    /// The lengths of a one-part chain at `head` of `bytes` record bytes (a
    /// stub's hint).
    fn one_part(head: u64, bytes: u64) -> Self {
        ChainLens {
            head: Some(bytes),
            base: Some((head, bytes)),
        }
    }

    /// The record bytes of the part at `at` of the chain at `head`, if known.
    pub(super) fn of(&self, head: u64, at: u64) -> Option<u64> {
        if at == head {
            return self.head;
        }
        self.base.filter(|b| b.0 == at).map(|b| b.1)
    }
}

/// The chain bytes one extra record read (see [`ChainMeta::extra_reads`])
/// is worth: a clean page's eviction writes its chain whole
/// (`PageIo::clean_eviction`, `design/storage.md` §5.7) once reads of it
/// have read one extra record per `REWRITE_BYTES_PER_READ` bytes of the
/// chain: about 9 for a leaf of 4.5 KB on a two-part chain, whose reads
/// bring it in after six read-throughs and a fault-in
/// (`bwtree::read_through`), so the first clean eviction after that keeps
/// the chain and a second turn of such reads has it written whole. In the
/// spirit of LevelDB's
/// seek-triggered compaction: a chain read often enough before its next
/// change is worth one image write. Measured against 128 and 256 (fewer
/// rewrites: less gain on reads, less write amplification under YCSB B)
/// in §5.7.
pub(crate) const REWRITE_BYTES_PER_READ: u64 = 512;

impl PageFile {
    /// Every part of the chains at `heads` that this file knows (a head it
    /// does not know stands for itself). Gathered into a vector, sorted and
    /// deduplicated in place ([`AddrList`]): the cleaners' passes and the
    /// checkpoint call this with every page's head.
    /// Holds [`PageFile::prunes`] while it reads `heads` (the callers pass
    /// the mapping tables' addresses lazily) and looks them up.
    pub(crate) fn chain_parts(&self, heads: impl IntoIterator<Item = u64>) -> AddrList {
        let _prunes = lock(&self.prunes);
        let mut out = Vec::new();
        for head in heads {
            match self.chains.shard(head).get(&head) {
                Some(meta) => out.extend(meta.parts(head).iter().copied()),
                None => out.push(head),
            }
        }
        out.into_iter().collect()
    }

    /// The parts of the one chain at `head` (itself if this file does not
    /// know it): [`PageFile::chain_parts`] without a set.
    pub(crate) fn parts_of(&self, head: u64) -> Parts {
        self.chains
            .shard(head)
            .get(&head)
            .map_or_else(|| Parts::of(&[head]), |meta| meta.parts(head))
    }

    /// Has the chain map grown by a quarter ([`PRUNE_GROWTH`]) since the
    /// last prune or checkpoint? Each page write adds an entry, and most name heads a
    /// later write superseded ([`PageFile::prune_chains`]).
    pub(crate) fn chains_want_prune(&self) -> bool {
        let kept = self.chains_kept.load(Ordering::Relaxed);
        self.chains.len() as u64 > kept + (kept / PRUNE_GROWTH).max(PRUNE_SLACK)
    }

    /// Forget the chains whose head `current` does not name, and the record
    /// lengths of every address that is no part of a chain kept nor in
    /// `current` (the segment cleaner reads a forgotten one's header again).
    /// `current`: every head the mapping tables name now.
    ///
    /// The caller holds evictions off and the value log's checkpoint cycle,
    /// and is either not a checkpoint or a checkpoint in its phase 1 between
    /// two batches of flushes (`Engine::checkpoint`: its own flushes done,
    /// no leaf listed yet): then no delta flush is written and not yet named
    /// by a mapping table, and a head that no mapping table names
    /// now is never named again (a table only takes new addresses), so no
    /// later checkpoint keeps it and [`PageFile::delete_unreferenced`]
    /// never meets a delta head it has forgotten. A base image head written
    /// meanwhile (a cleaner's copy, a fault-in's read) may be forgotten: a
    /// head of this run that the map does not know is taken for a base
    /// image, which it is; a page building on it writes a whole image next.
    /// So the map holds at most about 1.25 times the heads the mapping
    /// tables name ([`PRUNE_GROWTH`]; one entry per leaf), whatever the
    /// writes between checkpoints.
    pub(crate) fn prune_chains(&self, current: &AddrSet) {
        let _prunes = lock(&self.prunes);
        let kept = self.chains.prune(|head, _| current.contains(&head), prune_room);
        let mut parts = AddrSet::default();
        self.chains
            .for_each(|head, m| parts.extend(m.parts(head).iter().copied()));
        self.chains_kept.store(kept as u64, Ordering::Relaxed);
        self.clean.retain_lens(|a| parts.contains(&a) || current.contains(&a));
    }

    /// Entries in the chain map (tests).
    #[cfg(test)]
    pub(crate) fn chains_len(&self) -> usize {
        self.chains.len()
    }

    /// Entries the chain map's table holds without growing (tests).
    #[cfg(test)]
    pub(crate) fn chains_capacity(&self) -> usize {
        self.chains.capacity()
    }

    pub(super) fn remember(&self, head: u64, meta: ChainMeta) {
        self.chains
            .shard(head)
            .entry(head)
            .or_insert_with(|| Stored::of(head, &meta));
        #[cfg(test)]
        self.chains_peak.fetch_max(self.chains.len() as u64, Ordering::Relaxed);
    }

    /// The chain at `head`, if this file knows it.
    pub(super) fn chain(&self, head: u64) -> Option<ChainMeta> {
        self.chains.shard(head).get(&head).map(|c| c.meta(head))
    }

    /// `PageIo::chain_upto` (head addresses are unique over every tree).
    pub(crate) fn chain_upto(&self, head: u64) -> Option<u64> {
        self.chains.shard(head).get(&head).map(|c| c.max_ts)
    }

    /// `PageIo::clean_eviction`: rewrite the chain at `head` if it has more
    /// than one part and reads of it read a record beyond the first per
    /// [`REWRITE_BYTES_PER_READ`] of its bytes; else keep it, with its read
    /// hint ([`PageFile::read_hint`]). One look-up.
    pub(crate) fn clean_eviction(&self, head: u64) -> CleanEviction {
        match self.chains.shard(head).get(&head) {
            Some(c)
                if c.parts_len() > 1
                    && u64::from(c.extra_reads) * REWRITE_BYTES_PER_READ >= u64::from(c.base_bytes) + c.delta_bytes =>
            {
                CleanEviction::Rewrite
            }
            meta => CleanEviction::Keep {
                hint: meta.map_or(0, |m| hint_of(head, m)),
            },
        }
    }

    /// Look up the chain at `head` for a read of all its parts, and count
    /// the records it reads beyond the first ([`ChainMeta::extra_reads`]):
    /// `None` if this file does not know the chain, else the record lengths
    /// it knows ([`ChainLens`]).
    pub(super) fn chain_for_read(&self, head: u64) -> Option<ChainLens> {
        #[cfg(test)]
        self.read_lookups.fetch_add(1, Ordering::Relaxed);
        let mut chains = self.chains.shard(head);
        let meta = chains.get_mut(&head)?;
        let extra = meta.parts_len().saturating_sub(1);
        meta.extra_reads = meta.extra_reads.saturating_add(extra as u32);
        Some(ChainLens::of_meta(head, meta))
    }

    /// The record lengths a read of the chain at `head` starts with: from
    /// the stub's `hint` (the record bytes of a one-part chain,
    /// `PageIo::read_hint`), or else from [`PageFile::chain_for_read`]
    /// (`None`: the file does not know the chain).
    pub(super) fn lens_for(&self, head: u64, hint: u32) -> Option<ChainLens> {
        match hint {
            0 => self.chain_for_read(head),
            bytes => Some(ChainLens::one_part(head, u64::from(bytes))),
        }
    }

    /// [`crate::bwtree::PageIo::read_hint`]: the record bytes of the chain at
    /// `head` if it is one part this file knows, else 0.
    pub(crate) fn read_hint(&self, head: u64) -> u32 {
        self.chains.shard(head).get(&head).map_or(0, |m| hint_of(head, m))
    }
}

/// A stub's read hint for the chain at `head` that `meta` describes: its
/// record bytes if it is one part, else 0.
fn hint_of(head: u64, meta: &Stored) -> u32 {
    match ChainLens::of_meta(head, meta).head {
        Some(bytes) if meta.parts_len() == 1 => u32::try_from(bytes).unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(parts: &[u64]) -> ChainMeta {
        ChainMeta {
            max_ts: 9,
            base_max_ts: 7,
            parts: Parts::of(parts),
            base_bytes: 4000,
            delta_bytes: 300,
            extra_reads: 2,
        }
    }

    #[test]
    fn a_stored_entry_is_small_and_gives_back_its_chain() {
        assert!(
            std::mem::size_of::<Stored>() <= 48,
            "{} bytes",
            std::mem::size_of::<Stored>()
        );
        for parts in [&[64u64][..], &[8, 64], &[8, 16, 24, 64]] {
            let head = *parts.last().unwrap();
            let s = Stored::of(head, &meta(parts));
            assert_eq!(s.parts_len(), parts.len());
            assert_eq!(s.parts.is_none(), parts.len() == 1, "one-part chains allocate nothing");
            let back = s.meta(head);
            assert_eq!(&*back.parts, parts);
            assert_eq!(
                (
                    back.max_ts,
                    back.base_max_ts,
                    back.base_bytes,
                    back.delta_bytes,
                    back.extra_reads
                ),
                (9, 7, 4000, 300, 2)
            );
        }
        // A part list that does not end at the key is kept whole.
        let s = Stored::of(64, &meta(&[8]));
        assert_eq!(&*s.parts(64), &[8]);
    }

    #[test]
    fn read_lengths_come_from_the_stored_entry() {
        let one = Stored::of(64, &meta(&[64]));
        let lens = ChainLens::of_meta(64, &one);
        assert_eq!(lens.of(64, 64), Some(record_bytes(4000)));
        assert_eq!(hint_of(64, &one), record_bytes(4000) as u32);
        let two = Stored::of(64, &meta(&[8, 64]));
        let lens = ChainLens::of_meta(64, &two);
        assert_eq!(lens.of(64, 64), Some(record_bytes(300)));
        assert_eq!(lens.of(64, 8), Some(record_bytes(4000)));
        assert_eq!(hint_of(64, &two), 0);
        let three = Stored::of(64, &meta(&[8, 16, 64]));
        assert_eq!(ChainLens::of_meta(64, &three).of(64, 64), None);
    }
}
