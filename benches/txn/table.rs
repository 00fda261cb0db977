//! The plain timing loop and its table: best-of-3 interleaved passes per
//! cell, the ratios between engines, and the goals.

use std::time::Duration;

use bwtx::Db;

use crate::engines::{Engine, Subject, READS};
use crate::passes::{raw_pass, rmw_pass, ro_pass, Loaded, Timing};
use crate::workload::{Dist, Workload, THREADS};

/// Timed passes per cell, interleaved over the engines of a row group; the
/// best one counts.
pub(crate) const ROUNDS: usize = 3;

pub(crate) fn rate(ops: usize, d: Duration) -> f64 {
    ops as f64 / d.as_secs_f64().max(1e-9)
}

pub(crate) fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else {
        format!("{:.0}k", r / 1e3)
    }
}

/// One cell of the table.
#[derive(Clone, Copy, Default)]
pub(crate) struct Cell {
    /// Best wall-clock transactions/s.
    pub(crate) wall: f64,
    /// Best transactions per CPU-second of the worker threads (0: unknown).
    pub(crate) cpu: f64,
    /// Transactions in the timed passes, and conflicts they met.
    pub(crate) txns: usize,
    pub(crate) conflicts: u64,
}

impl Cell {
    fn add(&mut self, ops: usize, t: Timing, conflicts: u64) {
        self.wall = self.wall.max(rate(ops, t.wall));
        if !t.cpu.is_zero() {
            self.cpu = self.cpu.max(rate(ops, t.cpu));
        }
        self.txns += ops;
        self.conflicts += conflicts;
    }

    fn conflicts_per_k(&self) -> f64 {
        self.conflicts as f64 * 1000.0 / self.txns.max(1) as f64
    }
}

/// One engine's pass of `ops` transactions, each pass going on where the
/// last stopped; its timing and the conflicts met.
pub(crate) type Pass<'a> = Box<dyn FnMut(usize) -> (Timing, u64) + 'a>;

pub(crate) fn rmw_runner<'a, E: Engine>(s: &'a Subject<E>, probes: &'a [u64], threads: usize) -> Pass<'a> {
    let mut base = 0;
    Box::new(move |ops| {
        let out = rmw_pass(s, probes, base, ops, threads);
        base = (base + ops) % probes.len();
        s.e.tidy();
        out
    })
}

pub(crate) fn ro_runner<'a, E: Engine>(e: &'a E, probes: &'a [u64], threads: usize) -> Pass<'a> {
    let mut base = 0;
    Box::new(move |txns| {
        let t = ro_pass(e, probes, base, txns, threads);
        base = (base + txns) % (probes.len() / READS);
        (t, 0)
    })
}

pub(crate) fn raw_runner<'a>(db: &'a Db, probes: &'a [u64], threads: usize) -> Pass<'a> {
    let mut base = 0;
    Box::new(move |txns| {
        let t = raw_pass(db, probes, base, txns, threads);
        base = (base + txns) % (probes.len() / READS);
        (t, 0)
    })
}

/// The number of transactions that makes one pass last about `target`,
/// found by doubling from a few (these passes double as warm-up).
pub(crate) fn calibrate(target: Duration, pass: &mut Pass<'_>) -> usize {
    let mut ops = 64;
    loop {
        let d = pass(ops).0.wall;
        if d >= target / 4 || ops >= 1 << 30 {
            return ((ops as f64 * target.as_secs_f64() / d.as_secs_f64().max(1e-9)) as usize).max(1);
        }
        ops *= 2;
    }
}

/// Calibrate every pass, then run `ROUNDS` rounds of them in turn (so a
/// burst of load elsewhere hits them all alike).
pub(crate) fn measure(target: Duration, passes: &mut [Pass<'_>]) -> Vec<Cell> {
    let sizes: Vec<usize> = passes.iter_mut().map(|p| calibrate(target, p)).collect();
    let mut cells = vec![Cell::default(); passes.len()];
    for _ in 0..ROUNDS {
        for (i, p) in passes.iter_mut().enumerate() {
            let (t, c) = p(sizes[i]);
            cells[i].add(sizes[i], t, c);
        }
    }
    cells
}

/// Rows of the table, in order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Rmw,
    Ro10,
    Raw10,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Rmw => "rmw",
            Op::Ro10 => "ro10",
            Op::Raw10 => "raw10",
        }
    }
}

/// `[bwtx, skipdb, mutex]` for one row (raw10: bwtx's tree only).
pub(crate) type Row = [Option<Cell>; 3];

pub(crate) struct Table {
    pub(crate) rows: Vec<(Op, Dist, usize, Row)>,
}

impl Table {
    fn get(&self, op: Op, d: Dist, t: usize) -> Row {
        self.rows
            .iter()
            .find(|r| r.0 == op && r.1 == d && r.2 == t)
            .map(|r| r.3)
            .expect("every cell is measured")
    }
}

