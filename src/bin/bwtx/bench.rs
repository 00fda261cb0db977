//! `bwtx bench`: the YCSB core workloads A–F and a bank-transfer workload,
//! run as bwtx transactions from several threads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bwtx::{Db, Durability, Options, Transaction};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use crate::report::{BenchReport, Latency, RunHeader};
use crate::zipf::Zipf;

/// Which operation mix to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// 50% reads, 50% updates.
    #[default]
    A,
    /// 95% reads, 5% updates.
    B,
    /// Reads only.
    C,
    /// 95% reads of the latest keys, 5% inserts of new keys.
    D,
    /// 95% short scans (1 to 100 keys), 5% inserts.
    E,
    /// 50% reads, 50% read-modify-writes.
    F,
    /// Transfers between accounts; the total is checked at the end.
    Bank,
}

/// How keys are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Skewed (YCSB's scrambled zipfian: hot keys spread over the key space).
    Zipfian,
    /// Skewed towards the most recently inserted keys.
    Latest,
}

/// Where the database lives and what a commit survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Commit returns after its log record is fsynced (group commit).
    Sync,
    /// Commit returns after the write; a background thread syncs (see --buffer-ms).
    Buffered,
    /// Nothing is logged.
    None,
}

/// Options of `bwtx bench`.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// The operation mix; several, comma-separated (`a,b,c,d,e,f,bank`),
    /// run one after the other.
    #[arg(long = "workload", value_enum, value_delimiter = ',', default_value = "a")]
    pub workloads: Vec<Workload>,
    /// The workload of this run (one of `workloads`).
    #[arg(skip)]
    pub workload: Workload,
    /// Keys loaded before the run (bank: accounts).
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Bytes per value (bank: balances are 8 bytes).
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Client threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Run for this many seconds (default 10 unless --ops is given).
    #[arg(long, conflicts_with = "ops")]
    pub duration: Option<f64>,
    /// Run this many operations in all (instead of --duration).
    #[arg(long)]
    pub ops: Option<u64>,
    /// Key distribution (default: latest for workload d, zipfian otherwise).
    #[arg(long, value_enum)]
    pub distribution: Option<Distribution>,
    /// Zipfian skew, in (0, 1).
    #[arg(long, default_value_t = 0.99)]
    pub theta: f64,
    /// Operations per transaction (default 2: for workload a, on average one
    /// read and one update; bank: transfers per transaction, default 1).
    #[arg(long)]
    pub ops_per_txn: Option<usize>,
    /// Keep the database in this directory (default: in memory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Durability with --dir (default sync). With --compare the default is
    /// relaxed for every engine (bwtx in memory, or buffered with --dir;
    /// peers without per-commit syncs); `sync` syncs every engine per commit.
    #[arg(long, value_enum)]
    pub durability: Option<DurabilityArg>,
    /// Sync interval of --durability buffered, in milliseconds.
    #[arg(long, default_value_t = 10)]
    pub buffer_ms: u64,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run the same workload (same keys, same seeded operation streams) on
    /// bwtx and on skipdb, fjall, redb and sled (and RocksDB in builds with
    /// `peer-rocksdb`; crossbeam-skiplist and scc, without transactions, for
    /// A–F), and compare them. Needs a build with `--features cli,bench-peers`.
    #[arg(long)]
    pub compare: bool,
    /// With --compare: also draw the throughputs as a bar chart (SVG).
    #[arg(long, requires = "compare", value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

impl Default for BenchArgs {
    fn default() -> Self {
        BenchArgs {
            workloads: vec![Workload::A],
            workload: Workload::A,
            keys: 1_000_000,
            value_size: 100,
            threads: 2,
            duration: None,
            ops: None,
            distribution: None,
            theta: 0.99,
            ops_per_txn: None,
            dir: None,
            durability: None,
            buffer_ms: 10,
            seed: 1,
            json: false,
            compare: false,
            plot: None,
        }
    }
}

