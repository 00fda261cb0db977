//! `bwtx check PATH`: verify a database directory's log segments,
//! checkpoints and page store offline, without changing them, then every
//! keyspace: a full scan of each, whose count must equal the count the
//! database keeps.
//!
//! The library recovers a directory by reading the newest checkpoint and
//! replaying the log; recovery reports any damage as `Error::Corruption`
//! (and truncates a torn tail). To stay read-only, recovery runs on a
//! copy-on-write view of the directory ([`overlay`]): it reads the files in
//! place, and its writes stay in memory. A paged database is opened with a
//! [`CHECK_CACHE`] budget, so the check's memory does not grow with the
//! data. The directory's lock is held throughout. Then:
//! - every checkpoint and history file kept must parse and checksum
//!   (`bwtx::check::verify_checkpoint`), not only those the open reads;
//! - every record of every page and value-log segment must frame and
//!   checksum correctly (`bwtx::check::verify_segment`; a torn tail, what a
//!   crash in an unsynced append leaves, is reported, not damage);
//! - reading every key faults in every leaf the newest location table
//!   names: each chain part is read and checked (its kind, page id, `prev`
//!   strictly backwards, chain length) and each value-log reference is
//!   read and checked against its value record.
//!
//! Damage is reported with the file and offset, exit status [`CORRUPT`]
//! (3). A database that could not be checked (held open by another
//! process, not a directory, an I/O error) is exit status 1; bad arguments
//! are clap's 2; a sound database is 0.

use std::path::Path;
use std::sync::Arc;

use bwtx::{Durability, Error, Options};

mod overlay;

use overlay::OverlayFs;

/// The page cache of a check's open of a paged database: the scan faults
/// in every leaf, and the budget lets it evict them again (clean leaves
/// cost no write), so that a database larger than memory can be checked.
const CHECK_CACHE: u64 = 64 << 20;

/// Exit status when damage was found: not 2, which clap gives a usage
/// error, so that a script can tell damage from a mistyped command.
pub const CORRUPT: i32 = 3;

/// Check `dir`; returns the exit status.
pub fn run(dir: &Path) -> i32 {
    // Without a lock file nothing keeps another process out: the check's
    // verdict, clean or damaged, stands only if the directory did not
    // change under it.
    let unlocked = dir.is_dir() && !dir.join("LOCK").exists();
    let before = unlocked.then(|| listing(dir).ok()).flatten();
    let verdict = check(dir);
    if let Some(before) = before {
        if listing(dir).ok().as_ref() != Some(&before) {
            eprintln!(
                "error: {} changed while it was being checked (it has no LOCK file to hold): check it again closed",
                dir.display()
            );
            return 1;
        }
    }
    match verdict {
        Ok(summary) => {
            print!("{summary}");
            0
        }
        Err((code, msg)) => {
            eprintln!("{msg}");
            code
        }
    }
}

