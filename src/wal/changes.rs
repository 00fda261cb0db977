//! Reading committed changes back out of the log: the change stream
//! (`crate::Db::changes_since`) reuses the write-ahead log's records.
//!
//! # Definitions
//! - `retained_from` (kept by [`crate::wal::writer::Wal`]): every commit
//!   above it is in a log segment still on disk. At open it is the first
//!   commit the log holds, minus one (the recovered timestamp if the log is
//!   empty); deleting segments raises it to their highest timestamp.
//! - A [`ChangeCursor`] stands after a commit timestamp `after`, in segment
//!   `seq` at byte `pos`.
//!
//! # Operations
//! - [`ChangeCursor::next`] with a bound `upto` (at most the log's written
//!   timestamp, so every record up to it is whole in the files) returns the
//!   next commit above `after` and at most `upto`. It reads each segment's
//!   new bytes (positional reads from `pos`, 64 KiB or more at a time, not
//!   into the segment's reserved space), checks each record's crc, and moves
//!   to the next segment at a closed one's end. Bytes read past the `upto`
//!   in force when they were read are dropped once the records up to it
//!   are consumed: they may be a record caught mid-write.
//! - Commits come in timestamp order with no gaps: a record that does not
//!   follow `after` is corruption, never skipped, unless `retained_from`
//!   passed `after` (a checkpoint deleted the segments after the cursor's,
//!   outside the retention window): then, as for a segment deleted under
//!   the cursor, `Error::SnapshotTooOld`. A damaged record is
//!   `Error::Corruption` naming the file and offset.

use std::path::{Path, PathBuf};

use super::record::{self, Bad, Commit, Frame};
use super::writer::{segment_name, Wal};
use crate::fs::{Fs, FsRead};
use crate::{Error, Result};

/// A position in the log: after commit `after`.
pub(crate) struct ChangeCursor {
    after: u64,
    /// The open segment, its sequence number and the next byte to read.
    seg: Option<(u64, Box<dyn FsRead>)>,
    pos: u64,
    /// Bytes read from the open segment but not decoded yet, starting at `pos`.
    buf: Vec<u8>,
    /// The limit (`upto`) when `buf` was read: records up to it were whole
    /// in the file then; bytes after them may have been mid-write.
    buf_upto: u64,
    at: usize,
    /// The open segment's format version (`record::header_version`).
    version: u32,
}

impl ChangeCursor {
    /// A cursor after commit `after`.
    pub(crate) fn new(after: u64) -> Self {
        ChangeCursor {
            after,
            seg: None,
            pos: 0,
            buf: Vec::new(),
            buf_upto: 0,
            at: 0,
            version: record::VERSION,
        }
    }

    /// The last commit returned (or the starting timestamp).
    pub(crate) fn after(&self) -> u64 {
        self.after
    }

    /// Commit `ts`, just read, could not be returned (a value it references
    /// did not read back): stand before it, off every segment, so that the
    /// next read reads it again, or is `SnapshotTooOld` if its segment was
    /// deleted meanwhile. The stream never goes on past a change it did
    /// not return.
    pub(crate) fn back_before(&mut self, ts: u64) {
        self.after = ts - 1;
        self.seg = None;
        self.buf.clear();
        self.at = 0;
    }

    /// The next commit in `(after, upto]`, `None` if there is none yet.
    /// Commits with no writes (a timestamp a failed validation used) are
    /// passed over.
    pub(crate) fn next(&mut self, fs: &dyn Fs, dir: &Path, wal: &Wal, upto: u64) -> Result<Option<Commit>> {
        loop {
            if self.after >= upto {
                // Bytes read past `upto` may be a record being written
                // (read while the writer wrote it): forget them, so that
                // the next call reads them again once they are whole.
                self.buf.truncate(self.at);
                return Ok(None);
            }
            if self.seg.is_none() && !self.open_next(fs, dir, wal)? {
                return Err(too_old(self.after, wal));
            }
            if self.after >= self.buf_upto {
                // Every record whole when `buf` was read is consumed: what
                // is left may be a record caught mid-write. Read it again.
                self.buf.truncate(self.at);
            }
            let Some(commit) = self.decode_next(dir)? else {
                // The open segment has no whole record left: move on if it
                // is closed, else the records up to `upto` are missing.
                let seq = self.seg.as_ref().map_or(0, |s| s.0);
                if !self.refill(dir, upto)? {
                    if wal.segment_list().iter().any(|&(s, _)| s > seq) {
                        self.seg = None;
                        continue;
                    }
                    return Err(Error::Corruption {
                        file: dir.join(segment_name(seq)),
                        offset: self.pos,
                        reason: "the log ends before a commit it acknowledged",
                    });
                }
                continue;
            };
            if commit.ts <= self.after {
                continue;
            }
            if commit.ts != self.after + 1 {
                // A checkpoint deleted the segments after the cursor's
                // (the cursor's own, unlinked, was still readable): its
                // commits are gone, not damaged.
                if self.after < wal.retained_from() {
                    return Err(too_old(self.after, wal));
                }
                let seq = self.seg.as_ref().map_or(0, |s| s.0);
                return Err(Error::Corruption {
                    file: dir.join(segment_name(seq)),
                    offset: self.pos,
                    reason: "commits missing from the log before this record",
                });
            }
            self.after = commit.ts;
            if !commit.writes.is_empty() {
                return Ok(Some(commit));
            }
        }
    }

