//! Time a restart: open a database directory and serve the first read.
//!
//! ```text
//! cargo run --release --example restart -- DIR [CACHE_BYTES]
//! ```
//!
//! Prints the time from the call to `Options::open` until it returns, then
//! until the first key (a one-key scan from the start) and a point read of
//! it return, and the recovery counters: commits replayed from the log and
//! pages read (`cache_misses`) at open and after the first read. A database
//! whose newest checkpoint is a location table opens with its page store
//! (no budget unless `CACHE_BYTES` is given).

use std::process::ExitCode;
use std::time::Instant;

use bwtx::Options;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
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
    ExitCode::SUCCESS
}
