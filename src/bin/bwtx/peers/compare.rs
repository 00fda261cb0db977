//! Running one workload on every engine in this process, what a
//! comparison reports ([`CompareReport`], rendered in `render.rs`), and the
//! summary over several workloads.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::summary::{Resources, Summary};
use crate::bench::{self, BenchArgs, Engine, Workload};
use crate::report::RunHeader;

/// The engines in the order they run: bwtx, the transactional peers, then
/// the non-transactional ordered indexes (not for `bank`, which needs
/// transactions to conserve its total).
/// RocksDB, seerdb and Bf-Tree run only in builds with their features
/// (`peer-rocksdb`, `peer-seerdb`, `peer-bftree`).
pub const ENGINES: &[&str] = &[
    "bwtx",
    "skipdb",
    "fjall",
    "redb",
    "sled",
    #[cfg(feature = "peer-rocksdb")]
    "rocksdb",
    #[cfg(feature = "peer-seerdb")]
    "seerdb",
    "crossbeam-skiplist",
    "scc",
    #[cfg(feature = "peer-bftree")]
    "bf-tree",
];

/// Every name `--engines` accepts, with the feature a build needs for it.
const KNOWN: &[(&str, Option<&str>)] = &[
    ("bwtx", None),
    ("skipdb", None),
    ("fjall", None),
    ("redb", None),
    ("sled", None),
    ("rocksdb", Some("peer-rocksdb")),
    ("seerdb", Some("peer-seerdb")),
    ("crossbeam-skiplist", None),
    ("scc", None),
    ("bf-tree", Some("peer-bftree")),
];

