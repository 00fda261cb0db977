//! The tree's tuning knobs ([`Config`]): page and chain sizes, with the
//! smaller leaves of a tree with paging ([`Config::paged`]). How the
//! defaults were chosen: `design/bwtree.md` §10 (in memory) and
//! `design/storage.md` §5.3 (paged leaves).

use crate::{Error, Result};

/// Tuning knobs. See `design/bwtree.md` ("Parameters") for how the defaults
/// were chosen with `benches/tree.rs`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Consolidate a leaf when its delta chain reaches this length.
    pub leaf_chain: u16,
    /// Consolidate an inner page when its delta chain reaches this length.
    pub inner_chain: u16,
    /// Split a leaf above this many keys.
    pub leaf_max: usize,
    /// Merge a leaf into its left sibling below this many keys.
    pub leaf_min: usize,
    /// Split an inner page above this many children.
    pub inner_max: usize,
    /// Merge an inner page below this many children.
    pub inner_min: usize,
    /// Split a leaf whose consolidated size passes this many bytes.
    pub page_bytes: usize,
    /// In a tree with paging (`Options::cache_size`), split a leaf above
    /// this many keys instead, if it is fewer than `leaf_max` (and merge
    /// below `leaf_min` scaled down alike, [`Config::paged`]): a point
    /// fault-in reads and decodes a whole leaf, and a flush that cannot
    /// write a delta rewrites one, so paged leaves are smaller
    /// (`design/storage.md` §5.3 has the measurements).
    pub paged_leaf_max: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            leaf_chain: 8,
            inner_chain: 2,
            leaf_max: 128,
            leaf_min: 16,
            inner_max: 256,
            inner_min: 32,
            page_bytes: 32 * 1024,
            paged_leaf_max: PAGED_LEAF_MAX,
        }
    }
}

/// The largest `leaf_max` and `inner_max` (`Config::validate`).
const MAX_FANOUT: usize = 1 << 16;
/// The largest `page_bytes` (`Config::validate`).
const MAX_PAGE_BYTES: usize = 1 << 30;

/// [`Config::paged_leaf_max`]'s default.
const PAGED_LEAF_MAX: usize = 64;

impl Config {
    /// Tiny pages and chains, so that every structure modification happens
    /// constantly: for tests.
    pub fn tiny() -> Self {
        Config {
            leaf_chain: 3,
            inner_chain: 2,
            leaf_max: 4,
            leaf_min: 2,
            inner_max: 4,
            inner_min: 2,
            page_bytes: 512,
            paged_leaf_max: 4,
        }
    }

    /// The configuration of a tree with paging: `leaf_max` lowered to
    /// `paged_leaf_max` if that is smaller, and `leaf_min` to the same
    /// fraction of it (at least 1, at most half the new `leaf_max`).
    pub fn paged(&self) -> Config {
        let mut cfg = self.clone();
        let paged_max = self.paged_leaf_max;
        if paged_max < cfg.leaf_max {
            // In u128: no product of two usizes overflows it.
            let scaled = cfg.leaf_min as u128 * paged_max as u128 / cfg.leaf_max as u128;
            // Not `clamp`: it panics when `paged_max / 2` is 0 (a
            // `paged_leaf_max` below 2, which `validate` refuses).
            cfg.leaf_min = (scaled as usize).min(paged_max / 2).max(1);
            cfg.leaf_max = paged_max;
        }
        cfg
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.leaf_chain < 1 || self.inner_chain < 1 {
            return Err(Error::InvalidConfig("chain thresholds must be at least 1"));
        }
        if self.leaf_max < 2 || self.inner_max < 3 {
            return Err(Error::InvalidConfig("leaf_max must be >= 2 and inner_max >= 3"));
        }
        if self.leaf_min > self.leaf_max / 2 || self.inner_min > self.inner_max / 2 {
            return Err(Error::InvalidConfig(
                "split thresholds must be at least twice the merge thresholds",
            ));
        }
        if self.paged_leaf_max < 2 {
            return Err(Error::InvalidConfig("paged_leaf_max must be >= 2"));
        }
        if self.page_bytes < 256 {
            return Err(Error::InvalidConfig("page_bytes must be at least 256"));
        }
        // A page's key array and inline values are addressed by `u32`
        // offsets: a leaf of `leaf_max` keys of `MAX_KEY_LEN` bytes must
        // stay far below 4 GiB, and so must what it holds before a split.
        if self.leaf_max > MAX_FANOUT || self.inner_max > MAX_FANOUT || self.page_bytes > MAX_PAGE_BYTES {
            return Err(Error::InvalidConfig(
                "leaf_max and inner_max must be at most 65536, page_bytes at most 1 GiB",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A paged tree splits at `paged_leaf_max` and merges at the same
    /// fraction of it; a configuration already below it is kept; the
    /// result validates.
    #[test]
    fn paged_lowers_the_leaf_size() {
        let d = Config::default();
        let p = d.paged();
        assert_eq!(p.leaf_max, d.paged_leaf_max.min(d.leaf_max));
        assert_eq!(p.leaf_min, (d.leaf_min * p.leaf_max / d.leaf_max).max(1));
        assert!(p.validate().is_ok());
        let tiny = Config::tiny();
        assert_eq!(tiny.paged().leaf_max, tiny.leaf_max);
        let two = Config {
            paged_leaf_max: 2,
            ..Config::default()
        }
        .paged();
        assert_eq!((two.leaf_max, two.leaf_min), (2, 1));
        assert!(two.validate().is_ok());
        let bad = Config {
            paged_leaf_max: 1,
            ..Config::default()
        };
        assert!(bad.validate().is_err());
        // Scaling an unvalidated configuration does not panic (`clamp`
        // with its bounds crossed did).
        for paged_leaf_max in [0, 1] {
            let p = Config {
                paged_leaf_max,
                ..Config::default()
            }
            .paged();
            assert!(p.validate().is_err());
        }
        // Past the offsets' reach: refused.
        for big in [
            Config {
                leaf_max: MAX_FANOUT + 1,
                ..Config::default()
            },
            Config {
                inner_max: usize::MAX,
                ..Config::default()
            },
            Config {
                page_bytes: MAX_PAGE_BYTES + 1,
                ..Config::default()
            },
        ] {
            assert!(big.validate().is_err());
        }
    }
}
