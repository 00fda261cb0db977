//! The child side of an isolated comparison (`isolate.rs` starts it):
//! one engine in this process, loaded once, then every `--workload` on
//! that load, with the process's own memory and disk figures for each
//! phase, each printed as one JSON line on stdout for the parent as soon as
//! the phase ends: `{"phase":"open",..}` with the engine's settings,
//! `{"phase":"load",..}`, one `{"phase":"run","workload":..}` per
//! workload, and `{"phase":"done"}` last (`supervise.rs` reads them).
//!
//! Each phase (the load, then each workload's run) goes: reset the peak
//! RSS, read `/proc/self/io`, do the phase, ask the engine to hand what it
//! buffered to the OS ([`Engine::persist`], untimed), read `/proc/self/io`
//! and the peak and current RSS again.

use std::io::Write as _;
use std::path::PathBuf;

use super::compare::{open_engine, TempDir, ENGINES};
use super::procfs::{reset_peak, status_kib, Io};
use crate::bench::{self, key, BenchArgs, Engine, Workload};
use crate::report::{json_str, num};

/// One phase's process figures.
struct Phase {
    disk_bytes: u64,
    peak_kib: Option<u64>,
    rss_kib: Option<u64>,
    peak_reset: bool,
}

/// Run `phase` and take its figures.
fn phase<T>(engine: &dyn Engine, phase: impl FnOnce() -> Result<T, String>) -> Result<(T, Phase), String> {
    let peak_reset = reset_peak();
    let before = Io::now()?;
    let out = phase()?;
    engine.persist()?;
    let after = Io::now()?;
    Ok((
        out,
        Phase {
            disk_bytes: after.disk_bytes_since(&before),
            peak_kib: status_kib("VmHWM"),
            rss_kib: status_kib("VmRSS"),
            peak_reset,
        },
    ))
}

fn opt(x: Option<u64>) -> String {
    x.map_or("null".to_owned(), |v| v.to_string())
}

/// `args` for workload `w` alone.
pub(super) fn for_workload(args: &BenchArgs, w: Workload) -> BenchArgs {
    let mut a = args.clone();
    a.workload = w;
    a.workloads = vec![w];
    a
}

/// Print one result line on stdout and flush it, so the parent sees it
/// at once.
fn emit(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write a result line: {e}"))
}

/// The test hook `--child-fault ENGINE:KIND`: hang (until killed, or until
/// its parent has gone), panic, abort or return an error if it names this
/// engine (checked as the last workload starts).
fn injected_fault(args: &BenchArgs, name: &str) -> Result<(), String> {
    for f in &args.child_fault {
        match f.split_once(':') {
            Some((e, "hang")) if e == name => {
                // Until killed; but not past the parent (a test that gives
                // up on the parent must not leave this process behind).
                let parent = std::os::unix::process::parent_id();
                while std::os::unix::process::parent_id() == parent {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                std::process::exit(3);
            }
            Some((e, "panic")) if e == name => panic!("injected panic (--child-fault {f})"),
            Some((e, "abort")) if e == name => {
                eprintln!("injected abort (--child-fault {f})");
                std::process::abort();
            }
            _ => {}
        }
    }
    super::isolate::injected_error(&args.child_fault, name)
}

/// Run engine `name` in directory `dir` (removed at the end), printing its
/// result lines as its phases end.
pub fn run(args: &BenchArgs, name: &str, dir: PathBuf) -> Result<(), String> {
    let name = *ENGINES
        .iter()
        .find(|e| **e == name)
        .ok_or_else(|| format!("unknown engine {name}"))?;
    let all = args.workloads.clone();
    let first = *all.first().ok_or("no --workload")?;
    let mut args = for_workload(args, first);
    // bwtx runs on disk in its own directory, as every peer with files does.
    args.dir = Some(dir.join("bwtx"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let _dir = TempDir(dir.clone());
    let setup = bench::setup(&args)?;
    let engine = open_engine(name, &args, &dir)?;
    let engine = &*engine;
    emit(&format!(
        "{{\"phase\":\"open\",\"engine\":{},\"settings\":{}}}",
        json_str(name),
        json_str(&engine.settings())
    ))?;
    let (load, lp) = phase(engine, || bench::load(engine, &args, setup.hidden))?;
    let value_len = if first == Workload::Bank { 8 } else { args.value_size };
    let load_user = args.keys * (key(0).as_ref().len() + value_len) as u64;
    emit(&format!(
        "{{\"phase\":\"load\",\"keys\":{},\"load_secs\":{},\"load_disk_bytes\":{},\"load_user_bytes\":{load_user},\
         \"load_peak_rss_kib\":{},\"load_rss_kib\":{},\"peak_reset\":{}}}",
        args.keys,
        num(load.as_secs_f64()),
        lp.disk_bytes,
        opt(lp.peak_kib),
        opt(lp.rss_kib),
        lp.peak_reset,
    ))?;
    let mut records = args.keys;
    for (n, &w) in all.iter().enumerate() {
        let a = for_workload(&args, w);
        let setup = bench::setup(&a)?;
        if n + 1 == all.len() {
            injected_fault(&a, name)?;
        }
        let (stats_before, rc_before) = (engine.stats(), bench::reads_and_cpu());
        let (m, p) = phase(engine, || bench::run_loaded(engine, &a, &setup, records))?;
        // bwtx's page-cache line (fault-ins, read-throughs, read calls per
        // page read, CPU per transaction, stubs), as `bwtx bench` prints it.
        let cache = match (stats_before, engine.stats(), args.cache_size) {
            (Some(b), Some(a), Some(_)) => json_str(&bench::reads_line(
                rc_before.zip(bench::reads_and_cpu()),
                m.txns,
                &b,
                &a,
            )),
            _ => "null".to_owned(),
        };
        records = m.records;
        let l = m.latency();
        emit(&format!(
            "{{\"phase\":\"run\",\"workload\":{},\"elapsed_secs\":{},\"txns\":{},\"ops\":{},\"aborts\":{},\
             \"put_bytes\":{},\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{},\"mean\":{},\"disk_bytes\":{},\
             \"peak_rss_kib\":{},\"end_rss_kib\":{},\"peak_reset\":{},\"bank_found\":{},\"bank_expected\":{},\
             \"cache\":{cache}}}",
            json_str(&format!("{w:?}").to_lowercase()),
            num(m.elapsed.as_secs_f64()),
            m.txns,
            m.ops,
            m.aborts,
            m.put_bytes,
            num(l.p50),
            num(l.p99),
            num(l.p999),
            num(l.max),
            num(l.mean),
            p.disk_bytes,
            opt(p.peak_kib),
            opt(p.rss_kib),
            p.peak_reset && lp.peak_reset,
            opt(m.bank_total.map(|b| b.0)),
            opt(m.bank_total.map(|b| b.1)),
        ))?;
    }
    emit("{\"phase\":\"done\"}")
}
