//! The result of `bwtx bench`: a table for people, JSON for machines.

use std::fmt::Write as _;

/// Transaction latency in microseconds (begin of the first attempt to the
/// successful commit, retries included).
#[derive(Clone, Debug, Default)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// What was run: the part of a report `bwtx bench` and `--compare` share.
#[derive(Clone, Debug, Default)]
pub struct RunHeader {
    pub workload: String,
    pub distribution: String,
    pub theta: f64,
    pub keys: u64,
    pub value_size: usize,
    pub threads: usize,
    pub ops_per_txn: usize,
    /// `snapshot` or `serializable` (`--isolation`).
    pub isolation: String,
}

impl RunHeader {
    /// `a (zipfian theta 0.99), 1000000 keys x 100 B, 2 threads, 2 ops/txn,
    /// snapshot isolation`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}{}), {} keys x {} B, {} threads, {} ops/txn, {} isolation",
            self.workload,
            self.distribution,
            if self.distribution == "uniform" {
                String::new()
            } else {
                format!(" theta {}", self.theta)
            },
            self.keys,
            self.value_size,
            self.threads,
            self.ops_per_txn,
            self.isolation
        )
    }

    /// The JSON members `"workload":..` to `"isolation":..`, no braces.
    pub fn json_members(&self) -> String {
        format!(
            "\"workload\":{},\"distribution\":{},\"theta\":{},\"keys\":{},\"value_size\":{},\"threads\":{},\
             \"ops_per_txn\":{},\"isolation\":{}",
            json_str(&self.workload),
            json_str(&self.distribution),
            num(self.theta),
            self.keys,
            self.value_size,
            self.threads,
            self.ops_per_txn,
            json_str(&self.isolation)
        )
    }
}

/// Everything `bwtx bench` measured.
#[derive(Clone, Debug, Default)]
pub struct BenchReport {
    pub header: RunHeader,
    pub storage: String,
    pub load_secs: f64,
    pub elapsed_secs: f64,
    pub txns: u64,
    pub ops: u64,
    pub txns_per_sec: f64,
    pub ops_per_sec: f64,
    /// Commit attempts refused with a conflict (then retried).
    pub aborts: u64,
    /// `aborts / (txns + aborts)`.
    pub abort_rate: f64,
    pub latency_us: Latency,
    /// Commits with writes during the run (`Stats::commits`).
    pub commits: u64,
    /// Log fsyncs during the run (`Stats::log_syncs`).
    pub log_syncs: u64,
    pub fsyncs_per_commit: f64,
    pub peak_rss_kib: Option<u64>,
    /// Versions dropped by garbage collection since open.
    pub versions_collected: u64,
    /// Versions held at the end of the run (`Stats::versions_stored`).
    pub versions_stored: u64,
    /// The GC watermark's lag behind the newest commit at the end of the
    /// run, in commit timestamps (`Stats::gc_lag`).
    pub gc_lag: u64,
    /// Versions the oldest snapshot alone held at the last GC sweep
    /// (`Stats::versions_held_by_oldest_snapshot`).
    pub held_by_oldest: u64,
    /// Bank: (sum of balances found, sum expected).
    pub bank_total: Option<(u64, u64)>,
    /// On disk with puts: the write-amplification line (disk bytes per
    /// user byte over the run, and the engine's writes by writer).
    pub writes: Option<String>,
    /// With a page cache: the fault-in line (fault-ins, read calls per
    /// fault-in, CPU time per transaction).
    pub reads: Option<String>,
}

impl BenchReport {
    /// Whether the invariant checks passed (bank: the total is conserved).
    pub fn ok(&self) -> bool {
        self.bank_total.is_none_or(|(found, want)| found == want)
    }

