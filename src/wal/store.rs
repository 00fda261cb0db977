//! The durable half of a database: its directory, log, checkpoints and the
//! background thread that syncs (buffered mode) and checkpoints.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::recovery::{recover, Recovered};
use super::writer::Wal;
use super::{checkpoint, record};
use crate::bwtree::Tree;
use crate::fs::Fs;
use crate::{Durability, Error, Result};

pub(crate) struct Store {
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) dir: PathBuf,
    pub(crate) wal: Wal,
    pub(crate) mode: Durability,
    /// Log bytes after which a checkpoint is taken automatically (0: never).
    pub(crate) checkpoint_bytes: u64,
    /// Held for the database's lifetime: no second opener.
    _lock: Box<dyn Send + Sync>,
    /// One checkpoint at a time; holds the last checkpoint's timestamp.
    ckpt: Mutex<u64>,
    /// Log bytes appended when the last checkpoint started.
    ckpt_at: AtomicU64,
    pub(crate) ckpt_wanted: AtomicBool,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) recovered: Recovered,
}

impl Store {
    /// Lock `dir`, recover it into `tree`, and start a fresh log segment.
    pub(crate) fn open(
        fs: Arc<dyn Fs>,
        dir: &Path,
        mode: Durability,
        segment_bytes: u64,
        checkpoint_bytes: u64,
        tree: &Tree,
    ) -> Result<Store> {
        fs.create_dir_all(dir).map_err(Error::Io)?;
        let lock = fs.lock(dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked { path: dir.to_owned() }
            } else {
                Error::Io(e)
            }
        })?;
        let recovered = recover(&*fs, dir, tree)?;
        let wal = Wal::create(
            fs.clone(),
            dir,
            recovered.next_seq,
            recovered.segments.clone(),
            segment_bytes.max(record::HEADER_LEN as u64 + 1),
            recovered.last_ts,
        )?;
        Ok(Store {
            fs,
            dir: dir.to_owned(),
            wal,
            mode,
            checkpoint_bytes,
            _lock: lock,
            ckpt: Mutex::new(recovered.checkpoint_ts),
            ckpt_at: AtomicU64::new(0),
            ckpt_wanted: AtomicBool::new(false),
            checkpoints: AtomicU64::new(0),
            recovered,
        })
    }

    /// Whether commits are logged (not in [`Durability::None`]).
    pub(crate) fn logs(&self) -> bool {
        self.mode != Durability::None
    }

    /// Log a commit and wait as the mode requires. The versions are already
    /// installed; the caller publishes after this returns (even on error).
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
        let since = self.wal.appended().saturating_sub(self.ckpt_at.load(Ordering::Relaxed));
        if self.checkpoint_bytes > 0 && since > self.checkpoint_bytes {
            self.ckpt_wanted.store(true, Ordering::Release);
        }
        r
    }

    /// First half of a checkpoint: one at a time; close the current log
    /// segment so every record appended so far is in a closed segment. The
    /// caller then takes its snapshot and calls [`Store::finish_checkpoint`].
    pub(crate) fn begin_checkpoint(&self) -> Result<MutexGuard<'_, u64>> {
        let guard = self.ckpt.lock().unwrap_or_else(|p| p.into_inner());
        self.ckpt_wanted.store(false, Ordering::Release);
        self.ckpt_at.store(self.wal.appended(), Ordering::Relaxed);
        self.wal.rotate()?;
        Ok(guard)
    }

    /// Second half: write the image of the snapshot at `ts` durably, then
    /// delete the log segments and older checkpoints it covers.
    pub(crate) fn finish_checkpoint(
        &self,
        mut last: MutexGuard<'_, u64>,
        ts: u64,
        entries: impl Iterator<Item = Result<(bytes::Bytes, bytes::Bytes)>>,
    ) -> Result<u64> {
        if ts == *last && self.checkpoints.load(Ordering::Relaxed) > 0 {
            return Ok(ts);
        }
        checkpoint::write(&*self.fs, &self.dir, ts, entries)?;
        self.wal.drop_covered(ts)?;
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

    /// How often the background thread must wake.
    pub(crate) fn tick(&self) -> Option<Duration> {
        match self.mode {
            Durability::Buffered(d) => Some(d),
            _ if self.checkpoint_bytes > 0 => Some(Duration::from_millis(50)),
            _ => None,
        }
    }
}