/// The engine called `name` in this build, or why there is none.
pub fn engine_named(name: &str) -> Result<&'static str, String> {
    if let Some(e) = ENGINES.iter().find(|e| **e == name) {
        return Ok(e);
    }
    match KNOWN.iter().find(|(k, _)| *k == name) {
        Some((_, Some(feature))) => Err(format!(
            "{name} is not in this build: rebuild with `--features cli,bench-peers,{feature}`"
        )),
        _ => Err(format!(
            "unknown engine {name:?} (known: {})",
            KNOWN.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The engines a comparison runs: those `--engines` names (every engine of
/// this build without it), in [`ENGINES`] order.
pub fn chosen(args: &BenchArgs) -> Result<Vec<&'static str>, String> {
    if args.engines.is_empty() {
        return Ok(ENGINES.to_vec());
    }
    let named = args
        .engines
        .iter()
        .map(|n| engine_named(n.trim()))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ENGINES.iter().copied().filter(|e| named.contains(e)).collect())
}

/// Engines that can sync a commit to disk (`--durability sync` runs only
/// these: an in-memory peer, or one without commits, would not be doing the
/// same work).
pub fn durable(name: &str) -> bool {
    !matches!(name, "skipdb" | "crossbeam-skiplist" | "scc" | "bf-tree")
}

/// Engines that keep everything in memory: no cache to bound, so they sit
/// out of a `--cache-size` comparison.
pub fn in_memory(name: &str) -> bool {
    matches!(name, "skipdb" | "crossbeam-skiplist" | "scc")
}

/// Engines that run each operation on its own, without transactions.
pub fn is_index(name: &str) -> bool {
    matches!(name, "crossbeam-skiplist" | "scc" | "bf-tree")
}

/// Under `--isolation serializable`: why `name` sits out (no serializable
/// mode as this bench drives it), or `None` if it runs.
pub fn not_serializable(name: &str) -> Option<&'static str> {
    match name {
        "bwtx" | "skipdb" | "fjall" | "redb" => None,
        "sled" => Some(
            "its transactions are serializable but cannot scan, and its read-only transactions read without a \
             snapshot",
        ),
        "rocksdb" => Some("OptimisticTransactionDB as driven here validates written keys only (snapshot isolation)"),
        "seerdb" => Some("its transactions validate keys read but have no range reads, so scans go unvalidated"),
        _ => Some("no transactions"),
    }
}

/// Open engine `name` for `args`, its files (if any) in `tmp`; a peer with a
/// cache gets `--cache-size` as its cache (each peer's module says how).
pub(super) fn open_engine(name: &str, args: &BenchArgs, tmp: &Path) -> Result<Box<dyn Engine>, String> {
    let sync = super::sync(args);
    let cache = args.cache_size;
    Ok(match name {
        "bwtx" => Box::new(bench::open_compare(args, tmp)?),
        "skipdb" if super::serializable(args) => super::skipdb_ser::open(),
        "skipdb" => super::skipdb::open(),
        "fjall" => super::fjall::open(tmp.join("fjall"), sync, cache)?,
        "redb" => super::redb::open(tmp.join("bench.redb"), sync, cache)?,
        "sled" => super::sled::open(tmp.join("sled"), sync, cache)?,
        #[cfg(feature = "peer-rocksdb")]
        "rocksdb" => super::rocksdb::open(tmp.join("rocksdb"), sync, cache)?,
        #[cfg(feature = "peer-seerdb")]
        "seerdb" => super::seerdb::open(tmp.join("seerdb"), sync, cache)?,
        "crossbeam-skiplist" => super::index::skiplist(),
        "scc" => super::index::scc(),
        #[cfg(feature = "peer-bftree")]
        "bf-tree" => super::bftree::open(super::bftree::Storage::from_args(cache, tmp)?)?,
        _ => return Err(format!("unknown engine {name}")),
    })
}

/// One engine's row.
pub struct Row {
    pub name: &'static str,
    pub settings: String,
    pub m: Summary,
    /// Memory and disk figures (isolated comparisons only).
    pub res: Option<Resources>,
}

/// The result of `bwtx bench --compare`.
pub struct CompareReport {
    pub header: RunHeader,
    pub seed: u64,
    pub durability: &'static str,
    pub rows: Vec<Row>,
    /// Engines left out under `--isolation serializable`, with the reason.
    pub skipped: Vec<(&'static str, &'static str)>,
    /// Whether each engine ran in its own process (`isolate.rs`).
    pub isolated: bool,
    /// `--cache-size`, if given.
    pub cache: Option<u64>,
    /// Lines printed under the table (engines that sat out or failed, how
    /// the figures were taken).
    pub notes: Vec<String>,
    /// Engines whose child process ended before reporting this workload,
    /// or failed after it (isolated comparisons), or whose run failed (in
    /// this process).
    pub failed: Vec<Failed>,
}

/// An engine that did not finish: its child process (isolated comparisons)
/// or its run in this process failed.
#[derive(Clone, Debug)]
pub struct Failed {
    pub name: &'static str,
    /// What happened, e.g. `timed out after 10 s and was killed, during
    /// workload c`.
    pub what: String,
    /// How its process ended (`exit status: 101`, `signal: 9 (SIGKILL)`),
    /// if it was started.
    pub exit: Option<String>,
    /// The last lines it wrote to stderr.
    pub stderr_tail: Vec<String>,
}

/// A temporary directory, removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The directory engine `name` runs in (bwtx: unless `--dir` names one):
/// beside `--dir` if one is given, so on the same file system (a temporary
/// directory may be in memory, where fsyncs cost nothing; before 2026-12-07
/// the peers always ran there), else a temporary one; named after this
/// process, so that it is never a directory the user had.
fn peer_dir(args: &BenchArgs, name: &str) -> PathBuf {
    let mine = format!("bwtx-compare-{}-{name}", std::process::id());
    let Some(dir) = &args.dir else {
        return std::env::temp_dir().join(mine);
    };
    // (`.` made absolute has a name; `..` and `/` have none: then inside
    // it, as an isolated comparison puts every engine.)
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
    match (dir.file_name(), dir.parent()) {
        (Some(base), Some(parent)) => {
            let mut beside = base.to_os_string();
            beside.push(format!(".{mine}"));
            parent.join(beside)
        }
        _ => dir.join(mine),
    }
}

/// Run the workload on every engine, one after the other.
pub fn run(args: &BenchArgs) -> Result<CompareReport, String> {
    let setup = bench::setup(args)?;
    if args.engine_timeout.is_some() {
        return Err("--engine-timeout needs engines in processes of their own: add --isolate or --cache-size".into());
    }
    // In this process only an error can be injected (a hang, a panic or
    // an abort would end the comparison itself).
    for f in &args.child_fault {
        super::isolate::check_fault(f)?;
        if !f.ends_with(":error") {
            return Err(format!(
                "--child-fault {f:?} needs engines in processes of their own: add --isolate or --cache-size"
            ));
        }
    }
    let engines = chosen(args)?;
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut failed = Vec::new();
    for &name in &engines {
        if args.workload == Workload::Bank && is_index(name) {
            continue;
        }
        if super::sync(args) && !durable(name) {
            continue;
        }
        if let Some(why) = not_serializable(name).filter(|_| super::serializable(args)) {
            skipped.push((name, why));
            continue;
        }
        let tmp = TempDir(peer_dir(args, name));
        let _ = std::fs::remove_dir_all(&tmp.0);
        std::fs::create_dir_all(&tmp.0).map_err(|e| format!("cannot create {}: {e}", tmp.0.display()))?;
        if !setup.hidden {
            eprintln!("{name} ...");
        }
        // One engine's failure is reported beside the others' results
        // (before 2026-12-08 it discarded the whole comparison).
        let measured = open_engine(name, args, &tmp.0).and_then(|engine| {
            super::isolate::injected_error(&args.child_fault, name)?;
            bench::measure(&*engine, args, &setup, || {}).map(|m| (engine.settings(), m))
        });
        match measured {
            Ok((settings, m)) => rows.push(Row {
                name,
                settings,
                m: Summary::from(&m),
                res: None,
            }),
            Err(e) => failed.push(Failed {
                name,
                what: format!("failed: {e}"),
                exit: None,
                stderr_tail: Vec::new(),
            }),
        }
    }
    // sled's background flusher may outlive its `Db` briefly and recreate
    // its directory: sweep once more after every engine has run.
    for &name in ENGINES {
        let _ = std::fs::remove_dir_all(peer_dir(args, name));
    }
    Ok(CompareReport {
        header: setup.header(args),
        seed: args.seed,
        durability: if super::sync(args) { "sync" } else { "relaxed" },
        rows,
        skipped,
        isolated: false,
        cache: args.cache_size,
        notes: Vec::new(),
        failed,
    })
}

impl CompareReport {
    fn bwtx(&self) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == "bwtx")
    }

    /// bwtx's throughput over `row`'s, and `row`'s p99 over bwtx's.
    pub(super) fn ratios(&self, row: &Row) -> (f64, f64) {
        let Some(b) = self.bwtx() else {
            return (f64::NAN, f64::NAN);
        };
        (b.m.tput() / row.m.tput(), row.m.latency().p99 / b.m.latency().p99)
    }

    /// The transactional peer with the highest throughput, and bwtx's
    /// throughput over it.
    pub fn best_peer(&self) -> Option<(&'static str, f64)> {
        let best = self
            .rows
            .iter()
            .filter(|r| r.name != "bwtx" && !is_index(r.name))
            .max_by(|a, b| a.m.tput().total_cmp(&b.m.tput()))?;
        Some((best.name, self.ratios(best).0))
    }

    /// Whether every engine's process finished and every bank total was
    /// conserved.
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
            && self
                .rows
                .iter()
                .all(|r| r.m.bank_total.is_none_or(|(found, want)| found == want))
    }
}

