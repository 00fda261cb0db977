//! The parent's side of a round: spawn the child, kill it as planned,
//! collect its reports, and the history of what earlier rounds showed.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::workload::TAG;

/// How a round's child is killed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kill {
    /// This long after it reports being ready (recovered, purged).
    AfterReady(Duration),
    /// This long after it reports starting its n-th manual checkpoint.
    InCheckpoint(u64, Duration),
    /// This long after it is spawned: during start-up, recovery, the purge.
    Early(Duration),
}

/// What one child reported (complete lines only: a kill can cut the last).
#[derive(Default, Debug)]
pub(crate) struct Report {
    pub(crate) started: bool,
    pub(crate) open: Option<(u64, usize, u64)>,
    pub(crate) init: Option<u64>,
    pub(crate) purge: Option<(u64, u64)>,
    pub(crate) ready: bool,
    pub(crate) acked: Vec<(String, u64)>,
    pub(crate) ckpt_started: u64,
    pub(crate) ckpt_done: u64,
}

impl Report {
    fn apply(&mut self, line: &str) {
        let Some(at) = line.find(TAG) else { return };
        let f: Vec<&str> = line[at + TAG.len()..].split_whitespace().collect();
        match f.as_slice() {
            ["S"] => self.started = true,
            ["O", ts, n, h] => {
                self.open = Some((
                    ts.parse().unwrap(),
                    n.parse().unwrap(),
                    u64::from_str_radix(h, 16).unwrap(),
                ))
            }
            ["I", ts] => self.init = Some(ts.parse().unwrap()),
            ["P", n, ts] => self.purge = Some((n.parse().unwrap(), ts.parse().unwrap())),
            ["R"] => self.ready = true,
            ["A", id, ts] => self.acked.push((id.to_string(), ts.parse().unwrap())),
            ["C", _] => self.ckpt_started += 1,
            ["D", _, _] => self.ckpt_done += 1,
            _ => panic!("unexpected report line {line:?}"),
        }
    }
}

/// Runs one child and kills it as `kill` says; returns its report and stderr.
pub(crate) fn run_child(dir: &Path, round: u64, seed: u64, kill: Kill, cache: Option<u64>) -> (Report, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    if let Some(c) = cache {
        cmd.env("BWTX_CRASH_CACHE", c.to_string());
    }
    let mut child = cmd
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env("BWTX_CRASH_CHILD", dir)
        .env("BWTX_CRASH_ROUND", round.to_string())
        .env("BWTX_CRASH_SEED", seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let spawned = Instant::now();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdout.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                // A line cut by the kill is no report.
                Ok(_) if line.last() != Some(&b'\n') => return,
                Ok(_) => {
                    if tx.send(String::from_utf8_lossy(&line).into_owned()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut rep = Report::default();
    // Receive lines until `until` holds or `deadline` passes; false if the
    // child's stdout closed first.
    let pump = |rep: &mut Report, deadline: Instant, until: &dyn Fn(&Report) -> bool| -> bool {
        while !until(rep) {
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            match rx.recv_timeout(deadline - now) {
                Ok(l) => rep.apply(&l),
                Err(mpsc::RecvTimeoutError::Timeout) => return true,
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            }
        }
        true
    };
    let patience = Duration::from_secs(20);
    let alive = match kill {
        Kill::Early(d) => pump(&mut rep, spawned + d, &|_| false),
        Kill::AfterReady(d) => {
            pump(&mut rep, spawned + patience, &|r| r.ready) && {
                let t = Instant::now() + d;
                pump(&mut rep, t, &|_| false)
            }
        }
        Kill::InCheckpoint(n, d) => {
            pump(&mut rep, spawned + patience, &|r| r.ckpt_started >= n) && {
                let t = Instant::now() + d;
                pump(&mut rep, t, &|_| false)
            }
        }
    };
    let _ = child.kill();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    for l in rx.try_iter() {
        rep.apply(&l);
    }
    let err = err_reader.join().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(
        alive && status.signal() == Some(9),
        "round {round} (seed {seed}): the child ended by itself ({status}) before the kill ({kill:?})\n\
         report: {rep:?}\nstderr:\n{err}"
    );
    (rep, err)
}

/// What the parent knows across rounds.
#[derive(Default)]
pub(crate) struct History {
    /// The `t/`, `l/` and `p/` keys the last recovery showed.
    pub(crate) model: BTreeMap<String, String>,
    /// The read timestamp the last recovery showed.
    pub(crate) read_ts: u64,
    /// Every acknowledged commit timestamp (unique).
    pub(crate) acked_ts: HashSet<u64>,
    /// Acknowledged transactions not yet purged: id -> ts.
    pub(crate) acked: BTreeMap<String, u64>,
    /// Key count and digest of the last recovery's whole content.
    pub(crate) prev_digest: Option<(usize, u64)>,
    /// Whether the accounts were ever seen.
    pub(crate) initialized: bool,
    // Totals for the summary.
    pub(crate) commits_acked: u64,
    pub(crate) present_unacked: u64,
    pub(crate) ckpt_started: u64,
    pub(crate) ckpt_done: u64,
    pub(crate) torn_tails: u64,
    pub(crate) replayed: u64,
    pub(crate) purges: u64,
    pub(crate) max_keys: usize,
    pub(crate) early_kills: u64,
    pub(crate) ckpt_kills: u64,
}

pub(crate) fn dir_listing(dir: &Path) -> String {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                    format!("  {} ({len} bytes)", e.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.join("\n")
}

/// Replace `to` with a copy of the files in `from`.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

pub(crate) fn few<T: std::fmt::Debug>(v: &[T]) -> String {
    if v.len() <= 12 {
        format!("{v:?}")
    } else {
        format!("{:?} ... ({} in all)", &v[..12], v.len())
    }
}
