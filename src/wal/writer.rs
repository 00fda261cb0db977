//! The log writer: group commit over segment files.
//!
//! Committers encode their record outside any lock, append it to the
//! *pending* buffer under a short mutex, and get its log sequence number
//! (LSN: the byte offset just past it in the log's byte stream). Then they
//! wait until the log is durable (sync mode) or written (buffered mode) up to
//! that LSN. Waiting is leader/follower on the `out` mutex, which owns the
//! current segment: whoever holds it takes *all* pending records, writes them
//! with one `write` and syncs once, so concurrent committers share one fsync.
//! A committer that gets the mutex after its record was flushed by another
//! returns at once. No tree or transaction lock is held while waiting.
//!
//! Any failed write or sync *poisons* the log: every later append or wait
//! fails with [`Error::Poisoned`] (an fsync is never retried: after a failed
//! fsync the kernel may have dropped the dirty pages).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::record;
use crate::fs::{Fs, FsFile};
use crate::{Error, Result};

/// File name of segment `seq`.
pub(crate) fn segment_name(seq: u64) -> String {
    format!("wal-{seq:010}.log")
}

/// The sequence number of a segment file name.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?.strip_suffix(".log")?.parse().ok()
}

struct Pending {
    buf: Vec<u8>,
    /// LSN just past `buf`.
    end: u64,
    max_ts: u64,
}

struct Out {
    file: Box<dyn FsFile>,
    seq: u64,
    size: u64,
    max_ts: u64,
    /// Closed segments: sequence number -> highest commit ts in it.
    closed: BTreeMap<u64, u64>,
    spare: Vec<u8>,
}

pub(crate) struct Wal {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    segment_bytes: u64,
    pending: Mutex<Pending>,
    out: Mutex<Out>,
    written: AtomicU64,
    durable: AtomicU64,
    poisoned: AtomicBool,
    pub(crate) syncs: AtomicU64,
    pub(crate) records: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these cannot leave them inconsistent in a way
    // later users rely on: every failure path poisons the log first.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Wal {
    /// Start a new segment `seq` in `dir`; `closed` lists the segments
    /// recovery found, with their highest commit timestamps.
    pub(crate) fn create(
        fs: Arc<dyn Fs>,
        dir: &Path,
        seq: u64,
        closed: BTreeMap<u64, u64>,
        segment_bytes: u64,
    ) -> Result<Self> {
        let file = new_segment(&*fs, dir, seq)?;
        Ok(Wal {
            fs,
            dir: dir.to_owned(),
            segment_bytes,
            pending: Mutex::new(Pending {
                buf: Vec::new(),
                end: 0,
                max_ts: 0,
            }),
            out: Mutex::new(Out {
                file,
                seq,
                size: record::HEADER_LEN as u64,
                max_ts: 0,
                closed,
                spare: Vec::new(),
            }),
            written: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
            records: AtomicU64::new(0),
        })
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    fn poison(&self, e: std::io::Error) -> Error {
        self.poisoned.store(true, Ordering::Release);
        Error::Io(e)
    }

    /// Append the record of commit `ts`; returns its LSN.
    pub(crate) fn append<'a>(
        &self,
        ts: u64,
        writes: impl ExactSizeIterator<Item = (&'a Bytes, &'a Option<Bytes>)>,
    ) -> Result<u64> {
        self.check()?;
        let mut rec = Vec::new();
        record::encode(&mut rec, ts, writes);
        let mut p = lock(&self.pending);
        p.buf.extend_from_slice(&rec);
        p.end += rec.len() as u64;
        p.max_ts = p.max_ts.max(ts);
        self.records.fetch_add(1, Ordering::Relaxed);
        Ok(p.end)
    }