/// The engines that ran in any of `reports`, in [`ENGINES`] order.
pub fn engines_in(reports: &[CompareReport]) -> Vec<&'static str> {
    ENGINES
        .iter()
        .copied()
        .filter(|e| reports.iter().any(|r| r.rows.iter().any(|row| row.name == *e)))
        .collect()
}

/// Throughput in a short form: `1.26M`, `291k`, `950`.
pub fn short(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// One line per workload: each engine's transactions per second with bwtx's
/// throughput over it, and bwtx over the best transactional peer.
pub fn summary(reports: &[CompareReport]) -> String {
    let engines = engines_in(reports);
    let mut out = String::from("summary: transactions/s (bwtx over the engine)\n");
    let _ = write!(out, "{:<9}", "workload");
    for e in &engines {
        let _ = write!(out, " {e:>18}");
    }
    let _ = writeln!(out, "  {:>24}", "bwtx / best txn peer");
    for r in reports {
        let _ = write!(out, "{:<9}", r.header.workload);
        for e in &engines {
            let cell = match r.rows.iter().find(|row| row.name == *e) {
                None => "-".to_owned(),
                Some(row) if row.name == "bwtx" => short(row.m.tput()),
                Some(row) => match r.ratios(row).0 {
                    x if x.is_finite() => format!("{} ({x:.1}x)", short(row.m.tput())),
                    _ => short(row.m.tput()),
                },
            };
            let _ = write!(out, " {cell:>18}");
        }
        let best = r
            .best_peer()
            .filter(|(_, x)| x.is_finite())
            .map_or("-".to_owned(), |(n, x)| format!("{x:.2}x ({n})"));
        let _ = writeln!(out, "  {best:>24}");
    }
    out
}
