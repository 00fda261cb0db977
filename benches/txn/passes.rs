//! Timed passes: the workloads run on 1 or 2 threads, with wall-clock and
//! per-thread CPU time, and the loaded engines they run on.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bwtx::Db;
use bwtx_kit::par::{cyclic, par};

use crate::engines::{raw, Engine, Locked, Skip, Subject};
use crate::workload::{ten, Workload};

/// How long a pass took: wall-clock time, and the on-CPU time of its worker
/// threads added up (which a busy machine disturbs far less).
#[derive(Clone, Copy, Default)]
pub(crate) struct Timing {
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
}

/// This thread's on-CPU time so far, in nanoseconds
/// (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`; 0 where that is not wired up,
/// and then CPU-time rates are not shown).
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub(crate) fn thread_cpu_ns() -> u64 {
    /// `struct timespec` on 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: libc's `clock_gettime` (std links libc on Linux) writes one
    // `struct timespec`, which `Timespec` lays out exactly on 64-bit Linux.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
pub(crate) fn thread_cpu_ns() -> u64 {
    0
}

/// [`par`], also summing the worker threads' on-CPU time.
pub(crate) fn timed(threads: usize, ops: usize, f: impl Fn(usize, usize) + Sync) -> Timing {
    let cpu = AtomicU64::new(0);
    let wall = par(threads, ops, |b, e| {
        let start = thread_cpu_ns();
        f(b, e);
        cpu.fetch_add(thread_cpu_ns().saturating_sub(start), Relaxed);
    });
    Timing {
        wall,
        cpu: Duration::from_nanos(cpu.into_inner()),
    }
}

/// `ops` read-modify-write transactions on `probes[base..]`; the timing and
/// the conflicts met.
pub(crate) fn rmw_pass<E: Engine>(
    s: &Subject<E>,
    probes: &[u64],
    base: usize,
    ops: usize,
    threads: usize,
) -> (Timing, u64) {
    let before = s.conflicts.load(Relaxed);
    let t = timed(threads, ops, |b, end| {
        let mut conflicts = 0;
        cyclic(probes, base + b, end - b, |k| conflicts += s.e.rmw(black_box(k)));
        s.conflicts.fetch_add(conflicts, Relaxed);
    });
    s.committed.fetch_add(ops as u64, Relaxed);
    (t, s.conflicts.load(Relaxed) - before)
}

/// `txns` read-only transactions, the first one `base`.
pub(crate) fn ro_pass<E: Engine>(e: &E, probes: &[u64], base: usize, txns: usize, threads: usize) -> Timing {
    timed(threads, txns, |b, end| {
        let mut sum = 0u64;
        for t in b..end {
            sum = sum.wrapping_add(e.ro(black_box(ten(probes, base + t))));
        }
        black_box(sum);
    })
}

/// `txns` groups of raw tree reads, the first one `base`.
pub(crate) fn raw_pass(db: &Db, probes: &[u64], base: usize, txns: usize, threads: usize) -> Timing {
    let ts = db.snapshot().ts();
    timed(threads, txns, |b, end| {
        let mut sum = 0u64;
        for t in b..end {
            sum = sum.wrapping_add(raw(db, ts, black_box(ten(probes, base + t))));
        }
        black_box(sum);
    })
}

pub(crate) struct Loaded {
    pub(crate) bw: Subject<Db>,
    pub(crate) skip: Subject<Skip>,
    pub(crate) locked: Subject<Locked>,
}

impl Loaded {
    pub(crate) fn new(w: &Workload) -> Self {
        Loaded {
            bw: Subject::loaded(w),
            skip: Subject::loaded(w),
            locked: Subject::loaded(w),
        }
    }
}
