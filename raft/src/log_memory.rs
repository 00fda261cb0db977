//! The log store's entries in memory: those appended but not yet durable
//! (*pending*), and the most recent durable ones (*recent*), so that
//! openraft's reads right after an append (replication to the followers,
//! then apply on every replica) neither read the log `Db` nor decode an entry.
//!
//! **Definitions.** `pending`: entries whose append was queued and whose
//! commit has not returned, by index. `recent`: entries whose commit
//! returned, by index, at most [`RECENT_ENTRIES`] of them and at most
//! [`RECENT_BYTES`] of encoded size (the oldest go first).
//!
//! **Invariants.**
//! - M1. An index is in at most one of the two maps, and the entry there is
//!   the one the log holds at that index (or will hold, once pending): an
//!   append replaces, a truncation from `i` drops both maps' entries from
//!   `i`, a purge up to `p` drops `recent`'s up to `p`.
//! - M2. Every index in `recent` is durable in the log `Db` with the same
//!   entry: the writer moves an entry there only after its commit returned
//!   (under the one mutex, so a reader sees it in one map or the other).
//! - M3. Once an append failed, `lost` is the lowest index it held: no
//!   entry from there on is in either map, or will be (the writer is
//!   poisoned, so nothing from there on becomes durable). The `Db` may
//!   still show them (bwtx publishes a commit whose log append failed, and
//!   poisons itself): readers of the `Db` stop below `lost`.
//!
//! A read serves `[start, end)` from memory only when both maps hold every
//! index of it; otherwise it reads the `Db` for what they lack
//! (`LogStore::read_range`).

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::types::{Entry, LogId};

/// Durable entries kept in memory at most.
pub const RECENT_ENTRIES: usize = 1024;
/// Encoded bytes of the durable entries kept in memory at most (postcard,
/// `keys::encode_entry`: a 7-transfer batch entry is about 500 bytes).
pub const RECENT_BYTES: usize = 8 << 20;

/// The pending and recent entries of one log store (behind one mutex).
#[derive(Default)]
pub(crate) struct Memory {
    pending: BTreeMap<u64, Entry>,
    /// Durable entries with their encoded size.
    recent: BTreeMap<u64, (Entry, usize)>,
    recent_bytes: usize,
    /// The lowest index of a failed append (M3).
    lost: Option<u64>,
}

impl Memory {
    /// An appended entry: pending (replacing any entry at its index).
    pub(crate) fn append(&mut self, e: Entry) {
        if self.lost.is_some_and(|l| e.log_id.index >= l) {
            return;
        }
        if let Some((_, size)) = self.recent.remove(&e.log_id.index) {
            self.recent_bytes -= size;
        }
        self.pending.insert(e.log_id.index, e);
    }

    /// The entry `id` is durable (its commit returned), `size` bytes
    /// encoded: move it from pending to recent, unless a later append
    /// replaced it (after a truncation): then that one stays pending.
    pub(crate) fn durable(&mut self, id: &LogId, size: usize) {
        if self.pending.get(&id.index).is_none_or(|e| e.log_id != *id) {
            return;
        }
        if let Some(e) = self.pending.remove(&id.index) {
            self.recent.insert(id.index, (e, size));
            self.recent_bytes += size;
        }
        while self.recent.len() > RECENT_ENTRIES || self.recent_bytes > RECENT_BYTES {
            match self.recent.pop_first() {
                Some((_, (_, size))) => self.recent_bytes -= size,
                None => break,
            }
        }
    }

    /// Drop every entry with index `>= from` (a truncation).
    pub(crate) fn truncate(&mut self, from: u64) {
        self.pending.split_off(&from);
        for (_, (_, size)) in self.recent.split_off(&from) {
            self.recent_bytes -= size;
        }
    }

