//! Durable commits per second: bwtx in [`Durability::Sync`] mode (group
//! commit: one `fdatasync` may cover many committers) against fjall, redb,
//! sled and two naive "fsync per commit" logs, on 1, 2, 4 and 8 committing
//! threads.
//!
//! Needs the `bench-peers` feature (it pulls in fjall, redb and sled, which
//! the normal test build never compiles):
//!
//! ```text
//! cargo bench --bench durable --features bench-peers                                # full run
//! BWTX_BENCH_KEYS=2000 cargo bench --bench durable --features bench-peers -- --test  # smoke
//! BWTX_BENCH_ENGINES=bwtx,fsync-log cargo bench --bench durable --features bench-peers
//! ```
//!
//! Environment: `BWTX_BENCH_KEYS` (preloaded keys; 100,000, or 2,000 in
//! `--test` mode), `BWTX_BENCH_PASS_MS` (length of one timed pass; 1,000, or
//! 20 in `--test` mode), `BWTX_BENCH_ROUNDS` (timed passes per cell; 3, or 1
//! in `--test` mode), `BWTX_BENCH_THREADS` (committer counts, default
//! `1,2,4,8`), `BWTX_BENCH_ENGINES` (a comma-separated subset of the engine
//! names below) and `BWTX_BENCH_DIR` (where the databases live; default
//! `std::env::temp_dir()`: it must be a real disk, a tmpfs makes every sync
//! free, and the bench says so).
//!
//! Workload: every engine except the naive logs is loaded with the same
//! `BWTX_BENCH_KEYS` random 8-byte keys with 8-byte values, then each
//! committing thread runs, until the pass's deadline, transactions of blind
//! writes of 8-byte values to one or two keys (alternately) drawn uniformly
//! from the preloaded ones. A commit counts once it returned, durably, as the
//! engine defines it:
//!
//! * `bwtx`: `Options::new()` defaults: `Durability::Sync`, 64 MiB segments,
//!   automatic checkpoints every 256 MiB of log. `Db::transaction` with the
//!   `put`s: a write-write conflict (rare with uniform keys; a version
//!   installed by a commit still waiting for its sync counts) is retried
//!   with the library's own backoff, and counted (`stats().conflicts`).
//! * `fjall`: `OptimisticTxDatabase` (its transactional database with
//!   concurrent writers), one keyspace with default options; each write
//!   transaction with `durability(Some(PersistMode::SyncAll))`, so its
//!   commit writes and `fsync`s the journal. A `Conflict` would be retried
//!   (it cannot happen: these transactions read nothing).
//! * `redb`: one table `&[u8] -> &[u8]`, one write transaction per commit
//!   with `Durability::Immediate` (redb has a single writer at a time).
//! * `sled`: 0.34 (the stable release), `Tree::transaction` then
//!   `Db::flush()` per commit. sled's flush ends with `sync_file_range`
//!   (WAIT_BEFORE | WRITE | WAIT_AFTER), not an fsync: it neither flushes the
//!   disk's cache nor the file's metadata, so it promises less than the others
//!   on a power loss (its background flusher `fsync`s every 500 ms).
//! * `fsync-log`: the naive baseline: one shared append-only file behind a
//!   mutex; per commit, under the mutex, `write` the commit's record (8-byte
//!   header plus 16 bytes per write) and `sync_data`. One fsync per commit,
//!   serialized.
//! * `fsync-files`: the same with one file per thread and no mutex: one fsync
//!   per commit, but the threads' fsyncs run concurrently (the file system
//!   may merge their journal commits).
//!
//! Each cell (engine x threads) is the best of `BWTX_BENCH_ROUNDS` timed
//! passes of `BWTX_BENCH_PASS_MS`, after a warm-up pass a quarter as long;
//! the passes of one thread count run interleaved, engine after engine, so a
//! burst of load elsewhere hits all of them. Absolute rates depend on the
//! disk; the ratios are the result.
//!
//! Syncs per commit are counted two ways. bwtx's own: `stats().log_syncs`
//! over `stats().commits`. And for every engine: this binary defines the C
//! functions `fsync`, `fdatasync` and `sync_file_range` (Linux x86-64 and
//! aarch64 only), which the standard library and the peers call through
//! libc; they count the call and make the system call directly, so the
//! counts include background threads (checkpoints, flushes, compactions)
//! and directory syncs. Elsewhere, or if the counting is found not to work,
//! that column says `-`.
//!
//! Goals (from the issue): with 8 committers, bwtx at least 10x the
//! fsync-per-commit baseline (`fsync-log`; the ratio to `fsync-files` is
//! printed too) and ahead of every peer. Note the ceiling: with `T`
//! committers a sync can cover at most `T` commits, so group commit is at
//! most about `T` times the one-fsync-per-commit rate when a sync of a few
//! records costs what a sync of one does; the table prints bwtx's rate as a
//! fraction of that ceiling (`T x` the 1-thread `fsync-log` rate).
//!
//! At the end every database is closed and reopened (recovery) and every
//! key's value is compared with what it was before closing.

