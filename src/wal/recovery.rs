//! Recovery on open: the newest checkpoint, then every later commit in the
//! log, in commit-timestamp order.
//!
//! The caller reads the newest checkpoint file first ([`newest`]): a
//! version-1 image is replayed here; a version-2 location table
//! (`design/storage.md` §2.5) is the engine's to load (it builds the tree
//! from it), and recovery then replays only the log after its timestamp.

use std::collections::BTreeMap;
use std::path::Path;

use super::checkpoint;
use super::reader::read_segment;
use super::record;
use super::record::Commit;
use super::writer::parse_segment_name;
use crate::fs::Fs;
use crate::{Error, Result};

/// What recovery found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// The highest commit timestamp restored (the oracle continues above it).
    pub(crate) last_ts: u64,
    /// The checkpoint loaded (0: none).
    pub(crate) checkpoint_ts: u64,
    /// Log segments kept, with their highest commit timestamps.
    pub(crate) segments: BTreeMap<u64, u64>,
    /// The sequence number for the next segment.
    pub(crate) next_seq: u64,
    /// Torn tails found (and truncated) at the end of the log.
    pub(crate) torn_tails: u64,
    /// Commits replayed from the log.
    pub(crate) replayed: u64,
    /// Versions installed (checkpoint entries and replayed writes).
    pub(crate) versions: u64,
    /// The oldest commit the log holds (replayed or not), if any.
    pub(crate) first_logged_ts: Option<u64>,
    /// Every commit above this is in the log (the change stream's reach):
    /// the unbroken run of logged timestamps that ends at `last_ts` starts
    /// just above it. A run without a log (`Durability::None`) between runs
    /// with one leaves older records in the log but not the commits after
    /// them, so the log's oldest record is not enough.
    pub(crate) retained_from: u64,
    /// Bytes of records in the log's segments that hold a commit above the
    /// checkpoint loaded (headers and torn tails not counted): about what
    /// was replayed.
    pub(crate) log_bytes: u64,
    /// The size of the version-1 image loaded (0: none).
    pub(crate) image_bytes: u64,
}

/// Where recovery puts what it restores: the storage below the log. Each
/// call installs one committed version; recovery calls it in commit
/// timestamp order per key (checkpoint entries first, at the checkpoint's
/// timestamp, then the log's commits). `tree` is the keyspace id the write
/// names (0: default; `u32::MAX`: the catalog, whose writes come before any
/// write to the keyspaces they create: in the image it is written first, in
/// the log a creation commits before its keyspace is used).
pub(crate) trait Replay {
    /// Install `value` (`None`: a delete) for `key` of keyspace `tree` as
    /// committed at `ts`.
    fn replay(&self, tree: u32, key: bytes::Bytes, ts: u64, value: Option<bytes::Bytes>) -> Result<()>;

    /// The value a record references (`addr`, `len` bytes; a value placed
    /// in the value log at commit, `design/storage.md` §10.1) of version
    /// `(key, ts)` of keyspace `tree`. `Ok(None)`: the value log's record
    /// is missing and lies in its torn tail, where a power loss leaves a
    /// value whose record the log holds but had not synced (recovery cuts
    /// the log there). Any other mismatch is `Error::Corruption`.
    ///
    /// `unsynced`: the referencing record lies past what the last log
    /// segment's marks show durable (`reader::Segment::synced_to`), so its
    /// value may never have been synced either: a value that does not read
    /// back is then the torn tail also when whole records follow it in the
    /// value log after an unwritten sector (a power loss that kept its
    /// pages out of order; `crate::torn`).
    fn fetch(
        &self,
        tree: u32,
        key: &[u8],
        ts: u64,
        addr: u64,
        len: u32,
        unsynced: bool,
    ) -> Result<Option<bytes::Bytes>>;

