//! Zipfian ranks: the algorithm of Gray et al., "Quickly Generating
//! Billion-Record Synthetic Databases" (SIGMOD 1994), as YCSB's
//! `ZipfianGenerator` implements it. Rank 0 is the most popular item; item
//! `i` is drawn with probability proportional to `1 / (i + 1)^theta`.
//!
//! Shared by `bwtx bench` and the benchmarks, so both draw the same ranks.
//! Callers bring their own uniform draws (`rank(u)`).

/// Zipfian generator over ranks `0..n`.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    /// `0.5^theta`: the threshold between ranks 1 and the closed form.
    half_pow_theta: f64,
}

impl Zipf {
    /// YCSB's default skew.
    pub const YCSB_THETA: f64 = 0.99;

    /// A generator over `0..n` with skew `theta` (0 < theta < 1). Computing
    /// zeta(n) takes O(n) (a few milliseconds for a million items).
    pub fn new(n: u64, theta: f64) -> Self {
        assert!(n >= 1, "zipf: need at least one item");
        assert!(theta > 0.0 && theta < 1.0, "zipf: theta must be in (0, 1)");
        let zetan = Self::zeta(n, theta);
        let zeta2 = Self::zeta(2, theta);
        Zipf {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            // Only used when n > 2 (for n <= 2 the two special cases cover
            // every draw), so the division by zero at n = 2 never matters.
            eta: (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan),
            half_pow_theta: 0.5f64.powf(theta),
        }
    }

    /// zeta(n, theta) = sum over i in 1..=n of 1 / i^theta.
    pub fn zeta(n: u64, theta: f64) -> f64 {
        (1..=n).map(|i| (i as f64).powf(-theta)).sum()
    }

    /// The probability of rank `r` (for sanity checks).
    pub fn probability(&self, r: u64) -> f64 {
        ((r + 1) as f64).powf(-self.theta) / self.zetan
    }

    /// The rank for a uniform draw `u` in `[0, 1)`.
    pub fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zetan;
        if uz < 1.0 {
            0
        } else if uz < 1.0 + self.half_pow_theta {
            1.min(self.n - 1)
        } else {
            let r = self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha);
            (r as u64).min(self.n - 1)
        }
    }
}
