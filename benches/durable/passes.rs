//! Timed passes: committing threads on one engine until a deadline, and
//! the best-of-rounds cells of the table.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use bwtx_kit::rng::mix;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::engines::Engine;
use crate::sync_count;

/// What one timed pass did.
#[derive(Clone, Copy, Default)]
pub(crate) struct Pass {
    pub(crate) commits: u64,
    pub(crate) conflicts: u64,
    pub(crate) wall: Duration,
    /// fsync + fdatasync calls, and sync_file_range calls, in the process
    /// during the pass (None: not counted).
    pub(crate) syncs: Option<(u64, u64)>,
    /// bwtx only: its own (log syncs, commits, conflicts) during the pass.
    pub(crate) own: Option<[u64; 3]>,
}

pub(crate) fn delta(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> Option<(u64, u64)> {
    Some((b?.0 - a?.0, b?.1 - a?.1))
}

/// `threads` threads commit on `e` until `len` has passed; `seq` numbers the
/// pass (it seeds the key choice and tags the values written).
pub(crate) fn pass(e: &dyn Engine, keys: &[u64], threads: usize, len: Duration, seq: u64) -> Pass {
    let commits = AtomicU64::new(0);
    let conflicts = AtomicU64::new(0);
    let barrier = Barrier::new(threads + 1);
    let (own0, syncs0) = (e.own_stats(), sync_count::now());
    let mut start = None;
    thread::scope(|s| {
        for t in 0..threads {
            let (commits, conflicts, barrier) = (&commits, &conflicts, &barrier);
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(mix(seq << 8 | t as u64));
                let (mut n, mut c) = (0u64, 0u64);
                let mut writes = [(0u64, 0u64); 2];
                barrier.wait();
                let deadline = Instant::now() + len;
                while Instant::now() < deadline {
                    // One write, then two, alternately; two distinct keys.
                    let count = 1 + (n & 1) as usize;
                    for i in 0..count {
                        let k = loop {
                            let k = keys[rng.gen_range(0..keys.len())];
                            if i == 0 || k != writes[0].0 {
                                break k;
                            }
                        };
                        // A value no other write uses: (thread, pass, n).
                        writes[i] = (k, (t as u64) << 56 | (seq & 0xff_ffff) << 32 | (n & 0xffff_ffff));
                    }
                    c += e.commit(t, &writes[..count]);
                    n += 1;
                }
                commits.fetch_add(n, Relaxed);
                conflicts.fetch_add(c, Relaxed);
            });
        }
        barrier.wait();
        start = Some(Instant::now());
    });
    let wall = start.expect("the scope ran").elapsed();
    let own = own0.zip(e.own_stats()).map(|(a, b)| [0, 1, 2].map(|i| b[i] - a[i]));
    Pass {
        commits: commits.into_inner(),
        conflicts: conflicts.into_inner() + own.map_or(0, |o| o[2]),
        wall,
        syncs: delta(syncs0, sync_count::now()),
        own,
    }
}

/// One cell of the table: an engine on a number of threads.
#[derive(Clone, Copy, Default)]
pub(crate) struct Cell {
    /// Best commits/s of the timed passes.
    pub(crate) rate: f64,
    /// Totals over the timed passes.
    pub(crate) commits: u64,
    pub(crate) conflicts: u64,
    pub(crate) syncs: Option<(u64, u64)>,
    pub(crate) own: Option<[u64; 3]>,
}

impl Cell {
    fn add(&mut self, p: Pass) {
        self.rate = self.rate.max(p.commits as f64 / p.wall.as_secs_f64().max(1e-9));
        let first = self.commits == 0 && self.syncs.is_none() && self.own.is_none();
        self.commits += p.commits;
        self.conflicts += p.conflicts;
        self.syncs = match (self.syncs, p.syncs) {
            (Some(a), Some(b)) => Some((a.0 + b.0, a.1 + b.1)),
            (None, b) if first => b,
            _ => None,
        };
        self.own = match (self.own, p.own) {
            (Some(a), Some(b)) => Some([a[0] + b[0], a[1] + b[1], a[2] + b[2]]),
            (None, b) if first => b,
            _ => None,
        };
    }

    /// (fsync + fdatasync, sync_file_range) per commit, counted at the libc
    /// boundary.
    pub(crate) fn syncs_per_commit(&self) -> Option<(f64, f64)> {
        let (s, r) = self.syncs?;
        let c = self.commits.max(1) as f64;
        Some((s as f64 / c, r as f64 / c))
    }

    /// bwtx's own `log_syncs / commits`.
    pub(crate) fn own_per_commit(&self) -> Option<f64> {
        let [s, c, _] = self.own?;
        Some(s as f64 / c.max(1) as f64)
    }
}

/// Run every engine on `threads` threads: a warm-up pass each, then `rounds`
/// rounds of one timed pass per engine.
pub(crate) fn measure(
    engines: &[Box<dyn Engine>],
    keys: &[u64],
    threads: usize,
    len: Duration,
    rounds: usize,
    seq: &mut u64,
) -> Vec<Cell> {
    for e in engines {
        *seq += 1;
        pass(&**e, keys, threads, len / 4, *seq);
    }
    let mut cells = vec![Cell::default(); engines.len()];
    for _ in 0..rounds {
        for (i, e) in engines.iter().enumerate() {
            *seq += 1;
            cells[i].add(pass(&**e, keys, threads, len, *seq));
        }
    }
    cells
}