mod support;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bwtx::{Db, Durability, Options};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use support::value_of;

// ---------------------------------------------------------------------------
// Counting syncs: this binary's own `fsync`, `fdatasync` and
// `sync_file_range`, which take precedence over libc's for every caller
// linked into it (std's `File::sync_all`/`sync_data`, the peers' libc calls).

#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
mod sync_count {
    use std::ffi::{c_int, c_long, c_uint};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    /// `fsync` + `fdatasync` calls.
    pub static SYNCS: AtomicU64 = AtomicU64::new(0);
    /// `sync_file_range` calls.
    pub static RANGE_SYNCS: AtomicU64 = AtomicU64::new(0);

    #[cfg(target_arch = "x86_64")]
    mod nr {
        pub const FSYNC: std::ffi::c_long = 74;
        pub const FDATASYNC: std::ffi::c_long = 75;
        pub const SYNC_FILE_RANGE: std::ffi::c_long = 277;
    }
    #[cfg(target_arch = "aarch64")]
    mod nr {
        pub const FSYNC: std::ffi::c_long = 82;
        pub const FDATASYNC: std::ffi::c_long = 83;
        pub const SYNC_FILE_RANGE: std::ffi::c_long = 84;
    }

    extern "C" {
        /// libc's generic system call entry (sets `errno`, returns -1 on error).
        fn syscall(number: c_long, ...) -> c_long;
    }

    /// Counts, then `fsync(2)`.
    #[no_mangle]
    pub extern "C" fn fsync(fd: c_int) -> c_int {
        SYNCS.fetch_add(1, Relaxed);
        // SAFETY: the fsync system call with its one integer argument, as
        // libc's wrapper makes it.
        unsafe { syscall(nr::FSYNC, fd as c_long) as c_int }
    }

    /// Counts, then `fdatasync(2)`.
    #[no_mangle]
    pub extern "C" fn fdatasync(fd: c_int) -> c_int {
        SYNCS.fetch_add(1, Relaxed);
        // SAFETY: as for `fsync`.
        unsafe { syscall(nr::FDATASYNC, fd as c_long) as c_int }
    }

    /// Counts, then `sync_file_range(2)` (64-bit offsets: same argument
    /// order on x86-64 and aarch64).
    #[no_mangle]
    pub extern "C" fn sync_file_range(fd: c_int, offset: i64, nbytes: i64, flags: c_uint) -> c_int {
        RANGE_SYNCS.fetch_add(1, Relaxed);
        // SAFETY: the system call with libc's argument list for it.
        unsafe {
            syscall(
                nr::SYNC_FILE_RANGE,
                fd as c_long,
                offset as c_long,
                nbytes as c_long,
                flags as c_long,
            ) as c_int
        }
    }

    /// (fsync + fdatasync, sync_file_range) so far.
    pub fn now() -> Option<(u64, u64)> {
        Some((SYNCS.load(Relaxed), RANGE_SYNCS.load(Relaxed)))
    }
}

#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
mod sync_count {
    pub fn now() -> Option<(u64, u64)> {
        None
    }
}

// ---------------------------------------------------------------------------
// Engines.

/// Writes per transaction when loading.
const LOAD_BATCH: usize = 1000;

trait Engine: Send + Sync {
    fn name(&self) -> &'static str;
    /// Store `value_of(k)` under every key, durably.
    fn load(&self, keys: &[u64]);
    /// One durable transaction writing `writes` (key, value), by committing
    /// thread `thread`; the attempts that failed with a conflict.
    fn commit(&self, thread: usize, writes: &[(u64, u64)]) -> u64;
    /// The value of `key` (None: absent). Naive logs store no keys.
    fn value(&self, key: u64) -> Option<u64>;
    /// bwtx only: (log syncs, commits, conflicts) from its own statistics.
    fn own_stats(&self) -> Option<[u64; 3]> {
        None
    }
    /// Close and open again (recovery). Naive logs: nothing to do.
    fn reopen(&mut self);
    /// Whether it stores keys (so recovery can be checked).
    fn stores_keys(&self) -> bool {
        true
    }
}

