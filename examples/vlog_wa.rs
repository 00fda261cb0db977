//! Write amplification with and without the value log (issue 11's value-log
//! goal, `design/storage.md` §10).
//!
//! ```text
//! cargo run --release --example vlog_wa -- DIR THRESHOLD [KEYS] [UPDATES] [VALUE_BYTES] [CACHE_BYTES] [SEGMENT_BYTES]
//! ```
//!
//! Loads `KEYS` keys (default 10,000) with `VALUE_BYTES`-byte values
//! (default 4,096) into a fresh database at `DIR` with a `CACHE_BYTES` cache
//! (default 4 MiB) and `Options::value_log_threshold(THRESHOLD)` (`max` =
//! off), checkpoints, then makes `UPDATES` (default 10,000) single-key
//! updates of keys drawn uniformly at random, with a checkpoint every
//! quarter of them and one at the end (buffered durability). Prints, for the
//! update phase, the user bytes (key + value per update), the bytes the
//! process wrote to disk (`/proc/self/io` `write_bytes`) and the engine's
//! page and value-log counters, each divided by the user bytes; then times
//! as many uniform point reads (each fault-in reads the image and, with the
//! value log, every value it references). Last, the value log's space
//! amplification (its segment files' bytes over the live value records'
//! bytes, one per key) after the updates, and after the reads (the log
//! thread cleans in the background meanwhile) and `Db::clean_now` (the
//! value log's cleaner run to the end, `design/storage.md` §10). Segments
//! are `SEGMENT_BYTES` (default 64 MiB) long.

use std::process::ExitCode;
use std::time::Duration;

use bwtx::{Durability, Options};
use bwtx_kit::SplitMix64;

/// `write_bytes` of `/proc/self/io` (0 where there is none).
fn disk_writes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("write_bytes: ").and_then(|n| n.trim().parse().ok()))
        })
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(threshold)) = (args.first(), args.get(1)) else {
        eprintln!("usage: vlog_wa DIR THRESHOLD|max [KEYS] [UPDATES] [VALUE_BYTES] [CACHE_BYTES] [SEGMENT_BYTES]");
        return ExitCode::FAILURE;
    };
    let threshold = if threshold == "max" {
        u64::MAX
    } else {
        threshold.parse().expect("THRESHOLD")
    };
    let num = |i: usize, d: u64| args.get(i).map_or(d, |a| a.parse().expect("a number"));
    let (keys, updates, vlen, cache) = (num(2, 10_000), num(3, 10_000), num(4, 4_096), num(5, 4 << 20));
    let segment_bytes = num(6, 64 << 20);
    let _ = std::fs::remove_dir_all(dir);
    let db = Options::new()
        .durability(Durability::Buffered(Duration::from_millis(10)))
        .cache_size(cache)
        .value_log_threshold(threshold)
        .checkpoint_bytes(0)
        .segment_bytes(segment_bytes)
        .open(dir)
        .expect("open");
    let value = |k: u64, round: u64| {
        let mut v = format!("{round}-{k}-").into_bytes();
        v.resize(vlen as usize, b'a' + (k % 26) as u8);
        v
    };
    let key = |k: u64| format!("key{k:010}");
    for chunk in (0..keys).collect::<Vec<_>>().chunks(100) {
        let mut tx = db.begin();
        for &k in chunk {
            tx.put(key(k), value(k, 0)).expect("put");
        }
        tx.commit().expect("commit");
    }
    db.checkpoint().expect("checkpoint");
    let (s0, d0) = (db.stats(), disk_writes());
    let mut rng = SplitMix64::new(7);
    let mut user = 0u64;
    for i in 0..updates {
        let k = rng.below(keys);
        let v = value(k, i + 1);
        user += (key(k).len() + v.len()) as u64;
        let mut tx = db.begin();
        tx.put(key(k), v).expect("put");
        tx.commit().expect("commit");
        if (i + 1) % (updates / 4).max(1) == 0 {
            db.checkpoint().expect("checkpoint");
        }
    }
    db.checkpoint().expect("checkpoint");
    // Space: one live value record per key (40-byte header, then ts,
    // lengths, key and value, padded to 8).
    let live = keys * (40 + (16 + key(0).len() as u64 + vlen).div_ceil(8) * 8);
    let space = |what: &str, s: &bwtx::Stats| {
        println!(
            "value log {what}: {} B in {} segments, {:.2} x the {live} B of live values; \
             {} segments cleaned, {} B relocated, {} pages rewritten",
            s.value_log_bytes,
            s.value_log_segments,
            s.value_log_bytes as f64 / live as f64,
            s.value_log_segments_cleaned,
            s.value_log_bytes_relocated,
            s.value_log_pages_rewritten
        )
    };
    let (s1, d1) = (db.stats(), disk_writes());
    space("after the updates", &s1);
    let pages = s1.page_bytes_written - s0.page_bytes_written;
    let vlog = s1.value_log_bytes_written - s0.value_log_bytes_written;
    let disk = d1 - d0;
    let r = |b: u64| b as f64 / user as f64;
    println!(
        "threshold {}: {keys} keys x {vlen} B, {updates} uniform updates, cache {cache} B",
        if threshold == u64::MAX {
            "off".to_string()
        } else {
            threshold.to_string()
        }
    );
    println!("user bytes {user}");
    println!("disk write_bytes {disk} ({:.2} per user byte)", r(disk));
    println!(
        "page bytes {pages} ({:.2}), value-log bytes {vlog} ({:.2})",
        r(pages),
        r(vlog)
    );
    println!(
        "value log now {} B in {} segments, garbage {} B, {} segments deleted; evictions {}",
        s1.value_log_bytes,
        s1.value_log_segments,
        s1.value_log_garbage_bytes,
        s1.value_log_segments_deleted,
        s1.evictions - s0.evictions
    );
    // Reads: as many uniform point reads as updates, timed (a fault-in reads
    // the image and, with the value log, each referenced value).
    let (m0, t0) = (db.stats().cache_misses, std::time::Instant::now());
    for _ in 0..updates {
        let k = rng.below(keys);
        assert!(db.snapshot().get(key(k)).expect("get").is_some());
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "reads: {updates} uniform gets in {secs:.2} s ({:.0}/s), {} cache misses",
        updates as f64 / secs,
        db.stats().cache_misses - m0
    );
    let t0 = std::time::Instant::now();
    db.clean_now().expect("clean");
    println!("clean_now: {:.2} s", t0.elapsed().as_secs_f64());
    space("after the reads and clean_now", &db.stats());
    ExitCode::SUCCESS
}
