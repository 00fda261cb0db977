//! The log writer's segments: closing the current one and starting the
//! next (`rotate`), deleting those a checkpoint covers (`drop_covered`), and
//! what they hold (`segment_list`, `retained_from`, counters). A child of
//! [`super`], whose types' fields it shares.

use std::path::Path;
use std::sync::Arc;

use super::{record, segment_name, CurrentSegment, Wal};
use crate::fs::{Fs, FsFile, FsSync};
use crate::sync::{lock, Ordering};
use crate::{Error, Result};

impl Wal {
    /// Close the current segment and start the next. Callers close only a
    /// segment whose records are all synced, each sync after the
    /// [`super::BeforeSync`] hook: a closed segment references only synced values
    /// (recovery takes a dangling reference for a torn tail in the last
    /// segment only).
    pub(super) fn rotate_locked(&self, out: &mut CurrentSegment) -> Result<()> {
        // A panic in the new segment's syncs poisons, as a failed one does
        // (else `sync_now`, which does not look at the mutexes' poison,
        // would go on, and the next rotation sync the file again).
        // Every record so far is written (callers write and sync what is
        // pending first, under `out`): the new segment's base.
        let base = self.written.load(Ordering::Acquire);
        let created = self
            .poisoned
            .on_panic(|| new_segment(&*self.fs, &self.dir, out.seq + 1, self.bases.then_some(base)));
        let (next, syncer) = created.map_err(|e| match e {
            Error::Io(e) => self.poison(e),
            e => e,
        })?;
        let old = std::mem::replace(&mut out.file, next);
        drop(old);
        out.syncer = syncer;
        out.closed.insert(out.seq, out.max_ts);
        out.seq += 1;
        out.size = record::HEADER_LEN as u64;
        out.reserved = 0;
        out.max_ts = 0;
        out.synced = record::HEADER_LEN as u64;
        out.marked = record::HEADER_LEN as u64;
        Ok(())
    }

    /// Flush, sync and start a new segment, so that every record appended so
    /// far is in a closed segment (the first step of a checkpoint). A
    /// current segment with no record stays current: closing it would add
    /// an empty segment that no checkpoint covers (an idle database's
    /// checkpoint attempts, which find nothing to write, left one a second).
    /// But segment 0 is closed even empty, once: the first checkpoint then
    /// deletes it, and a log that begins after segment 0 shows that a
    /// checkpoint ran (recovery's missing-file rules; without it a
    /// `Durability::None` database, whose segments stay empty, never
    /// showed one).
    pub(crate) fn rotate(&self) -> Result<()> {
        self.check()?;
        let r = {
            let _leader = lock(&self.sync_lock);
            let mut out = lock(&self.out);
            self.check()
                .and_then(|()| self.write_pending(&mut out))
                .and_then(|_| self.sync_written(&mut out))
                .and_then(|()| {
                    if out.size <= record::HEADER_LEN as u64 && out.seq > 0 {
                        return Ok(());
                    }
                    self.rotate_locked(&mut out)
                })
        };
        // Followers that found `sync_lock` or `out` taken: their records
        // are written and synced now (or the log is poisoned).
        self.wake_followers();
        r
    }

    /// Delete the closed segments whose records all have `ts <= upto` (a
    /// durable checkpoint at `upto` covers them), oldest first, up to the
    /// first one not covered: only a prefix of the log goes, so the
    /// segments a checkpoint leaves are numbered without a hole (an empty
    /// segment, its highest timestamp 0, after one not covered waits for
    /// it). Returns how many.
    pub(crate) fn drop_covered(&self, upto: u64) -> Result<usize> {
        // Forget them first (a reader of the change stream meets
        // `retained_from` before a missing file). If a removal fails, the
        // segments from that one on are listed again, so that the next
        // checkpoint deletes them in order: the log on disk never has a
        // gap (one that an older checkpoint's recovery, with
        // `history_retention`, would read across), and no file is left
        // unknown. A file already gone counts as removed.
        let covered: Vec<(u64, u64)> = {
            let mut out = lock(&self.out);
            let c: Vec<(u64, u64)> = out
                .closed
                .iter()
                .take_while(|(_, &m)| m <= upto)
                .map(|(&s, &m)| (s, m))
                .collect();
            for (seq, max) in &c {
                out.closed.remove(seq);
                self.retained_from.fetch_max(*max, Ordering::AcqRel);
            }
            self.release_out(out);
            c
        };
        for (i, &(seq, _)) in covered.iter().enumerate() {
            match self.fs.remove(&self.dir.join(segment_name(seq))) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    let mut out = lock(&self.out);
                    out.closed.extend(covered[i..].iter().copied());
                    self.release_out(out);
                    return Err(Error::Io(e));
                }
                _ => {}
            }
        }
        if !covered.is_empty() {
            // A failed directory sync poisons: it is not retried.
            self.fs.sync_dir(&self.dir).map_err(|e| self.poison(e))?;
        }
        Ok(covered.len())
    }

    /// The log's segments on disk: `(sequence number, highest commit
    /// timestamp written to it)`, closed ones first, the current one last.
    pub(crate) fn segment_list(&self) -> Vec<(u64, u64)> {
        let out = lock(&self.out);
        let mut v: Vec<(u64, u64)> = out.closed.iter().map(|(&s, &m)| (s, m)).collect();
        v.push((out.seq, out.max_ts));
        self.release_out(out);
        v
    }

    /// Every commit above this timestamp is in a segment on disk.
    pub(crate) fn retained_from(&self) -> u64 {
        self.retained_from.load(Ordering::Acquire)
    }

    /// Log bytes appended since this handle opened.
    pub(crate) fn appended(&self) -> u64 {
        lock(&self.pending).bytes
    }

    /// Log bytes appended since this handle opened, plus the bytes of the
    /// values their records reference: what replay after a crash reads,
    /// and what the automatic checkpoint counts.
    pub(crate) fn logical(&self) -> u64 {
        let p = lock(&self.pending);
        p.bytes + p.referenced
    }

    /// Commit records appended since this handle opened.
    pub(crate) fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Log syncs (fsyncs of a segment) since this handle opened.
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Segments on disk (closed and current).
    pub(crate) fn segments(&self) -> usize {
        let out = lock(&self.out);
        let n = out.closed.len() + 1;
        self.release_out(out);
        n
    }
}

/// A segment file and its sync handle ([`FsFile::syncer`]).
type Segment = (Box<dyn FsFile>, Option<Arc<dyn FsSync>>);

/// Create segment `seq` with its header (carrying `base`, if given),
/// synced, and its directory entry synced.
pub(super) fn new_segment(fs: &dyn Fs, dir: &Path, seq: u64, base: Option<u64>) -> Result<Segment> {
    let mut f = fs.create(&dir.join(segment_name(seq))).map_err(Error::Io)?;
    f.write_all(&record::header(base)).map_err(Error::Io)?;
    f.sync().map_err(Error::Io)?;
    fs.sync_dir(dir).map_err(Error::Io)?;
    let syncer = f.syncer().map_err(Error::Io)?.map(Arc::from);
    Ok((f, syncer))
}
