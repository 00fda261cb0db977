//! bwtx `Tree` against its peers: crossbeam-skiplist `SkipMap`, `scc::TreeIndex`
//! and `RwLock<BTreeMap>`.
//!
//! Workload: random 8-byte keys with 8-byte values (1,000,000 by default; set
//! `BWTX_BENCH_KEYS` to shrink it). bwtx stores each key as its 8 big-endian
//! bytes; the peers store the same keys as `u64`, whose order is identical.
//! Measured, on 1 and 2 threads:
//!
//! * `insert`: random inserts; a fresh structure is started every time all keys
//!   have gone in, so the figure averages inserts into a structure of 0..N keys;
//! * `get`: random point reads of present keys in a preloaded structure;
//! * `scan100`: 100-key forward scans from random present keys (one element is
//!   one scan).
//!
//! Before criterion runs, the bench prints each structure's heap bytes per key
//! (a counting global allocator, switched on only while loading). After it, a
//! plain timing loop prints a side-by-side table of ops/s with the ratios
//! bwtx/scc and bwtx/skiplist. `BWTX_BENCH_SUMMARY=0` skips that table;
//! `BWTX_BENCH_CRITERION=0` skips the criterion part.
//!
//! ```text
//! cargo bench --bench tree                         # full run, a few minutes
//! BWTX_BENCH_KEYS=100000 cargo bench --bench tree  # quick run
//! cargo bench --bench tree -- --test               # smoke test (10,000 keys)
//! ```

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::RwLock;
use std::thread;
use std::time::{Duration, Instant};

use bwtx::tree::Tree;
use bwtx_kit::alloc::{Counting, COUNTING, LIVE};
use bwtx_kit::criterion_setup;
use bwtx_kit::env;
use bwtx_kit::machine::loadavg;
use bwtx_kit::par::{cyclic, par, value_of};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId};
use crossbeam_skiplist::SkipMap;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

// Every benchmark runs on the counting allocator (off while timing: one
// relaxed load per allocation).
#[global_allocator]
static GLOBAL: Counting = Counting;
// ---------------------------------------------------------------------------
// Engines.

trait Engine: Send + Sync {
    const NAME: &'static str;
    fn new() -> Self;
    fn insert(&self, key: u64, value: u64);
    /// The value of `key`, 0 if absent.
    fn get(&self, key: u64) -> u64;
    /// Visit up to `n` entries from `start` on; a checksum of what was seen.
    fn scan(&self, start: u64, n: usize) -> u64;
}

fn be(v: &[u8]) -> u64 {
    u64::from_be_bytes(v[..8].try_into().expect("8-byte value"))
}

impl Engine for Tree {
    const NAME: &'static str = "bwtx";
    fn new() -> Self {
        Tree::new()
    }
    fn insert(&self, key: u64, value: u64) {
        self.put(key.to_be_bytes(), 1, value.to_be_bytes()).expect("put");
    }
    fn get(&self, key: u64) -> u64 {
        self.get(key.to_be_bytes(), u64::MAX)
            .expect("get")
            .map_or(0, |v| be(&v))
    }
    fn scan(&self, start: u64, n: usize) -> u64 {
        self.range(start.to_be_bytes().., u64::MAX)
            .take(n)
            .map(|kv| be(&kv.expect("scan").1))
            .fold(0, u64::wrapping_add)
    }
}

impl Engine for scc::TreeIndex<u64, u64> {
    const NAME: &'static str = "scc";
    fn new() -> Self {
        scc::TreeIndex::new()
    }
    fn insert(&self, key: u64, value: u64) {
        let _ = self.insert_sync(key, value);
    }
    fn get(&self, key: u64) -> u64 {
        self.peek_with(&key, |_, v| *v).unwrap_or(0)
    }
    fn scan(&self, start: u64, n: usize) -> u64 {
        let guard = scc::Guard::new();
        self.range(start.., &guard)
            .take(n)
            .map(|(_, v)| *v)
            .fold(0, u64::wrapping_add)
    }
}

impl Engine for SkipMap<u64, u64> {
    const NAME: &'static str = "skiplist";
    fn new() -> Self {
        SkipMap::new()
    }
    fn insert(&self, key: u64, value: u64) {
        self.insert(key, value);
    }
    fn get(&self, key: u64) -> u64 {
        SkipMap::get(self, &key).map_or(0, |e| *e.value())
    }
    fn scan(&self, start: u64, n: usize) -> u64 {
        self.range(start..)
            .take(n)
            .map(|e| *e.value())
            .fold(0, u64::wrapping_add)
    }
}

impl Engine for RwLock<BTreeMap<u64, u64>> {
    const NAME: &'static str = "rwlock-btree";
    fn new() -> Self {
        RwLock::new(BTreeMap::new())
    }
    fn insert(&self, key: u64, value: u64) {
        self.write().expect("lock").insert(key, value);
    }
    fn get(&self, key: u64) -> u64 {
        self.read().expect("lock").get(&key).copied().unwrap_or(0)
    }
    fn scan(&self, start: u64, n: usize) -> u64 {
        self.read()
            .expect("lock")
            .range(start..)
            .take(n)
            .map(|(_, v)| *v)
            .fold(0, u64::wrapping_add)
    }
}

