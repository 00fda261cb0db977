//! Shared helpers of the loom models: a model runner with a default
//! preemption bound, a poisoning allocator that turns any read of freed memory
//! into garbage (so a node reclaimed while a pinned thread still reads it shows
//! up as a wrong value or a crash), and small tree/key helpers.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc as StdArc;
use std::time::Instant;

use bwtx::tree::{Config, Tree};
use bwtx::Options;

/// Overwrites every block with `0xA5` before handing it back to the system
/// allocator: a use after free reads poison instead of the old contents.
pub struct Poison;

// SAFETY: forwards to `System`; only writes inside the block being freed.
unsafe impl GlobalAlloc for Poison {
    /// # Safety
    /// `GlobalAlloc::alloc`'s contract, which the call to `System` is given unchanged.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed through.
        unsafe { System.alloc(layout) }
    }
    /// # Safety
    /// `GlobalAlloc::alloc_zeroed`'s contract, which the call to `System` is given unchanged.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    /// # Safety
    /// `GlobalAlloc::dealloc`'s contract, which the call to `System` is given unchanged.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout` (the caller's
        // contract), so its `layout.size()` bytes are ours to overwrite
        // before they go back.
        unsafe {
            std::ptr::write_bytes(ptr, 0xA5, layout.size());
            System.dealloc(ptr, layout)
        }
    }
}

#[global_allocator]
static GLOBAL: Poison = Poison;

/// Run `f` under loom. `LOOM_MAX_PREEMPTIONS` (read by loom) wins; without it
/// the bound is 2 so that a plain `cargo test` stays finite. Prints the number
/// of executions explored and the time taken, and returns the count. A
/// livelock (a descent that restarts forever) shows up as loom's "Model
/// exceeded maximum number of branches".
pub fn model<F>(name: &str, f: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    run(name, None, f)
}

/// As [`model`], but with at most `cap` preemptions whatever
/// `LOOM_MAX_PREEMPTIONS` says: for models with three threads, whose state
/// space at bound 2 takes many minutes (the epoch's participant list, the
/// first pin's collection and the mapping table all add atomics).
pub fn model_bounded<F>(name: &str, cap: usize, f: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    run(name, Some(cap), f)
}

/// As [`model`], but with at least `floor` preemptions whatever
/// `LOOM_MAX_PREEMPTIONS` says: for a two-thread model whose race loom's
/// bounded search reaches only at a deeper bound (it says which).
pub fn model_at_least<F>(name: &str, floor: usize, f: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    let mut b = loom::model::Builder::new();
    let bound = b.preemption_bound.unwrap_or(2).max(floor);
    b.preemption_bound = Some(bound);
    run_with(name, b, f)
}

fn run<F>(name: &str, cap: Option<usize>, f: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    let mut b = loom::model::Builder::new();
    b.preemption_bound = match (b.preemption_bound, cap) {
        (Some(env), Some(cap)) => Some(env.min(cap)),
        (Some(env), None) => Some(env),
        (None, cap) => Some(cap.unwrap_or(2)),
    };
    run_with(name, b, f)
}

fn run_with<F>(name: &str, mut b: loom::model::Builder, f: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    b.max_branches = 20_000;
    let bound = b.preemption_bound;
    let n = StdArc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let start = Instant::now();
    b.check(move || {
        n2.fetch_add(1, Ordering::Relaxed);
        f()
    });
    let n = n.load(Ordering::Relaxed);
    eprintln!(
        "loom model {name}: {n} executions (preemption bound {:?}) in {:.1?}",
        bound,
        start.elapsed()
    );
    n
}

/// A config with the given leaf thresholds; pages never split on bytes.
pub fn config(leaf_chain: u16, leaf_max: usize, leaf_min: usize) -> Config {
    Config {
        leaf_chain,
        leaf_max,
        leaf_min,
        page_bytes: 64 * 1024,
        paged_leaf_max: leaf_max,
        ..Config::tiny()
    }
}