/// Initial balance of each bank account.
const BALANCE: u64 = 1000;
/// Keys written per loading transaction.
const LOAD_BATCH: u64 = 1000;
/// Transactions a client claims at once with --ops (see `Run::claim`).
const CLAIM_CHUNK: u64 = 64;
/// Operations a client completes between updates of the progress counter.
const REPORT_EVERY: u64 = 256;
/// Longest scan of workload E (YCSB's `maxscanlength`).
const MAX_SCAN: u64 = 100;

/// Record indexes stay below this, so every key has the same width.
pub const MAX_RECORDS: u64 = 1_000_000_000_000;

/// A record's key: `user` and 12 decimal digits (YCSB's `user<n>`, fixed
/// width so key order is record order), built on the stack: a heap `String`
/// per operation would add the same cost to every engine and blur the
/// differences between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key([u8; 16]);

impl Key {
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    pub fn into_bytes(self) -> Vec<u8> {
        self.0.to_vec()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The key of record `i` (`i < MAX_RECORDS`).
pub fn key(mut i: u64) -> Key {
    debug_assert!(i < MAX_RECORDS);
    let mut b = *b"user000000000000";
    for d in b[4..].iter_mut().rev() {
        *d = b'0' + (i % 10) as u8;
        i /= 10;
    }
    Key(b)
}

/// SplitMix64: a small, fast generator (the binary has no `rand`).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// FNV-1a of a u64: YCSB's scrambling of zipfian ranks.
fn fnv(x: u64) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in x.to_le_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// Chooses existing records.
pub struct Chooser {
    dist: Distribution,
    zipf: Option<Zipf>,
}

impl Chooser {
    /// A record among the `count` inserted so far.
    pub fn pick(&self, rng: &mut Rng, count: u64) -> u64 {
        let count = count.max(1);
        match (self.dist, &self.zipf) {
            (Distribution::Uniform, _) | (_, None) => rng.below(count),
            (Distribution::Zipfian, Some(z)) => fnv(z.rank(rng.f64())) % count,
            (Distribution::Latest, Some(z)) => count - 1 - (z.rank(rng.f64()) % count),
        }
    }
}

/// A store the workload runs on: bwtx itself, or (with `--compare`) a peer
/// from `peers.rs`. Every engine gets the same keys ([`key`]), the same
/// resolved operations and the same value bytes.
pub trait Engine: Sync {
    /// Short name for the report.
    fn name(&self) -> &'static str;
    /// How the engine is configured (printed in the report).
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    fn settings(&self) -> String;
    /// Write the records `(index, value)` in one transaction.
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String>;
    /// Run one attempt of a transaction of `ops` (no [`Op::Insert`] left
    /// unresolved: its index is the record to write). Updates and inserts
    /// write `value`.
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String>;
    /// The sum of the balances of records `0..n` (bank), read in one snapshot
    /// where the engine has them.
    fn bank_total(&self, n: u64) -> Result<u64, String>;
}

/// The balance stored in a bank record (0 if malformed).
pub fn balance_of(v: &[u8]) -> u64 {
    <[u8; 8]>::try_from(v).map_or(0, u64::from_le_bytes)
}

/// The value a read-modify-write writes back, given what it read.
pub fn rmw_value(read: Option<&[u8]>, value: &[u8]) -> Vec<u8> {
    let mut v = read.unwrap_or(value).to_vec();
    if let Some(b) = v.first_mut() {
        *b = b.wrapping_add(1);
    }
    v
}

/// Whether a transaction only reads.
#[cfg(feature = "bench-peers")]
pub fn read_only(ops: &[Op]) -> bool {
    ops.iter().all(|op| matches!(op, Op::Read(_) | Op::Scan(..)))
}

/// bwtx as an [`Engine`].
pub struct Bwtx {
    pub db: Db,
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    pub settings: String,
}

impl Engine for Bwtx {
    fn name(&self) -> &'static str {
        "bwtx"
    }
    fn settings(&self) -> String {
        self.settings.clone()
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        self.db
            .transaction(|tx| {
                for (i, v) in batch {
                    tx.put(key(*i), v)?;
                }
                Ok(())
            })
            .map_err(|e| e.to_string())
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        let r = (|| {
            let mut tx = self.db.begin();
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        tx.get(key(i))?;
                    }
                    Op::Update(i) | Op::Insert(i) => tx.put(key(i), value)?,
                    Op::Scan(i, len) => {
                        for kv in tx.range(key(i)..).take(len as usize) {
                            kv?;
                        }
                    }
                    Op::Rmw(i) => {
                        let k = key(i);
                        let v = rmw_value(tx.get(k)?.as_deref(), value);
                        tx.put(k, &v)?;
                    }
                    Op::Transfer(a, b, amount) => transfer(&mut tx, a, b, amount)?,
                }
            }
            finish(&self.db, tx)
        })();
        r.map_err(|e| format!("transaction failed: {e}"))
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        let snap = self.db.snapshot();
        let mut sum: u64 = 0;
        for kv in snap.range(key(0)..=key(n - 1)) {
            let (_, v) = kv.map_err(|e| e.to_string())?;
            sum += balance_of(&v);
        }
        Ok(sum)
    }
}

