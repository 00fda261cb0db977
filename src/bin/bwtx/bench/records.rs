//! Records and operations: the keys every engine stores, how a record is
//! chosen (uniform, scrambled zipfian, latest), the operations a planned
//! transaction is made of, and the values they write.

use bwtx_kit::{SplitMix64, Zipf};

use super::Distribution;

/// Initial balance of each bank account.
pub const BALANCE: u64 = 1000;

/// Record indexes stay below this, so every key has the same width.
pub const MAX_RECORDS: u64 = 1_000_000_000_000;

/// A record's key: `user` and 12 decimal digits (YCSB's `user<n>`, fixed
/// width so key order is record order), built on the stack: a heap `String`
/// per operation would add the same cost to every engine and blur the
/// differences between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key([u8; 16]);

impl Key {
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    pub fn into_bytes(self) -> Vec<u8> {
        self.0.to_vec()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The key of record `i` (`i < MAX_RECORDS`).
pub fn key(i: u64) -> Key {
    debug_assert!(i < MAX_RECORDS);
    Key(bwtx_kit::ycsb::key(i))
}

/// Chooses existing records.
pub struct Chooser {
    pub dist: Distribution,
    pub zipf: Option<Zipf>,
    /// The records the scrambled zipfian spreads its ranks over: the
    /// loaded ones, fixed for the run, so that each rank stays on one
    /// record while inserts add more (YCSB's chooser spans a fixed range
    /// too). Before 2026-12-07 the ranks were spread over the records
    /// inserted so far, so every insert moved every hot rank to another
    /// record, and workload E's scans started almost uniformly.
    pub space: u64,
}

impl Chooser {
    /// A record among the `count` inserted so far.
    pub fn pick(&self, rng: &mut SplitMix64, count: u64) -> u64 {
        let count = count.max(1);
        match (self.dist, &self.zipf) {
            (Distribution::Uniform, _) | (_, None) => rng.below(count),
            (Distribution::Zipfian, Some(z)) => {
                let i = bwtx_kit::ycsb::fnv(z.rank(rng.f64())) % self.space.max(1);
                // (Fewer records than loaded: only a run that deleted some.)
                if i < count {
                    i
                } else {
                    i % count
                }
            }
            (Distribution::Latest, Some(z)) => count - 1 - (z.rank(rng.f64()) % count),
        }
    }
}

/// One operation of a planned transaction.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// Read record `i`.
    Read(u64),
    /// Overwrite record `i`.
    Update(u64),
    /// Insert a new record (its index is chosen at each attempt).
    Insert(u64),
    /// Read up to `len` records from record `i` on.
    Scan(u64, u64),
    /// Read record `i` and write it back changed.
    Rmw(u64),
    /// Move up to `amount` from account `a` to account `b`.
    Transfer(u64, u64, u64),
}

/// The balance stored in a bank record (0 if malformed).
pub fn balance_of(v: &[u8]) -> u64 {
    <[u8; 8]>::try_from(v).map_or(0, u64::from_le_bytes)
}

/// The value a read-modify-write writes back, given what it read.
pub fn rmw_value(read: Option<&[u8]>, value: &[u8]) -> Vec<u8> {
    let mut v = read.unwrap_or(value).to_vec();
    if let Some(b) = v.first_mut() {
        *b = b.wrapping_add(1);
    }
    v
}

/// Whether a transaction only reads.
#[cfg(feature = "bench-peers")]
pub fn read_only(ops: &[Op]) -> bool {
    ops.iter().all(|op| matches!(op, Op::Read(_) | Op::Scan(..)))
}

#[cfg(test)]
mod tests {
    use bwtx_kit::{SplitMix64, Zipf};

    use super::{Chooser, Distribution};

    /// An insert does not move the hot records: the same draws pick the
    /// same records with one record more.
    #[test]
    fn the_zipfian_hot_records_stay_put_as_records_are_inserted() {
        let n = 100_000;
        let chooser = Chooser {
            dist: Distribution::Zipfian,
            zipf: Some(Zipf::new(n, 0.99)),
            space: n,
        };
        let picks = |count| {
            let mut rng = SplitMix64::new(1);
            (0..10_000).map(|_| chooser.pick(&mut rng, count)).collect::<Vec<_>>()
        };
        let (before, after) = (picks(n), picks(n + 1));
        let same = before.iter().zip(&after).filter(|(a, b)| a == b).count();
        assert_eq!(same, before.len(), "{same} of {} picks unchanged", before.len());
        assert!(before.iter().all(|&i| i < n));
    }
}