/// A database on `fs` with tree `cfg` and `durability`, with no
/// background GC and no automatic checkpoints (the models run each step
/// themselves); paged models add their cache.
pub fn on_fault_fs(fs: &bwtx::fs::FaultFs, cfg: Config, durability: bwtx::Durability) -> Options {
    Options::new()
        .tree_config(cfg)
        .gc_interval(None)
        .checkpoint_bytes(0)
        .durability(durability)
        .file_system(StdArc::new(fs.clone()))
}

/// A paged database on a fresh `FaultFs` (leaves of at most 8 keys, no
/// log), with a cache so large that only the models' `evict_all` evicts.
pub fn paged_db() -> bwtx::Db {
    on_fault_fs(&bwtx::fs::FaultFs::new(), config(8, 8, 2), bwtx::Durability::None)
        .cache_size(1 << 30)
        .open("/db")
        .expect("valid options")
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub fn tree(cfg: Config) -> Tree {
    Tree::with_config(cfg).expect("valid config")
}

pub fn key(i: u32) -> Vec<u8> {
    format!("k{i}").into_bytes()
}

/// A value that names its key and timestamp, so a value read from freed or
/// wrong memory cannot pass for the right one.
pub fn val(i: u32, ts: u64) -> Vec<u8> {
    format!("value-of-k{i}-at-{ts}").into_bytes()
}

/// A value too large to be inlined in a page blob (kept as a shared `Bytes`).
pub fn big_val(i: u32, ts: u64) -> Vec<u8> {
    let mut v = val(i, ts);
    v.resize(300, b'0' + (i % 10) as u8);
    v
}

/// `key(i)` reads `want` as of `ts`.
#[track_caller]
pub fn expect(t: &Tree, i: u32, ts: u64, want: Option<&[u8]>) {
    let got = t.get(key(i), ts).expect("get");
    assert_eq!(got.as_deref(), want, "get(k{i}, {ts})");
}

/// A full scan as of `ts` yields exactly `want` (key index, value), in order,
/// forwards and backwards.
#[track_caller]
pub fn expect_scan(t: &Tree, ts: u64, want: &[(u32, Vec<u8>)]) {
    let mut want: Vec<(Vec<u8>, Vec<u8>)> = want.iter().map(|(i, v)| (key(*i), v.clone())).collect();
    want.sort();
    let fwd: Vec<(Vec<u8>, Vec<u8>)> = t
        .range::<&[u8], _>(.., ts)
        .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("scan"))
        .collect();
    assert_eq!(fwd, want, "forward scan at {ts}");
    let mut rev: Vec<(Vec<u8>, Vec<u8>)> = t
        .range::<&[u8], _>(.., ts)
        .rev()
        .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("scan"))
        .collect();
    rev.reverse();
    assert_eq!(rev, want, "reverse scan at {ts}");
}