/// What one client thread measured.
struct ThreadResult {
    hist: Histogram<u64>,
    /// When the thread finished its last transaction.
    end: Instant,
    txns: u64,
    ops: u64,
    aborts: u64,
}

/// The workload settings shared by every engine of one invocation.
pub struct Setup {
    pub ops_per_txn: usize,
    pub dist: Distribution,
    pub duration: Option<Duration>,
    pub hidden: bool,
    pub chooser: Chooser,
}

/// Shared state of a run.
struct Run<'a> {
    db: &'a dyn Engine,
    args: &'a BenchArgs,
    setup: &'a Setup,
    /// Records inserted (loaded plus inserted by D and E): the next insert's index.
    records: AtomicU64,
    /// Operations completed (for the progress bar and --ops).
    done_ops: AtomicU64,
    /// Operations claimed (with --ops).
    claimed_ops: AtomicU64,
    stop: AtomicBool,
}

/// The bwtx durability `args` ask for.
fn durability(args: &BenchArgs, default: DurabilityArg) -> Durability {
    match args.durability.unwrap_or(default) {
        DurabilityArg::Sync => Durability::Sync,
        DurabilityArg::Buffered => Durability::Buffered(Duration::from_millis(args.buffer_ms.max(1))),
        DurabilityArg::None => Durability::None,
    }
}

/// The database the bench runs on.
fn open(args: &BenchArgs) -> Result<Db, String> {
    let opts = Options::new();
    match &args.dir {
        None => opts.in_memory().map_err(|e| e.to_string()),
        Some(dir) => opts
            .durability(durability(args, DurabilityArg::Sync))
            .open(dir)
            .map_err(|e| format!("cannot open {}: {e}", dir.display())),
    }
}

/// bwtx for `--compare`: in memory, or buffered in --dir, unless
/// `--durability sync` (then sync, in --dir or in `tmp`).
#[cfg(feature = "bench-peers")]
pub fn open_compare(args: &BenchArgs, tmp: &std::path::Path) -> Result<Bwtx, String> {
    let sync = args.durability == Some(DurabilityArg::Sync);
    let dir = match &args.dir {
        Some(d) => Some(d.clone()),
        None if sync => Some(tmp.join("bwtx")),
        None => None,
    };
    match dir {
        None => Ok(Bwtx {
            db: Options::new().in_memory().map_err(|e| e.to_string())?,
            settings: "bwtx: in memory (Options::new().in_memory()), no log; begin/commit per transaction, on a \
                       conflict waits for the winner to become visible (Db::wait_visible) before the retry"
                .to_owned(),
        }),
        Some(dir) => {
            let d = durability(args, DurabilityArg::Buffered);
            let db = Options::new()
                .durability(d)
                .open(&dir)
                .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
            Ok(Bwtx {
                db,
                settings: format!(
                    "bwtx: {} with Durability::{d:?} (group commit); begin/commit per transaction, on a conflict \
                     waits for the winner to become visible (Db::wait_visible) before the retry",
                    dir.display()
                ),
            })
        }
    }
}