fn be(v: &[u8]) -> u64 {
    u64::from_be_bytes(v[..8].try_into().expect("8-byte value"))
}

// bwtx ----------------------------------------------------------------------

struct Bwtx {
    dir: PathBuf,
    db: Option<Db>,
}

impl Bwtx {
    fn options() -> Options {
        Options::new().durability(Durability::Sync)
    }
    fn open(dir: PathBuf) -> Self {
        let db = Self::options().open(&dir).expect("bwtx open");
        Bwtx { dir, db: Some(db) }
    }
    fn db(&self) -> &Db {
        self.db.as_ref().expect("open")
    }
}

impl Engine for Bwtx {
    fn name(&self) -> &'static str {
        "bwtx"
    }
    fn load(&self, keys: &[u64]) {
        for chunk in keys.chunks(LOAD_BATCH) {
            let mut tx = self.db().begin();
            for &k in chunk {
                tx.put(k.to_be_bytes(), value_of(k).to_be_bytes()).expect("bwtx put");
            }
            tx.commit().expect("bwtx load commit");
        }
    }
    fn commit(&self, _thread: usize, writes: &[(u64, u64)]) -> u64 {
        // `Db::transaction` retries a conflict with backoff (a conflicting
        // commit may be waiting for its sync, and an immediate retry would
        // only spin until it is published); its refused attempts are in
        // `stats().conflicts`.
        loop {
            let r = self.db().transaction(|tx| {
                for &(k, v) in writes {
                    tx.put(k.to_be_bytes(), v.to_be_bytes())?;
                }
                Ok(())
            });
            match r {
                Ok(()) => return 0,
                Err(e) if e.is_conflict() => continue,
                Err(e) => panic!("bwtx commit: {e}"),
            }
        }
    }
    fn value(&self, key: u64) -> Option<u64> {
        self.db()
            .snapshot()
            .get(key.to_be_bytes())
            .expect("bwtx get")
            .map(|v| be(&v))
    }
    fn own_stats(&self) -> Option<[u64; 3]> {
        let s = self.db().stats();
        Some([s.log_syncs, s.commits, s.conflicts])
    }
    fn reopen(&mut self) {
        drop(self.db.take());
        self.db = Some(Self::options().open(&self.dir).expect("bwtx reopen"));
    }
}

// fjall ---------------------------------------------------------------------

struct Fjall {
    dir: PathBuf,
    /// (database, keyspace); `None` only while reopening.
    db: Option<(fjall::OptimisticTxDatabase, fjall::OptimisticTxKeyspace)>,
}

impl Fjall {
    fn open(dir: PathBuf) -> Self {
        let db = fjall::OptimisticTxDatabase::builder(&dir).open().expect("fjall open");
        let ks = db
            .keyspace("bench", fjall::KeyspaceCreateOptions::default)
            .expect("fjall keyspace");
        Fjall {
            dir,
            db: Some((db, ks)),
        }
    }
    fn parts(&self) -> &(fjall::OptimisticTxDatabase, fjall::OptimisticTxKeyspace) {
        self.db.as_ref().expect("open")
    }
}

impl Engine for Fjall {
    fn name(&self) -> &'static str {
        "fjall"
    }
    fn load(&self, keys: &[u64]) {
        let (db, ks) = self.parts();
        for chunk in keys.chunks(LOAD_BATCH) {
            let mut tx = db.write_tx().expect("fjall write_tx");
            for &k in chunk {
                tx.insert(ks, k.to_be_bytes(), value_of(k).to_be_bytes());
            }
            tx.commit().expect("fjall load commit").expect("fjall load conflict");
        }
        db.persist(fjall::PersistMode::SyncAll).expect("fjall persist");
    }
    fn commit(&self, _thread: usize, writes: &[(u64, u64)]) -> u64 {
        let (db, ks) = self.parts();
        let mut conflicts = 0;
        loop {
            let mut tx = db
                .write_tx()
                .expect("fjall write_tx")
                .durability(Some(fjall::PersistMode::SyncAll));
            for &(k, v) in writes {
                tx.insert(ks, k.to_be_bytes(), v.to_be_bytes());
            }
            match tx.commit().expect("fjall commit") {
                Ok(()) => return conflicts,
                Err(fjall::Conflict) => conflicts += 1,
            }
        }
    }
    fn value(&self, key: u64) -> Option<u64> {
        self.parts()
            .1
            .get(key.to_be_bytes())
            .expect("fjall get")
            .map(|v| be(&v))
    }
    fn reopen(&mut self) {
        drop(self.db.take());
        *self = Fjall::open(self.dir.clone());
    }
}

