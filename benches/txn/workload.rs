//! The data and the key sequences every engine is driven with: distinct
//! random keys, and uniform and zipfian probe sequences over them.

use bwtx_kit::rng::mix;
use bwtx_kit::Zipf;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::engines::READS;

pub(crate) const THREADS: [usize; 2] = [1, 2];

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dist {
    Uniform,
    Zipf,
}

impl Dist {
    pub(crate) const ALL: [Dist; 2] = [Dist::Uniform, Dist::Zipf];
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dist::Uniform => "uniform",
            Dist::Zipf => "zipf",
        }
    }
}

pub(crate) struct Workload {
    /// Distinct keys, in random order.
    pub(crate) keys: Vec<u64>,
    /// Key sequences to operate on, per distribution (`Dist as usize`); their
    /// length is a multiple of `READS`.
    pub(crate) probes: [Vec<u64>; 2],
}

impl Workload {
    pub(crate) fn new(n: usize) -> Self {
        let keys: Vec<u64> = (0..n as u64).map(|i| mix(i ^ 0x6277_7478)).collect();
        let len = n.max(READS).div_ceil(READS) * READS;
        let mut rng = SmallRng::seed_from_u64(0x7478_6e73);
        let uniform = (0..len).map(|_| keys[rng.gen_range(0..n)]).collect();
        let zipf = Zipf::new(n as u64, Zipf::YCSB_THETA);
        let zipfian = (0..len).map(|_| keys[zipf.rank(rng.gen::<f64>()) as usize]).collect();
        Workload {
            keys,
            probes: [uniform, zipfian],
        }
    }

    pub(crate) fn probes(&self, d: Dist) -> &[u64] {
        &self.probes[d as usize]
    }

    /// How often the hottest key occurs in the zipfian sequence, and how
    /// often it should.
    pub(crate) fn zipf_top_share(&self) -> (f64, f64) {
        let p = self.probes(Dist::Zipf);
        let top = p.iter().filter(|&&k| k == self.keys[0]).count();
        let expected = Zipf::new(self.keys.len() as u64, Zipf::YCSB_THETA).probability(0);
        (top as f64 / p.len() as f64, expected)
    }
}

/// The keys of read-only transaction number `txn`.
#[inline]
pub(crate) fn ten(probes: &[u64], txn: usize) -> &[u64] {
    let i = (txn * READS) % probes.len();
    &probes[i..i + READS]
}
