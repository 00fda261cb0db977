//! The child: recover, purge old rounds, then commit concurrent random
//! transfers from several workers and checkpoint often, reporting every
//! acknowledged commit, until killed.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bwtx::Db;
use bwtx_kit::env;

use crate::workload::{
    acct, base, digest, num, options, parse_log, range, rng, scan, ACCOUNTS, CHECKPOINT_BYTES, CKPT_EVERY, INIT,
    KEEP_ROUNDS, TAG, WORKERS,
};

/// One report line, written and flushed under the stdout lock; if the parent
/// is gone, the child exits.
pub(crate) fn report(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{TAG}{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(3);
    }
}

pub(crate) fn commit_retrying(db: &Db, mut body: impl FnMut(&mut bwtx::Transaction)) -> u64 {
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

/// The child's workload (the `child_entry` test): runs until killed (or for
/// 60 s, should the parent vanish without killing it); does nothing unless
/// `BWTX_CRASH_CHILD` names its directory.
pub(crate) fn entry() {
    let Ok(dir) = std::env::var("BWTX_CRASH_CHILD") else {
        return;
    };
    let round = env::parse::<u64>("BWTX_CRASH_ROUND").expect("BWTX_CRASH_ROUND");
    let seed = env::parse::<u64>("BWTX_CRASH_SEED").expect("BWTX_CRASH_SEED");
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(60));
        std::process::exit(4);
    });
    report(format_args!("S"));
    let cache = env::parse::<u64>("BWTX_CRASH_CACHE");
    let db = options(cache)
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
    // Every transfer's log record is mirrored in keyspace "mirror" by the
    // same transaction (created durably here by the first round; on the
    // paged loop its tree pages too): after recovery both hold the same
    // records.
    let mirror = Some(db.keyspace("mirror").expect("keyspace mirror"));
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
            if let Some(m) = &mirror {
                for k in doomed.iter().filter(|k| k.starts_with(b"l/")) {
                    tx.delete_in(m, k).unwrap();
                }
            }
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
        let (db, commits, mirror) = (db.clone(), commits.clone(), mirror.clone());
        std::thread::spawn(move || {
            let mut rng = rng(seed ^ (w as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
            for n in 0u64.. {
                let id = format!("{round:06}.{w}.{n:06}");
                let from = range(&mut rng, 0, ACCOUNTS as u64 - 1) as usize;
                let to = (from + range(&mut rng, 1, ACCOUNTS as u64 - 1) as usize) % ACCOUNTS;
                let amount = range(&mut rng, 1, 100) as i64;
                let k = range(&mut rng, 1, 4) as usize;
                let ts = commit_retrying(&db, |tx| {
                    let f = num(&tx.get(acct(from)).unwrap().unwrap());
                    let t = num(&tx.get(acct(to)).unwrap().unwrap());
                    tx.put(acct(from), (f - amount).to_string()).unwrap();
                    tx.put(acct(to), (t + amount).to_string()).unwrap();
                    tx.put(format!("l/{id}"), format!("{from},{to},{amount},{k}")).unwrap();
                    if let Some(m) = &mirror {
                        tx.put_in(m, format!("l/{id}"), format!("{from},{to},{amount},{k}"))
                            .unwrap();
                    }
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
