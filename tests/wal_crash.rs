//! The crash loop: a child process (this test binary re-invoked, running
//! `child_entry`) commits concurrent random transactions in
//! [`Durability::Sync`] mode on a real directory, reporting each
//! acknowledged commit on stdout, while it checkpoints often; the parent
//! SIGKILLs it at a random moment (sometimes right after it reports starting a
//! checkpoint, sometimes while it is still opening and recovering), reopens
//! the directory and checks what survived. The next round continues on the
//! same directory, so recoveries follow recoveries.
//!
//! The workload makes every outcome checkable:
//! - transaction `X` (id `RRRRRR.W.NNNNNN`: round, worker, number) writes
//!   `l/X = "from,to,amount,k"` and `t/X/0..k = X`, and moves `amount` from
//!   account `a/from` to `a/to`: after recovery each transaction is wholly
//!   present or wholly absent, and every acknowledged one is present;
//! - `a/i == b/i + (sum of the deltas of the present l/ records)` for every
//!   account, and the accounts sum to `ACCOUNTS * INIT`: the transfers that
//!   survived are exactly those of the transactions that survived;
//! - at start a child *purges* the transactions of rounds up to `round - 3`
//!   in one transaction (deleting their keys, folding their deltas into the
//!   `b/` bases, writing `p/<round> = keys deleted`): a large commit of
//!   deletes, present whole or absent whole;
//! - across rounds: what one recovery shows of earlier rounds, every later
//!   recovery shows unchanged (unless purged): nothing lost, nothing
//!   resurrected; commit timestamps continue, the child's recovery sees
//!   exactly what the parent's did, and acknowledged timestamps are unique.
//!
//! Kills: 60% of rounds 5-80 ms after the child reports being ready
//! (recovered, purged); 30% as soon as (or up to 3 ms after) it reports
//! starting its 1st-3rd manual checkpoint; 10% 0-30 ms after the spawn. A
//! SIGKILL keeps every byte already written (the page cache survives it), so
//! this loop checks the logic of logging, checkpointing and recovery under
//! abrupt stops and torn writes; losing unsynced data (power loss) is the job
//! of the `FaultFs` tests.
//!
//! On failure the message names the round, the seeds, the kill, what is
//! missing or wrong, and the directory, kept both after the failed recovery
//! and as the kill left it (`<dir>.killed`).
//!
//! Scale by hand: `BWTX_CRASH_ROUNDS=2000`, `BWTX_CRASH_SEED=<n>` (the
//! workload's seed; the kill moments are real time and vary anyway).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::ops::Bound::{Excluded, Included};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bwtx::{Db, Durability, Options};

const ACCOUNTS: usize = 16;
const INIT: i64 = 1000;
const WORKERS: usize = 3;
/// Commits between the child's manual checkpoints.
const CKPT_EVERY: u64 = 24;
const SEGMENT_BYTES: u64 = 2048;
const CHECKPOINT_BYTES: u64 = 8192;
/// Rounds whose data survive the purge at the start of a round.
const KEEP_ROUNDS: u64 = 3;
/// Marks the child's report lines (the test harness writes to stdout too).
const TAG: &str = "@@";

/// splitmix64: small, deterministic, good enough to pick workloads.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn options() -> Options {
    Options::new()
        .durability(Durability::Sync)
        .segment_bytes(SEGMENT_BYTES)
        .tree_config(bwtx::tree::Config::tiny())
}

fn acct(i: usize) -> String {
    format!("a/{i:02}")
}

fn base(i: usize) -> String {
    format!("b/{i:02}")
}

fn num(v: &[u8]) -> i64 {
    std::str::from_utf8(v).unwrap().parse().unwrap()
}

