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

// Zipfian ranks: one implementation for the benchmarks and `bwtx bench`.
#[path = "../../src/bin/bwtx/zipf.rs"]
mod zipf;
#[allow(unused_imports)] // only benches/txn.rs draws zipfian ranks
pub use zipf::Zipf;