fn check(dir: &Path) -> Result<String, (i32, String)> {
    let io = |what: &str, e: std::io::Error| (1, format!("error: {what}: {e}"));
    let meta = std::fs::metadata(dir).map_err(|e| io(&dir.display().to_string(), e))?;
    if !meta.is_dir() {
        return Err((1, format!("error: {} is not a directory", dir.display())));
    }
    // The directory lock, held for the whole check: a database open in
    // another process changes the files meanwhile (a checkpoint deletes log
    // segments), and they would look damaged. Taken only if the lock file
    // is there (a database that ran has one), so that the check writes
    // nothing.
    let lock = match std::fs::File::open(dir.join("LOCK")) {
        Ok(f) => match f.try_lock() {
            Ok(()) => Some(f),
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err((
                    1,
                    format!(
                        "error: {} is in use by another process (its LOCK is held): close it first",
                        dir.display()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("LOCK", e)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("LOCK", e)),
    };
    let (mut segments, mut checkpoints, mut bytes) = (0u64, 0u64, 0u64);
    let (mut page_segs, mut vlog_segs, mut records) = (0u64, 0u64, 0u64);
    let mut torn_segs: Vec<String> = Vec::new();
    let mut newest_ckpt: Option<u64> = None;
    let mut names: Vec<String> = Vec::new();
    let listed = listing(dir).map_err(|e| io(&dir.display().to_string(), e))?;
    // The newest page and value-log segments: the only ones a failed sync
    // can have left bytes in the cache that the device lacks.
    let newest_segs: Vec<&str> = ["pages-", "vlog-"]
        .iter()
        .filter_map(|p| {
            listed
                .iter()
                .map(|(n, _, _)| n.as_str())
                .filter(|n| n.starts_with(p) && n.ends_with(".seg"))
                .max()
        })
        .collect();
    for (name, len, _) in &listed {
        let path = dir.join(name);
        bytes += len;
        names.push(name.clone());
        if name.starts_with("wal-") && name.ends_with(".log") {
            segments += 1;
        } else if let Some(ts) = bwtx::check::checkpoint_ts(name) {
            checkpoints += 1;
            newest_ckpt = newest_ckpt.max(Some(ts));
        }
        // Only the files verified here are read (one at a time, each
        // whole): the log is read by the open, anything else not at all.
        if !(name.ends_with(".seg") || name.ends_with(".ckpt") || name.ends_with(".hist")) {
            continue;
        }
        if newest_segs.contains(&name.as_str()) {
            // What the device holds, as the open reads a store's newest
            // segment (`Fs::drop_cache`): after a failed fsync, its cache
            // may hold bytes that never reached the disk.
            bwtx::fs::Fs::drop_cache(&bwtx::fs::StdFs, &path).map_err(|e| io(&path.display().to_string(), e))?;
        }
        let data = std::fs::read(&path).map_err(|e| io(&path.display().to_string(), e))?;
        match bwtx::check::verify_segment(&path, &data) {
            None => {}
            Some(Err(e)) => return Err(corrupt(e)),
            Some(Ok(s)) => {
                *if s.value_log { &mut vlog_segs } else { &mut page_segs } += 1;
                records += s.records;
                if let Some((offset, reason)) = s.torn_tail {
                    torn_segs.push(format!("{name} at offset {offset} ({reason})"));
                }
            }
        }
        // Every checkpoint and history file kept, not only those the open
        // reads (older ones kept for `history_retention`).
        if let Some(Err(e)) = bwtx::check::verify_checkpoint(&path, &data) {
            return Err(corrupt(e));
        }
    }
    if segments == 0 && checkpoints == 0 {
        // Page, value-log or history files without a log or a checkpoint:
        // a database whose other files were lost, not a stranger's directory.
        // (Segments with records only: an open that failed or crashed
        // before creating its log segment leaves header-only ones, and
        // such a directory opens.)
        if records > 0 || names.iter().any(|n| n.starts_with("hist-") && n.ends_with(".hist")) {
            return Err((
                CORRUPT,
                format!(
                    "CORRUPT: {} holds page, value-log or history files but no log segment or checkpoint: files are missing",
                    dir.display()
                ),
            ));
        }
        return Err((
            1,
            format!("error: {} holds no log segment or checkpoint", dir.display()),
        ));
    }

    // Opened through a copy-on-write view: the files are read in place, and
    // what the open writes (recovery's cut of a torn tail, a new log
    // segment, the close's checkpoint) stays in memory.
    let mut opts = Options::new()
        .file_system(Arc::new(OverlayFs::default()))
        .durability(Durability::None)
        .gc_interval(None);
    if page_segs + vlog_segs > 0 {
        opts = opts.cache_size(CHECK_CACHE);
    }
    let db = opts.open(dir).map_err(corrupt)?;
    let s = db.stats();
    let mut out = String::new();
    out.push_str(&format!("{}: clean\n", dir.display()));
    out.push_str(&format!(
        "  files: {segments} log segment(s), {checkpoints} checkpoint(s), {bytes} bytes\n"
    ));
    match newest_ckpt {
        Some(ts) => out.push_str(&format!("  newest checkpoint: ts {ts}\n")),
        None => out.push_str("  checkpoint: none\n"),
    }
    out.push_str(&format!("  commits replayed from the log: {}\n", s.replayed));
    out.push_str(&format!(
        "  torn tails: {}{}\n",
        s.torn_tails,
        if s.torn_tails > 0 {
            " (an interrupted last write; recovery will truncate it)"
        } else {
            ""
        }
    ));
    out.push_str(&format!("  last commit ts: {}\n", s.read_ts));
    // Every keyspace: a full scan reads each of its pages (a damaged page
    // image or value-log record is Corruption), and the scan's count must
    // equal the exact count the database keeps.
    let corrupt = |e: Error| match e {
        e @ Error::Corruption { .. } => corrupt(e),
        e => (1, format!("error: reading the recovered data: {e}")),
    };
    let names = db.keyspaces().map_err(corrupt)?;
    let snap = db.snapshot();
    let mut total = 0u64;
    for name in &names {
        let ks = db.keyspace(name).map_err(corrupt)?;
        let mut keys = 0u64;
        for kv in snap.range_in::<&[u8], _>(&ks, ..) {
            kv.map_err(corrupt)?;
            keys += 1;
        }
        let counted = snap.len_in(&ks).map_err(corrupt)?;
        if counted != keys {
            return Err((
                CORRUPT,
                format!("CORRUPT: keyspace {name}: the kept count is {counted}, a scan finds {keys} keys"),
            ));
        }
        out.push_str(&format!("  keyspace {name}: {keys} live keys\n"));
        total += keys;
    }
    out.push_str(&format!("  live keys: {total} in {} keyspace(s)\n", names.len()));
    if page_segs + vlog_segs > 0 {
        out.push_str(&format!(
            "  page store: {page_segs} page segment(s), {vlog_segs} value-log segment(s), {records} record(s) \
             checksummed; {} page read(s) from the location table's chains (fault-ins, evictions between)\n",
            db.stats().cache_misses
        ));
        for t in &torn_segs {
            out.push_str(&format!("  torn segment tail (a crashed run's unsynced append): {t}\n"));
        }
    }
    drop(db);
    drop(lock);
    Ok(out)
}

/// The regular files of `dir` but `LOCK`, each with its length and
/// modification time, by name.
fn listing(dir: &Path) -> std::io::Result<Vec<(String, u64, Option<std::time::SystemTime>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name != "LOCK" {
            out.push((name, meta.len(), meta.modified().ok()));
        }
    }
    out.sort();
    Ok(out)
}

/// The exit status and message for an open or read error: damage is
/// [`CORRUPT`] with the file and offset.
fn corrupt(e: Error) -> (i32, String) {
    match e {
        Error::Corruption { file, offset, reason } => (
            CORRUPT,
            format!("CORRUPT: {} at offset {offset}: {reason}", file.display()),
        ),
        e => (1, format!("error: {e}")),
    }
}