pub(crate) fn summary(w: &Workload, l: &Loaded, target: Duration) -> Table {
    let mut rows = Vec::new();
    for d in Dist::ALL {
        let p = w.probes(d);
        for t in THREADS {
            let mut rmw = [
                rmw_runner(&l.bw, p, t),
                rmw_runner(&l.skip, p, t),
                rmw_runner(&l.locked, p, t),
            ];
            let c = measure(target, &mut rmw);
            rows.push((Op::Rmw, d, t, [Some(c[0]), Some(c[1]), Some(c[2])]));

            let mut reads = [
                ro_runner(&l.bw.e, p, t),
                raw_runner(&l.bw.e, p, t),
                ro_runner(&l.skip.e, p, t),
                ro_runner(&l.locked.e, p, t),
            ];
            let c = measure(target, &mut reads);
            rows.push((Op::Ro10, d, t, [Some(c[0]), Some(c[2]), Some(c[3])]));
            rows.push((Op::Raw10, d, t, [Some(c[1]), None, None]));
        }
    }
    let key = |r: &(Op, Dist, usize, Row)| (r.0 as usize, r.1 as usize, r.2);
    rows.sort_by_key(key);
    Table { rows }
}

/// Print one table of `metric` (wall-clock or CPU-time rates).
pub(crate) fn print_rates(table: &Table, title: &str, metric: fn(&Cell) -> f64, conflicts: bool) {
    let cell = |c: Option<Cell>| c.map_or("-".to_string(), |c| fmt_rate(metric(&c)));
    let ratio = |a: Option<Cell>, b: Option<Cell>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", metric(&a) / metric(&b)),
        _ => "-".to_string(),
    };
    println!("{title}");
    println!(
        "{:<6} {:<7} {:>3}  {:>9} {:>9} {:>9}  {:>11} {:>10} {:>10}  {}",
        "op",
        "dist",
        "thr",
        "bwtx",
        "skipdb",
        "mutex",
        "bwtx/skipdb",
        "bwtx/mutex",
        "ro10/raw10",
        if conflicts { "conflicts/1k commits" } else { "" }
    );
    for &(op, d, t, row) in &table.rows {
        let ro_raw = match op {
            Op::Ro10 => ratio(row[0], table.get(Op::Raw10, d, t)[0]),
            _ => String::new(),
        };
        let conflicts = match op {
            Op::Rmw if conflicts => format!(
                "bwtx {:.2}, skipdb {:.2}",
                row[0].map_or(0.0, |c| c.conflicts_per_k()),
                row[1].map_or(0.0, |c| c.conflicts_per_k())
            ),
            _ => String::new(),
        };
        println!(
            "{:<6} {:<7} {:>3}  {:>9} {:>9} {:>9}  {:>11} {:>10} {:>10}  {}",
            op.name(),
            d.name(),
            t,
            cell(row[0]),
            cell(row[1]),
            cell(row[2]),
            ratio(row[0], row[1]),
            ratio(row[0], row[2]),
            ro_raw,
            conflicts
        );
    }
}

/// The goals from the issue, judged on `metric` (the rmw ones only when
/// `rmw`: they compare engines, which CPU time does not do fairly).
pub(crate) fn print_goals(table: &Table, what: &str, metric: fn(&Cell) -> f64, rmw: bool) {
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let bw = |r: Row| metric(&r[0].expect("bwtx cell"));
    println!("goals ({what}):");
    for d in Dist::ALL.into_iter().filter(|_| rmw) {
        let (one, two) = (table.get(Op::Rmw, d, 1), table.get(Op::Rmw, d, 2));
        let r1 = bw(one) / metric(&one[1].expect("skipdb cell"));
        let r2 = bw(two) / metric(&two[1].expect("skipdb cell"));
        println!(
            "  rmw  {:<7} bwtx/skipdb >= 10x on 1 thread: {r1:.2}x [{}]; on 2 threads >= 10x and above that: \
             {r2:.2}x [{}]",
            d.name(),
            verdict(r1 >= 10.0),
            verdict(r2 >= 10.0 && r2 > r1)
        );
    }
    for d in Dist::ALL {
        for t in THREADS {
            let r = bw(table.get(Op::Ro10, d, t)) / bw(table.get(Op::Raw10, d, t));
            println!(
                "  ro10 {:<7} {t} thr within 20% of raw10 (ro10/raw10 >= 0.80): {r:.2} [{}]",
                d.name(),
                verdict(r >= 0.8)
            );
        }
    }
}

pub(crate) fn print_table(w: &Workload, table: &Table, target: Duration) {
    println!();
    println!(
        "summary: {} keys, 8-byte keys and values; best of {ROUNDS} interleaved passes of ~{} ms each per cell",
        w.keys.len(),
        target.as_millis()
    );
    println!("  skipdb = skipdb::optimistic::OptimisticDb<u64, u64>; mutex = Mutex<BTreeMap<Vec<u8>, Vec<u8>>>");
    println!("  rmw  = begin, get(k), put(k, v + 1), commit; a conflict is retried at once; rates count commits");
    println!("  ro10 = read-only transaction of 10 gets; raw10 = 10 x db.tree().get(k, ts) (bwtx only)");
    println!();
    print_rates(table, "wall-clock transactions/s:", |c| c.wall, true);
    let cpu_known = table.rows.iter().all(|r| r.3.iter().flatten().all(|c| c.cpu > 0.0));
    if cpu_known {
        println!();
        print_rates(
            table,
            "transactions per CPU-second (on-CPU time of the worker threads, summed: steadier on a busy machine, \
             but blind to time spent blocked and to helper threads, e.g. skipdb's watermark thread, so it \
             flatters skipdb and the mutex; fair for ro10 vs raw10):",
            |c| c.cpu,
            false,
        );
    }
    println!();
    print_goals(table, "wall clock", |c| c.wall, true);
    if cpu_known {
        print_goals(table, "per CPU-second", |c| c.cpu, false);
    }
}
