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

use std::process::ExitCode;
use std::time::Instant;

use bwtx::Options;

fn main() -> ExitCode {
    let update = std::env::args().any(|a| a == "--update-1pct");
    let mut args = std::env::args().skip(1).filter(|a| a != "--update-1pct");
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