// redb ----------------------------------------------------------------------

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("bench");

struct Redb {
    path: PathBuf,
    db: Option<redb::Database>,
}

impl Redb {
    fn open(path: PathBuf) -> Self {
        let db = redb::Database::create(&path).expect("redb open");
        Redb { path, db: Some(db) }
    }
    fn db(&self) -> &redb::Database {
        self.db.as_ref().expect("open")
    }
    fn write(&self, writes: impl Iterator<Item = (u64, u64)>) {
        let mut tx = self.db().begin_write().expect("redb begin_write");
        tx.set_durability(redb::Durability::Immediate)
            .expect("redb set_durability");
        {
            let mut t = tx.open_table(REDB_TABLE).expect("redb open_table");
            for (k, v) in writes {
                t.insert(&k.to_be_bytes()[..], &v.to_be_bytes()[..])
                    .expect("redb insert");
            }
        }
        tx.commit().expect("redb commit");
    }
}

impl Engine for Redb {
    fn name(&self) -> &'static str {
        "redb"
    }
    fn load(&self, keys: &[u64]) {
        for chunk in keys.chunks(LOAD_BATCH) {
            self.write(chunk.iter().map(|&k| (k, value_of(k))));
        }
    }
    fn commit(&self, _thread: usize, writes: &[(u64, u64)]) -> u64 {
        self.write(writes.iter().copied());
        0
    }
    fn value(&self, key: u64) -> Option<u64> {
        use redb::ReadableDatabase;
        let tx = self.db().begin_read().expect("redb begin_read");
        let t = tx.open_table(REDB_TABLE).expect("redb open_table");
        let v = t.get(&key.to_be_bytes()[..]).expect("redb get");
        v.map(|g| be(g.value()))
    }
    fn reopen(&mut self) {
        drop(self.db.take());
        *self = Redb::open(self.path.clone());
    }
}

// sled ----------------------------------------------------------------------

struct Sled {
    dir: PathBuf,
    db: Option<sled::Db>,
}

impl Sled {
    fn open(dir: PathBuf) -> Self {
        let db = sled::open(&dir).expect("sled open");
        Sled { dir, db: Some(db) }
    }
    fn db(&self) -> &sled::Db {
        self.db.as_ref().expect("open")
    }
}

impl Engine for Sled {
    fn name(&self) -> &'static str {
        "sled"
    }
    fn load(&self, keys: &[u64]) {
        for chunk in keys.chunks(LOAD_BATCH) {
            let mut b = sled::Batch::default();
            for &k in chunk {
                b.insert(&k.to_be_bytes(), &value_of(k).to_be_bytes());
            }
            self.db().apply_batch(b).expect("sled batch");
        }
        self.db().flush().expect("sled flush");
    }
    fn commit(&self, _thread: usize, writes: &[(u64, u64)]) -> u64 {
        let db = self.db();
        let r: sled::transaction::TransactionResult<(), ()> = db.transaction(|tx| {
            for &(k, v) in writes {
                tx.insert(&k.to_be_bytes(), &v.to_be_bytes())?;
            }
            Ok(())
        });
        r.expect("sled transaction");
        db.flush().expect("sled flush");
        0
    }
    fn value(&self, key: u64) -> Option<u64> {
        self.db().get(key.to_be_bytes()).expect("sled get").map(|v| be(&v))
    }
    fn reopen(&mut self) {
        drop(self.db.take());
        *self = Sled::open(self.dir.clone());
    }
}

// Naive fsync-per-commit logs -----------------------------------------------

/// The naive log record of one commit: an 8-byte header (count), then key
/// and value of each write.
fn naive_record(buf: &mut Vec<u8>, writes: &[(u64, u64)]) {
    buf.clear();
    buf.extend_from_slice(&(writes.len() as u64).to_le_bytes());
    for &(k, v) in writes {
        buf.extend_from_slice(&k.to_be_bytes());
        buf.extend_from_slice(&v.to_be_bytes());
    }
}

fn append_file(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("create naive log")
}