static SEEN: std::sync::Mutex<Vec<(&'static str, u64, u64)>> = std::sync::Mutex::new(Vec::new());

/// Record `v` under `tag` (min and max over all executions of this binary),
/// to check afterwards that a model explored the interleaving it is about.
pub fn seen(tag: &'static str, v: u64) {
    let mut s = SEEN.lock().unwrap();
    match s.iter_mut().find(|e| e.0 == tag) {
        Some(e) => {
            e.1 = e.1.min(v);
            e.2 = e.2.max(v);
        }
        None => s.push((tag, v, v)),
    }
}

/// `(min, max)` of what [`seen`] recorded under `tag`.
pub fn seen_range(tag: &'static str) -> (u64, u64) {
    let s = SEEN.lock().unwrap();
    let e = s
        .iter()
        .find(|e| e.0 == tag)
        .unwrap_or_else(|| panic!("nothing recorded under {tag}"));
    (e.1, e.2)
}

/// Run every deferred destructor while the model is still running: flush
/// this thread's garbage bag and advance the epoch until all bags ran.
///
/// Why: under loom the default collector is a per-execution `lazy_static`;
/// when the execution ends it is dropped, and the last reference to its
/// global data runs the garbage still queued. The tree's deferred page-id
/// release (`MappingTable::retire_pid`, after a merge or a root shrink) calls
/// `crossbeam_epoch::pin()` from inside that destructor, which then panics
/// with "attempted to access lazy_static during shutdown". (A loom artifact:
/// the real default collector is never dropped, and a deferred function may
/// pin it.) So models whose threads merge pages end with: every spawned
/// thread a [`Worker`], [`Worker::done`] on each, the final checks, then
/// `quiesce()`, then [`Worker::join`].
///
/// Workers must still be alive here: loom's `join` returns before a thread's
/// thread-locals are destroyed, so a joined thread's epoch handle may still be
/// finalizing (pinning) with no happens-before to us, and a relaxed read of
/// its stale "pinned" epoch would stop the global epoch forever.
pub fn quiesce() {
    // A marker deferred after all other garbage: once it ran, every bag queued
    // before it ran too (the global queue is FIFO, bags expire in order).
    let ran = StdArc::new(std::sync::atomic::AtomicBool::new(false));
    let r = ran.clone();
    crossbeam_epoch::pin().defer(move || r.store(true, Ordering::Relaxed));
    for _ in 0..8 {
        crossbeam_epoch::pin().flush();
        if ran.load(Ordering::Relaxed) {
            return;
        }
    }
    panic!("quiesce: garbage still queued after 8 flushes (is a thread still pinned?)");
}

/// Push this thread's garbage bag to the global queue.
pub fn flush_local() {
    crossbeam_epoch::pin().flush();
}

/// A one-way flag one thread opens and another waits on (acquire/release).
#[derive(Clone)]
pub struct Gate(loom::sync::Arc<loom::sync::atomic::AtomicBool>);

impl Gate {
    pub fn new() -> Self {
        Gate(loom::sync::Arc::new(loom::sync::atomic::AtomicBool::new(false)))
    }
    pub fn open(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
    pub fn wait(&self) {
        while !self.0.load(std::sync::atomic::Ordering::Acquire) {
            loom::thread::yield_now();
        }
    }
}

/// A spawned thread that, when its work is done, flushes its garbage, says
/// so, and stays alive (unpinned) until released: see [`quiesce`].
pub struct Worker<T> {
    handle: loom::thread::JoinHandle<T>,
    done: Gate,
    release: Gate,
}

impl<T: Send + 'static> Worker<T> {
    pub fn spawn(f: impl FnOnce() -> T + Send + 'static) -> Self {
        let (done, release) = (Gate::new(), Gate::new());
        let (d, r) = (done.clone(), release.clone());
        let handle = loom::thread::spawn(move || {
            let out = f();
            flush_local();
            d.open();
            r.wait();
            out
        });
        Worker { handle, done, release }
    }

    /// Wait until the work is done (everything it did happens-before us).
    pub fn done(&self) {
        self.done.wait();
    }

    /// Let the thread exit and take its result.
    pub fn join(self) -> T {
        self.release.open();
        self.handle.join().expect("worker panicked")
    }
}

/// An in-memory database for the transaction-layer models: small leaves
/// (chain 2, split above 8, merge below 2) and no background sweeper.
pub fn db() -> bwtx::Db {
    Options::new()
        .tree_config(config(2, 8, 2))
        .gc_interval(None)
        .in_memory()
        .expect("valid options")
}

/// A model thread with a 4 MiB stack: opening a database, commits, syncs,
/// evictions, checkpoints, change streams and a reopen's fault-ins need
/// more than a model thread's default.
pub fn spawn_big(f: impl FnOnce() + Send + 'static) -> loom::thread::JoinHandle<()> {
    loom::thread::Builder::new().stack_size(1 << 22).spawn(f).unwrap()
}

/// A copy of `from`'s directory `/db` as it is now (every byte written,
/// all of it durable in the copy).
pub fn copy(from: &bwtx::fs::FaultFs) -> bwtx::fs::FaultFs {
    use bwtx::fs::Fs;
    let to = bwtx::fs::FaultFs::new();
    let dir = std::path::Path::new("/db");
    to.create_dir_all(dir).unwrap();
    for name in from.list(dir).unwrap() {
        let Some(bytes) = from.contents(&dir.join(&name)) else {
            continue;
        };
        let mut f = to.create(&dir.join(&name)).unwrap();
        f.write_all(&bytes).unwrap();
        f.sync().unwrap();
    }
    to.sync_dir(dir).unwrap();
    to
}