    /// A record the log keeps references the value of version `(key, ts)`
    /// of keyspace `tree` at `addr`: it must stay (the change stream may
    /// read it). `replayed`: the commit was replayed (every reference of it
    /// read back), so the version's value is there. Recovery calls it for
    /// the records it keeps but does not replay (at or below the
    /// checkpoint) and for each commit it replays.
    fn note_ref(&self, tree: u32, key: &[u8], ts: u64, addr: u64, replayed: bool);

    /// Whether the caller's own files show that a run got past creating
    /// its log segment (a page image on disk). With neither a checkpoint
    /// file nor a log segment, files were then deleted.
    fn wrote_pages(&self) -> bool {
        false
    }
}

fn corruption(dir: &Path, name: &str, offset: u64, reason: &'static str) -> Error {
    Error::Corruption {
        file: dir.join(name),
        offset,
        reason,
    }
}

/// The newest checkpoint file of a directory, read whole.
pub(crate) struct Newest {
    pub(crate) ts: u64,
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
}

impl Newest {
    /// The format version in the file's header (1 or 4: a key-value image,
    /// 2: a location table); `None` if the header is too short to say.
    pub(crate) fn version(&self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes.get(8..12)?.try_into().ok()?))
    }

    /// Whether the file is a key-value image (any version `checkpoint::parse`
    /// reads), not a location table.
    pub(crate) fn is_image(&self) -> bool {
        self.version().is_some_and(checkpoint::is_image_version)
    }
}

/// Read the newest checkpoint file in `dir` (`ckpt-<ts>.ckpt`), if any. It
/// was renamed into place only after it was synced, so damage to it is
/// corruption, never a reason to fall back to an older one (the log it
/// covered may be gone).
pub(crate) fn newest(fs: &dyn Fs, dir: &Path) -> Result<Option<Newest>> {
    let names = fs.list(dir).map_err(Error::Io)?;
    let Some((ts, name)) = names
        .into_iter()
        .filter_map(|n| checkpoint::parse_name(&n).map(|ts| (ts, n)))
        .max()
    else {
        return Ok(None);
    };
    let bytes = fs.read(&dir.join(&name)).map_err(Error::Io)?;
    Ok(Some(Newest { ts, name, bytes }))
}

/// The checkpoint recovery starts from.
pub(crate) enum Start {
    /// None: the whole log is replayed.
    Empty,
    /// A version-1 image, replayed into the tree first.
    Image(Newest),
    /// A location table at this timestamp, loaded by the caller.
    Table(u64),
}

/// Restore `dir` into `into` from `start` (the newest checkpoint file, or
/// the location table the caller loaded from it) and the log after it.
///
/// With `oldest` (`Options::history_retention`) and a version-1 image as
/// `start`, recovery starts instead from the oldest version-1 checkpoint
/// (or the empty database) after which the log is complete up to at least
/// the newest checkpoint, so every version since that one is rebuilt
/// (`design/mvcc.md` §11, "Restart"); `Recovered::checkpoint_ts` names it.
///
/// The files are changed (temporary files removed, a torn tail cut) only
/// once everything read back whole: a recovery that fails on damage leaves
/// the directory as it found it, for `bwtx check` or a person to look at.
pub(crate) fn recover(fs: &dyn Fs, dir: &Path, into: &dyn Replay, start: Start, oldest: bool) -> Result<Recovered> {
    let (out, fixes) = read_back(fs, dir, into, start, oldest)?;
    for fix in fixes {
        match fix {
            Fix::Remove(path) => fs.remove(&path),
            Fix::Truncate(path, len) => fs.truncate(&path, len),
            Fix::SyncDir => fs.sync_dir(dir),
        }
        .map_err(Error::Io)?;
    }
    Ok(out)
}

/// A change to the directory that recovery makes once it succeeded.
enum Fix {
    Remove(std::path::PathBuf),
    Truncate(std::path::PathBuf, u64),
    SyncDir,
}

