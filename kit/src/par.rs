//! The thread fan-out, the stored values and the probe walk of the tree and
//! transaction benchmarks and `examples/load.rs`.

use std::thread;
use std::time::{Duration, Instant};

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

/// `f(v[i])` for `count` consecutive indices from `start`, wrapping around.
#[inline]
pub fn cyclic(v: &[u64], start: usize, count: usize, mut f: impl FnMut(u64)) {
    let mut i = start % v.len();
    for _ in 0..count {
        f(v[i]);
        i += 1;
        if i == v.len() {
            i = 0;
        }
    }
}
