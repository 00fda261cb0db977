//! A counting global allocator: tracks live heap bytes and the number of
//! allocations while [`COUNTING`] is on. Off, its only cost is one relaxed load of a read-mostly flag, so timed
//! runs do not contend on a shared counter.
//!
//! A library cannot choose a binary's allocator for it, so each benchmark or
//! example that wants heap figures installs it itself:
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: bwtx_kit::alloc::Counting = bwtx_kit::alloc::Counting;
//! # fn main() {}
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering::Relaxed};

/// The allocator: [`System`]'s, counting while [`COUNTING`] is on.
pub struct Counting;

/// Whether allocations are counted now.
pub static COUNTING: AtomicBool = AtomicBool::new(false);
/// Net bytes allocated while counting.
pub static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The highest [`LIVE`] reached (a caller may reset it to `LIVE`).
pub static PEAK: AtomicIsize = AtomicIsize::new(0);
/// Allocations (and reallocations) made while counting.
pub static ALLOCS: AtomicU64 = AtomicU64::new(0);

#[inline]
fn count(delta: isize, allocs: u64) {
    if COUNTING.load(Relaxed) {
        ALLOCS.fetch_add(allocs, Relaxed);
        let live = LIVE.fetch_add(delta, Relaxed) + delta;
        if delta > 0 {
            PEAK.fetch_max(live, Relaxed);
        }
    }
}

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for Counting {
    /// # Safety
    /// `GlobalAlloc::alloc`'s contract, which the call to `System` is given unchanged.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed through.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize, 1);
        }
        p
    }

    /// # Safety
    /// `GlobalAlloc::alloc_zeroed`'s contract, which the call to `System` is given unchanged.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize, 1);
        }
        p
    }

    /// # Safety
    /// `GlobalAlloc::dealloc`'s contract, which the call to `System` is given unchanged.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize), 0);
    }

    /// # Safety
    /// `GlobalAlloc::realloc`'s contract, which the call to `System` is given unchanged.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize, 1);
        }
        p
    }
}
