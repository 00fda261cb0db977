//! Measure the page store's space amplification and run the segment
//! cleaner on a database directory (`design/storage.md` §9):
//!
//! ```text
//! cargo run --release --example clean -- DIR [CACHE_BYTES]
//! ```
//!
//! Opens `DIR` with `Options::cache_size` (default 16 MiB), prints the page
//! segments' bytes, runs [`bwtx::Db::clean_now`] (relocate, checkpoint,
//! recount), and prints the bytes, the live bytes and their ratio after it.

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: clean DIR [CACHE_BYTES]");
        return ExitCode::FAILURE;
    };
    let cache = match args.next().map(|c| c.parse::<u64>()) {
        None => 16 << 20,
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            eprintln!("bad cache size: {e}");
            return ExitCode::FAILURE;
        }
    };
    let db = match bwtx::Options::new().cache_size(cache).open(&dir) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("open {dir}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let before = db.stats();
    println!(
        "before: {} page segments, {} bytes",
        before.page_segments, before.page_disk_bytes
    );
    let t = Instant::now();
    match db.clean_now() {
        Ok(moved) => {
            let s = db.stats();
            println!(
                "cleaned in {:.2} s: {moved} pages relocated, {} segments cleaned; now {} page segments, \
                 {} bytes, {} live bytes, space amplification {:.3}",
                t.elapsed().as_secs_f64(),
                s.segments_cleaned,
                s.page_segments,
                s.page_disk_bytes,
                s.page_live_bytes,
                s.page_space_amplification().unwrap_or(f64::NAN)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clean: {e}");
            ExitCode::FAILURE
        }
    }
}