/// [`recover`] but for its changes to the files, which are returned.
fn read_back(fs: &dyn Fs, dir: &Path, into: &dyn Replay, start: Start, oldest: bool) -> Result<(Recovered, Vec<Fix>)> {
    let names = fs.list(dir).map_err(Error::Io)?;
    let mut out = Recovered::default();
    let mut fixes = Vec::new();

    // 1. Leftover temporary checkpoints are incomplete by definition.
    for n in names
        .iter()
        .filter(|n| (n.starts_with("ckpt-") && n.ends_with(".tmp")) || super::hist::is_tmp(n))
    {
        fixes.push(Fix::Remove(dir.join(n)));
    }

    // 2. The log, segment by segment. Only the last segment may end in a
    //    torn record (the crash interrupted its last write); it is truncated.
    let mut segs: Vec<(u64, &String)> = names
        .iter()
        .filter_map(|n| parse_segment_name(n).map(|s| (s, n)))
        .collect();
    segs.sort();
    // (commit, segment index, offset) of every record, and (name, valid
    // length) of every segment read.
    let mut commits: Vec<(Commit, usize, u64)> = Vec::new();
    // The runs of consecutive timestamps among the commits read, replayed
    // or not (`Runs`): one entry per gap, not per commit.
    let mut logged = Runs::default();
    let mut read: Vec<(&String, u64)> = Vec::new();
    // Each segment's number, name and header base (`record::header_base`).
    let mut bases: Vec<(u64, &String, Option<u32>)> = Vec::new();
    // Each segment's highest commit and record bytes (`Recovered::log_bytes`).
    let mut seg_bytes: Vec<(u64, u64)> = Vec::new();
    // The index in `read` of the last segment, if it was read: the only
    // one that may hold records not synced.
    let mut tail = None;
    // What the last segment's marks show durable (`Segment::synced_to`).
    let mut tail_synced: Option<u64> = None;
    let floor = match &start {
        Start::Table(ts) => *ts,
        Start::Image(n) if !oldest => n.ts,
        _ => 0,
    };
    for (i, &(seq, name)) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        if last {
            // Only the newest segment can hold bytes a failed sync lost:
            // a failed sync poisons the log, and a poisoned log closes no
            // segment (a sync after a failed one would not write them
            // either). Read what the device holds, not what the cache kept.
            fs.drop_cache(&dir.join(name)).map_err(Error::Io)?;
        }
        let bytes = fs.read(&dir.join(name)).map_err(Error::Io)?;
        let seg = read_segment(&bytes);
        out.next_seq = seq + 1;
        if let Some((offset, why)) = seg.damage {
            if !(last && seg.torn) {
                return Err(corruption(dir, name, offset, why));
            }
            out.torn_tails += 1;
            if seg.valid_len == 0 {
                // Not even a whole header (a crash while creating it): the
                // segment never held a record. Remove it, or the next
                // recovery would find a headerless segment before the end;
                // the next segment takes its number, so that the log's
                // numbers run on with no hole (see the missing checkpoint
                // below).
                fixes.push(Fix::Remove(dir.join(name)));
                fixes.push(Fix::SyncDir);
                out.next_seq = seq;
                continue;
            }
            fixes.push(Fix::Truncate(dir.join(name), seg.valid_len));
        }
        if last {
            // A crash (kill -9) may have left its records unsynced in the
            // file system's cache: replayed and then served, they must
            // survive a power loss from now on.
            let path = dir.join(name);
            match fs.open_append(&path).and_then(|mut f| f.sync()) {
                // An `Fs` without `open_append` (the trait's default):
                // `truncate` to its length makes the file durable too.
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                    fs.truncate(&path, bytes.len() as u64).map_err(Error::Io)?
                }
                r => r.map_err(Error::Io)?,
            }
        }
        bases.push((seq, name, seg.base));
        let max = seg.commits.iter().map(|c| c.ts).max().unwrap_or(0);
        for c in &seg.commits {
            logged.add(c.ts);
        }
        if let Some(min) = seg.commits.iter().map(|c| c.ts).min() {
            out.first_logged_ts = Some(out.first_logged_ts.map_or(min, |f| f.min(min)));
        }
        out.segments.insert(seq, max);
        seg_bytes.push((max, seg.valid_len.saturating_sub(record::HEADER_LEN as u64)));
        let index = read.len();
        read.push((name, seg.valid_len));
        if last {
            tail = Some((index, seq));
            tail_synced = seg.synced_to;
        }
        for c in seg.commits.iter().filter(|c| c.ts <= floor) {
            // Kept but not replayed: the change stream may read them.
            for (t, k, v) in &c.writes {
                if let record::Logged::Ref { addr, .. } = v {
                    into.note_ref(*t, k, c.ts, *addr, false);
                }
            }
        }
        commits.extend(
            seg.commits
                .into_iter()
                .zip(seg.offsets)
                .filter(|(c, _)| c.ts > floor)
                .map(|(c, off)| (c, index, off)),
        );
    }

    // 2a. Files missing (`design/durability.md` §7, "Missing files"). Every
    //     open creates a log segment (W0) before anything else is written;
    //     only a checkpoint deletes segments (those it covers, after its
    //     file is durable, never the newest), and recovery only a torn
    //     newest one (whose number the next one reuses).
    //  - No checkpoint file, no commit in the log, and the log begins after
    //    segment 0: a checkpoint deleted the segments before, and its file
    //    is missing. Recovering from the log alone would open an empty
    //    database, and the open would then delete the page segments that
    //    hold its data as unpublished. (A log with commits that does not
    //    begin at commit 1 fails the gap check below; one that begins at
    //    segment 1 and commit 1 is an earlier build's, which numbered on
    //    past a torn segment 0.)
    //  - No checkpoint file and no log segment, but a history file (written
    //    by checkpoints only) or page images (written after W0): files were
    //    deleted.
    //  - A checkpoint file but no log segment: they were deleted, and with
    //    them every commit after the checkpoint.
    let first = out.segments.keys().next().copied();
    let first_name = first
        .and_then(|f| segs.iter().find(|s| s.0 == f))
        .map_or("", |s| s.1.as_str());
    let missing = |reason| Err(corruption(dir, first_name, 0, reason));
    match (&start, first) {
        (Start::Empty, Some(f)) if f > 0 && out.first_logged_ts.is_none() => {
            return missing(
                "no checkpoint file, yet the log begins after its first segment and holds no commit: a checkpoint is missing",
            );
        }
        (Start::Empty, None) if into.wrote_pages() || names.iter().any(|n| super::hist::parse_name(n).is_some()) => {
            return missing(
                "no checkpoint file and no log segment, yet history files or page images: files are missing",
            );
        }
        (Start::Image(_) | Start::Table(_), None) => {
            return missing("a checkpoint but no log segment: the log files after it are missing");
        }
        _ => {}
    }

    // 3. The checkpoint: the newest (see `newest`), or with `oldest` the
    //    oldest version-1 image the log completes.
    let start = match start {
        Start::Image(newest) if oldest => {
            let last_logged = out.segments.values().copied().max().unwrap_or(0);
            // The log is complete only from the start of its unbroken run
            // through its last record: a run without a log leaves a gap
            // after older records `change_retention` kept.
            let first = out.first_logged_ts.map(|_| logged.unbroken_from(last_logged) + 1);
            oldest_complete(fs, dir, &names, newest, first, last_logged)?
        }
        start => start,
    };
    match start {
        Start::Empty => {}
        Start::Table(ts) => {
            out.checkpoint_ts = ts;
            out.last_ts = ts;
        }
        Start::Image(Newest { ts, name, bytes }) => {
            let name = &name;
            let image = checkpoint::parse(&bytes).map_err(|(off, why)| corruption(dir, name, off, why))?;
            if image.ts != ts {
                return Err(corruption(dir, name, 16, "checkpoint timestamp differs from its name"));
            }
            if (ts == 0 && !image.entries.is_empty()) || ts > record::MAX_TS {
                return Err(corruption(dir, name, 16, "checkpoint timestamp out of range"));
            }
            for (t, k, v) in image.entries {
                into.replay(t, k, ts.max(1), Some(v))?;
                out.versions += 1;
            }
            out.checkpoint_ts = ts;
            out.last_ts = ts;
            out.image_bytes = bytes.len() as u64;
        }
    }
    commits.retain(|(c, _, _)| c.ts > out.checkpoint_ts);
    out.log_bytes = seg_bytes
        .iter()
        .filter(|&&(max, _)| max > out.checkpoint_ts)
        .map(|&(_, b)| b)
        .sum();

    // 4. Replay in commit order. The writer logs commits in timestamp
    //    order with no gaps, so above the checkpoint the timestamps must run
    //    on from it one by one: a gap or a repeat means a segment lost
    //    records (say, cut at a record boundary), which no crash produces.
    commits.sort_by_key(|(c, _, _)| c.ts);
    for (expect, (c, index, offset)) in (out.checkpoint_ts + 1..).zip(commits) {
        if c.ts != expect {
            if c.ts < expect {
                return Err(corruption(
                    dir,
                    read[index].0,
                    offset,
                    "commit timestamp repeated in the log",
                ));
            }
            // Records are missing before this one. If it opens its segment,
            // they were at the end of an earlier one: name the nearest
            // earlier segment, at its end.
            if offset == record::HEADER_LEN as u64 && index > 0 {
                let (name, len) = read[index - 1];
                return Err(corruption(
                    dir,
                    name,
                    len,
                    "commits missing from the end of this segment",
                ));
            }
            return Err(corruption(
                dir,
                read[index].0,
                offset,
                "commits missing from the log before this record",
            ));
        }
        // References first: a commit is replayed whole or not at all.
        let in_tail = tail.is_some_and(|(i, _)| i == index);
        let unsynced = in_tail && tail_synced.is_some_and(|m| offset >= m);
        let Some(writes) = resolve(into, &c, unsynced)? else {
            // A value the log references is missing at the value log's
            // torn tail: the record was not synced (every sync of the log
            // syncs the values its records reference first), so it is the
            // log's torn tail too, and every later record with it.
            let Some((last, seq)) = tail.filter(|&(i, _)| i == index) else {
                return Err(corruption(
                    dir,
                    read[index].0,
                    offset,
                    "a synced log record references a value the value log does not hold",
                ));
            };
            fixes.push(Fix::Truncate(dir.join(read[last].0), offset));
            out.torn_tails += 1;
            let kept = if offset > record::HEADER_LEN as u64 {
                c.ts - 1
            } else {
                0
            };
            out.segments.insert(seq, kept);
            break;
        };
        for (t, k, v) in &c.writes {
            if let record::Logged::Ref { addr, .. } = v {
                into.note_ref(*t, k, c.ts, *addr, true);
            }
        }
        for (t, k, v) in writes {
            into.replay(t, k, c.ts, v)?;
            out.versions += 1;
        }
        out.last_ts = out.last_ts.max(c.ts);
        out.replayed += 1;
    }

    // 5. The segments without a commit at the log's end (every open starts
    //    one) follow every commit logged before them: each header's base
    //    (the highest commit timestamp logged before it, low 32 bits) is
    //    the recovered timestamp. Else segments holding commits up to the
    //    base were lost, which the gap check of step 4 cannot see when no
    //    commit follows them (say the one segment after a checkpoint, with
    //    an open's empty segment after it). A segment without a base (a run
    //    without a log, whose checkpoints move the timestamp on with no
    //    segment saying so, or a build before bases) ends the check.
    for &(seq, name, base) in bases.iter().rev() {
        if out.segments.get(&seq).is_some_and(|&max| max > 0) {
            break;
        }
        let Some(base) = base else { break };
        if base != out.last_ts as u32 {
            return Err(corruption(
                dir,
                name,
                12,
                "log segments are missing: commits logged before this segment were not found",
            ));
        }
    }
    out.retained_from = logged.unbroken_from(out.last_ts);
    Ok((out, fixes))
}

