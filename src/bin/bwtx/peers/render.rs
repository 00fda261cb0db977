//! Rendering a [`CompareReport`]: the table for people (with, in an
//! isolated comparison, each engine's peak and final RSS, RSS over the
//! cache, and write amplification of the load and of the run; an engine
//! whose process timed out or died before this workload as a row saying
//! so, with its exit status and stderr's last lines under the table) and
//! one JSON object for machines.

use std::fmt::Write as _;

use super::compare::{is_index, CompareReport};
use super::summary::{mib, ratio};
use crate::bench::show_bytes;
use crate::report::{json_str, num};

/// A count, or `null`.
fn opt(x: Option<u64>) -> String {
    x.map_or("null".to_owned(), |v| v.to_string())
}

/// A ratio as `1.25x`, or `-` if it is not a number (bwtx has no row).
fn times(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}x")
    } else {
        "-".to_owned()
    }
}

impl CompareReport {
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "workload {}, seed {}, durability {}{}",
            self.header.describe(),
            self.seed,
            self.durability,
            match self.cache {
                Some(c) => format!(", cache {} for every engine with one", show_bytes(c)),
                None => String::new(),
            }
        );
        let _ = writeln!(out, "settings:");
        for r in &self.rows {
            let _ = writeln!(out, "  {}", r.settings);
        }
        let _ = write!(
            out,
            "{:<18} {:>8} {:>10} {:>12} {:>12} {:>10} {:>10} {:>9} {:>10} {:>13}",
            "engine", "load s", "txns", "txns/s", "ops/s", "p50 us", "p99 us", "abort %", "bwtx/peer", "p99 peer/bwtx"
        );
        if self.isolated {
            let _ = write!(
                out,
                " {:>9} {:>9} {:>9} {:>8} {:>8}",
                "peak MiB", "end MiB", "RSS/cache", "load WA", "run WA"
            );
        }
        out.push('\n');
        for r in &self.rows {
            let l = r.m.latency();
            let secs = r.m.secs();
            let (x, p) = self.ratios(r);
            let _ = write!(
                out,
                "{:<18} {:>8.2} {:>10} {:>12.0} {:>12.0} {:>10.1} {:>10.1} {:>9.2} {:>10} {:>13}",
                r.name,
                r.m.load.as_secs_f64(),
                r.m.txns,
                r.m.txns as f64 / secs,
                r.m.ops as f64 / secs,
                l.p50,
                l.p99,
                r.m.abort_rate() * 100.0,
                times(x),
                times(p)
            );
            if let Some(res) = &r.res {
                let _ = write!(
                    out,
                    " {:>9} {:>9} {:>9} {:>8} {:>8}",
                    mib(res.peak_rss_kib),
                    mib(res.end_rss_kib),
                    ratio(res.rss_over_cache()),
                    ratio(res.load_write_amp()),
                    ratio(res.write_amp())
                );
            }
            out.push('\n');
        }
        for f in self
            .failed
            .iter()
            .filter(|f| !self.rows.iter().any(|r| r.name == f.name))
        {
            let _ = writeln!(out, "{:<18} {}", f.name, f.what);
        }
        if let Some((name, x)) = self.best_peer().filter(|(_, x)| x.is_finite()) {
            let _ = writeln!(out, "bwtx / best transactional peer ({name}): {x:.2}x throughput");
        }
        for (name, why) in &self.skipped {
            let _ = writeln!(out, "{name} skipped under serializable isolation: {why}");
        }
        let indexes: Vec<&str> = self.rows.iter().map(|r| r.name).filter(|n| is_index(n)).collect();
        if let Some((last, rest)) = indexes.split_last() {
            let names = if rest.is_empty() {
                (*last).to_owned()
            } else {
                format!("{} and {last}", rest.join(", "))
            };
            let verb = if rest.is_empty() { "runs" } else { "run" };
            let _ = writeln!(
                out,
                "({names} {verb} each operation on its own: no transactions, no snapshots)"
            );
        }
        let loads: Vec<String> = self
            .rows
            .iter()
            .filter_map(|r| Some(format!("{} {}", r.name, mib(r.res.as_ref()?.load_peak_rss_kib))))
            .collect();
        if !loads.is_empty() {
            let _ = writeln!(out, "peak RSS of the load, MiB: {}", loads.join(", "));
        }
        for note in &self.notes {
            let _ = writeln!(out, "{note}");
        }
        // How each child process ended (an engine that failed in this
        // process has its error in its row above, and no more to say).
        for f in self.failed.iter().filter(|_| self.isolated) {
            let _ = write!(out, "{}'s process {}", f.name, f.what);
            if let Some(exit) = f.exit.as_ref().filter(|e| !f.what.contains(e.as_str())) {
                let _ = write!(out, "; it ended with {exit}");
            }
            if f.stderr_tail.is_empty() {
                let _ = writeln!(out, "; it wrote nothing to stderr");
            } else {
                let _ = writeln!(out, "; its stderr ended with:");
                for line in &f.stderr_tail {
                    let _ = writeln!(out, "    | {line}");
                }
            }
        }
        for r in &self.rows {
            if let Some((found, want)) = r.m.bank_total {
                let _ = writeln!(
                    out,
                    "{} bank total {found} (expected {want}): {}",
                    r.name,
                    if found == want { "ok" } else { "VIOLATED" }
                );
            }
        }
        out
    }

    pub fn json(&self) -> String {
        let mut o = String::from("{");
        let _ = write!(
            o,
            "\"compare\":true,{},\"seed\":{},\"durability\":{},\"isolated\":{},\"cache_size\":{},\"engines\":[",
            self.header.json_members(),
            self.seed,
            json_str(self.durability),
            self.isolated,
            self.cache.map_or("null".to_owned(), |c| c.to_string())
        );
        for (n, r) in self.rows.iter().enumerate() {
            let l = r.m.latency();
            let secs = r.m.secs();
            let (x, p) = self.ratios(r);
            if n > 0 {
                o.push(',');
            }
            let _ = write!(
                o,
                "{{\"engine\":{},\"transactional\":{},\"settings\":{},\"load_secs\":{},\"elapsed_secs\":{},\"txns\":{},\"ops\":{},\
                 \"txns_per_sec\":{},\"ops_per_sec\":{},\"aborts\":{},\"abort_rate\":{},\
                 \"latency_us\":{{\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{},\"mean\":{}}},\
                 \"bwtx_over_peer_throughput\":{},\"peer_over_bwtx_p99\":{}",
                json_str(r.name),
                !is_index(r.name),
                json_str(&r.settings),
                num(r.m.load.as_secs_f64()),
                num(secs),
                r.m.txns,
                r.m.ops,
                num(r.m.txns as f64 / secs),
                num(r.m.ops as f64 / secs),
                r.m.aborts,
                num(r.m.abort_rate()),
                num(l.p50),
                num(l.p99),
                num(l.p999),
                num(l.max),
                num(l.mean),
                num(x),
                num(p)
            );
            if let Some(res) = &r.res {
                let _ = write!(
                    o,
                    ",\"peak_rss_kib\":{},\"end_rss_kib\":{},\"rss_over_cache\":{},\"peak_rss_since_start\":{},\
                     \"disk_bytes\":{},\"user_bytes\":{},\"write_amplification\":{},\"load_peak_rss_kib\":{},\
                     \"load_disk_bytes\":{},\"load_user_bytes\":{},\"load_write_amplification\":{}",
                    opt(res.peak_rss_kib),
                    opt(res.end_rss_kib),
                    num(res.rss_over_cache()),
                    !res.peak_reset,
                    res.disk_bytes,
                    res.user_bytes,
                    num(res.write_amp()),
                    opt(res.load_peak_rss_kib),
                    res.load_disk_bytes,
                    res.load_user_bytes,
                    num(res.load_write_amp())
                );
            }
            if let Some((found, want)) = r.m.bank_total {
                let _ = write!(
                    o,
                    ",\"bank_total\":{found},\"bank_expected\":{want},\"bank_ok\":{}",
                    found == want
                );
            }
            o.push('}');
        }
        o.push(']');
        if let Some((name, x)) = self.best_peer() {
            let _ = write!(
                o,
                ",\"best_transactional_peer\":{},\"bwtx_over_best_transactional_peer\":{}",
                json_str(name),
                num(x)
            );
        }
        if !self.notes.is_empty() {
            o.push_str(",\"notes\":[");
            for (n, note) in self.notes.iter().enumerate() {
                if n > 0 {
                    o.push(',');
                }
                o.push_str(&json_str(note));
            }
            o.push(']');
        }
        if !self.failed.is_empty() {
            o.push_str(",\"failed\":[");
            for (n, f) in self.failed.iter().enumerate() {
                if n > 0 {
                    o.push(',');
                }
                let tail: Vec<String> = f.stderr_tail.iter().map(|l| json_str(l)).collect();
                let _ = write!(
                    o,
                    "{{\"engine\":{},\"what\":{},\"exit\":{},\"stderr_tail\":[{}]}}",
                    json_str(f.name),
                    json_str(&f.what),
                    f.exit.as_deref().map_or("null".to_owned(), json_str),
                    tail.join(",")
                );
            }
            o.push(']');
        }
        if !self.skipped.is_empty() {
            o.push_str(",\"skipped\":[");
            for (n, (name, why)) in self.skipped.iter().enumerate() {
                if n > 0 {
                    o.push(',');
                }
                let _ = write!(o, "{{\"engine\":{},\"reason\":{}}}", json_str(name), json_str(why));
            }
            o.push(']');
        }
        o.push('}');
        o
    }
}
