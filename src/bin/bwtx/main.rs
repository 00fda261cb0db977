//! `bwtx`: the command-line tool of the bwtx embedded transactional
//! key-value store. Build it with `--features cli`.
//!
//! - `bwtx` (or `bwtx bench`): YCSB workloads A–F and a bank workload on an
//!   in-memory database (or `--dir`), with a result table or `--json`;
//! - `bwtx shell [PATH]`: a REPL;
//! - `bwtx check PATH`: verify log segments, checkpoints and the page store offline;
//! - `bwtx history --out FILE`: record and check a list-append history.

mod alloc;
mod bench;
mod check;
mod history;
#[cfg(feature = "bench-peers")]
mod peers;
mod report;
mod shell;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The bwtx command-line tool. With no subcommand, runs `bwtx bench` with
/// its defaults (YCSB A, 1,000,000 keys, 2 threads, 10 s, in memory).
#[derive(Parser, Debug)]
#[command(name = "bwtx", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a YCSB (A–F) or bank workload and print a result table.
    Bench(Box<bench::BenchArgs>),
    /// An interactive shell on the database in PATH (in memory if omitted).
    Shell {
        /// The database directory (opened with sync durability).
        path: Option<PathBuf>,
    },
    /// Verify a database directory's log, checkpoints and page store offline (read-only).
    Check {
        /// The database directory.
        path: PathBuf,
    },
    /// Run a list-append workload, write its Elle JSON history and check it.
    History(history::HistoryArgs),
}

/// Print a bench outcome (its rendered output and whether its checks held);
/// the exit status.
fn finish<E: std::fmt::Display>(r: Result<(String, bool), E>, failed: &str) -> i32 {
    match r {
        Ok((out, ok)) => {
            print!("{out}");
            if ok {
                0
            } else {
                eprintln!("error: {failed}");
                1
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Print one comparison (or its error); the exit status.
#[cfg(feature = "bench-peers")]
fn show(r: Result<&peers::CompareReport, String>, json: bool) -> i32 {
    let out = r.map(|r| (if json { r.json() + "\n" } else { r.table() }, r.ok()));
    let code = finish(out, "a bank total was not conserved, or an engine failed or timed out");
    if !json {
        println!();
    }
    code
}

/// `bwtx bench --compare`: each workload in turn, then (for several) a
/// summary, and the chart if asked for. With `--cache-size` or `--isolate`,
/// each engine in its own process (`peers::isolated`); as such a child
/// process, one engine's result lines.
#[cfg(feature = "bench-peers")]
fn compare(args: &bench::BenchArgs) -> i32 {
    if let Some(name) = &args.child_engine {
        let dir = args
            .child_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("bwtx-child-{name}")));
        return finish(peers::child(args, name, dir).map(|()| (String::new(), true)), "");
    }
    // bwtx would write no log while every peer writes its own (before
    // 2026-12-07 the run went on, labelled "relaxed" like buffered).
    if args.durability == Some(bench::DurabilityArg::None) {
        eprintln!(
            "error: --compare --durability none: the peers have no mode without a log; compare with \
             --durability buffered (or sync)"
        );
        return 2;
    }
    let mut reports = Vec::new();
    let mut code = 0;
    if args.isolate || args.cache_size.is_some() {
        match peers::isolated(args) {
            Ok(all) => {
                for r in &all {
                    code = code.max(show(Ok(r), args.json));
                }
                reports = all;
            }
            Err(e) => code = show(Err(e), args.json),
        }
    } else {
        let runs = runs(args);
        if let Err(e) = fresh_dirs(&runs) {
            eprintln!("error: {e}");
            return 2;
        }
        for run in runs {
            let r = peers::run(&run);
            code = code.max(show(r.as_ref().map_err(|e| e.clone()), run.json));
            if let Ok(r) = r {
                reports.push(r);
            }
        }
    }
    if reports.len() > 1 && !args.json {
        print!("{}", peers::summary(&reports));
    }
    if let Some(path) = &args.plot {
        match peers::plot(&reports, path) {
            Ok(()) => eprintln!("chart written to {}", path.display()),
            Err(e) => {
                eprintln!("error: {e}");
                code = code.max(1);
            }
        }
    }
    code
}

/// One set of arguments per `--workload` given, in order.
/// One run per workload. With `--dir D` and several workloads, each runs
/// in a directory of its own, `D/<workload>`: each loads its records, and a
/// second load into the first's database would overwrite them (before
/// 2026-12-07 every workload reused D).
fn runs(args: &bench::BenchArgs) -> Vec<bench::BenchArgs> {
    let several = args.workloads.len() > 1;
    args.workloads
        .iter()
        .map(|&w| {
            let mut a = args.clone();
            a.workload = w;
            a.workloads = vec![w];
            if let (true, Some(dir)) = (several, &args.dir) {
                a.dir = Some(dir.join(format!("{w:?}").to_lowercase()));
            }
            a
        })
        .collect()
}

/// `--dir` must be new or empty: a bench loads its own records, and on an
/// earlier database its load would overwrite them and its workload run over
/// more.
fn fresh_dirs(runs: &[bench::BenchArgs]) -> Result<(), String> {
    for dir in runs.iter().filter_map(|r| r.dir.as_ref()) {
        if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(format!(
                "--dir {} is not empty: the bench loads its own records, so give it a new or empty directory",
                dir.display()
            ));
        }
    }
    Ok(())
}

#[cfg(not(feature = "bench-peers"))]
fn compare(_: &bench::BenchArgs) -> i32 {
    eprintln!(
        "error: --compare needs the peer stores, which this build left out; rebuild with \
         `cargo build --release --features cli,bench-peers --bin bwtx`"
    );
    2
}

fn bench(args: &bench::BenchArgs) -> i32 {
    if args.compare {
        return compare(args);
    }
    let runs = runs(args);
    if let Err(e) = fresh_dirs(&runs) {
        eprintln!("error: {e}");
        return 2;
    }
    let mut code = 0;
    for (n, run) in runs.iter().enumerate() {
        if n > 0 && !run.json {
            println!();
        }
        let r = bench::run(run).map(|r| (if run.json { r.json() + "\n" } else { r.table() }, r.ok()));
        code = code.max(finish(r, "the bank total was not conserved"));
    }
    code
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        None => bench(&bench::BenchArgs::default()),
        Some(Command::Bench(args)) => bench(&args),
        Some(Command::Shell { path }) => shell::run(path.as_deref()),
        Some(Command::Check { path }) => check::run(&path),
        Some(Command::History(args)) => history::run(&args),
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