fn bar(len: u64, what: &str, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{msg:>8} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(what.to_owned());
    pb
}

/// Load `n` records in batches, from `threads` threads.
fn load(db: &dyn Engine, args: &BenchArgs, hidden: bool) -> Result<Duration, String> {
    let start = Instant::now();
    let pb = bar(args.keys, "load", hidden);
    let next = AtomicU64::new(0);
    let err: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for t in 0..args.threads.max(1) {
            let (next, pb, err) = (&next, &pb, &err);
            s.spawn(move || {
                let mut rng = Rng::new(args.seed ^ (t as u64 + 1).wrapping_mul(0x1234_5678_9ABC_DEF1));
                let mut value = vec![b'x'; args.value_size];
                let mut batch = Vec::with_capacity(LOAD_BATCH as usize);
                loop {
                    let lo = next.fetch_add(LOAD_BATCH, Ordering::Relaxed);
                    if lo >= args.keys {
                        return;
                    }
                    let hi = (lo + LOAD_BATCH).min(args.keys);
                    batch.clear();
                    for i in lo..hi {
                        if args.workload == Workload::Bank {
                            batch.push((i, BALANCE.to_le_bytes().to_vec()));
                        } else {
                            fill(&mut value, &mut rng);
                            batch.push((i, value.clone()));
                        }
                    }
                    if let Err(e) = db.load(&batch) {
                        *err.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(format!("{} load failed: {e}", db.name()));
                        return;
                    }
                    pb.inc(hi - lo);
                }
            });
        }
    });
    pb.finish_and_clear();
    match err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(start.elapsed()),
    }
}

fn fill(value: &mut [u8], rng: &mut Rng) {
    let r = rng.next_u64().to_le_bytes();
    let n = value.len().min(8);
    value[..n].copy_from_slice(&r[..n]);
}

/// One transaction's outcome.
pub enum Outcome {
    Committed,
    Conflict,
}

