//! One engine's figures for one workload, as a comparison row holds them:
//! throughput and latency ([`Summary`], from a [`Measured`] run here or from
//! a child's result line), and, in an isolated comparison, its memory and
//! disk figures ([`Resources`]).

use std::time::Duration;

use crate::bench::Measured;
use crate::report::Latency;

/// What an engine measured in one workload.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Loading the records (in an isolated comparison: the one load every
    /// workload of the engine ran on).
    pub load: Duration,
    pub elapsed: Duration,
    pub txns: u64,
    pub ops: u64,
    pub aborts: u64,
    pub latency: Latency,
    /// Bank: (sum of balances found, sum expected).
    pub bank_total: Option<(u64, u64)>,
}

impl Summary {
    pub fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }
    /// Transactions per second.
    pub fn tput(&self) -> f64 {
        self.txns as f64 / self.secs()
    }
    pub fn latency(&self) -> Latency {
        self.latency.clone()
    }
    pub fn abort_rate(&self) -> f64 {
        if self.txns + self.aborts == 0 {
            0.0
        } else {
            self.aborts as f64 / (self.txns + self.aborts) as f64
        }
    }
}

impl From<&Measured> for Summary {
    fn from(m: &Measured) -> Summary {
        Summary {
            load: m.load,
            elapsed: m.elapsed,
            txns: m.txns,
            ops: m.ops,
            aborts: m.aborts,
            latency: m.latency(),
            bank_total: m.bank_total,
        }
    }
}

/// An engine's memory and disk figures in an isolated comparison (its own
/// process: see `procfs.rs` for where each comes from).
#[derive(Clone, Debug, Default)]
pub struct Resources {
    /// `--cache-size`, if given.
    pub cache: Option<u64>,
    /// Bytes written to disk while loading (and persisting the load).
    pub load_disk_bytes: u64,
    /// Key and value bytes loaded.
    pub load_user_bytes: u64,
    /// Peak RSS while loading, in KiB.
    pub load_peak_rss_kib: Option<u64>,
    /// Bytes written to disk during the workload's run (and its persist).
    pub disk_bytes: u64,
    /// Key and value bytes of the run's committed puts.
    pub user_bytes: u64,
    /// Peak RSS during the run, in KiB.
    pub peak_rss_kib: Option<u64>,
    /// RSS at the end of the run, in KiB.
    pub end_rss_kib: Option<u64>,
    /// Whether the peaks are the phases' own (`clear_refs` reset them);
    /// if not, each counts from the process's start.
    pub peak_reset: bool,
}

/// Disk bytes per user byte (NaN without user bytes).
pub fn amplification(disk: u64, user: u64) -> f64 {
    if user == 0 {
        f64::NAN
    } else {
        disk as f64 / user as f64
    }
}

impl Resources {
    /// The run's write amplification.
    pub fn write_amp(&self) -> f64 {
        amplification(self.disk_bytes, self.user_bytes)
    }
    /// The load's write amplification.
    pub fn load_write_amp(&self) -> f64 {
        amplification(self.load_disk_bytes, self.load_user_bytes)
    }
    /// The run's peak RSS over the cache (NaN without either).
    pub fn rss_over_cache(&self) -> f64 {
        match (self.peak_rss_kib, self.cache) {
            (Some(k), Some(c)) if c > 0 => (k * 1024) as f64 / c as f64,
            _ => f64::NAN,
        }
    }
}

/// KiB as MiB with one decimal, or `-`.
pub fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// A ratio with two decimals, or `-` if it is not a number.
pub fn ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "-".to_owned()
    }
}