/// FNV-1a over every key and value: the child and the parent compare what
/// their recoveries of the same directory saw.
fn digest(kv: &BTreeMap<String, String>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (k, v) in kv {
        for b in k.bytes().chain([0]).chain(v.bytes()).chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn scan(db: &Db) -> BTreeMap<String, String> {
    db.snapshot()
        .range::<&[u8], _>(..)
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (
                String::from_utf8(k.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect()
}

/// The round a `t/` or `l/` key belongs to.
fn key_round(k: &str) -> Option<u64> {
    let rest = k.strip_prefix("t/").or_else(|| k.strip_prefix("l/"))?;
    rest.get(..6)?.parse().ok()
}

/// `l/` value: `from,to,amount,k`.
fn parse_log(v: &str) -> (usize, usize, i64, usize) {
    let p: Vec<&str> = v.split(',').collect();
    assert_eq!(p.len(), 4, "malformed l/ value {v:?}");
    (
        p[0].parse().unwrap(),
        p[1].parse().unwrap(),
        p[2].parse().unwrap(),
        p[3].parse().unwrap(),
    )
}

// ---------------------------------------------------------------- child --

/// One report line, written and flushed under the stdout lock; if the parent
/// is gone, the child exits.
fn report(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{TAG}{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(3);
    }
}

fn commit_retrying(db: &Db, mut body: impl FnMut(&mut bwtx::Transaction)) -> u64 {
    loop {
        let mut tx = db.begin();
        body(&mut tx);
        match tx.commit() {
            Ok(ts) => return ts,
            Err(e) if e.is_conflict() => std::thread::yield_now(),
            Err(e) => panic!("commit failed: {e}"),
        }
    }
}

/// The child's workload; runs until killed (or for 60 s, should the parent
/// vanish without killing it).
#[test]
fn child_entry() {
    let Ok(dir) = std::env::var("BWTX_CRASH_CHILD") else {
        return;
    };
    let round = env_u64("BWTX_CRASH_ROUND").expect("BWTX_CRASH_ROUND");
    let seed = env_u64("BWTX_CRASH_SEED").expect("BWTX_CRASH_SEED");
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(60));
        std::process::exit(4);
    });
    report(format_args!("S"));
    let db = options()
        .checkpoint_bytes(CHECKPOINT_BYTES)
        .gc_interval(Some(Duration::from_millis(5)))
        .open(&dir)
        .unwrap_or_else(|e| panic!("child open of {dir}: {e}"));
    let kv = scan(&db);
    report(format_args!("O {} {} {:x}", db.snapshot().ts(), kv.len(), digest(&kv)));

    // Create the accounts (one transaction) if no earlier round did.
    if !kv.contains_key(&acct(0)) {
        let ts = commit_retrying(&db, |tx| {
            for i in 0..ACCOUNTS {
                tx.put(acct(i), INIT.to_string()).unwrap();
                tx.put(base(i), INIT.to_string()).unwrap();
            }
        });
        report(format_args!("I {ts}"));
    }
    // Purge the rounds up to round - KEEP_ROUNDS, folding their transfers
    // into the bases.
    if round >= KEEP_ROUNDS {
        let end = round - KEEP_ROUNDS + 1;
        let mut deleted = 0u64;
        let ts = commit_retrying(&db, |tx| {
            let mut delta = [0i64; ACCOUNTS];
            let mut doomed = Vec::new();
            for kv in tx.range(&b"l/"[..]..format!("l/{end:06}").as_bytes()) {
                let (k, v) = kv.unwrap();
                let (from, to, amount, _) = parse_log(std::str::from_utf8(&v).unwrap());
                delta[from] -= amount;
                delta[to] += amount;
                doomed.push(k);
            }
            for kv in tx.range(&b"t/"[..]..format!("t/{end:06}").as_bytes()) {
                doomed.push(kv.unwrap().0);
            }
            for (i, d) in delta.into_iter().enumerate().filter(|&(_, d)| d != 0) {
                let b = num(&tx.get(base(i)).unwrap().expect("base present"));
                tx.put(base(i), (b + d).to_string()).unwrap();
            }
            deleted = doomed.len() as u64;
            for k in doomed {
                tx.delete(k).unwrap();
            }
            tx.put(format!("p/{round:06}"), deleted.to_string()).unwrap();
        });
        report(format_args!("P {deleted} {ts}"));
    }
    report(format_args!("R"));

    let commits = Arc::new(AtomicU64::new(0));
    for w in 0..WORKERS {
        let (db, commits) = (db.clone(), commits.clone());
        std::thread::spawn(move || {
            let mut rng = Rng::new(seed ^ (w as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
            for n in 0u64.. {
                let id = format!("{round:06}.{w}.{n:06}");
                let from = rng.range(0, ACCOUNTS as u64 - 1) as usize;
                let to = (from + rng.range(1, ACCOUNTS as u64 - 1) as usize) % ACCOUNTS;
                let amount = rng.range(1, 100) as i64;
                let k = rng.range(1, 4) as usize;
                let ts = commit_retrying(&db, |tx| {
                    let f = num(&tx.get(acct(from)).unwrap().unwrap());
                    let t = num(&tx.get(acct(to)).unwrap().unwrap());
                    tx.put(acct(from), (f - amount).to_string()).unwrap();
                    tx.put(acct(to), (t + amount).to_string()).unwrap();
                    tx.put(format!("l/{id}"), format!("{from},{to},{amount},{k}")).unwrap();
                    for j in 0..k {
                        tx.put(format!("t/{id}/{j}"), &id).unwrap();
                    }
                });
                report(format_args!("A {id} {ts}"));
                commits.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // Manual checkpoints every CKPT_EVERY commits (automatic ones happen
    // too, every CHECKPOINT_BYTES of log).
    let mut last = 0;
    let mut n = 0u64;
    loop {
        let c = commits.load(Ordering::Relaxed);
        if c >= last + CKPT_EVERY {
            last = c;
            n += 1;
            report(format_args!("C {n}"));
            let ts = db.checkpoint().unwrap_or_else(|e| panic!("checkpoint failed: {e}"));
            report(format_args!("D {n} {ts}"));
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

// --------------------------------------------------------------- parent --

/// How a round's child is killed.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// This long after it reports being ready (recovered, purged).
    AfterReady(Duration),
    /// This long after it reports starting its n-th manual checkpoint.
    InCheckpoint(u64, Duration),
    /// This long after it is spawned: during start-up, recovery, the purge.
    Early(Duration),
}

/// What one child reported (complete lines only: a kill can cut the last).
#[derive(Default, Debug)]
struct Report {
    started: bool,
    open: Option<(u64, usize, u64)>,
    init: Option<u64>,
    purge: Option<(u64, u64)>,
    ready: bool,
    acked: Vec<(String, u64)>,
    ckpt_started: u64,
    ckpt_done: u64,
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
fn run_child(dir: &Path, round: u64, seed: u64, kill: Kill) -> (Report, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
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
struct History {
    /// The `t/`, `l/` and `p/` keys the last recovery showed.
    model: BTreeMap<String, String>,
    /// The read timestamp the last recovery showed.
    read_ts: u64,
    /// Every acknowledged commit timestamp (unique).
    acked_ts: HashSet<u64>,
    /// Acknowledged transactions not yet purged: id -> ts.
    acked: BTreeMap<String, u64>,
    /// Key count and digest of the last recovery's whole content.
    prev_digest: Option<(usize, u64)>,
    /// Whether the accounts were ever seen.
    initialized: bool,
    // Totals for the summary.
    commits_acked: u64,
    present_unacked: u64,
    ckpt_started: u64,
    ckpt_done: u64,
    torn_tails: u64,
    replayed: u64,
    purges: u64,
    max_keys: usize,
    early_kills: u64,
    ckpt_kills: u64,
}

fn dir_listing(dir: &Path) -> String {
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
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn few<T: std::fmt::Debug>(v: &[T]) -> String {
    if v.len() <= 12 {
        format!("{v:?}")
    } else {
        format!("{:?} ... ({} in all)", &v[..12], v.len())
    }
}

/// Reopen the directory after round `round`'s kill and check everything;
/// `Err` describes what is wrong.
fn check_round(dir: &Path, round: u64, rep: &Report, h: &mut History) -> Result<(), String> {
    let db = options()
        .checkpoint_bytes(0)
        .gc_interval(None)
        .open(dir)
        .map_err(|e| format!("recovery failed: {e}"))?;
    let read_ts = db.snapshot().ts();
    let st = db.stats();
    h.torn_tails += st.torn_tails;
    h.replayed += st.replayed;
    let kv = scan(&db);
    drop(db);
    h.max_keys = h.max_keys.max(kv.len());
    let mut errs: Vec<String> = Vec::new();

    // The child's own recovery saw what the previous check saw.
    if let Some((ts, n, hash)) = rep.open {
        if ts != h.read_ts {
            errs.push(format!(
                "child recovered read_ts {ts}, the previous check saw {}",
                h.read_ts
            ));
        }
        if let Some(prev) = &h.prev_digest {
            if (n, hash) != *prev {
                errs.push(format!(
                    "child recovered {n} keys (digest {hash:x}), the previous check saw {prev:?}"
                ));
            }
        }
    }
    // Timestamps: acknowledged ones are new, unique, and recovered.
    let mut acks: Vec<(String, u64)> = rep.acked.clone();
    acks.extend(rep.init.map(|ts| ("<init>".to_string(), ts)));
    acks.extend(rep.purge.map(|(_, ts)| ("<purge>".to_string(), ts)));
    for (id, ts) in &acks {
        if *ts <= h.read_ts {
            errs.push(format!(
                "{id} acknowledged at ts {ts} <= the recovered read_ts {} it started from",
                h.read_ts
            ));
        }
        if *ts > read_ts {
            errs.push(format!(
                "{id} acknowledged at ts {ts} > the recovered read_ts {read_ts}"
            ));
        }
        if !h.acked_ts.insert(*ts) {
            errs.push(format!("ts {ts} acknowledged twice (again by {id})"));
        }
    }
    if read_ts < h.read_ts {
        errs.push(format!("read_ts went back from {} to {read_ts}", h.read_ts));
    }

    // Accounts and bases: all or none; once there, always there.
    let accts: Vec<Option<i64>> = (0..ACCOUNTS)
        .map(|i| kv.get(&acct(i)).map(|v| num(v.as_bytes())))
        .collect();
    let bases: Vec<Option<i64>> = (0..ACCOUNTS)
        .map(|i| kv.get(&base(i)).map(|v| num(v.as_bytes())))
        .collect();
    let present = accts.iter().chain(&bases).filter(|v| v.is_some()).count();
    if present != 0 && present != 2 * ACCOUNTS {
        errs.push(format!("init partly visible: accounts {accts:?} bases {bases:?}"));
    }
    if present == 0 && (h.initialized || rep.init.is_some()) {
        errs.push("the accounts vanished (or an acknowledged init is missing)".into());
    }
    h.initialized |= present != 0;

    // Transactions: each whole or absent.
    let mut delta = [0i64; ACCOUNTS];
    let mut logs: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, v) in kv.range::<str, _>((Included("l/"), Excluded("l0"))) {
        let id = &k[2..];
        let (from, to, amount, n) = parse_log(v);
        delta[from] -= amount;
        delta[to] += amount;
        logs.insert(id, n);
        let have: Vec<usize> = (0..n)
            .filter(|j| kv.get(&format!("t/{id}/{j}")).is_some_and(|x| x == id))
            .collect();
        if have.len() != n {
            errs.push(format!(
                "transaction {id} partly visible: l/ present, t/ keys {have:?} of 0..{n}"
            ));
        }
    }
    for (k, v) in kv.range::<str, _>((Included("t/"), Excluded("t0"))) {
        let id = k[2..].rsplit_once('/').map_or("", |(id, _)| id);
        let j: usize = k
            .rsplit_once('/')
            .and_then(|(_, j)| j.parse().ok())
            .unwrap_or(usize::MAX);
        if v != id || logs.get(id).is_none_or(|&n| j >= n) {
            errs.push(format!("stray key {k} = {v:?} (its l/ record: {:?})", logs.get(id)));
        }
    }
    // Balances: exactly the surviving transfers.
    if present == 2 * ACCOUNTS {
        let total: i64 = accts.iter().map(|v| v.unwrap()).sum();
        if total != ACCOUNTS as i64 * INIT {
            errs.push(format!("total {total} != {}", ACCOUNTS as i64 * INIT));
        }
        for i in 0..ACCOUNTS {
            let want = bases[i].unwrap() + delta[i];
            if accts[i] != Some(want) {
                errs.push(format!(
                    "account {i} = {:?}, but base {:?} + surviving transfers {} = {want}",
                    accts[i], bases[i], delta[i]
                ));
            }
        }
    } else if !logs.is_empty() {
        errs.push(format!("{} transactions without accounts", logs.len()));
    }

    // The purge of this round: whole or absent, and exactly what it should
    // have deleted.
    let marker = format!("p/{round:06}");
    let purged_upto = round.checked_sub(KEEP_ROUNDS);
    let purged = kv.contains_key(&marker);
    if rep.purge.is_some() && !purged {
        errs.push(format!("acknowledged purge {marker} missing"));
    }
    if purged {
        let upto = purged_upto.expect("no purge before round KEEP_ROUNDS");
        h.purges += 1;
        let expect = h
            .model
            .keys()
            .filter(|k| key_round(k).is_some_and(|r| r <= upto))
            .count();
        if kv[&marker] != expect.to_string() {
            errs.push(format!(
                "{marker} deleted {} keys, the previous check had {expect} to delete",
                kv[&marker]
            ));
        }
        if let Some(k) = kv.keys().find(|k| key_round(k).is_some_and(|r| r <= upto)) {
            errs.push(format!("purge {marker} present but {k} survives"));
        }
        h.acked.retain(|id, _| id[..6].parse::<u64>().unwrap() > upto);
    }

    // History: the keys of earlier rounds are as the previous check saw them
    // (unless purged just now); this round adds only its own keys.
    let model: BTreeMap<String, String> = kv
        .iter()
        .filter(|(k, _)| k.starts_with("t/") || k.starts_with("l/") || k.starts_with("p/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut lost = Vec::new();
    for (k, v) in &h.model {
        let gone_by_purge = purged && key_round(k).is_some_and(|r| Some(r) <= purged_upto);
        match model.get(k) {
            Some(x) if x == v => {}
            None if gone_by_purge => {}
            x => lost.push(format!("{k}: was {v:?}, now {x:?}")),
        }
    }
    if !lost.is_empty() {
        errs.push(format!("earlier rounds' data changed: {}", few(&lost)));
    }
    let new: Vec<&String> = model
        .keys()
        .filter(|k| !h.model.contains_key(*k) && key_round(k).map_or(**k != marker, |r| r != round))
        .collect();
    if !new.is_empty() {
        errs.push(format!("keys of earlier rounds appeared: {}", few(&new)));
    }

    // Every acknowledged transaction is present.
    for (id, ts) in &rep.acked {
        h.acked.insert(id.clone(), *ts);
    }
    let missing: Vec<String> = h
        .acked
        .iter()
        .filter(|(id, _)| !logs.contains_key(id.as_str()))
        .map(|(id, ts)| format!("{id}@{ts}"))
        .collect();
    if !missing.is_empty() {
        errs.push(format!("acknowledged transactions missing: {}", few(&missing)));
    }
    let round_prefix = format!("{round:06}.");
    let acked_now: BTreeSet<&str> = rep.acked.iter().map(|(id, _)| id.as_str()).collect();
    h.present_unacked += logs
        .keys()
        .filter(|id| id.starts_with(&round_prefix) && !acked_now.contains(*id))
        .count() as u64;
    h.commits_acked += rep.acked.len() as u64;
    h.ckpt_started += rep.ckpt_started;
    h.ckpt_done += rep.ckpt_done;

    h.model = model;
    h.read_ts = read_ts;
    h.prev_digest = Some((kv.len(), digest(&kv)));
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n"))
    }
}

#[test]
fn crash_loop() {
    if std::env::var_os("BWTX_CRASH_CHILD").is_some() {
        return;
    }
    let rounds = env_u64("BWTX_CRASH_ROUNDS").unwrap_or(50);
    let seed = env_u64("BWTX_CRASH_SEED").unwrap_or(0x5EED);
    let dir: PathBuf = std::env::temp_dir().join(format!("bwtx-crash-{}", std::process::id()));
    let pre = dir.with_extension("killed");
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let mut h = History::default();
    for round in 0..rounds {
        let round_seed = Rng::new(seed ^ round.wrapping_mul(0xD1B5_4A32_D192_ED03)).next();
        let mut rng = Rng::new(round_seed);
        let kill = match rng.range(0, 9) {
            0 => {
                h.early_kills += 1;
                Kill::Early(Duration::from_millis(rng.range(0, 30)))
            }
            1..=3 => {
                h.ckpt_kills += 1;
                let after = if rng.range(0, 1) == 0 { 0 } else { rng.range(0, 3000) };
                Kill::InCheckpoint(rng.range(1, 3), Duration::from_micros(after))
            }
            _ => Kill::AfterReady(Duration::from_millis(rng.range(5, 80))),
        };
        let (rep, stderr) = run_child(&dir, round, round_seed, kill);
        // What the kill left, before any recovery touches it (kept on failure).
        copy_dir(&dir, &pre);
        if let Err(e) = check_round(&dir, round, &rep, &mut h) {
            panic!(
                "crash loop failed in round {round} (base seed {seed}, round seed {round_seed}, kill {kill:?}); \
                 directory kept at {} (as the kill left it: {})\n{e}\nfiles (after recovery):\n{}\nchild report: started {} open {:?} init {:?} purge {:?} \
                 ready {} acked {} (last {:?}) checkpoints started {} done {}\nchild stderr:\n{stderr}",
                dir.display(),
                pre.display(),
                dir_listing(&dir),
                rep.started,
                rep.open,
                rep.init,
                rep.purge,
                rep.ready,
                rep.acked.len(),
                rep.acked.last(),
                rep.ckpt_started,
                rep.ckpt_done,
            );
        }
    }
    // A last recovery, with nothing new: the whole history again.
    check_round(&dir, rounds, &Report::default(), &mut h).unwrap_or_else(|e| {
        panic!(
            "final check failed (base seed {seed}); directory kept at {}\n{e}",
            dir.display()
        )
    });
    println!(
        "crash loop: {rounds} rounds in {:.1?} (base seed {seed}): {} commits acknowledged, {} present though \
         unacknowledged, {} manual checkpoints started / {} finished, {} purges, {} torn tails, {} commits \
         replayed, {} keys at most, read_ts {}; kills: {} early, {} in a checkpoint",
        started.elapsed(),
        h.commits_acked,
        h.present_unacked,
        h.ckpt_started,
        h.ckpt_done,
        h.purges,
        h.torn_tails,
        h.replayed,
        h.max_keys,
        h.read_ts,
        h.early_kills,
        h.ckpt_kills,
    );
    assert!(h.commits_acked > 0, "no commit was ever acknowledged");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&pre).unwrap();
}
