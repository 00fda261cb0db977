//! The durable half of a database: its directory (locked), log and
//! checkpoints. It decides when a checkpoint is due and when the log needs a
//! background sync ([`Store::tick`]); the engine's log thread
//! (`crate::engine::workers`) asks it and acts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::changes::ChangeCursor;
use super::record::Commit;
use super::recovery::{recover, Recovered, Replay};
use super::writer::Wal;
use super::{checkpoint, record};
use crate::fs::Fs;
use crate::sync::{lock, AtomicBool, AtomicU64, Mutex, MutexGuard, Ordering};
use crate::{Durability, Error, Result};

pub(crate) struct Store {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    wal: Wal,
    mode: Durability,
    /// Log bytes after which a checkpoint is taken automatically (0: never).
    checkpoint_bytes: u64,
    /// Held for the database's lifetime: no second opener.
    _lock: Box<dyn Send + Sync>,
    /// One checkpoint at a time; holds the last checkpoint's timestamp.
    last_checkpoint: Mutex<u64>,
    /// Log bytes appended when the last checkpoint started.
    log_bytes_at_checkpoint: AtomicU64,
    checkpoint_wanted: AtomicBool,
    checkpoints: AtomicU64,
    recovered: Recovered,
}

impl Store {
    /// Lock `dir`, recover it into `into`, and start a fresh log segment.
    pub(crate) fn open(
        fs: Arc<dyn Fs>,
        dir: &Path,
        mode: Durability,
        segment_bytes: u64,
        checkpoint_bytes: u64,
        into: &dyn Replay,
    ) -> Result<Store> {
        fs.create_dir_all(dir).map_err(Error::Io)?;
        let lock = fs.lock(dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked { path: dir.to_owned() }
            } else {
                Error::Io(e)
            }
        })?;
        let recovered = recover(&*fs, dir, into)?;
        let wal = Wal::create(
            fs.clone(),
            dir,
            recovered.next_seq,
            recovered.segments.clone(),
            segment_bytes.max(record::HEADER_LEN as u64 + 1),
            recovered.last_ts,
            // Every commit above this is in the log (the change stream).
            recovered.first_logged_ts.map_or(recovered.last_ts, |first| first - 1),
        )?;
        Ok(Store {
            fs,
            dir: dir.to_owned(),
            wal,
            mode,
            checkpoint_bytes,
            _lock: lock,
            last_checkpoint: Mutex::new(recovered.checkpoint_ts),
            log_bytes_at_checkpoint: AtomicU64::new(0),
            checkpoint_wanted: AtomicBool::new(false),
            checkpoints: AtomicU64::new(0),
            recovered,
        })
    }

    /// What recovery found when the store opened.
    pub(crate) fn recovered(&self) -> &Recovered {
        &self.recovered
    }

    /// Commit records appended since open.
    pub(crate) fn log_records(&self) -> u64 {
        self.wal.records()
    }

    /// Log syncs since open.
    pub(crate) fn log_syncs(&self) -> u64 {
        self.wal.syncs()
    }

    /// Log segment files on disk now.
    pub(crate) fn log_segments(&self) -> u64 {
        self.wal.segments() as u64
    }

    /// Checkpoints written since open.
    pub(crate) fn checkpoints(&self) -> u64 {
        self.checkpoints.load(Ordering::Relaxed)
    }

    /// Whether the log asked for a checkpoint (enough log since the last).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn wants_checkpoint(&self) -> bool {
        self.checkpoint_wanted.load(Ordering::Acquire)
    }

    /// Whether the log is synced in the background ([`Durability::Buffered`]).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn syncs_in_background(&self) -> bool {
        matches!(self.mode, Durability::Buffered(_))
    }

    /// Sync everything written to the log so far.
    pub(crate) fn sync_now(&self) -> Result<()> {
        self.wal.sync_now()
    }

    /// `Err` if the log is poisoned (a write or sync failed): it takes no
    /// more commits until the database is reopened.
    pub(crate) fn check(&self) -> Result<()> {
        self.wal.check()
    }

    /// Whether commits are logged (not in [`Durability::None`]).
    pub(crate) fn logs(&self) -> bool {
        self.mode != Durability::None
    }

    /// Append commit `ts`'s record (a memory copy into the pending buffer);
    /// [`Store::wait`] then waits as the mode requires. The versions are
    /// already installed; the caller publishes after the wait (even on error).
    pub(crate) fn log<'a>(
        &self,
        ts: u64,
        writes: impl ExactSizeIterator<Item = (&'a bytes::Bytes, &'a Option<bytes::Bytes>)>,
    ) -> Result<()> {
        self.wal.append(ts, writes)
    }

    /// Every commit at or below this timestamp is logged as the mode
    /// requires (and so installed: a record is appended after its install).
    pub(crate) fn logged_ts(&self) -> u64 {
        self.wal.done_ts(self.mode == Durability::Sync)
    }

    /// Wait until commit `ts` (and every one before it) is logged as the
    /// mode requires; ask for a checkpoint once enough log accumulated.
    pub(crate) fn wait(&self, ts: u64) -> Result<()> {
        let r = match self.mode {
            Durability::Sync => self.wal.wait(ts, true),
            Durability::Buffered(_) => self.wal.wait(ts, false),
            Durability::None => Ok(()),
        };
        let since = self
            .wal
            .appended()
            .saturating_sub(self.log_bytes_at_checkpoint.load(Ordering::Relaxed));
        if self.checkpoint_bytes > 0 && since > self.checkpoint_bytes {
            self.checkpoint_wanted.store(true, Ordering::Release);
        }
        r
    }

    /// First half of a checkpoint: one at a time; close the current log
    /// segment so every record appended so far is in a closed segment. The
    /// caller then takes its snapshot and calls [`Store::finish_checkpoint`].
    pub(crate) fn begin_checkpoint(&self) -> Result<MutexGuard<'_, u64>> {
        let guard = lock(&self.last_checkpoint);
        self.checkpoint_wanted.store(false, Ordering::Release);
        self.log_bytes_at_checkpoint
            .store(self.wal.appended(), Ordering::Relaxed);
        self.wal.rotate()?;
        Ok(guard)
    }

    /// Second half: write the image of the snapshot at `ts` durably, then
    /// delete the log segments and older checkpoints it covers.
    /// Log segments with commits above `keep_after` are kept (the change
    /// stream's retention).
    pub(crate) fn finish_checkpoint(
        &self,
        mut last: MutexGuard<'_, u64>,
        ts: u64,
        keep_after: u64,
        entries: impl Iterator<Item = Result<(bytes::Bytes, bytes::Bytes)>>,
    ) -> Result<u64> {
        if ts == *last && self.checkpoints.load(Ordering::Relaxed) > 0 {
            return Ok(ts);
        }
        checkpoint::write(&*self.fs, &self.dir, ts, entries)?;
        self.wal.drop_covered(ts.min(keep_after))?;
        let old: Vec<String> = self
            .fs
            .list(&self.dir)
            .map_err(Error::Io)?
            .into_iter()
            .filter(|n| checkpoint::parse_name(n).is_some_and(|t| t < ts))
            .collect();
        for n in &old {
            self.fs.remove(&self.dir.join(n)).map_err(Error::Io)?;
        }
        if !old.is_empty() {
            self.fs.sync_dir(&self.dir).map_err(Error::Io)?;
        }
        *last = ts;
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(ts)
    }

    /// The next committed change after `cursor`, at most `upto` (which must
    /// not exceed what the log has written); see [`super::changes`].
    pub(crate) fn next_change(&self, cursor: &mut ChangeCursor, upto: u64) -> Result<Option<Commit>> {
        cursor.next(&*self.fs, &self.dir, &self.wal, upto)
    }

    /// Every commit above this timestamp is still in the log.
    pub(crate) fn retained_from(&self) -> u64 {
        self.wal.retained_from()
    }

    /// How often the background thread must wake.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn tick(&self) -> Option<Duration> {
        match self.mode {
            Durability::Buffered(d) => Some(d),
            _ if self.checkpoint_bytes > 0 => Some(Duration::from_millis(50)),
            _ => None,
        }
    }
}