impl Run<'_> {
    /// Claim the next transaction; false when the run is over. With --ops,
    /// a thread claims [`CLAIM_CHUNK`] transactions' operations at a time
    /// (`budget` counts what is left of its claim): one shared counter
    /// bumped per transaction would bounce its cache line between the client
    /// threads and tax every engine alike. The number of transactions run is
    /// still exactly `ceil(ops / ops_per_txn)`.
    fn claim(&self, budget: &mut u64) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        let Some(total) = self.args.ops else { return true };
        if *budget == 0 {
            let per = self.setup.ops_per_txn as u64;
            let prev = self.claimed_ops.fetch_add(CLAIM_CHUNK * per, Ordering::Relaxed);
            if prev >= total {
                return false;
            }
            *budget = CLAIM_CHUNK.min((total - prev).div_ceil(per));
        }
        *budget -= 1;
        true
    }

    /// The operations of the next transaction (inserts unresolved). Drawn
    /// from the thread's own generator only, so every engine sees the same
    /// stream for the same seed.
    fn plan(&self, rng: &mut Rng, plan: &mut Vec<Op>) {
        plan.clear();
        let count = self.records.load(Ordering::Relaxed);
        for _ in 0..self.setup.ops_per_txn {
            let p = rng.below(100);
            let pick = |rng: &mut Rng| self.setup.chooser.pick(rng, count);
            let op = match self.args.workload {
                Workload::A if p < 50 => Op::Read(pick(rng)),
                Workload::A => Op::Update(pick(rng)),
                Workload::B if p < 95 => Op::Read(pick(rng)),
                Workload::B => Op::Update(pick(rng)),
                Workload::C => Op::Read(pick(rng)),
                Workload::D if p < 95 => Op::Read(pick(rng)),
                Workload::D => Op::Insert(0),
                Workload::E if p < 95 => Op::Scan(pick(rng), 1 + rng.below(MAX_SCAN)),
                Workload::E => Op::Insert(0),
                Workload::F if p < 50 => Op::Read(pick(rng)),
                Workload::F => Op::Rmw(pick(rng)),
                Workload::Bank => {
                    let n = self.args.keys.max(2);
                    let a = pick(rng) % n;
                    let mut b = rng.below(n - 1);
                    if b >= a {
                        b += 1;
                    }
                    Op::Transfer(a, b, rng.below(100))
                }
            };
            plan.push(op);
        }
    }

    fn client(&self, t: usize) -> Result<ThreadResult, String> {
        let mut rng = Rng::new(self.args.seed.wrapping_add(0xA5A5_0000 + t as u64 * 7919));
        // Values and backoff jitter come from a generator of their own, so
        // retries do not shift the operation stream.
        let mut vrng = Rng::new(self.args.seed.wrapping_add(0x5A5A_0000 + t as u64 * 104_729));
        let mut value = vec![b'v'; self.args.value_size];
        let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000_000, 3).map_err(|e| e.to_string())?;
        let mut res = ThreadResult {
            hist: Histogram::new_from(&hist),
            end: Instant::now(),
            txns: 0,
            ops: 0,
            aborts: 0,
        };
        let mut plan = Vec::with_capacity(self.setup.ops_per_txn);
        let mut ops = Vec::with_capacity(self.setup.ops_per_txn);
        let mut budget = 0;
        // Completed operations not yet added to `done_ops` (see `claim`).
        let mut unreported = 0;
        while self.claim(&mut budget) {
            self.plan(&mut rng, &mut plan);
            let start = Instant::now();
            let mut tries = 0u32;
            loop {
                ops.clear();
                ops.extend(plan.iter().map(|op| match op {
                    Op::Insert(_) => Op::Insert(self.records.fetch_add(1, Ordering::Relaxed)),
                    op => *op,
                }));
                fill(&mut value, &mut vrng);
                match self.db.attempt(&ops, &value)? {
                    Outcome::Committed => break,
                    Outcome::Conflict => {
                        // Retry the same operations, backing off as
                        // `Db::transaction` does: spin a little, then sleep
                        // a growing, jittered time.
                        res.aborts += 1;
                        tries += 1;
                        if tries < 4 {
                            std::thread::yield_now();
                        } else {
                            let us = (1u64 << tries.min(10)) + vrng.below(64);
                            std::thread::sleep(Duration::from_micros(us));
                        }
                    }
                }
            }
            hist.saturating_record(start.elapsed().as_nanos().max(1) as u64);
            res.txns += 1;
            res.ops += plan.len() as u64;
            unreported += plan.len() as u64;
            if unreported >= REPORT_EVERY {
                self.done_ops.fetch_add(unreported, Ordering::Relaxed);
                unreported = 0;
            }
        }
        self.done_ops.fetch_add(unreported, Ordering::Relaxed);
        res.hist = hist;
        res.end = Instant::now();
        Ok(res)
    }
}

/// One operation of a planned transaction.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// Read record `i`.
    Read(u64),
    /// Overwrite record `i`.
    Update(u64),
    /// Insert a new record (its index is chosen at each attempt).
    Insert(u64),
    /// Read up to `len` records from record `i` on.
    Scan(u64, u64),
    /// Read record `i` and write it back changed.
    Rmw(u64),
    /// Move up to `amount` from account `a` to account `b`.
    Transfer(u64, u64, u64),
}

fn balance(tx: &Transaction, i: u64) -> Result<u64, bwtx::Error> {
    Ok(tx.get(key(i))?.map_or(0, |b| balance_of(&b)))
}

fn transfer(tx: &mut Transaction, a: u64, b: u64, amount: u64) -> Result<(), bwtx::Error> {
    let (fa, fb) = (balance(tx, a)?, balance(tx, b)?);
    let amount = amount.min(fa);
    tx.put(key(a), (fa - amount).to_le_bytes())?;
    tx.put(key(b), (fb + amount).to_le_bytes())
}

