//! An isolated comparison (`--compare` with `--cache-size` or `--isolate`):
//! each engine in a child process of its own, a re-exec of this binary with
//! the same arguments plus the hidden `--child-engine NAME --child-dir DIR`
//! (`child.rs`), so that its peak RSS and the bytes it writes to disk are
//! its own. A child loads once and runs every `--workload` on that load;
//! the parent reads its one-line JSON result, deletes its directory, and
//! builds one [`CompareReport`] per workload.
//!
//! Engines that keep everything in memory (skipdb, crossbeam-skiplist,
//! scc) sit out when `--cache-size` is given: they have no cache to bound.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::child::for_workload;
use super::compare::{in_memory, is_index, not_serializable, CompareReport, Row, ENGINES};
use super::json::{parse, Value};
use super::summary::{Resources, Summary};
use crate::bench::{self, BenchArgs, Workload};
use crate::report::Latency;

/// One engine's child result, parsed.
struct ChildResult {
    name: &'static str,
    settings: String,
    load_secs: f64,
    v: Value,
}

/// Run the child for `name` with its files in `dir`; `Err` says why it failed.
fn spawn(name: &str, dir: &Path) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let out = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .arg("--child-engine")
        .arg(name)
        .arg("--child-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start a child process: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("its process ended with {}", out.status));
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or("no result line")?;
    parse(line).map_err(|e| format!("its result line: {e}"))
}

/// The figures of workload `w` in a child's result.
fn row(c: &ChildResult, w: &str, cache: Option<u64>) -> Option<Row> {
    let r = c.v.arr("runs").iter().find(|r| r.str("workload") == Some(w))?;
    let n = |k: &str| r.num(k).unwrap_or(f64::NAN);
    let u = |k: &str| r.u64(k).unwrap_or(0);
    let bank_total = r.u64("bank_found").zip(r.u64("bank_expected"));
    Some(Row {
        name: c.name,
        settings: c.settings.clone(),
        m: Summary {
            load: Duration::from_secs_f64(c.load_secs.max(0.0)),
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
            load_disk_bytes: c.v.u64("load_disk_bytes").unwrap_or(0),
            load_user_bytes: c.v.u64("load_user_bytes").unwrap_or(0),
            load_peak_rss_kib: c.v.u64("load_peak_rss_kib"),
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

/// Run every engine in its own process; one report per workload.
pub fn run(args: &BenchArgs) -> Result<Vec<CompareReport>, String> {
    let bank = args.workloads.contains(&Workload::Bank);
    if bank && args.workloads.len() > 1 {
        return Err("bank loads balances, not records: compare it in a run of its own".into());
    }
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
    let hidden = setups.first().is_some_and(|(_, s)| s.hidden);
    let (mut results, mut skipped, mut sat_out, mut notes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &name in ENGINES {
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
        if !hidden {
            eprintln!("{name} (in its own process) ...");
        }
        let r = spawn(name, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        match r {
            Ok(v) => results.push(ChildResult {
                name,
                settings: v.str("settings").unwrap_or("").to_owned(),
                load_secs: v.num("load_secs").unwrap_or(f64::NAN),
                v,
            }),
            Err(e) => notes.push(format!("{name} failed: {e}")),
        }
    }
    if !sat_out.is_empty() {
        notes.push(format!(
            "{} sat out: in memory, no cache for --cache-size to bound",
            and_list(&sat_out)
        ));
    }
    let workloads: Vec<String> = args.workloads.iter().map(|w| format!("{w:?}").to_lowercase()).collect();
    notes.push(format!(
        "each engine ran in its own process, on one load shared by workload{} {} (load s: that load); RSS from \
         /proc/self/status (peak: VmHWM of the run, end: VmRSS after it); WA: bytes written to disk \
         (/proc/self/io write_bytes less cancelled_write_bytes, after the engine's persist) per key+value byte put",
        if workloads.len() > 1 { "s" } else { "" },
        workloads.join(", ")
    ));
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
            failed: results.len() < ENGINES.len() && notes.iter().any(|n| n.contains(" failed: ")),
        });
    }
    Ok(reports)
}