/// The timestamps of the commits the log holds, as runs of consecutive
/// ones `(first, last)`, in the order read (segments in order, records in
/// timestamp order, so a new run begins only at a gap: a run without a
/// log between runs with one).
#[derive(Default)]
struct Runs(Vec<(u64, u64)>);

impl Runs {
    fn add(&mut self, ts: u64) {
        match self.0.last_mut() {
            Some(run) if ts == run.1 + 1 => run.1 = ts,
            Some(run) if (run.0..=run.1).contains(&ts) => {}
            _ => self.0.push((ts, ts)),
        }
    }

    /// Where the unbroken run of logged timestamps through `last` begins,
    /// less one: every commit above it and up to `last` is logged.
    /// (Commits read above `last`, cut at a dangling reference, do not
    /// count.) `last` itself if `last` is not logged.
    fn unbroken_from(&self, last: u64) -> u64 {
        self.0
            .iter()
            .find(|&&(first, end)| first <= last && last <= end)
            .map_or(last, |&(first, _)| first.saturating_sub(1))
    }
}

/// The writes of `c` with every reference read (`into.fetch`); `None` if
/// one dangles at the value log's torn tail.
#[allow(clippy::type_complexity)]
fn resolve(
    into: &dyn Replay,
    c: &Commit,
    unsynced: bool,
) -> Result<Option<Vec<(u32, bytes::Bytes, Option<bytes::Bytes>)>>> {
    let mut writes = Vec::with_capacity(c.writes.len());
    for (t, k, v) in &c.writes {
        let v = match v {
            record::Logged::Put(b) => Some(b.clone()),
            record::Logged::Delete => None,
            record::Logged::Ref { addr, len } => match into.fetch(*t, k, c.ts, *addr, *len, unsynced)? {
                Some(v) => Some(v),
                None => return Ok(None),
            },
        };
        writes.push((*t, k.clone(), v));
    }
    Ok(Some(writes))
}

