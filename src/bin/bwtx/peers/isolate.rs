//! An isolated comparison (`--compare` with `--cache-size` or `--isolate`):
//! each engine in a child process of its own, a re-exec of this binary with
//! the same arguments plus the hidden `--child-engine NAME --child-dir DIR`
//! (`child.rs`), so that its peak RSS and the bytes it writes to disk are
//! its own. A child loads once and runs every `--workload` on that load,
//! printing one JSON line per phase; the parent (`supervise.rs`) prints each
//! phase's figures on stderr as its line arrives, kills a child that runs
//! past `--engine-timeout`, deletes the child's directory when it ends, and
//! builds one [`CompareReport`] per workload. An engine whose child timed
//! out or died keeps the rows of the workloads it finished; the others name
//! it with what happened, its exit status and its stderr's last lines, and
//! the next engine still runs.
//!
//! Engines that keep everything in memory (skipdb, crossbeam-skiplist,
//! scc) sit out when `--cache-size` is given: they have no cache to bound.

use std::time::Duration;

use super::child::for_workload;
use super::compare::{chosen, engine_named, in_memory, is_index, not_serializable, CompareReport, Failed, Row};
use super::json::Value;
use super::summary::{amplification, mib, ratio, Resources, Summary};
use super::supervise::{supervise, End, Outcome};
use crate::bench::{self, BenchArgs, Workload};
use crate::report::Latency;

/// One engine's child, as far as it got.
struct ChildResult {
    name: &'static str,
    settings: String,
    /// Its load line, if it finished the load.
    load: Option<Value>,
    /// Its run lines, one per workload it finished.
    runs: Vec<Value>,
}

/// The figures of workload `w` in a child's result.
fn row(c: &ChildResult, w: &str, cache: Option<u64>) -> Option<Row> {
    let load = c.load.as_ref()?;
    let r = c.runs.iter().find(|r| r.str("workload") == Some(w))?;
    let n = |k: &str| r.num(k).unwrap_or(f64::NAN);
    let u = |k: &str| r.u64(k).unwrap_or(0);
    let bank_total = r.u64("bank_found").zip(r.u64("bank_expected"));
    Some(Row {
        name: c.name,
        settings: c.settings.clone(),
        m: Summary {
            load: Duration::from_secs_f64(load.num("load_secs").unwrap_or(0.0).max(0.0)),
            elapsed: Duration::from_secs_f64(n("elapsed_secs").max(0.0)),
            txns: u("txns"),
            ops: u("ops"),
            aborts: u("aborts"),
            latency: Latency {
                p50: n("p50"),
                p99: n("p99"),
                p999: n("p999"),
                max: n("max"),
                mean: n("mean"),
            },
            bank_total,
        },
        res: Some(Resources {
            cache,
            load_disk_bytes: load.u64("load_disk_bytes").unwrap_or(0),
            load_user_bytes: load.u64("load_user_bytes").unwrap_or(0),
            load_peak_rss_kib: load.u64("load_peak_rss_kib"),
            disk_bytes: u("disk_bytes"),
            user_bytes: u("put_bytes"),
            peak_rss_kib: r.u64("peak_rss_kib"),
            end_rss_kib: r.u64("end_rss_kib"),
            peak_reset: r.get("peak_reset") == Some(&Value::Bool(true)),
        }),
    })
}