/// Commit; on a conflict, wait for the winner to become visible first (as
/// `Db::transaction` does), so the retry's snapshot includes it.
fn finish(db: &Db, tx: Transaction) -> Result<Outcome, bwtx::Error> {
    match tx.commit() {
        Ok(_) => Ok(Outcome::Committed),
        Err(bwtx::Error::Conflict { winner, .. }) => {
            db.wait_visible(winner, Duration::from_millis(10));
            Ok(Outcome::Conflict)
        }
        Err(e) => Err(e),
    }
}

/// Peak resident set size in KiB (`VmHWM` of /proc/self/status), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Check the arguments and derive the settings every engine shares.
pub fn setup(args: &BenchArgs) -> Result<Setup, String> {
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    if args.keys == 0 || (args.workload == Workload::Bank && args.keys < 2) {
        return Err("--keys must be at least 1 (bank: 2)".into());
    }
    if args.keys > MAX_RECORDS / 10 {
        return Err(format!("--keys must be at most {}", MAX_RECORDS / 10));
    }
    if !(args.theta > 0.0 && args.theta < 1.0) {
        return Err("--theta must be in (0, 1)".into());
    }
    if args.value_size > bwtx::tree::MAX_VALUE_LEN {
        return Err(format!("--value-size must be at most {}", bwtx::tree::MAX_VALUE_LEN));
    }
    let ops_per_txn = args
        .ops_per_txn
        .unwrap_or(if args.workload == Workload::Bank { 1 } else { 2 });
    if ops_per_txn == 0 {
        return Err("--ops-per-txn must be at least 1".into());
    }
    let dist = args.distribution.unwrap_or(match args.workload {
        Workload::D => Distribution::Latest,
        _ => Distribution::Zipfian,
    });
    let hidden = args.json || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let duration = match (args.duration, args.ops) {
        (Some(d), _) if !(d > 0.0 && d.is_finite()) => return Err("--duration must be positive".into()),
        (Some(d), _) => Some(Duration::from_secs_f64(d)),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    let zipf = (dist != Distribution::Uniform).then(|| Zipf::new(args.keys, args.theta));
    Ok(Setup {
        ops_per_txn,
        dist,
        duration,
        hidden,
        chooser: Chooser { dist, zipf },
    })
}

impl Setup {
    /// The description of a run of `args` with these settings.
    pub fn header(&self, args: &BenchArgs) -> RunHeader {
        RunHeader {
            workload: format!("{:?}", args.workload).to_lowercase(),
            distribution: format!("{:?}", self.dist).to_lowercase(),
            theta: args.theta,
            keys: args.keys,
            value_size: args.value_size,
            threads: args.threads,
            ops_per_txn: self.ops_per_txn,
        }
    }
}

/// What one engine measured.
pub struct Measured {
    pub load: Duration,
    pub elapsed: Duration,
    pub txns: u64,
    pub ops: u64,
    pub aborts: u64,
    pub hist: Histogram<u64>,
    /// Bank: (sum of balances found, sum expected).
    pub bank_total: Option<(u64, u64)>,
}

impl Measured {
    pub fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }
    /// Transactions per second.
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    pub fn tput(&self) -> f64 {
        self.txns as f64 / self.secs()
    }
    pub fn latency(&self) -> Latency {
        let q = |p: f64| self.hist.value_at_quantile(p) as f64 / 1000.0;
        Latency {
            p50: q(0.5),
            p99: q(0.99),
            p999: q(0.999),
            max: self.hist.max() as f64 / 1000.0,
            mean: self.hist.mean() / 1000.0,
        }
    }
    pub fn abort_rate(&self) -> f64 {
        if self.txns + self.aborts == 0 {
            0.0
        } else {
            self.aborts as f64 / (self.txns + self.aborts) as f64
        }
    }
}

