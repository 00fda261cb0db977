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

/// Reset the peak resident set (`VmHWM`) to the current one (Linux 4.0
/// and later: `5` to /proc/self/clear_refs); false if the kernel refused,
/// and then the next peak counts from the process's start.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set size in KiB (`VmHWM` of /proc/self/status), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Bytes this process caused to be written to disk so far (`write_bytes`
/// less `cancelled_write_bytes` of /proc/self/io), if known.
pub fn disk_written() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = s.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(field("write_bytes:")?.saturating_sub(field("cancelled_write_bytes:")?))
}

/// Read system calls and CPU time (user plus system, in clock ticks of
/// 1/100 s) of this process so far, if known.
pub fn reads_and_cpu() -> Option<(u64, u64)> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    let syscr = io
        .lines()
        .find(|l| l.starts_with("syscr:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((syscr, utime + stime))
}

/// The fault-in line of a run on a page cache: fault-ins, read-throughs,
/// read system calls per page read (either; each part of a chain is one
/// positional read), CPU microseconds per transaction, and the reclaim
/// throttle's sleeps, between `b` and `a`.
pub fn reads_line(rc: Option<((u64, u64), (u64, u64))>, txns: u64, b: &bwtx::Stats, a: &bwtx::Stats) -> String {
    let faults = a.cache_misses - b.cache_misses;
    let through = a.read_throughs - b.read_throughs;
    // Blind writes over stubs without a key set read it from the page
    // file: page reads too.
    let key_sets = a.key_set_reads - b.key_set_reads;
    let mut out = format!("{faults} fault-ins, {through} read-throughs");
    if key_sets > 0 {
        out += &format!(", {key_sets} key-set reads");
    }
    if let Some(((r0, c0), (r1, c1))) = rc {
        if faults + through + key_sets > 0 {
            out += &format!(
                ", {:.2} read calls per page read",
                (r1 - r0) as f64 / (faults + through + key_sets) as f64
            );
        }
        if txns > 0 {
            out += &format!(", {:.1} CPU-us per transaction", (c1 - c0) as f64 * 1e4 / txns as f64);
        }
    }
    // Value-log values read, and left unread by fault-ins (versions their
    // collection drops).
    let (vr, vs) = (
        a.value_log_reads - b.value_log_reads,
        a.value_log_reads_skipped - b.value_log_reads_skipped,
    );
    if vr + vs > 0 {
        out += &format!(", {vr} value-log reads ({vs} left unread)");
    }
    let blind = a.blind_writes - b.blind_writes;
    if blind > 0 {
        out += &format!(", {blind} blind writes");
    }
    // Clean leaves written whole for their long on-disk chains.
    let rewritten = a.chains_rewritten - b.chains_rewritten;
    if rewritten > 0 {
        out += &format!(", {rewritten} chains rewritten");
    }
    // Evicted leaves' stubs and key sets, outside the budget.
    out += &format!(
        ", stubs {:.1} MiB ({} packed, {} key sets dropped)",
        a.stub_bytes as f64 / f64::from(1 << 20),
        a.cold_stubs_packed - b.cold_stubs_packed,
        a.key_sets_dropped - b.key_sets_dropped
    );
    // The retired-memory throttle's sleeps (`Engine::wait_for_reclaim`).
    let waits = a.reclaim_waits - b.reclaim_waits;
    if waits > 0 {
        out += &format!(
            ", {waits} reclaim waits ({:.1} ms)",
            (a.reclaim_wait_micros - b.reclaim_wait_micros) as f64 / 1e3
        );
    }
    out
}

/// The write-amplification line of a run: disk bytes per user byte (from
/// /proc/self/io; `disk` is `None` where it is not readable), and what the
/// engine counted writing, by writer, between the stats `b` and `a`.
fn writes_line(disk: Option<u64>, user: u64, b: &bwtx::Stats, a: &bwtx::Stats) -> String {
    let mb = |x: u64| x as f64 / 1e6;
    let per_user = |x: u64| if user == 0 { 0.0 } else { x as f64 / user as f64 };
    let parts = [
        ("log", a.log_bytes_written - b.log_bytes_written),
        ("page images", a.page_image_bytes - b.page_image_bytes),
        ("delta flushes", a.page_delta_bytes - b.page_delta_bytes),
        ("cleaner", a.clean_bytes_written - b.clean_bytes_written),
        ("tables", a.table_bytes_written - b.table_bytes_written),
        ("value log", a.value_log_bytes_written - b.value_log_bytes_written),
    ];
    let counted: u64 = parts.iter().map(|p| p.1).sum();
    let mut out = match disk {
        Some(d) => format!("{:.2} disk bytes per user byte ({:.1} MB disk", per_user(d), mb(d)),
        None => "disk bytes unknown (".to_owned(),
    };
    out += &format!(
        ", {:.1} MB user); counted {:.2} per user byte:",
        mb(user),
        per_user(counted)
    );
    for (name, x) in parts {
        out += &format!(" {name} {:.2}", per_user(x));
    }
    let deltas = a.delta_flushes - b.delta_flushes;
    let images = (a.pages_written - b.pages_written).saturating_sub(deltas);
    out += &format!(
        " ({deltas} delta flushes, {images} whole images, {} pages relocated, {} checkpoints)",
        a.pages_relocated - b.pages_relocated,
        a.checkpoints - b.checkpoints
    );
    if let Some(amp) = a.page_space_amplification() {
        out += &format!("; page space {:.2}x live", amp);
    }
    out
}

/// The most client threads a run starts (one OS thread each).
pub const MAX_THREADS: usize = 1024;

/// Check the arguments and derive the settings every engine shares.
pub fn setup(args: &BenchArgs) -> Result<Setup, String> {
    if args.threads == 0 || args.threads > MAX_THREADS {
        return Err(format!("--threads must be 1 to {MAX_THREADS}"));
    }
    // In memory nothing is logged: a durability asked for would be ignored.
    if args.durability.is_some() && args.dir.is_none() && !args.compare {
        return Err("--durability needs --dir (a run in memory logs nothing)".into());
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
    if !(1..=1 << 20).contains(&ops_per_txn) {
        return Err("--ops-per-txn must be 1 to 1048576".into());
    }
    // A transaction's writes are one log record (at most 2 GiB): keep them
    // to 1 GiB.
    if (args.value_size as u64 + 32).saturating_mul(ops_per_txn as u64) > 1 << 30 {
        return Err("--ops-per-txn x --value-size must stay under 1 GiB per transaction".into());
    }
    let dist = args.distribution.unwrap_or(match args.workload {
        Workload::D => Distribution::Latest,
        Workload::U => Distribution::Uniform,
        _ => Distribution::Zipfian,
    });
    let hidden = args.json || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let duration = match (args.duration, args.ops) {
        (Some(d), _) => match Duration::try_from_secs_f64(d) {
            Ok(d) if !d.is_zero() => Some(d),
            _ => {
                return Err("--duration must be a positive number of seconds (at most about 584 billion years)".into())
            }
        },
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    let zipf = (dist != Distribution::Uniform).then(|| Zipf::new(args.keys, args.theta));
    Ok(Setup {
        ops_per_txn,
        dist,
        duration,
        hidden,
        chooser: Chooser {
            dist,
            zipf,
            space: args.keys,
        },
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
    // The run's peak RSS, not the load's nor an earlier workload's of this
    // process (before 2026-12-07 it was the process's peak so far).
    let m = measure(&engine, args, &setup, || {
        reset_peak_rss();
        before = Some((engine.db.stats(), disk_written(), reads_and_cpu()))
    })?;
    let (before, disk_before, rc_before) =
        before.unwrap_or_else(|| (engine.db.stats(), disk_written(), reads_and_cpu()));
    let rc = rc_before.zip(reads_and_cpu());
    let after = engine.db.stats();
    let reads = args
        .cache_size
        .is_some()
        .then(|| reads_line(rc, m.txns, &before, &after));
    let disk = disk_written().zip(disk_before).map(|(a, b)| a.saturating_sub(b));
    let writes = (m.put_bytes > 0 && args.dir.is_some()).then(|| writes_line(disk, m.put_bytes, &before, &after));

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
        writes,
        reads,
    })
}
