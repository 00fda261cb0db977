//! Measure what `Options::history_retention` costs a restart
//! (`design/mvcc.md` §11, "Restart").
//!
//! ```text
//! cargo run --release --example history_restart -- DIR [KEYS] [RETENTION_SECS] [CHURN_SECS] [RATE] [--paged]
//! ```
//!
//! Loads `KEYS` keys (default 100,000; 100-byte values) into a new database
//! in `DIR` opened with `history_retention(RETENTION_SECS)` (default 60)
//! and a checkpoint every 8 MiB of log, then updates one random key per
//! commit at about `RATE` commits a second (default 5,000) for
//! `CHURN_SECS` (default 80), and closes it. Then it opens the directory
//! three times and prints, for each, the time to open and the commits
//! replayed: with the retention (every version of the window rebuilt), and
//! without it (from the newest checkpoint), then with it again. With
//! `--paged` the database has a page store (a 1 GiB cache): it restarts
//! from its location table either way. The directory is deleted at the
//! end.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bwtx::{Durability, Options};
use bwtx_kit::SplitMix64;

fn opts(retention: u64, paged: bool) -> Options {
    let o = Options::new()
        .durability(Durability::Buffered(Duration::from_millis(10)))
        .checkpoint_bytes(8 << 20)
        .history_retention(Duration::from_secs(retention));
    if paged {
        o.cache_size(1 << 30)
    } else {
        o
    }
}

fn main() -> ExitCode {
    let paged = std::env::args().any(|a| a == "--paged");
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--paged").collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: history_restart DIR [KEYS] [RETENTION_SECS] [CHURN_SECS] [RATE] [--paged]");
        return ExitCode::FAILURE;
    };
    let num = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (keys, retention, churn, rate) = (num(1, 100_000), num(2, 60), num(3, 80), num(4, 5_000));
    match run(dir, keys, retention, churn, rate, paged) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &str, keys: u64, retention: u64, churn: u64, rate: u64, paged: bool) -> bwtx::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let value = vec![b'v'; 100];
    let key = |k: u64| format!("key{k:012}");
    {
        let db = opts(retention, paged).open(dir)?;
        for batch in 0..keys.div_ceil(1000) {
            db.transaction(|tx| (batch * 1000..keys.min((batch + 1) * 1000)).try_for_each(|k| tx.put(key(k), &value)))?;
        }
        let mut rng = SplitMix64::new(1);
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < Duration::from_secs(churn) {
            db.transaction(|tx| tx.put(key(rng.below(keys)), &value))?;
            n += 1;
            // About `rate` commits a second.
            let due = Duration::from_secs_f64(n as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let s = db.stats();
        println!(
            "churn: {n} commits in {:.1?}, {} checkpoints, read_ts {}, oldest readable {}, log segments {}",
            t0.elapsed(),
            s.checkpoints,
            s.read_ts,
            s.oldest_readable_ts,
            s.log_segments
        );
    }
    let files: Vec<String> = std::fs::read_dir(dir)
        .map_err(bwtx::Error::Io)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ckpt-"))
        .collect();
    let bytes: u64 = std::fs::read_dir(dir)
        .map_err(bwtx::Error::Io)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("on disk: {bytes} bytes, checkpoints {files:?}");
    for r in [retention, 0, retention] {
        let t0 = Instant::now();
        let db = opts(r, paged).open(dir)?;
        let opened = t0.elapsed();
        let s = db.stats();
        println!(
            "open with history_retention({r} s): {opened:.3?}, replayed {} commits, oldest readable {} of read_ts {}, live keys {}",
            s.replayed, s.oldest_readable_ts, s.read_ts, s.live_keys
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