/// `a, b and c`.
fn and_list(names: &[&str]) -> String {
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Print one phase's figures on stderr as the child reports them.
fn progress(name: &str, v: &Value) {
    let wa = |disk: &str, user: &str| ratio(amplification(v.u64(disk).unwrap_or(0), v.u64(user).unwrap_or(0)));
    match v.str("phase") {
        Some("load") => eprintln!(
            "{name}: loaded {} keys in {:.1} s, peak RSS {} MiB, end {} MiB, WA {}",
            v.u64("keys").unwrap_or(0),
            v.num("load_secs").unwrap_or(f64::NAN),
            mib(v.u64("load_peak_rss_kib")),
            mib(v.u64("load_rss_kib")),
            wa("load_disk_bytes", "load_user_bytes"),
        ),
        Some("run") => {
            let secs = v.num("elapsed_secs").unwrap_or(f64::NAN).max(1e-9);
            eprintln!(
                "{name}: workload {}: {:.0} txns/s, p99 {:.1} us, {} aborts, peak RSS {} MiB, end {} MiB, WA {}",
                v.str("workload").unwrap_or("?"),
                v.u64("txns").unwrap_or(0) as f64 / secs,
                v.num("p99").unwrap_or(f64::NAN),
                v.u64("aborts").unwrap_or(0),
                mib(v.u64("peak_rss_kib")),
                mib(v.u64("end_rss_kib")),
                wa("disk_bytes", "put_bytes"),
            );
            if let Some(cache) = v.str("cache") {
                eprintln!("{name}: workload {}: {cache}", v.str("workload").unwrap_or("?"));
            }
        }
        _ => {}
    }
}

/// The phase a child that sent `lines` was in when it ended.
fn during(lines: &[Value], workloads: &[String]) -> String {
    let has = |p: &str| lines.iter().any(|v| v.str("phase") == Some(p));
    let runs = lines.iter().filter(|v| v.str("phase") == Some("run")).count();
    if !has("open") {
        "while opening its engine".to_owned()
    } else if !has("load") {
        "during the load".to_owned()
    } else if let Some(w) = workloads.get(runs) {
        format!("during workload {w}")
    } else {
        "after its last workload".to_owned()
    }
}

/// Why the `--child-fault` spec `f` is malformed, if it is.
pub(super) fn check_fault(f: &str) -> Result<(), String> {
    match f.split_once(':') {
        Some((e, "hang" | "panic" | "abort" | "error")) => engine_named(e).map(|_| ()),
        _ => Err(format!(
            "--child-fault {f:?}: expected ENGINE:hang, ENGINE:panic, ENGINE:abort or ENGINE:error"
        )),
    }
}

/// The test hook's `ENGINE:error` for engine `name`: the error its run
/// returns as the last workload starts, if `faults` has one.
pub(super) fn injected_error(faults: &[String], name: &str) -> Result<(), String> {
    match faults.iter().find(|f| f.split_once(':') == Some((name, "error"))) {
        Some(f) => Err(format!("injected error (--child-fault {f})")),
        None => Ok(()),
    }
}

/// Run engine `name`'s child in `dir`, printing its progress; its result,
/// and how it failed if it did.
fn one(
    name: &'static str,
    dir: &std::path::Path,
    limit: Option<Duration>,
    workloads: &[String],
) -> (ChildResult, Option<Failed>) {
    eprintln!("{name}: starting (in its own process)");
    let Outcome {
        lines,
        end,
        stderr_tail,
        secs,
    } = supervise(name, dir, limit, |v| progress(name, v));
    let _ = std::fs::remove_dir_all(dir);
    let phase = |p: &str| lines.iter().find(|v| v.str("phase") == Some(p)).cloned();
    let result = ChildResult {
        name,
        settings: phase("open")
            .and_then(|v| v.str("settings").map(str::to_owned))
            .unwrap_or_default(),
        load: phase("load"),
        runs: lines
            .iter()
            .filter(|v| v.str("phase") == Some("run"))
            .cloned()
            .collect(),
    };
    let at = during(&lines, workloads);
    let (what, exit) = match end {
        End::Done => {
            eprintln!("{name}: finished in {secs:.1} s");
            return (result, None);
        }
        End::TimedOut(exit) => (
            format!(
                "TIMED OUT after {} s and was killed, {at}",
                limit.map_or(f64::NAN, |l| l.as_secs_f64())
            ),
            Some(exit),
        ),
        End::Died(exit) => (format!("DIED ({exit}) {at}"), Some(exit)),
        End::Broken(why) => (format!("FAILED: {why}"), None),
    };
    eprintln!("{name}: {what}");
    let failed = Failed {
        name,
        what,
        exit,
        stderr_tail,
    };
    (result, Some(failed))
}

/// Run every engine in its own process; one report per workload.
pub fn run(args: &BenchArgs) -> Result<Vec<CompareReport>, String> {
    let bank = args.workloads.contains(&Workload::Bank);
    if bank && args.workloads.len() > 1 {
        return Err("bank loads balances, not records: compare it in a run of its own".into());
    }
    let limit = match args.engine_timeout {
        None => None,
        Some(s) => Some(
            Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or("--engine-timeout must be a positive number of seconds")?,
        ),
    };
    args.child_fault.iter().try_for_each(|f| check_fault(f))?;
    let engines = chosen(args)?;
    // Check every workload's settings before starting any child.
    let setups = args
        .workloads
        .iter()
        .map(|&w| {
            let a = for_workload(args, w);
            bench::setup(&a).map(|s| (a, s))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    let workloads: Vec<String> = args.workloads.iter().map(|w| format!("{w:?}").to_lowercase()).collect();
    let (mut results, mut failed, mut skipped, mut sat_out, mut notes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for name in engines {
        if (bank && is_index(name)) || (super::sync(args) && !super::compare::durable(name)) {
            continue;
        }
        if let Some(why) = not_serializable(name).filter(|_| super::serializable(args)) {
            skipped.push((name, why));
            continue;
        }
        if args.cache_size.is_some() && in_memory(name) {
            sat_out.push(name);
            continue;
        }
        let dir = base.join(format!("bwtx-compare-{}-{name}", std::process::id()));
        let (result, failure) = one(name, &dir, limit, &workloads);
        results.push(result);
        failed.extend(failure);
    }
    if !sat_out.is_empty() {
        notes.push(format!(
            "{} sat out: in memory, no cache for --cache-size to bound",
            and_list(&sat_out)
        ));
    }
    notes.push(format!(
        "each engine ran in its own process, on one load shared by workload{} {} (load s: that load); RSS from \
         /proc/self/status (peak: VmHWM of the run, end: VmRSS after it); WA: bytes written to disk \
         (/proc/self/io write_bytes less cancelled_write_bytes, after the engine's persist) per key+value byte put",
        if workloads.len() > 1 { "s" } else { "" },
        workloads.join(", ")
    ));
    if let Some(l) = limit {
        notes.push(format!(
            "--engine-timeout {}: each engine's process (load and every workload) was limited to {} s",
            l.as_secs_f64(),
            l.as_secs_f64()
        ));
    }
    let mut reports = Vec::new();
    for ((a, setup), w) in setups.iter().zip(&workloads) {
        reports.push(CompareReport {
            header: setup.header(a),
            seed: args.seed,
            durability: if super::sync(args) { "sync" } else { "relaxed" },
            rows: results.iter().filter_map(|c| row(c, w, args.cache_size)).collect(),
            skipped: skipped.clone(),
            isolated: true,
            cache: args.cache_size,
            notes: notes.clone(),
            failed: failed.clone(),
        });
    }
    Ok(reports)
}
