//! Time a restart: open a database directory and serve the first read.
//!
//! ```text
//! cargo run --release --example restart -- DIR [CACHE_BYTES] [--update-1pct]
//! ```
//!
//! Prints the time from the call to `Options::open` until it returns, then
//! until the first key (a one-key scan from the start) and a point read of
//! it return, and the recovery counters: commits replayed from the log and
//! pages read (`cache_misses`) at open and after the first read. A database
//! whose newest checkpoint is a location table opens with its page store
//! (no budget unless `CACHE_BYTES` is given).
//!
//! With `--update-1pct`: then read every key (the data size is the sum of
//! key and value lengths), update 1% of the keys chosen uniformly at random
//! and checkpoint, then 1% in one contiguous key range and checkpoint, and
//! print the bytes each checkpoint wrote (`Stats::checkpoint_bytes`).
//!
//! With `--updates N` (a database of `bwtx bench`'s keys): right after the
//! first read, `N` transactions of one update each of a key chosen
//! uniformly (one thread), before anything else is read: writes to leaves
//! restored from the location table. Prints their rate and what they cost
//! in fault-ins, blind writes and key-set reads (`design/storage.md` §5.5).

use std::process::ExitCode;
use std::time::Instant;

use bwtx::Options;

fn main() -> ExitCode {
    let update = std::env::args().any(|a| a == "--update-1pct");
    let all: Vec<String> = std::env::args().skip(1).collect();
    let updates = match all.iter().position(|a| a == "--updates") {
        Some(i) => match all.get(i + 1).map(|n| n.parse::<u64>()) {
            Some(Ok(n)) => Some(n),
            _ => {
                eprintln!("--updates takes a count");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let mut args = all
        .iter()
        .enumerate()
        .filter(|&(i, a)| a != "--update-1pct" && a != "--updates" && (i == 0 || all[i - 1] != "--updates"))
        .map(|(_, a)| a.clone());
    let Some(dir) = args.next() else {
        eprintln!("usage: restart DIR [CACHE_BYTES]");
        return ExitCode::FAILURE;
    };
    let mut opts = Options::new();
    if let Some(c) = args.next() {
        match c.parse() {
            Ok(c) => opts = opts.cache_size(c),
            Err(e) => {
                eprintln!("CACHE_BYTES: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let t0 = Instant::now();
    let db = match opts.open(&dir) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("open {dir}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opened = t0.elapsed();
    let at_open = db.stats();
    let snap = db.snapshot();
    let first = snap.range::<&[u8], _>(..).next().map(|kv| kv.map(|(k, _)| k));
    let key = match first {
        Some(Ok(k)) => k,
        Some(Err(e)) => {
            eprintln!("first read: {e}");
            return ExitCode::FAILURE;
        }
        None => {
            println!("open {opened:.3?}; the database is empty");
            return ExitCode::SUCCESS;
        }
    };
    let got = snap.get(&key);
    let first_read = t0.elapsed();
    if let Err(e) = got {
        eprintln!("get: {e}");
        return ExitCode::FAILURE;
    }
    let after = db.stats();
    println!(
        "open {opened:.3?}, open to first read {first_read:.3?}; replayed {} commits, pages read at open {}, \
         after the first read {}; read_ts {}, resident bytes {}",
        at_open.replayed, at_open.cache_misses, after.cache_misses, at_open.read_ts, after.resident_bytes
    );
    drop(snap);
    if let Some(n) = updates {
        if let Err(e) = restored_updates(&db, n) {
            eprintln!("updates: {e}");
            return ExitCode::FAILURE;
        }
    }
    if update {
        if let Err(e) = update_1pct(&db) {
            eprintln!("update: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Update 1% of the keys (uniformly, then one range) and checkpoint after each.
fn update_1pct(db: &bwtx::Db) -> bwtx::Result<()> {
    let t = Instant::now();
    let mut keys = Vec::new();
    let mut data = 0u64;
    for kv in db.snapshot().range::<&[u8], _>(..) {
        let (k, v) = kv?;
        data += (k.len() + v.len()) as u64;
        keys.push(k);
    }
    println!(
        "read {} keys ({data} bytes of keys and values) in {:.1?}",
        keys.len(),
        t.elapsed()
    );
    let n = keys.len() / 100;
    let mut rng = bwtx_kit::rng::SplitMix64::new(7);
    let uniform: Vec<_> = (0..n)
        .map(|_| keys[rng.below(keys.len() as u64) as usize].clone())
        .collect();
    let start = keys.len() / 3;
    let range: Vec<_> = keys[start..start + n].to_vec();
    for (what, chosen) in [("uniform random", uniform), ("one key range", range)] {
        for chunk in chosen.chunks(1000) {
            db.transaction(|tx| {
                for k in chunk {
                    tx.put(k, b"updated value for the 1% checkpoint measurement")?;
                }
                Ok(())
            })?;
        }
        let before = db.stats().checkpoint_bytes;
        let t = Instant::now();
        db.checkpoint()?;
        let wrote = db.stats().checkpoint_bytes - before;
        println!(
            "1% of the keys updated ({what}): the checkpoint wrote {wrote} bytes = {:.1}% of the data, in {:.1?}",
            100.0 * wrote as f64 / data as f64,
            t.elapsed()
        );
    }
    Ok(())
}

/// `n` single-key updates of uniformly chosen keys of `bwtx bench`'s key
/// space, right after opening: what writes to restored leaves cost.
fn restored_updates(db: &bwtx::Db, n: u64) -> bwtx::Result<()> {
    let keys = db.stats().live_keys.max(1);
    let mut rng = bwtx_kit::rng::SplitMix64::new(11);
    let before = db.stats();
    let t = Instant::now();
    for _ in 0..n {
        let k = bwtx_kit::ycsb::key(rng.below(keys));
        db.transaction(|tx| tx.put(&k[..], [b'u'; 100]))?;
    }
    let took = t.elapsed();
    let after = db.stats();
    println!(
        "{n} single-key updates of {keys} keys after the open in {took:.2?} ({:.0}/s): {} fault-ins, {} blind writes, \
         {} key-set reads, {} evictions",
        n as f64 / took.as_secs_f64(),
        after.cache_misses - before.cache_misses,
        after.blind_writes - before.blind_writes,
        after.key_set_reads - before.key_set_reads,
        after.evictions - before.evictions,
    );
    Ok(())
}