/// One shared log file; each commit writes and syncs under one mutex.
struct FsyncLog {
    file: Mutex<File>,
}

impl Engine for FsyncLog {
    fn name(&self) -> &'static str {
        "fsync-log"
    }
    fn load(&self, _keys: &[u64]) {}
    fn commit(&self, _thread: usize, writes: &[(u64, u64)]) -> u64 {
        let mut rec = Vec::with_capacity(40);
        naive_record(&mut rec, writes);
        let mut f = self.file.lock().expect("naive log lock");
        f.write_all(&rec).expect("naive log write");
        f.sync_data().expect("naive log sync");
        0
    }
    fn value(&self, _key: u64) -> Option<u64> {
        None
    }
    fn reopen(&mut self) {}
    fn stores_keys(&self) -> bool {
        false
    }
}

/// One log file per committing thread; no shared lock.
struct FsyncFiles {
    files: Vec<Mutex<File>>,
}

impl Engine for FsyncFiles {
    fn name(&self) -> &'static str {
        "fsync-files"
    }
    fn load(&self, _keys: &[u64]) {}
    fn commit(&self, thread: usize, writes: &[(u64, u64)]) -> u64 {
        let mut rec = Vec::with_capacity(40);
        naive_record(&mut rec, writes);
        // Each thread has its own file: the mutex is never contended.
        let mut f = self.files[thread].lock().expect("naive file lock");
        f.write_all(&rec).expect("naive file write");
        f.sync_data().expect("naive file sync");
        0
    }
    fn value(&self, _key: u64) -> Option<u64> {
        None
    }
    fn reopen(&mut self) {}
    fn stores_keys(&self) -> bool {
        false
    }
}

/// Every engine's name, in table order.
const ENGINES: [&str; 6] = ["bwtx", "fjall", "redb", "sled", "fsync-log", "fsync-files"];

fn open_engine(name: &str, root: &Path, max_threads: usize) -> Box<dyn Engine> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("create engine dir");
    match name {
        "bwtx" => Box::new(Bwtx::open(dir)),
        "fjall" => Box::new(Fjall::open(dir)),
        "redb" => Box::new(Redb::open(dir.join("bench.redb"))),
        "sled" => Box::new(Sled::open(dir)),
        "fsync-log" => Box::new(FsyncLog {
            file: Mutex::new(append_file(&dir.join("log"))),
        }),
        "fsync-files" => Box::new(FsyncFiles {
            files: (0..max_threads)
                .map(|t| Mutex::new(append_file(&dir.join(format!("log-{t}")))))
                .collect(),
        }),
        _ => unreachable!("checked against ENGINES"),
    }
}

/// How each engine is configured, for the output.
fn config_of(name: &str) -> &'static str {
    match name {
        "bwtx" => "Options::new() (Durability::Sync, fdatasync, group commit; 64 MiB segments, ckpt every 256 MiB)",
        "fjall" => "fjall 3 OptimisticTxDatabase, write_tx().durability(Some(PersistMode::SyncAll)) per commit",
        "redb" => "redb 4, one write txn per commit, Durability::Immediate (single writer)",
        "sled" => "sled 0.34, Tree::transaction + Db::flush() per commit (flush = sync_file_range, not fsync)",
        "fsync-log" => "one shared file, Mutex: write + sync_data per commit",
        "fsync-files" => "one file per thread, no shared lock: write + sync_data per commit",
        _ => "",
    }
}

// ---------------------------------------------------------------------------
// Workload and timed passes.

/// A bijection on `u64` with well-mixed output (splitmix64's finalizer), so
/// `mix(0..n)` are `n` distinct random-looking keys.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What one timed pass did.
#[derive(Clone, Copy, Default)]
struct Pass {
    commits: u64,
    conflicts: u64,
    wall: Duration,
    /// fsync + fdatasync calls, and sync_file_range calls, in the process
    /// during the pass (None: not counted).
    syncs: Option<(u64, u64)>,
    /// bwtx only: its own (log syncs, commits, conflicts) during the pass.
    own: Option<[u64; 3]>,
}

