//! The thread fan-out and the stored values of the tree and transaction
//! benchmarks and `examples/load.rs`.

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
