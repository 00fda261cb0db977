//! The command line of `bwtx bench`: workloads, key distributions,
//! durability, and every option with its default.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

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
    /// Updates only (default distribution uniform): the write-amplification
    /// workload (issue 11: uniform 100-byte updates).
    U,
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

/// The isolation level bwtx's transactions begin with (`Db::begin_with`),
/// and with `--compare` the mode each peer runs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum IsolationArg {
    /// Snapshot isolation (`Isolation::Snapshot`).
    #[default]
    Snapshot,
    /// Serializable (`Isolation::Serializable`): reads are validated at
    /// commit. With --compare, peers without a serializable mode sit out.
    Serializable,
}

impl IsolationArg {
    /// The library's level.
    pub fn level(self) -> bwtx::Isolation {
        match self {
            IsolationArg::Snapshot => bwtx::Isolation::Snapshot,
            IsolationArg::Serializable => bwtx::Isolation::Serializable,
        }
    }

    /// `snapshot` or `serializable`, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            IsolationArg::Snapshot => "snapshot",
            IsolationArg::Serializable => "serializable",
        }
    }
}

/// Options of `bwtx bench`.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// The operation mix; several, comma-separated (`a,b,c,d,e,f,u,bank`),
    /// run one after the other (with --compare --cache-size or --isolate:
    /// one after the other on one load per engine).
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
    /// With --dir: bwtx's page cache budget (`Options::cache_size`), in
    /// bytes or with a suffix (KiB, MiB, GiB; K, M, G mean the same). Leaves
    /// beyond it are evicted to page segments in --dir and read back on
    /// access. Default: unlimited (every page in memory).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, requires = "dir")]
    pub cache_size: Option<u64>,
    /// bwtx keeps this many seconds of history readable
    /// (`Options::history_retention`; default 0: only open snapshots hold
    /// versions). The run reports the GC lag and the versions stored.
    #[arg(long, value_name = "SECS")]
    pub history_retention: Option<u64>,
    /// Sync interval of --durability buffered, in milliseconds.
    #[arg(long, default_value_t = 10)]
    pub buffer_ms: u64,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The isolation level of bwtx's transactions. With --compare and
    /// `serializable`, each peer runs in its serializable mode (skipdb's
    /// `SerializableDb::serializable_write`, fjall's optimistic (SSI)
    /// transactions, redb's single writer); peers without one are skipped.
    #[arg(long, value_enum, default_value = "snapshot")]
    pub isolation: IsolationArg,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run the same workload (same keys, same seeded operation streams) on
    /// bwtx and on skipdb, fjall, redb and sled (and RocksDB, seerdb in builds
    /// with `peer-rocksdb`, `peer-seerdb`; crossbeam-skiplist, scc and, with
    /// `peer-bftree`, Bf-Tree, without transactions, for A–F), and compare
    /// them. Needs a build with `--features cli,bench-peers`.
    #[arg(long)]
    pub compare: bool,
    /// With --compare: also draw the throughputs as a bar chart (SVG).
    #[arg(long, requires = "compare", value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// With --compare: run each engine in a child process of its own (a
    /// re-exec of this binary), which loads once and runs every --workload,
    /// so that its peak RSS and the bytes it writes to disk
    /// (`/proc/self/io`) are its own. Each engine's directory is made under
    /// --dir (or the temporary directory) and deleted when its child ends.
    /// Implied by --cache-size.
    #[arg(long, requires = "compare")]
    pub isolate: bool,
    /// With --compare: only these engines (comma-separated, e.g.
    /// `bwtx,rocksdb,fjall,redb`), in the usual order. Default: every engine
    /// of this build.
    #[arg(long, requires = "compare", value_delimiter = ',', value_name = "NAMES")]
    pub engines: Vec<String>,
    /// With --compare --cache-size or --isolate: the longest one engine's
    /// child process may run (its load and every workload), in seconds. A
    /// child past it is killed and reported as timed out, with the phases it
    /// finished; the other engines still run. Default: no limit.
    #[arg(long, requires = "compare", value_name = "SECS")]
    pub engine_timeout: Option<f64>,
    /// A test hook (hidden): `ENGINE:hang|panic|abort|error` makes that
    /// engine's child process hang, panic, abort or fail with an error as its
    /// last workload starts (or after its load, with one workload); without
    /// child processes only `error`, as the engine's run starts. Repeatable.
    #[arg(long, hide = true, requires = "compare", value_name = "ENGINE:KIND")]
    pub child_fault: Vec<String>,
    /// The engine this process runs as a child of an isolated comparison
    /// (set by the parent, not by hand).
    #[arg(long, hide = true, value_name = "ENGINE")]
    pub child_engine: Option<String>,
    /// The directory of that child's engine (set by the parent).
    #[arg(long, hide = true, value_name = "DIR", requires = "child_engine")]
    pub child_dir: Option<PathBuf>,
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
            cache_size: None,
            history_retention: None,
            buffer_ms: 10,
            seed: 1,
            isolation: IsolationArg::Snapshot,
            json: false,
            compare: false,
            plot: None,
            isolate: false,
            engines: Vec::new(),
            engine_timeout: None,
            child_fault: Vec::new(),
            child_engine: None,
            child_dir: None,
        }
    }
}

/// A byte count: digits, then optionally a binary suffix (`KiB`/`K`,
/// `MiB`/`M`, `GiB`/`G`, any case; `B` alone is bytes).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("not a byte count: {s:?}"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        _ => return Err(format!("unknown unit in {s:?} (use KiB, MiB or GiB)")),
    };
    n.checked_mul(1 << shift).ok_or_else(|| format!("too large: {s:?}"))
}

/// `n` bytes for people: the largest binary unit that divides it.
pub fn show_bytes(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("64 M"), Ok(64 << 20));
        assert_eq!(parse_bytes("2gib"), Ok(2 << 30));
        assert!(parse_bytes("12 parsecs").is_err() && parse_bytes("MiB").is_err());
        assert_eq!(show_bytes(64 << 20), "64 MiB");
        assert_eq!(show_bytes(1000), "1000 B");
    }
}
