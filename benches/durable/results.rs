//! The results table: commits per second per engine and thread count,
//! syncs per commit, and the goals.

use std::time::Duration;

use crate::passes::Cell;

pub(crate) fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else if r >= 1e4 {
        format!("{:.1}k", r / 1e3)
    } else {
        format!("{:.2}k", r / 1e3)
    }
}

pub(crate) struct Results {
    pub(crate) names: Vec<&'static str>,
    pub(crate) threads: Vec<usize>,
    /// `cells[i][j]`: thread count `threads[i]`, engine `names[j]`.
    pub(crate) cells: Vec<Vec<Cell>>,
    /// Whether the sync counting at the libc boundary worked.
    pub(crate) counted: bool,
}

impl Results {
    fn cell(&self, threads: usize, name: &str) -> Option<&Cell> {
        let i = self.threads.iter().position(|&t| t == threads)?;
        let j = self.names.iter().position(|&n| n == name)?;
        Some(&self.cells[i][j])
    }

    pub(crate) fn print(&self, len: Duration, rounds: usize) {
        const W: usize = 12;
        println!();
        println!(
            "durable commits/s (best of {rounds} timed pass{} of {} ms; each commit = 1 or 2 blind writes, alternately):",
            if rounds == 1 { "" } else { "es" },
            len.as_millis()
        );
        print!("{:>3}", "thr");
        for n in &self.names {
            print!(" {n:>W$}");
        }
        println!();
        for (i, t) in self.threads.iter().enumerate() {
            print!("{t:>3}");
            for c in &self.cells[i] {
                print!(" {:>W$}", fmt_rate(c.rate));
            }
            println!();
        }

        println!();
        println!(
            "syncs per commit (fsync + fdatasync calls in the process, background threads included; \
             +Nr = sync_file_range calls):"
        );
        print!("{:>3} {:>W$}", "thr", "bwtx(stats)");
        for n in &self.names {
            print!(" {n:>W$}");
        }
        println!();
        for (i, t) in self.threads.iter().enumerate() {
            let own = self
                .cell(*t, "bwtx")
                .and_then(Cell::own_per_commit)
                .map_or("-".to_string(), |v| format!("{v:.3}"));
            print!("{t:>3} {own:>W$}");
            for c in &self.cells[i] {
                let s = match c.syncs_per_commit() {
                    Some((s, r)) if self.counted && r >= 0.005 => format!("{s:.2}+{r:.2}r"),
                    Some((s, _)) if self.counted => format!("{s:.3}"),
                    _ => "-".to_string(),
                };
                print!(" {s:>W$}");
            }
            println!();
        }
        if self.names.contains(&"bwtx") {
            println!("  bwtx(stats) = stats().log_syncs / stats().commits over the timed passes");
        }

        if !self.names.contains(&"bwtx") {
            return;
        }
        let base1 = self.cell(1, "fsync-log").map(|c| c.rate);
        println!();
        println!("ratios (bwtx commits/s over the other's, same thread count):");
        let others: Vec<&str> = self.names.iter().copied().filter(|&n| n != "bwtx").collect();
        print!("{:>3}", "thr");
        for n in &others {
            print!(" {:>W$}", format!("/{n}"));
        }
        println!(" {:>14} {:>14}", "commits/sync", "of ceiling");
        for &t in &self.threads {
            let bw = self.cell(t, "bwtx").expect("bwtx measured");
            print!("{t:>3}");
            for n in &others {
                let c = self.cell(t, n).expect("measured");
                print!(" {:>W$}", format!("{:.2}x", bw.rate / c.rate.max(1e-9)));
            }
            let per_sync = bw.own.map_or("-".to_string(), |[s, c, _]| {
                format!("{:.2}", c as f64 / s.max(1) as f64)
            });
            // Group commit's ceiling: `t` commits per sync at the 1-thread
            // fsync-per-commit rate.
            let ceiling = base1.map_or("-".to_string(), |b| format!("{:.0}%", 100.0 * bw.rate / (b * t as f64)));
            println!(" {per_sync:>14} {ceiling:>14}");
        }
        if let Some(b) = base1 {
            println!(
                "  ceiling = threads x the 1-thread fsync-log rate ({}/s, i.e. one write + fdatasync ~{:.0} us): \
                 a sync covers at most one commit per committer",
                fmt_rate(b),
                1e6 / b
            );
        }
        let conflicts: Vec<String> = self
            .threads
            .iter()
            .enumerate()
            .flat_map(|(i, &t)| {
                self.names
                    .iter()
                    .zip(&self.cells[i])
                    .filter(|(_, c)| c.conflicts > 0)
                    .map(move |(n, c)| {
                        format!(
                            "{n}@{t}: {:.2}/1k",
                            c.conflicts as f64 * 1000.0 / c.commits.max(1) as f64
                        )
                    })
            })
            .collect();
        if !conflicts.is_empty() {
            println!("  conflicts retried (per 1,000 commits): {}", conflicts.join(", "));
        }
    }

    pub(crate) fn print_goals(&self) {
        let Some(&top) = self.threads.iter().max() else { return };
        let Some(bw) = self.cell(top, "bwtx") else { return };
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!();
        println!("goals ({top} committers):");
        for base in ["fsync-log", "fsync-files"] {
            if let Some(c) = self.cell(top, base) {
                let r = bw.rate / c.rate.max(1e-9);
                let judged = if base == "fsync-log" {
                    ""
                } else {
                    " (not the goal's baseline; for reference)"
                };
                println!(
                    "  bwtx >= 10x {base} (one fsync per commit): {r:.2}x [{}]{judged}",
                    if base == "fsync-log" { verdict(r >= 10.0) } else { "-" }
                );
            }
        }
        if let (Some(one), Some(c)) = (self.cell(1, "fsync-log"), self.cell(top, "fsync-log")) {
            println!(
                "  (bound: {top} committers share a sync at most {top} ways, so bwtx/fsync-log <= about {:.1}x here: \
                 {top} x the 1-thread fsync-log rate over the {top}-thread one)",
                top as f64 * one.rate / c.rate.max(1e-9)
            );
        }
        let peers: Vec<(&str, f64)> = ["fjall", "redb", "sled"]
            .iter()
            .filter_map(|&n| self.cell(top, n).map(|c| (n, bw.rate / c.rate.max(1e-9))))
            .collect();
        if !peers.is_empty() {
            let list: Vec<String> = peers.iter().map(|(n, r)| format!("{n} {r:.2}x")).collect();
            println!(
                "  bwtx ahead of every peer: {} [{}] (sled's flush is a sync_file_range, not an fsync)",
                list.join(", "),
                verdict(peers.iter().all(|&(_, r)| r > 1.0))
            );
        }
    }
}
