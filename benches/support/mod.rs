//! Shared by `benches/tree.rs`, `benches/txn.rs` and `examples/load.rs`
//! (included with `#[path]` there): a counting global allocator, the value
//! function, the thread fan-out they measure with, and a zipfian generator.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Counting allocator: tracks live heap bytes while `COUNTING` is on. Off, its
// only cost is one relaxed load of a read-mostly flag, so timed runs do not
// contend on a shared counter.

struct Counting;

pub static COUNTING: AtomicBool = AtomicBool::new(false);
pub static LIVE: AtomicIsize = AtomicIsize::new(0);

#[inline]
fn count(delta: isize) {
    if COUNTING.load(Relaxed) {
        LIVE.fetch_add(delta, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed through.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap bytes allocated (net) while `f` runs, and its result.
pub fn heap_delta<T>(f: impl FnOnce() -> T) -> (T, isize) {
    LIVE.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let out = f();
    COUNTING.store(false, Relaxed);
    (out, LIVE.load(Relaxed))
}

/// The 8-byte value stored under `key` by every engine.
pub fn value_of(key: u64) -> u64 {
    key.rotate_left(17) | 1
}

/// Run ops `0..ops` split into contiguous shares over `threads` threads
/// (`f(begin, end)` per thread); the wall-clock time of the whole.
pub fn par(threads: usize, ops: usize, f: impl Fn(usize, usize) + Sync) -> Duration {
    let start = Instant::now();
    if threads == 1 {
        f(0, ops);
    } else {
        let f = &f;
        thread::scope(|s| {
            for t in 0..threads {
                let (b, e) = (ops * t / threads, ops * (t + 1) / threads);
                s.spawn(move || f(b, e));
            }
        });
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------
// Zipfian ranks: the algorithm of Gray et al., "Quickly Generating
// Billion-Record Synthetic Databases" (SIGMOD 1994), as YCSB's
// `ZipfianGenerator` implements it. Rank 0 is the most popular item; item `i`
// is drawn with probability proportional to `1 / (i + 1)^theta`.

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

    /// A random rank.
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        self.rank(rng.gen::<f64>())
    }
}