    /// Wait until the log is written (`sync` false) or durable (`sync` true)
    /// up to `lsn`, flushing as the group's leader if nobody else is.
    pub(crate) fn wait(&self, lsn: u64, sync: bool) -> Result<()> {
        let done = if sync { &self.durable } else { &self.written };
        loop {
            self.check()?;
            if done.load(Ordering::Acquire) >= lsn {
                return Ok(());
            }
            let mut out = lock(&self.out);
            if done.load(Ordering::Acquire) >= lsn {
                return Ok(());
            }
            self.check()?;
            self.flush(&mut out, sync)?;
        }
    }

    /// Write everything pending and sync: for the buffered mode's timer,
    /// checkpoints and close.
    pub(crate) fn sync_now(&self) -> Result<()> {
        self.check()?;
        let mut out = lock(&self.out);
        self.check()?;
        self.flush(&mut out, true)
    }

    fn flush(&self, out: &mut Out, sync: bool) -> Result<()> {
        let mut buf = std::mem::take(&mut out.spare);
        let (end, max_ts) = {
            let mut p = lock(&self.pending);
            std::mem::swap(&mut buf, &mut p.buf);
            (p.end, p.max_ts)
        };
        if !buf.is_empty() {
            out.file.write_all(&buf).map_err(|e| self.poison(e))?;
            out.size += buf.len() as u64;
            out.max_ts = out.max_ts.max(max_ts);
            self.written.store(end, Ordering::Release);
        }
        buf.clear();
        out.spare = buf;
        if sync && self.durable.load(Ordering::Acquire) < end {
            out.file.sync().map_err(|e| self.poison(e))?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
            self.durable.store(end, Ordering::Release);
        }
        if out.size >= self.segment_bytes && self.durable.load(Ordering::Acquire) >= end {
            self.rotate_locked(out)?;
        }
        Ok(())
    }

    fn rotate_locked(&self, out: &mut Out) -> Result<()> {
        let next = new_segment(&*self.fs, &self.dir, out.seq + 1).map_err(|e| match e {
            Error::Io(e) => self.poison(e),
            e => e,
        })?;
        let old = std::mem::replace(&mut out.file, next);
        drop(old);
        out.closed.insert(out.seq, out.max_ts);
        out.seq += 1;
        out.size = record::HEADER_LEN as u64;
        out.max_ts = 0;
        Ok(())
    }

    /// Flush, sync and start a new segment, so that every record appended so
    /// far is in a closed segment (the first step of a checkpoint).
    pub(crate) fn rotate(&self) -> Result<()> {
        self.check()?;
        let mut out = lock(&self.out);
        self.flush(&mut out, true)?;
        self.rotate_locked(&mut out)
    }

    /// Delete the closed segments whose records all have `ts <= upto` (a
    /// durable checkpoint at `upto` covers them). Returns how many.
    pub(crate) fn drop_covered(&self, upto: u64) -> Result<usize> {
        let covered: Vec<u64> = {
            let out = lock(&self.out);
            out.closed.iter().filter(|(_, &m)| m <= upto).map(|(&s, _)| s).collect()
        };
        for &seq in &covered {
            self.fs.remove(&self.dir.join(segment_name(seq))).map_err(Error::Io)?;
        }
        if !covered.is_empty() {
            self.fs.sync_dir(&self.dir).map_err(Error::Io)?;
            let mut out = lock(&self.out);
            for seq in &covered {
                out.closed.remove(seq);
            }
        }
        Ok(covered.len())
    }

    /// Log bytes appended since this handle opened.
    pub(crate) fn appended(&self) -> u64 {
        lock(&self.pending).end
    }

    /// Segments on disk (closed and current).
    pub(crate) fn segments(&self) -> usize {
        lock(&self.out).closed.len() + 1
    }
}

/// Create segment `seq` with its header, synced, and its directory entry synced.
fn new_segment(fs: &dyn Fs, dir: &Path, seq: u64) -> Result<Box<dyn FsFile>> {
    let mut f = fs.create(&dir.join(segment_name(seq))).map_err(Error::Io)?;
    f.write_all(&record::header()).map_err(Error::Io)?;
    f.sync().map_err(Error::Io)?;
    fs.sync_dir(dir).map_err(Error::Io)?;
    Ok(f)
}
