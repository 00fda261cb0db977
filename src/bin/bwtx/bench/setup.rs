//! Checking the arguments into the [`Setup`] every engine shares, and the
//! report of a bwtx-only run.

use std::time::Duration;

use bwtx_kit::Zipf;

use super::engine::open;
use super::records::MAX_RECORDS;
use super::{measure, BenchArgs, Bwtx, Chooser, Distribution, DurabilityArg, Workload};
use crate::report::{BenchReport, RunHeader};

/// The workload settings shared by every engine of one invocation.
pub struct Setup {
    pub ops_per_txn: usize,
    pub dist: Distribution,
    pub duration: Option<Duration>,
    pub hidden: bool,
    pub chooser: Chooser,
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
        Workload::U => Distribution::Uniform,
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
            isolation: args.isolation.name().to_owned(),
        }
    }
}

/// Run the benchmark and report.
pub fn run(args: &BenchArgs) -> Result<BenchReport, String> {
    let setup = setup(args)?;
    let engine = Bwtx {
        db: open(args)?,
        isolation: args.isolation.level(),
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
            Some(d) => format!(
                "{} ({}, {})",
                d.display(),
                format!("{:?}", args.durability.unwrap_or(DurabilityArg::Sync)).to_lowercase(),
                super::engine::cache_setting(args)
            ),
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
        versions_stored: after.versions_stored,
        gc_lag: after.gc_lag,
        held_by_oldest: after.versions_held_by_oldest_snapshot,
        bank_total: m.bank_total,
    })
}