type Scc = scc::TreeIndex<u64, u64>;
type Skip = SkipMap<u64, u64>;
type Locked = RwLock<BTreeMap<u64, u64>>;

// ---------------------------------------------------------------------------
// Workload helpers.

const THREADS: [usize; 2] = [1, 2];
const SCAN_LEN: usize = 100;

struct Workload {
    /// Keys in insertion (random) order.
    keys: Vec<u64>,
    /// The same keys reshuffled: the order of point reads and scan starts.
    probes: Vec<u64>,
}

impl Workload {
    fn new(n: usize) -> Self {
        let mut rng = SmallRng::seed_from_u64(0x6277_7478);
        let keys: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
        let mut probes = keys.clone();
        probes.shuffle(&mut rng);
        Workload { keys, probes }
    }
}

fn load<E: Engine>(e: &E, keys: &[u64], threads: usize) -> Duration {
    par(threads, keys.len(), |b, end| {
        for &k in &keys[b..end] {
            e.insert(k, value_of(k));
        }
    })
}

fn reads<E: Engine>(e: &E, probes: &[u64], base: usize, ops: usize, threads: usize) -> Duration {
    par(threads, ops, |b, end| {
        let mut sum = 0u64;
        cyclic(probes, base + b, end - b, |k| {
            sum = sum.wrapping_add(e.get(black_box(k)))
        });
        black_box(sum);
    })
}

fn scans<E: Engine>(e: &E, probes: &[u64], base: usize, ops: usize, threads: usize) -> Duration {
    par(threads, ops, |b, end| {
        let mut sum = 0u64;
        cyclic(probes, base + b, end - b, |k| {
            sum = sum.wrapping_add(e.scan(black_box(k), SCAN_LEN))
        });
        black_box(sum);
    })
}

/// Give deferred reclamation (crossbeam-epoch for bwtx and the skiplist, sdd
/// for scc) a chance to free retired memory.
fn settle() {
    for _ in 0..64 {
        crossbeam_epoch::pin().flush();
        let g = scc::Guard::new();
        g.accelerate();
        drop(g);
    }
}

/// Load all keys on this thread while counting allocations; the loaded
/// structure and its heap bytes per key.
fn measured_load<E: Engine>(w: &Workload) -> (E, f64) {
    settle();
    LIVE.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let e = E::new();
    load(&e, &w.keys, 1);
    settle();
    COUNTING.store(false, Relaxed);
    let bytes = LIVE.load(Relaxed);
    (e, bytes as f64 / w.keys.len() as f64)
}

/// Sanity check: every key reads back its value.
fn check<E: Engine>(e: &E, w: &Workload) {
    for &k in w.probes.iter().step_by(97) {
        assert_eq!(e.get(k), value_of(k), "{}: wrong value for {k:#x}", E::NAME);
    }
}

// ---------------------------------------------------------------------------
// Criterion part.

fn bench_insert<E: Engine>(g: &mut BenchmarkGroup<'_, WallTime>, w: &Workload, threads: usize) {
    let n = w.keys.len();
    let mut current: Option<E> = None;
    let mut pos = 0;
    g.bench_function(BenchmarkId::new(E::NAME, threads), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                if current.is_none() || pos == n {
                    current = None; // drop the full one first (untimed)
                    current = Some(E::new());
                    pos = 0;
                }
                let e = current.as_ref().expect("set above");
                let take = left.min(n - pos);
                total += load(e, &w.keys[pos..pos + take], threads);
                pos += take;
                left -= take;
            }
            total
        })
    });
}

fn bench_get<E: Engine>(g: &mut BenchmarkGroup<'_, WallTime>, e: &E, w: &Workload, threads: usize) {
    let mut base = 0;
    g.bench_function(BenchmarkId::new(E::NAME, threads), |b| {
        b.iter_custom(|iters| {
            let d = reads(e, &w.probes, base, iters as usize, threads);
            base = (base + iters as usize) % w.probes.len();
            d
        })
    });
}

fn bench_scan<E: Engine>(g: &mut BenchmarkGroup<'_, WallTime>, e: &E, w: &Workload, threads: usize) {
    let mut base = 0;
    g.bench_function(BenchmarkId::new(E::NAME, threads), |b| {
        b.iter_custom(|iters| {
            let d = scans(e, &w.probes, base, iters as usize, threads);
            base = (base + iters as usize) % w.probes.len();
            d
        })
    });
}

struct Loaded {
    bw: Tree,
    scc: Scc,
    skip: Skip,
    locked: Locked,
}