/// Load `db` and run the workload on it.
pub fn measure(db: &dyn Engine, args: &BenchArgs, setup: &Setup, between: impl FnOnce()) -> Result<Measured, String> {
    let load_time = load(db, args, setup.hidden)?;
    between();
    let run = Run {
        db,
        args,
        setup,
        records: AtomicU64::new(args.keys),
        done_ops: AtomicU64::new(0),
        claimed_ops: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    let duration = setup.duration;
    let hidden = setup.hidden;

    let start = Instant::now();
    let results: Vec<Result<ThreadResult, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.threads)
            .map(|t| {
                s.spawn({
                    let run = &run;
                    move || {
                        let r = run.client(t);
                        if r.is_err() {
                            run.stop.store(true, Ordering::Relaxed);
                        }
                        r
                    }
                })
            })
            .collect();
        // The progress bar, and the clock.
        let pb = match (duration, args.ops) {
            (Some(d), _) => bar(d.as_secs().max(1), "run (s)", hidden),
            (None, Some(n)) => bar(n, "run", hidden),
            (None, None) => ProgressBar::hidden(),
        };
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let el = start.elapsed();
            match duration {
                Some(d) => {
                    pb.set_position(el.as_secs().min(d.as_secs().max(1)));
                    if el >= d {
                        run.stop.store(true, Ordering::Relaxed);
                    }
                }
                None => pb.set_position(run.done_ops.load(Ordering::Relaxed)),
            }
            if handles.iter().all(|h| h.is_finished()) {
                break;
            }
        }
        pb.finish_and_clear();
        run.stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a client thread panicked".into())))
            .collect()
    });

    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000_000, 3).map_err(|e| e.to_string())?;
    let (mut txns, mut ops, mut aborts) = (0, 0, 0);
    let mut elapsed = Duration::ZERO;
    for r in results {
        let r = r.map_err(|e| format!("{}: {e}", db.name()))?;
        elapsed = elapsed.max(r.end.duration_since(start));
        hist.add(&r.hist).map_err(|e| e.to_string())?;
        txns += r.txns;
        ops += r.ops;
        aborts += r.aborts;
    }
    let bank_total = if args.workload == Workload::Bank {
        Some((db.bank_total(args.keys)?, args.keys * BALANCE))
    } else {
        None
    };
    Ok(Measured {
        load: load_time,
        elapsed,
        txns,
        ops,
        aborts,
        hist,
        bank_total,
    })
}

/// Run the benchmark and report.
pub fn run(args: &BenchArgs) -> Result<BenchReport, String> {
    let setup = setup(args)?;
    let engine = Bwtx {
        db: open(args)?,
        settings: String::new(),
    };
    let mut before = None;
    let m = measure(&engine, args, &setup, || before = Some(engine.db.stats()))?;
    let before = before.unwrap_or_else(|| engine.db.stats());
    let after = engine.db.stats();

    let secs = m.secs();
    let commits = after.commits - before.commits;
    let syncs = after.log_syncs - before.log_syncs;
    Ok(BenchReport {
        header: setup.header(args),
        storage: match &args.dir {
            None => "memory".to_owned(),
            Some(d) => format!("{} ({:?})", d.display(), args.durability.unwrap_or(DurabilityArg::Sync)).to_lowercase(),
        },
        load_secs: m.load.as_secs_f64(),
        elapsed_secs: secs,
        txns: m.txns,
        ops: m.ops,
        txns_per_sec: m.txns as f64 / secs,
        ops_per_sec: m.ops as f64 / secs,
        aborts: m.aborts,
        abort_rate: m.abort_rate(),
        latency_us: m.latency(),
        commits,
        log_syncs: syncs,
        fsyncs_per_commit: if commits == 0 {
            0.0
        } else {
            syncs as f64 / commits as f64
        },
        peak_rss_kib: peak_rss_kib(),
        versions_collected: after.versions_collected,
        bank_total: m.bank_total,
    })
}
