//! The timed run: client threads that plan, attempt and retry transactions
//! on an [`Engine`] until the duration or the operation budget is spent, and
//! what they measured.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bwtx_kit::SplitMix64;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use super::load::{bar, fill, load};
use super::{BenchArgs, Engine, Op, Outcome, Setup, Workload, BALANCE};
use crate::report::Latency;

/// Transactions a client claims at once with --ops (see `Run::claim`).
const CLAIM_CHUNK: u64 = 64;
/// Operations a client completes between updates of the progress counter.
const REPORT_EVERY: u64 = 256;
/// Longest scan of workload E (YCSB's `maxscanlength`).
const MAX_SCAN: u64 = 100;

/// What one client thread measured.
struct ThreadResult {
    hist: Histogram<u64>,
    /// When the thread finished its last transaction.
    end: Instant,
    txns: u64,
    ops: u64,
    aborts: u64,
    /// Key and value bytes of the committed puts.
    put_bytes: u64,
}

/// Shared state of a run.
struct Run<'a> {
    db: &'a dyn Engine,
    args: &'a BenchArgs,
    setup: &'a Setup,
    /// Records inserted (loaded plus inserted by D and E): the next insert's index.
    records: AtomicU64,
    /// Records the clients choose among.
    acked: Acked,
    /// Operations completed (for the progress bar and --ops).
    done_ops: AtomicU64,
    /// Operations claimed (with --ops).
    claimed_ops: AtomicU64,
    stop: AtomicBool,
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
    fn plan(&self, rng: &mut SplitMix64, plan: &mut Vec<Op>) {
        plan.clear();
        let count = self.acked.get();
        for _ in 0..self.setup.ops_per_txn {
            let p = rng.below(100);
            let pick = |rng: &mut SplitMix64| self.setup.chooser.pick(rng, count);
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
                Workload::U => Op::Update(pick(rng)),
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
        let mut rng = SplitMix64::new(self.args.seed.wrapping_add(0xA5A5_0000 + t as u64 * 7919));
        // Values and backoff jitter come from a generator of their own, so
        // retries do not shift the operation stream.
        let mut vrng = SplitMix64::new(self.args.seed.wrapping_add(0x5A5A_0000 + t as u64 * 104_729));
        let mut value = vec![b'v'; self.args.value_size];
        let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000_000, 3).map_err(|e| e.to_string())?;
        let mut res = ThreadResult {
            hist: Histogram::new_from(&hist),
            end: Instant::now(),
            txns: 0,
            ops: 0,
            aborts: 0,
            put_bytes: 0,
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
                let outcome = self.db.attempt(&ops, &value)?;
                self.acked.finish(ops.iter().filter_map(|op| match op {
                    Op::Insert(i) => Some(*i),
                    _ => None,
                }));
                match outcome {
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
            res.put_bytes += put_bytes(&ops, value.len());
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

/// YCSB's acknowledged counter: the records that reads choose among. Every
/// index below it was loaded, or an insert with that index finished
/// (committed, or its attempt failed and the record will never exist).
/// Before 2026-12-08 reads chose among the claimed indexes, so D's "latest"
/// reads often asked for a record whose insert was still running: a miss,
/// as cheap as a read gets.
struct Acked {
    below: AtomicU64,
    /// Finished inserts above `below`, waiting for the ones before them.
    finished: Mutex<BTreeSet<u64>>,
}

impl Acked {
    /// Records `0..loaded` there.
    fn new(loaded: u64) -> Self {
        Acked {
            below: AtomicU64::new(loaded),
            finished: Mutex::new(BTreeSet::new()),
        }
    }

    /// Records `0..get()` are there to read.
    fn get(&self) -> u64 {
        self.below.load(Ordering::Acquire)
    }

    /// The inserts of `indexes` are over: raise the count over every
    /// finished index that follows it.
    fn finish(&self, indexes: impl Iterator<Item = u64>) {
        let mut indexes = indexes.peekable();
        if indexes.peek().is_none() {
            return;
        }
        let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        finished.extend(indexes);
        let mut below = self.below.load(Ordering::Relaxed);
        while finished.remove(&below) {
            below += 1;
        }
        self.below.store(below, Ordering::Release);
    }
}

/// The key and value bytes a committed transaction of `ops` put (a
/// read-modify-write counts the value as `value_len` bytes, the length it
/// writes back while values have one size; a transfer puts two balances).
fn put_bytes(ops: &[Op], value_len: usize) -> u64 {
    let key = super::key(0).as_ref().len() as u64;
    ops.iter()
        .map(|op| match op {
            Op::Update(_) | Op::Insert(_) | Op::Rmw(_) => key + value_len as u64,
            Op::Transfer(..) => 2 * (key + 8),
            Op::Read(_) | Op::Scan(..) => 0,
        })
        .sum()
}

/// What one engine measured.
pub struct Measured {
    pub load: Duration,
    pub elapsed: Duration,
    pub txns: u64,
    pub ops: u64,
    pub aborts: u64,
    /// Key and value bytes of the committed puts (the user bytes of
    /// write amplification).
    pub put_bytes: u64,
    /// Records inserted when the run ended (loaded plus inserted by D and
    /// E): where the next run on the same load starts its inserts.
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    pub records: u64,
    pub hist: Histogram<u64>,
    /// Bank: (sum of balances found, sum expected).
    pub bank_total: Option<(u64, u64)>,
}

impl Measured {
    pub fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
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
    let mut m = run_loaded(db, args, setup, args.keys)?;
    m.load = load_time;
    Ok(m)
}

/// Run the workload on `db`, loaded already and holding records
/// `0..records` (inserts go on from `records`). `load` is zero in the result.
pub fn run_loaded(db: &dyn Engine, args: &BenchArgs, setup: &Setup, records: u64) -> Result<Measured, String> {
    let run = Run {
        db,
        args,
        setup,
        records: AtomicU64::new(records),
        acked: Acked::new(records),
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
    let (mut txns, mut ops, mut aborts, mut put_bytes) = (0, 0, 0, 0);
    let mut elapsed = Duration::ZERO;
    for r in results {
        let r = r.map_err(|e| format!("{}: {e}", db.name()))?;
        elapsed = elapsed.max(r.end.duration_since(start));
        hist.add(&r.hist).map_err(|e| e.to_string())?;
        txns += r.txns;
        ops += r.ops;
        aborts += r.aborts;
        put_bytes += r.put_bytes;
    }
    let bank_total = if args.workload == Workload::Bank {
        Some((db.bank_total(args.keys)?, args.keys * BALANCE))
    } else {
        None
    };
    Ok(Measured {
        load: Duration::ZERO,
        elapsed,
        txns,
        ops,
        aborts,
        put_bytes,
        records: run.records.load(Ordering::Relaxed),
        hist,
        bank_total,
    })
}

#[cfg(test)]
mod tests {
    use super::Acked;

    /// Reads reach an inserted record only once every insert claimed before
    /// it is over, in whatever order they finish.
    #[test]
    fn the_acknowledged_count_waits_for_earlier_inserts() {
        let acked = Acked::new(10);
        assert_eq!(acked.get(), 10);
        acked.finish([12].into_iter());
        assert_eq!(acked.get(), 10, "12 finished before 10 and 11");
        acked.finish([11].into_iter());
        assert_eq!(acked.get(), 10);
        acked.finish(std::iter::empty());
        assert_eq!(acked.get(), 10);
        acked.finish([10, 14].into_iter());
        assert_eq!(acked.get(), 13, "10, 11 and 12 finished; 13 did not");
        acked.finish([13].into_iter());
        assert_eq!(acked.get(), 15);
    }
}