fn delta(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> Option<(u64, u64)> {
    Some((b?.0 - a?.0, b?.1 - a?.1))
}

/// `threads` threads commit on `e` until `len` has passed; `seq` numbers the
/// pass (it seeds the key choice and tags the values written).
fn pass(e: &dyn Engine, keys: &[u64], threads: usize, len: Duration, seq: u64) -> Pass {
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
struct Cell {
    /// Best commits/s of the timed passes.
    rate: f64,
    /// Totals over the timed passes.
    commits: u64,
    conflicts: u64,
    syncs: Option<(u64, u64)>,
    own: Option<[u64; 3]>,
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
    fn syncs_per_commit(&self) -> Option<(f64, f64)> {
        let (s, r) = self.syncs?;
        let c = self.commits.max(1) as f64;
        Some((s as f64 / c, r as f64 / c))
    }

    /// bwtx's own `log_syncs / commits`.
    fn own_per_commit(&self) -> Option<f64> {
        let [s, c, _] = self.own?;
        Some(s as f64 / c.max(1) as f64)
    }
}

/// Run every engine on `threads` threads: a warm-up pass each, then `rounds`
/// rounds of one timed pass per engine.
fn measure(
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

// ---------------------------------------------------------------------------
// Output.

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else if r >= 1e4 {
        format!("{:.1}k", r / 1e3)
    } else {
        format!("{:.2}k", r / 1e3)
    }
}

struct Results {
    names: Vec<&'static str>,
    threads: Vec<usize>,
    /// `cells[i][j]`: thread count `threads[i]`, engine `names[j]`.
    cells: Vec<Vec<Cell>>,
    /// Whether the sync counting at the libc boundary worked.
    counted: bool,
}

impl Results {
    fn cell(&self, threads: usize, name: &str) -> Option<&Cell> {
        let i = self.threads.iter().position(|&t| t == threads)?;
        let j = self.names.iter().position(|&n| n == name)?;
        Some(&self.cells[i][j])
    }

    fn print(&self, len: Duration, rounds: usize) {
        const W: usize = 12;
        println!();
        println!(
            "durable commits/s (best of {rounds} timed pass{} of {} ms; each commit = 1 or 2 blind writes, alternately):",
            if rounds == 1 { "" } else { "es" },
            len.as_millis()
        );
        print!("{:>3}", "thr");
        for n in &self.names {
            print!(" {n:>W$}");
        }
        println!();
        for (i, t) in self.threads.iter().enumerate() {
            print!("{t:>3}");
            for c in &self.cells[i] {
                print!(" {:>W$}", fmt_rate(c.rate));
            }
            println!();
        }

        println!();
        println!(
            "syncs per commit (fsync + fdatasync calls in the process, background threads included; \
             +Nr = sync_file_range calls):"
        );
        print!("{:>3} {:>W$}", "thr", "bwtx(stats)");
        for n in &self.names {
            print!(" {n:>W$}");
        }
        println!();
        for (i, t) in self.threads.iter().enumerate() {
            let own = self
                .cell(*t, "bwtx")
                .and_then(Cell::own_per_commit)
                .map_or("-".to_string(), |v| format!("{v:.3}"));
            print!("{t:>3} {own:>W$}");
            for c in &self.cells[i] {
                let s = match c.syncs_per_commit() {
                    Some((s, r)) if self.counted && r >= 0.005 => format!("{s:.2}+{r:.2}r"),
                    Some((s, _)) if self.counted => format!("{s:.3}"),
                    _ => "-".to_string(),
                };
                print!(" {s:>W$}");
            }
            println!();
        }
        if self.names.contains(&"bwtx") {
            println!("  bwtx(stats) = stats().log_syncs / stats().commits over the timed passes");
        }

        if !self.names.contains(&"bwtx") {
            return;
        }
        let base1 = self.cell(1, "fsync-log").map(|c| c.rate);
        println!();
        println!("ratios (bwtx commits/s over the other's, same thread count):");
        let others: Vec<&str> = self.names.iter().copied().filter(|&n| n != "bwtx").collect();
        print!("{:>3}", "thr");
        for n in &others {
            print!(" {:>W$}", format!("/{n}"));
        }
        println!(" {:>14} {:>14}", "commits/sync", "of ceiling");
        for &t in &self.threads {
            let bw = self.cell(t, "bwtx").expect("bwtx measured");
            print!("{t:>3}");
            for n in &others {
                let c = self.cell(t, n).expect("measured");
                print!(" {:>W$}", format!("{:.2}x", bw.rate / c.rate.max(1e-9)));
            }
            let per_sync = bw.own.map_or("-".to_string(), |[s, c, _]| {
                format!("{:.2}", c as f64 / s.max(1) as f64)
            });
            // Group commit's ceiling: `t` commits per sync at the 1-thread
            // fsync-per-commit rate.
            let ceiling = base1.map_or("-".to_string(), |b| format!("{:.0}%", 100.0 * bw.rate / (b * t as f64)));
            println!(" {per_sync:>14} {ceiling:>14}");
        }
        if let Some(b) = base1 {
            println!(
                "  ceiling = threads x the 1-thread fsync-log rate ({}/s, i.e. one write + fdatasync ~{:.0} us): \
                 a sync covers at most one commit per committer",
                fmt_rate(b),
                1e6 / b
            );
        }
        let conflicts: Vec<String> = self
            .threads
            .iter()
            .enumerate()
            .flat_map(|(i, &t)| {
                self.names
                    .iter()
                    .zip(&self.cells[i])
                    .filter(|(_, c)| c.conflicts > 0)
                    .map(move |(n, c)| {
                        format!(
                            "{n}@{t}: {:.2}/1k",
                            c.conflicts as f64 * 1000.0 / c.commits.max(1) as f64
                        )
                    })
            })
            .collect();
        if !conflicts.is_empty() {
            println!("  conflicts retried (per 1,000 commits): {}", conflicts.join(", "));
        }
    }

    fn print_goals(&self) {
        let Some(&top) = self.threads.iter().max() else { return };
        let Some(bw) = self.cell(top, "bwtx") else { return };
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!();
        println!("goals ({top} committers):");
        for base in ["fsync-log", "fsync-files"] {
            if let Some(c) = self.cell(top, base) {
                let r = bw.rate / c.rate.max(1e-9);
                let judged = if base == "fsync-log" {
                    ""
                } else {
                    " (not the goal's baseline; for reference)"
                };
                println!(
                    "  bwtx >= 10x {base} (one fsync per commit): {r:.2}x [{}]{judged}",
                    if base == "fsync-log" { verdict(r >= 10.0) } else { "-" }
                );
            }
        }
        if let (Some(one), Some(c)) = (self.cell(1, "fsync-log"), self.cell(top, "fsync-log")) {
            println!(
                "  (bound: {top} committers share a sync at most {top} ways, so bwtx/fsync-log <= about {:.1}x here: \
                 {top} x the 1-thread fsync-log rate over the {top}-thread one)",
                top as f64 * one.rate / c.rate.max(1e-9)
            );
        }
        let peers: Vec<(&str, f64)> = ["fjall", "redb", "sled"]
            .iter()
            .filter_map(|&n| self.cell(top, n).map(|c| (n, bw.rate / c.rate.max(1e-9))))
            .collect();
        if !peers.is_empty() {
            let list: Vec<String> = peers.iter().map(|(n, r)| format!("{n} {r:.2}x")).collect();
            println!(
                "  bwtx ahead of every peer: {} [{}] (sled's flush is a sync_file_range, not an fsync)",
                list.join(", "),
                verdict(peers.iter().all(|&(_, r)| r > 1.0))
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Recovery check.

/// A digest of every key's value; panics on a missing key.
fn digest(e: &dyn Engine, keys: &[u64]) -> (u64, usize) {
    let mut sum = 0u64;
    let mut changed = 0;
    for &k in keys {
        let v = e.value(k).unwrap_or_else(|| panic!("{}: key {k:#x} lost", e.name()));
        changed += usize::from(v != value_of(k));
        sum = sum.wrapping_add(mix(k ^ mix(v)));
    }
    (sum, changed)
}

/// Close and reopen every engine that stores keys; every key must read the
/// same value after recovery as before.
fn check(engines: &mut [Box<dyn Engine>], keys: &[u64]) {
    for e in engines.iter_mut().filter(|e| e.stores_keys()) {
        let before = digest(&**e, keys);
        let start = Instant::now();
        e.reopen();
        let reopened = start.elapsed();
        let after = digest(&**e, keys);
        assert_eq!(before, after, "{}: values differ after reopening", e.name());
        println!(
            "  {:<12} reopened in {:.2}s: all {} keys read back unchanged ({} of them overwritten by the passes)",
            e.name(),
            reopened.as_secs_f64(),
            keys.len(),
            before.1
        );
    }
}

// ---------------------------------------------------------------------------

/// The 1-minute load average (Linux), to flag runs on a busy machine.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The file system type and device `path` is on (Linux: the longest mount
/// point in `/proc/mounts` that is a prefix of it).
fn fs_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "?".into();
    };
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && path.starts_with(f[1])).then(|| (f[1].len(), format!("{} on {} ({})", f[2], f[1], f[0])))
        })
        .max_by_key(|m| m.0)
        .map_or_else(|| "?".into(), |m| m.1)
}

fn env_num(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number")),
        Err(_) => default,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |a: &str| args.iter().any(|x| x == a);
    if has("--list") {
        // No criterion benchmarks to enumerate.
        return;
    }
    let test_mode = has("--test");
    let n = env_num("BWTX_BENCH_KEYS", if test_mode { 2_000 } else { 100_000 });
    assert!(n >= 2, "BWTX_BENCH_KEYS must be at least 2");
    let len = Duration::from_millis(env_num("BWTX_BENCH_PASS_MS", if test_mode { 20 } else { 1000 }) as u64);
    let rounds = env_num("BWTX_BENCH_ROUNDS", if test_mode { 1 } else { 3 }).max(1);
    let threads: Vec<usize> = std::env::var("BWTX_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2,4,8".into())
        .split(',')
        .map(|s| s.trim().parse().expect("BWTX_BENCH_THREADS: comma-separated numbers"))
        .collect();
    assert!(threads.iter().all(|&t| t > 0), "BWTX_BENCH_THREADS must be positive");
    let names: Vec<&'static str> = match std::env::var("BWTX_BENCH_ENGINES") {
        Ok(list) => {
            let wanted: Vec<String> = list.split(',').map(|s| s.trim().to_owned()).collect();
            for w in &wanted {
                assert!(
                    ENGINES.contains(&w.as_str()),
                    "BWTX_BENCH_ENGINES: unknown engine {w} (one of {ENGINES:?})"
                );
            }
            ENGINES
                .iter()
                .copied()
                .filter(|e| wanted.iter().any(|w| w == e))
                .collect()
        }
        Err(_) => ENGINES.to_vec(),
    };
    let base = std::env::var_os("BWTX_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let root = base.join(format!("bwtx-durable-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("create the bench directory");
    let fs = fs_of(&root);

    let started = Instant::now();
    println!(
        "bwtx durable bench: {n} keys (8-byte keys and values); threads {threads:?}; load average at start {}; {} cpus",
        loadavg(),
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("  dir {} on {fs}", root.display());
    if fs.starts_with("tmpfs") || fs.starts_with("ramfs") {
        println!("  WARNING: a memory file system: syncs cost nothing, so the rates below mean little");
    }
    for name in &names {
        println!("  {name:<12} {}", config_of(name));
    }

    let keys: Vec<u64> = (0..n as u64).map(|i| mix(i ^ 0x6475_7261)).collect();
    let max_threads = threads.iter().copied().max().unwrap_or(1);
    println!("loading (1 thread, {LOAD_BATCH} writes per transaction, then synced):");
    let mut engines: Vec<Box<dyn Engine>> = Vec::new();
    for name in &names {
        let start = Instant::now();
        let e = open_engine(name, &root, max_threads);
        e.load(&keys);
        if e.stores_keys() {
            println!(
                "  {name:<12} opened and loaded in {:.2}s",
                start.elapsed().as_secs_f64()
            );
        }
        engines.push(e);
    }

    let mut seq = 0;
    let mut cells = Vec::new();
    for &t in &threads {
        cells.push(measure(&engines, &keys, t, len, rounds, &mut seq));
    }
    // The libc-boundary counting works if it saw bwtx's (or the naive
    // logs') syncs.
    let counted = cells.iter().flatten().zip(names.iter().cycle()).any(|(c, &name)| {
        matches!(name, "bwtx" | "fsync-log" | "fsync-files") && c.commits > 0 && c.syncs.is_some_and(|s| s.0 > 0)
    });
    let results = Results {
        names: names.clone(),
        threads: threads.clone(),
        cells,
        counted,
    };
    results.print(len, rounds);
    results.print_goals();

    for (i, &t) in threads.iter().enumerate() {
        for (j, name) in names.iter().enumerate() {
            let c = &results.cells[i][j];
            assert!(c.commits > 0, "{name} committed nothing on {t} threads");
            if let Some([s, commits, _]) = c.own {
                assert!(
                    s > 0 && s <= commits,
                    "bwtx on {t} threads: {s} log syncs for {commits} commits"
                );
            }
        }
    }
    println!();
    println!("recovery check (close, reopen, compare every key):");
    check(&mut engines, &keys);
    drop(engines);
    let _ = std::fs::remove_dir_all(&root);
    println!(
        "(took {:.1}s; load average now {})",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
}