    /// A human-readable table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(&str, String)> = vec![
            ("workload", self.header.describe()),
            ("storage", self.storage.clone()),
            ("load", format!("{:.2} s", self.load_secs)),
            (
                "run",
                format!("{:.2} s, {} txns, {} ops", self.elapsed_secs, self.txns, self.ops),
            ),
            (
                "throughput",
                format!("{:.0} txns/s, {:.0} ops/s", self.txns_per_sec, self.ops_per_sec),
            ),
            (
                "latency (us)",
                format!(
                    "p50 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}, mean {:.1}",
                    self.latency_us.p50,
                    self.latency_us.p99,
                    self.latency_us.p999,
                    self.latency_us.max,
                    self.latency_us.mean
                ),
            ),
            (
                "aborts",
                format!("{} ({:.2}% of commit attempts)", self.aborts, self.abort_rate * 100.0),
            ),
            (
                "fsyncs/commit",
                format!(
                    "{:.4} ({} syncs, {} commits)",
                    self.fsyncs_per_commit, self.log_syncs, self.commits
                ),
            ),
            (
                "peak RSS",
                format!(
                    "{} ({})",
                    self.peak_rss_kib
                        .map_or("unknown".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
                    crate::alloc::name()
                ),
            ),
            ("versions collected", self.versions_collected.to_string()),
            (
                "versions stored",
                format!(
                    "{} (GC lag {} commits; {} held by the oldest snapshot alone)",
                    self.versions_stored, self.gc_lag, self.held_by_oldest
                ),
            ),
        ];
        if let Some(w) = &self.writes {
            rows.push(("writes", w.clone()));
        }
        if let Some(r) = &self.reads {
            rows.push(("fault-ins", r.clone()));
        }
        if let Some((found, want)) = self.bank_total {
            rows.push((
                "bank total",
                format!(
                    "{found} (expected {want}): {}",
                    if found == want { "ok" } else { "VIOLATED" }
                ),
            ));
        }
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<w$}  {v}");
        }
        out
    }

    /// One JSON object.
    pub fn json(&self) -> String {
        let l = &self.latency_us;
        let mut o = String::from("{");
        let _ = write!(
            o,
            "{},\"storage\":{},\"load_secs\":{},\"elapsed_secs\":{},\"txns\":{},\"ops\":{},\
             \"txns_per_sec\":{},\"ops_per_sec\":{},\"aborts\":{},\"abort_rate\":{},\
             \"latency_us\":{{\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{},\"mean\":{}}},\
             \"commits\":{},\"log_syncs\":{},\"fsyncs_per_commit\":{},\"peak_rss_kib\":{},\"allocator\":{},\"versions_collected\":{},\"versions_stored\":{},\"gc_lag\":{},\"versions_held_by_oldest_snapshot\":{}",
            self.header.json_members(),
            json_str(&self.storage),
            num(self.load_secs),
            num(self.elapsed_secs),
            self.txns,
            self.ops,
            num(self.txns_per_sec),
            num(self.ops_per_sec),
            self.aborts,
            num(self.abort_rate),
            num(l.p50),
            num(l.p99),
            num(l.p999),
            num(l.max),
            num(l.mean),
            self.commits,
            self.log_syncs,
            num(self.fsyncs_per_commit),
            self.peak_rss_kib.map_or("null".to_owned(), |k| k.to_string()),
            json_str(crate::alloc::name()),
            self.versions_collected,
            self.versions_stored,
            self.gc_lag,
            self.held_by_oldest,
        );
        if let Some(w) = &self.writes {
            let _ = write!(o, ",\"writes\":{}", json_str(w));
        }
        if let Some(r) = &self.reads {
            let _ = write!(o, ",\"fault_ins\":{}", json_str(r));
        }
        if let Some((found, want)) = self.bank_total {
            let _ = write!(
                o,
                ",\"bank_total\":{found},\"bank_expected\":{want},\"bank_ok\":{}",
                found == want
            );
        }
        o.push('}');
        o
    }
}

/// A finite JSON number (JSON has no NaN or infinity).
pub fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".to_owned()
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