    /// Open the first segment that can hold a commit above `after`; whether
    /// there was one.
    fn open_next(&mut self, fs: &dyn Fs, dir: &Path, wal: &Wal) -> Result<bool> {
        let segments = wal.segment_list();
        // Read after the list: the commits after `after` were deleted by a
        // checkpoint meanwhile.
        if self.after < wal.retained_from() {
            return Ok(false);
        }
        let current = segments.last().map_or(0, |s| s.0);
        let Some(&(seq, _)) = segments.iter().find(|&&(s, max)| max > self.after || s == current) else {
            return Ok(false);
        };
        let path: PathBuf = dir.join(segment_name(seq));
        let file = match fs.open_read(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::Io(e)),
        };
        let mut h = [0u8; record::HEADER_LEN];
        file.read_exact_at(0, &mut h).map_err(Error::Io)?;
        let Some(version) = record::header_version(&h) else {
            return Err(Error::Corruption {
                file: path,
                offset: 0,
                reason: "bad log segment header",
            });
        };
        self.version = version;
        self.seg = Some((seq, file));
        self.pos = record::HEADER_LEN as u64;
        self.buf.clear();
        self.at = 0;
        Ok(true)
    }

    /// Decode the next whole record in the buffer, advancing `pos`.
    fn decode_next(&mut self, dir: &Path) -> Result<Option<Commit>> {
        loop {
            if zero_len(&self.buf[self.at..]) {
                // The segment's reserved space (`writer::PREALLOCATE`): no
                // record here yet. Forget the zeros, so a refill reads again.
                self.buf.truncate(self.at);
                return Ok(None);
            }
            match record::decode_frame(&self.buf[self.at..], self.version) {
                Ok((frame, used)) => {
                    self.at += used;
                    self.pos += used as u64;
                    // A mark (the writer's durable frontier) is no change.
                    if let Frame::Commit(commit) = frame {
                        return Ok(Some(commit));
                    }
                }
                Err(Bad::Truncated) => return Ok(None),
                Err(bad) => {
                    return Err(Error::Corruption {
                        file: dir.join(segment_name(self.seg.as_ref().map_or(0, |s| s.0))),
                        offset: self.pos,
                        reason: bad.reason(),
                    })
                }
            }
        }
    }

    /// Read the open segment's bytes from `pos` to its end; whether there
    /// were new ones.
    fn refill(&mut self, dir: &Path, upto: u64) -> Result<bool> {
        let Some((seq, file)) = &self.seg else { return Ok(false) };
        let len = file.len().map_err(Error::Io)?;
        let have = (self.buf.len() - self.at) as u64;
        if len <= self.pos + have {
            return Ok(false);
        }
        // Not to the file's end, which is the segment's reserved space
        // (1 MiB ahead): a chunk, or twice the part of a record already
        // read (so a large record is read whole in a few steps).
        let want = (len - self.pos).min((2 * have).max(REFILL_BYTES));
        let mut more = vec![0u8; want as usize];
        file.read_exact_at(self.pos, &mut more).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Error::Corruption {
                file: dir.join(segment_name(*seq)),
                offset: self.pos,
                reason: "log segment shorter than its length",
            },
            _ => Error::Io(e),
        })?;
        if zero_len(&more) {
            // Only reserved space past what was decoded.
            return Ok(false);
        }
        self.buf = more;
        self.at = 0;
        self.buf_upto = upto;
        Ok(true)
    }
}

/// Bytes a refill reads at least (unless the file ends first).
const REFILL_BYTES: u64 = 64 << 10;

/// Whether `b` starts with a zero frame length (4 bytes, or all there is):
/// reserved space, since a record's length is never 0.
fn zero_len(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().take(4).all(|&x| x == 0)
}

fn too_old(after: u64, wal: &Wal) -> Error {
    Error::SnapshotTooOld {
        requested: after,
        oldest: wal.retained_from(),
    }
}