    /// Drop the durable entries with index `<= upto` (a purge).
    pub(crate) fn purge(&mut self, upto: u64) {
        let kept = match upto.checked_add(1) {
            Some(next) => self.recent.split_off(&next),
            None => BTreeMap::new(),
        };
        for (_, (_, size)) in std::mem::replace(&mut self.recent, kept) {
            self.recent_bytes -= size;
        }
    }

    /// The append of entries from index `from` on failed (M3).
    pub(crate) fn lost(&mut self, from: u64) {
        self.truncate(from);
        self.lost = Some(self.lost.map_or(from, |l| l.min(from)));
    }

    /// The lowest index of a failed append: no entry from there on is in
    /// the log (M3).
    pub(crate) fn lost_from(&self) -> Option<u64> {
        self.lost
    }

    /// The id of the entry with the highest index held.
    pub(crate) fn last_id(&self) -> Option<LogId> {
        let p = self.pending.last_key_value().map(|(_, e)| e.log_id);
        let r = self.recent.last_key_value().map(|(_, (e, _))| e.log_id);
        match (p, r) {
            (Some(p), Some(r)) => Some(if p.index >= r.index { p } else { r }),
            (p, r) => p.or(r),
        }
    }

    /// The entries held with index in `[start, end)` (`end` `None`:
    /// unbounded), by index.
    pub(crate) fn range(&self, start: u64, end: Option<u64>) -> BTreeMap<u64, Entry> {
        let bounds = (Bound::Included(start), end.map_or(Bound::Unbounded, Bound::Excluded));
        let mut out: BTreeMap<u64, Entry> = self.recent.range(bounds).map(|(i, (e, _))| (*i, e.clone())).collect();
        out.extend(self.pending.range(bounds).map(|(i, e)| (*i, e.clone())));
        out
    }

    /// Pending entries (for tests).
    #[cfg(test)]
    fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{log_id, EntryPayload};

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: log_id(term, 1, index),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(m: &Memory, start: u64, end: Option<u64>) -> Vec<(u64, u64)> {
        m.range(start, end)
            .into_values()
            .map(|e| (e.log_id.index, e.log_id.leader_id.term))
            .collect()
    }

    #[test]
    fn durable_entries_stay_readable_until_trimmed_truncated_or_purged() {
        let mut m = Memory::default();
        for i in 1..=4 {
            m.append(entry(1, i));
        }
        for i in 1..=3 {
            m.durable(&entry(1, i).log_id, 10);
        }
        assert_eq!(m.pending_len(), 1);
        assert_eq!(indexes(&m, 1, None), vec![(1, 1), (2, 1), (3, 1), (4, 1)]);
        // A truncation from 3 and a new term's entry at 3.
        m.truncate(3);
        m.append(entry(2, 3));
        // The old entry 3's late durability does not displace the new one.
        m.durable(&entry(1, 3).log_id, 10);
        assert_eq!(m.pending_len(), 1, "the new entry 3 is not durable yet");
        assert_eq!(indexes(&m, 2, Some(4)), vec![(2, 1), (3, 2)]);
        assert_eq!(m.last_id(), Some(entry(2, 3).log_id));
        m.purge(2);
        assert_eq!(indexes(&m, 0, None), vec![(3, 2)]);
        assert_eq!(m.recent_bytes, 0);
    }

    #[test]
    fn recent_is_bounded_by_count_and_bytes() {
        let mut m = Memory::default();
        let n = RECENT_ENTRIES as u64 + 10;
        for i in 1..=n {
            m.append(entry(1, i));
            m.durable(&entry(1, i).log_id, 1);
        }
        assert_eq!(m.recent.len(), RECENT_ENTRIES);
        assert_eq!(m.range(0, None).keys().next(), Some(&11));
        m.append(entry(1, n + 1));
        m.durable(&entry(1, n + 1).log_id, RECENT_BYTES);
        // The big one alone fits the byte bound; every older one went.
        assert_eq!(m.range(0, None).keys().copied().collect::<Vec<_>>(), vec![n + 1]);
        assert_eq!(m.recent_bytes, RECENT_BYTES);
    }
}