fn criterion_part(w: &Workload, l: &Loaded) {
    let mut c = criterion_setup::short();
    let setup = criterion_setup::flat;

    let mut g = c.benchmark_group("insert");
    setup(&mut g);
    for t in THREADS {
        bench_insert::<Tree>(&mut g, w, t);
        bench_insert::<Scc>(&mut g, w, t);
        bench_insert::<Skip>(&mut g, w, t);
        bench_insert::<Locked>(&mut g, w, t);
    }
    g.finish();

    let mut g = c.benchmark_group("get");
    setup(&mut g);
    for t in THREADS {
        bench_get(&mut g, &l.bw, w, t);
        bench_get(&mut g, &l.scc, w, t);
        bench_get(&mut g, &l.skip, w, t);
        bench_get(&mut g, &l.locked, w, t);
    }
    g.finish();

    let mut g = c.benchmark_group("scan100");
    setup(&mut g);
    for t in THREADS {
        bench_scan(&mut g, &l.bw, w, t);
        bench_scan(&mut g, &l.scc, w, t);
        bench_scan(&mut g, &l.skip, w, t);
        bench_scan(&mut g, &l.locked, w, t);
    }
    g.finish();

    c.final_summary();
}

// ---------------------------------------------------------------------------
// Plain timing loop and the side-by-side table.

/// ops/s for [insert, get, scan100] on 1 and 2 threads.
type Rates = [[f64; 2]; 3];

fn rate(ops: usize, d: Duration) -> f64 {
    ops as f64 / d.as_secs_f64()
}

fn summary_for<E: Engine>(w: &Workload) -> Rates {
    let n = w.keys.len();
    let n_scans = (n / 10).max(1);
    let mut r = Rates::default();
    for (i, t) in THREADS.into_iter().enumerate() {
        let e = E::new();
        r[0][i] = rate(n, load(&e, &w.keys, t));
        // A first pass warms caches; time the second.
        reads(&e, &w.probes, 0, n, t);
        r[1][i] = rate(n, reads(&e, &w.probes, 0, n, t));
        r[2][i] = rate(n_scans, scans(&e, &w.probes, 0, n_scans, t));
        check(&e, w);
    }
    r
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else {
        format!("{:.0}k", r / 1e3)
    }
}

fn summary(w: &Workload) {
    let started = Instant::now();
    let bw = summary_for::<Tree>(w);
    let scc = summary_for::<Scc>(w);
    let skip = summary_for::<Skip>(w);
    let locked = summary_for::<Locked>(w);
    println!();
    println!(
        "summary: {} random 8-byte keys, ops/s (scan100 = 100-key scans/s), plain timing loop",
        w.keys.len()
    );
    println!(
        "{:<8} {:>3}  {:>9} {:>9} {:>9} {:>12}  {:>8} {:>13}",
        "op", "thr", "bwtx", "scc", "skiplist", "rwlock-btree", "bwtx/scc", "bwtx/skiplist"
    );
    for (op, name) in ["insert", "get", "scan100"].into_iter().enumerate() {
        for (i, t) in THREADS.into_iter().enumerate() {
            println!(
                "{:<8} {:>3}  {:>9} {:>9} {:>9} {:>12}  {:>8.2} {:>13.2}",
                name,
                t,
                fmt_rate(bw[op][i]),
                fmt_rate(scc[op][i]),
                fmt_rate(skip[op][i]),
                fmt_rate(locked[op][i]),
                bw[op][i] / scc[op][i],
                bw[op][i] / skip[op][i],
            );
        }
    }
    println!(
        "(summary took {:.1}s; load average now {} on {} cpus)",
        started.elapsed().as_secs_f64(),
        loadavg(),
        thread::available_parallelism().map_or(0, |n| n.get())
    );
}

// ---------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |a: &str| args.iter().any(|x| x == a);
    if has("--list") {
        // Only enumerate the criterion benchmarks; no loading.
        let w = Workload::new(64);
        let l = Loaded {
            bw: Engine::new(),
            scc: Engine::new(),
            skip: Engine::new(),
            locked: Engine::new(),
        };
        criterion_part(&w, &l);
        return;
    }
    let test_mode = has("--test");
    let n: usize = env::number("BWTX_BENCH_KEYS").unwrap_or(if test_mode { 10_000 } else { 1_000_000 });
    assert!(n > 0, "BWTX_BENCH_KEYS must be positive");
    let w = Workload::new(n);
    println!("bwtx bench: {n} keys; load average at start {}", loadavg());

    let (bw, bw_bytes) = measured_load::<Tree>(&w);
    let (scc, scc_bytes) = measured_load::<Scc>(&w);
    let (skip, skip_bytes) = measured_load::<Skip>(&w);
    let (locked, locked_bytes) = measured_load::<Locked>(&w);
    println!("heap bytes/key after loading {n} random 8-byte keys + 8-byte values on 1 thread:");
    for (name, b) in [
        ("bwtx", bw_bytes),
        ("scc", scc_bytes),
        ("skiplist", skip_bytes),
        ("rwlock-btree", locked_bytes),
    ] {
        println!("  {name:<13} {b:>7.1}");
    }
    println!("  bwtx stats: {:?}", bw.stats());
    let l = Loaded { bw, scc, skip, locked };
    check(&l.bw, &w);
    check(&l.scc, &w);
    check(&l.skip, &w);
    check(&l.locked, &w);

    if env::flag("BWTX_BENCH_CRITERION") {
        criterion_part(&w, &l);
    }
    drop(l);
    if env::flag("BWTX_BENCH_SUMMARY") {
        summary(&w);
    }
}