/// The start for [`recover`] with `oldest`: the oldest version-1 checkpoint
/// (or the empty database, as timestamp 0) whose log is complete, that is
/// holds every commit from the one after it (`first_logged <= c + 1`) to
/// at least the newest checkpoint's (`last_logged`); `newest` if none older
/// is.
fn oldest_complete(
    fs: &dyn Fs,
    dir: &Path,
    names: &[String],
    newest: Newest,
    first_logged: Option<u64>,
    last_logged: u64,
) -> Result<Start> {
    let Some(first) = first_logged.filter(|_| last_logged >= newest.ts) else {
        return Ok(Start::Image(newest));
    };
    let mut older: Vec<(u64, &String)> = names
        .iter()
        .filter_map(|n| checkpoint::parse_name(n).map(|ts| (ts, n)))
        .filter(|&(ts, _)| ts < newest.ts && first <= ts + 1)
        .collect();
    older.sort();
    if first <= 1 {
        return Ok(Start::Empty);
    }
    for (ts, name) in older {
        let bytes = fs.read(&dir.join(name)).map_err(Error::Io)?;
        let n = Newest {
            ts,
            name: name.clone(),
            bytes,
        };
        // A location table is the engine's to load; only images here.
        if n.is_image() {
            return Ok(Start::Image(n));
        }
    }
    Ok(Start::Image(newest))
}

#[cfg(test)]
mod runs_tests {
    use super::Runs;

    /// The change stream's reach: from the start of the run through the
    /// recovered timestamp; a gap (a run without a log) ends it; records
    /// above the recovered timestamp do not count; an unlogged recovered
    /// timestamp reaches nothing back.
    #[test]
    fn the_unbroken_run_through_the_last_commit() {
        let mut r = Runs::default();
        for ts in (1..=10).chain(21..=25) {
            r.add(ts);
        }
        assert_eq!(r.0, vec![(1, 10), (21, 25)]);
        assert_eq!(r.unbroken_from(25), 20);
        assert_eq!(r.unbroken_from(23), 20, "cut after 23");
        assert_eq!(r.unbroken_from(10), 0);
        assert_eq!(r.unbroken_from(15), 15, "15 is not logged");
        assert_eq!(Runs::default().unbroken_from(7), 7);
    }
}
