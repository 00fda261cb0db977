//! The durable half of a database: its directory (locked), log and
//! checkpoints. It decides when a checkpoint is due ([`Store::tick`]) and
//! how often a buffered log is synced in the background
//! ([`Store::sync_interval`]); the engine's log and sync threads
//! (`crate::engine::workers`) ask it and act.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::changes::ChangeCursor;
use super::hist::{self, Hist};
use super::record::Commit;
use super::recovery::{recover, Recovered, Replay, Start};
use super::writer::Wal;
use super::{checkpoint, record};
use crate::fs::Fs;
use crate::sync::{lock, AtomicBool, AtomicU64, Mutex, MutexGuard, Ordering};
use crate::{Durability, Error, Result};

/// The least log a clean close writes an image to save the next open from
/// replaying: about 0.1 s of replay on this project's machine (34 MB/s).
pub(crate) const CLOSE_IMAGE_MIN_LOG: u64 = 4 << 20;

/// The largest log segment (`Options::segment_bytes` above it is taken as
/// it): recovery reads each segment whole, so this bounds its memory.
pub(crate) const MAX_SEGMENT_BYTES: u64 = 1 << 30;

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
    /// Log bytes appended, with the values their records reference
    /// (`Wal::logical`), when the last completed checkpoint (durable, and
    /// the log it covers deleted) started: what was appended since is what
    /// the next open replays, at most.
    log_bytes_at_checkpoint: AtomicU64,
    /// The log's length when the last checkpoint began (set under
    /// `last_checkpoint`): the next automatic checkpoint is due
    /// `checkpoint_bytes` after it, whether this one succeeded or not (a
    /// failing one is retried after as much log again, not at every tick).
    /// It becomes `log_bytes_at_checkpoint` only once the checkpoint
    /// completes, so that a failed one leaves its log counted as replay.
    log_bytes_at_begin: AtomicU64,
    checkpoint_wanted: AtomicBool,
    /// Set when the background sync thread stopped while handles may still
    /// commit (the last `Db` dropped, a transaction still open): buffered
    /// commits then wait for a sync of their own, since no thread would
    /// sync them until the engine closes (which a change reader waiting on
    /// them would put off forever).
    self_sync: AtomicBool,
    checkpoints: AtomicU64,
    /// The size of the newest version-1 image (loaded at open or written
    /// since; 0: none).
    image_bytes: AtomicU64,
    recovered: Recovered,
    /// The durable timestamp ([`Store::durable_ts`]); the log's own counter
    /// unless the mode has no log.
    durable: crate::sync::Arc<AtomicU64>,
    /// Recovery started from a location table.
    table_at_open: bool,
    /// Without a log: checkpoints holding `D` where it is
    /// ([`Store::hold_unlogged`]).
    unlogged_holds: Mutex<u32>,
}

/// A checkpoint's hold on `D` without a log ([`Store::hold_unlogged`]).
pub(crate) struct UnloggedHold<'a>(&'a Store);

impl Drop for UnloggedHold<'_> {
    fn drop(&mut self) {
        *lock(&self.0.unlogged_holds) -= 1;
    }
}

/// What a checkpoint keeps besides itself, and the history file it writes.
pub(crate) struct Keep {
    /// Log segments holding a commit above this stay (the change stream's
    /// retention; `u64::MAX`: none).
    pub(crate) changes_after: u64,
    /// `Options::history_retention` on a version-1 database with a log:
    /// the read timestamps a quarter, half, three quarters and a whole
    /// window ago (the last is the retention horizon); see [`kept`]. Empty:
    /// only the new checkpoint stays.
    pub(crate) history_marks: Vec<u64>,
    /// The history file written before the checkpoint (`super::hist`).
    pub(crate) hist: Hist,
}

/// Which of the checkpoints `all` (the new one, `ts`, included) a
/// checkpoint keeps, and `k`: the newest at or below the retention horizon
/// (the smallest mark; 0, the empty database, if none is), from which
/// recovery will start, so the log after it stays. The marks cut the
/// timestamps above the horizon into intervals (the last one unbounded);
/// besides `k` and `ts`, the oldest checkpoint in each interval stays: as
/// the horizon moves up through an interval (in about a quarter window),
/// that one becomes `k` first. So at most six images are kept, and the log
/// replayed at open spans about a window and a quarter at most (plus a
/// checkpoint interval). Without marks, `k = ts` and only `ts` stays.
pub(crate) fn kept(
    all: &std::collections::BTreeSet<u64>,
    ts: u64,
    marks: &[u64],
) -> (u64, std::collections::BTreeSet<u64>) {
    let mut marks = marks.to_vec();
    marks.sort_unstable();
    marks.dedup();
    let Some(&horizon) = marks.first() else {
        return (ts, [ts].into());
    };
    let k = all.range(..=horizon).next_back().copied().unwrap_or(0);
    let mut stay: std::collections::BTreeSet<u64> = [k, ts].into();
    for (i, &low) in marks.iter().enumerate() {
        let high = marks.get(i + 1).copied().unwrap_or(u64::MAX);
        stay.extend(all.range(low.saturating_add(1)..=high).next().copied());
    }
    (k, stay)
}

/// The lock of a database directory, held for the database's lifetime.
pub(crate) type DirLock = Box<dyn Send + Sync>;

impl Store {
    /// Create `dir` if needed and lock it: no second opener. Taken before
    /// anything in the directory is read.
    pub(crate) fn lock(fs: &dyn Fs, dir: &Path) -> Result<DirLock> {
        fs.create_dir_all(dir).map_err(Error::Io)?;
        fs.lock(dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked { path: dir.to_owned() }
            } else {
                Error::Io(e)
            }
        })
    }

    /// Recover the locked `dir` into `into` from `start` (see
    /// [`recover`]; `oldest`: from the oldest complete version-1
    /// checkpoint), and start a fresh log segment. The log keeps its
    /// durable timestamp in `durable` ([`Store::durable_ts`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open(
        fs: Arc<dyn Fs>,
        dir: &Path,
        lock: DirLock,
        mode: Durability,
        segment_bytes: u64,
        checkpoint_bytes: u64,
        into: &dyn Replay,
        start: Start,
        oldest: bool,
        durable: crate::sync::Arc<AtomicU64>,
        before_sync: Option<super::writer::BeforeSync>,
    ) -> Result<Store> {
        let table_at_open = matches!(start, Start::Table(_));
        let recovered = recover(&*fs, dir, into, start, oldest)?;
        // Without a log, what recovery restored is all that is durable;
        // checkpoints move it on (`Store::mark_durable`).
        let wal_durable = if mode == Durability::None {
            durable.store(recovered.last_ts, Ordering::Release);
            crate::sync::Arc::new(AtomicU64::new(0))
        } else {
            durable.clone()
        };
        let wal = Wal::create(
            fs.clone(),
            dir,
            &recovered,
            // At most 1 GiB: recovery reads a segment whole.
            segment_bytes.clamp(record::HEADER_LEN as u64 + 1, MAX_SEGMENT_BYTES),
            wal_durable,
            before_sync,
            mode,
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
            log_bytes_at_begin: AtomicU64::new(0),
            checkpoint_wanted: AtomicBool::new(false),
            self_sync: AtomicBool::new(false),
            checkpoints: AtomicU64::new(0),
            image_bytes: AtomicU64::new(recovered.image_bytes),
            recovered,
            durable,
            table_at_open,
            unlogged_holds: Mutex::new(0),
        })
    }

    /// The durable timestamp `D`: every commit at or below it survives a
    /// power loss (the log's synced end; without a log, the last
    /// checkpoint's timestamp).
    pub(crate) fn durable_ts(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Without a log ([`Durability::None`]): every commit at or below the
    /// read timestamp `read_ts()` is installed whole, so page images may
    /// hold it (W1's `D` becomes the read timestamp: nothing is durable but
    /// through a checkpoint). Not while a checkpoint holds `D`
    /// ([`Store::hold_unlogged`]). A no-op with a log.
    pub(crate) fn unlogged_visible(&self, read_ts: impl FnOnce() -> u64) {
        if self.mode == Durability::None {
            let holds = lock(&self.unlogged_holds);
            if *holds == 0 {
                // Read under the lock: a hold taken after it sees this
                // timestamp or a later one (`hold_unlogged`).
                self.durable.fetch_max(read_ts(), Ordering::AcqRel);
            }
        }
    }

    /// Without a log, a checkpoint takes this before its timestamp `C` and
    /// keeps it until its table is listed: `D` does not move meanwhile, so
    /// every image an eviction writes holds nothing above `C` (each raise
    /// of `D` before the hold read a read timestamp at most `C`, taken
    /// later), and the table names no version newer than `C` (an image
    /// evicted between the timestamp and the pause of evictions used to
    /// hold one: a torn commit after a crash). Harmless with a log.
    pub(crate) fn hold_unlogged(&self) -> UnloggedHold<'_> {
        *lock(&self.unlogged_holds) += 1;
        UnloggedHold(self)
    }

    /// Whether commits are logged; without a log, a checkpoint's images
    /// must hold nothing above its timestamp.
    pub(crate) fn has_log(&self) -> bool {
        self.mode != Durability::None
    }

    /// Make every commit at or below `ts` (all installed) durable as far as
    /// the log can: sync it; without a log, `ts` becomes durable with the
    /// checkpoint being written at `ts` (its page images are the only copy).
    pub(crate) fn make_durable(&self, ts: u64) -> Result<()> {
        if self.mode == Durability::None {
            self.durable.fetch_max(ts, Ordering::AcqRel);
            return Ok(());
        }
        self.wal.sync_now()
    }

    /// Wait up to `timeout` for commit `ts` to be durable, without syncing
    /// ([`Wal::wait_durable`]): whether it is. False at once without a log.
    pub(crate) fn wait_durable(&self, ts: u64, timeout: std::time::Duration) -> bool {
        self.mode != Durability::None && self.wal.wait_durable(ts, timeout)
    }

    /// What recovery found when the store opened.
    pub(crate) fn recovered(&self) -> &Recovered {
        &self.recovered
    }

    /// Log bytes appended since open (records and their framing).
    pub(crate) fn log_bytes(&self) -> u64 {
        self.wal.appended()
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

    /// A clean close without a page store: whether the next open would
    /// replay at least [`CLOSE_IMAGE_MIN_LOG`] bytes of log and at least as
    /// many as the newest checkpoint image holds, so that writing an image
    /// now costs about what it saves the next open, which loads an image
    /// several times faster than it replays a log of the same size
    /// (`design/durability.md` §5, "Clean close"). The log to
    /// replay: what recovery found (until this run's first checkpoint) and
    /// what was appended since the last checkpoint began.
    pub(crate) fn replay_outweighs_image(&self) -> bool {
        let found = if self.checkpoints() == 0 {
            self.recovered.log_bytes
        } else {
            0
        };
        let log = found
            + self
                .wal
                .logical()
                .saturating_sub(self.log_bytes_at_checkpoint.load(Ordering::Relaxed));
        log >= CLOSE_IMAGE_MIN_LOG && log >= self.image_bytes.load(Ordering::Relaxed)
    }

    /// Whether a commit waits for a sync of its record (`Durability::Sync`).
    pub(crate) fn syncs_commits(&self) -> bool {
        self.mode == Durability::Sync
    }

    /// The database directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sync everything written to the log so far.
    pub(crate) fn sync_now(&self) -> Result<()> {
        self.wal.sync_now()
    }

    /// [`Store::sync_now`] at a clean close, then a mark of the log's durable
    /// frontier (`crate::wal::writer::Wal::seal`).
    pub(crate) fn seal(&self) -> Result<()> {
        self.wal.seal()
    }

    /// The background sync thread is gone: sync what was written so far,
    /// and make every later buffered commit wait for a sync of its own
    /// ([`Store::wait`]). A commit that read the flag before it was set
    /// had written its record before, so this sync covers it.
    pub(crate) fn sync_commits_from_now(&self) -> Result<()> {
        self.self_sync.store(true, Ordering::SeqCst);
        self.wal.sync_now()
    }

    /// `Err` if the log is poisoned (a write or sync failed): it takes no
    /// more commits until the database is reopened.
    pub(crate) fn check(&self) -> Result<()> {
        self.wal.check()
    }

    /// Why the log is poisoned, if it is.
    pub(crate) fn poison_cause(&self) -> Option<String> {
        self.wal.poison_cause()
    }

    /// Whether commits are logged (not in [`Durability::None`]).
    pub(crate) fn logs(&self) -> bool {
        self.mode != Durability::None
    }

    /// Commit `ts` unwound (a panic) between taking its timestamp and
    /// appending its record: poison the log, whose later records would
    /// otherwise wait behind the missing one forever.
    pub(crate) fn poison_unlogged(&self, ts: u64) {
        self.wal.poison_unlogged(ts);
    }

    /// Append commit `ts`'s record (a memory copy into the pending buffer);
    /// [`Store::wait`] then waits as the mode requires. The versions are
    /// already installed; the caller publishes after the wait (even on error).
    pub(crate) fn log<'a>(
        &self,
        ts: u64,
        writes: impl Iterator<Item = (u32, &'a bytes::Bytes, record::ToLog<'a>)>,
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
            Durability::Buffered(_) => match self.wal.wait(ts, false) {
                // Written; synced by the sync thread, or (once it stopped)
                // here.
                Ok(()) if self.self_sync.load(Ordering::SeqCst) => self.wal.wait(ts, true),
                r => r,
            },
            Durability::None => Ok(()),
        };
        let since = self
            .wal
            .logical()
            .saturating_sub(self.log_bytes_at_begin.load(Ordering::Relaxed));
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
        self.log_bytes_at_begin.store(self.wal.logical(), Ordering::Relaxed);
        self.checkpoint_wanted.store(false, Ordering::Release);
        self.wal.rotate()?;
        Ok(guard)
    }

    /// Whether a checkpoint at `ts` would add anything: not if this run
    /// already wrote one at `ts`, or opened from a location table at `ts`
    /// (a version-1 image at `ts` is still replaced by a table).
    pub(crate) fn checkpoint_due(&self, last: &MutexGuard<'_, u64>, ts: u64) -> bool {
        let done = self.checkpoints.load(Ordering::Relaxed) > 0 || self.table_at_open;
        !(ts == **last && done)
    }

    /// Second half: write the history file `keep.hist`, then the image of
    /// the snapshot at `ts` durably, then delete the log segments and older
    /// checkpoints it covers (but what `keep` keeps).
    pub(crate) fn finish_checkpoint(
        &self,
        last: MutexGuard<'_, u64>,
        ts: u64,
        keep: Keep,
        entries: impl Iterator<Item = Result<(u32, bytes::Bytes, bytes::Bytes)>>,
    ) -> Result<u64> {
        if !self.checkpoint_due(&last, ts) {
            return Ok(ts);
        }
        // A failed sync poisons, and so does a panic anywhere in it (a
        // user's `Fs`, or a bug): no sync is retried
        // (`design/durability.md` D5).
        self.wal.on_panic(|| {
            let poison = |e| self.wal.poison(e);
            hist::write(&*self.fs, &self.dir, &keep.hist, &poison)?;
            let bytes = checkpoint::write(&*self.fs, &self.dir, ts, entries, &poison)?;
            self.image_bytes.store(bytes, Ordering::Relaxed);
            self.covered(last, ts, &keep)
        })
    }

    /// The history files at open: the newest one's samples, and checkpoint
    /// `ts`'s file if it has one (see [`hist::read`]).
    pub(crate) fn read_hist(fs: &dyn crate::fs::Fs, dir: &Path, ts: Option<u64>) -> Result<hist::AtOpen> {
        hist::read(fs, dir, ts)
    }

    /// Second half for a location table (`design/storage.md` §6, step 5):
    /// write the history file `keep.hist`, then `table` (encoded, as of
    /// `ts`) as `ckpt-<ts>.tmp`, sync it, rename it to `ckpt-<ts>.ckpt`,
    /// sync the directory; then delete the log segments and older
    /// checkpoints it covers. The page images it names must be durable
    /// already.
    pub(crate) fn finish_table(&self, last: MutexGuard<'_, u64>, ts: u64, keep: Keep, table: &[u8]) -> Result<u64> {
        // A failed sync poisons, and so does a panic anywhere in it (a
        // user's `Fs`, or a bug): no sync is retried
        // (`design/durability.md` D5).
        self.wal.on_panic(|| {
            let poison = |e| self.wal.poison(e);
            hist::write(&*self.fs, &self.dir, &keep.hist, &poison)?;
            let (tmp, name) = (checkpoint::tmp_name(ts), checkpoint::name(ts));
            checkpoint::write_bytes(&*self.fs, &self.dir, &tmp, &name, table, &poison)?;
            self.covered(last, ts, &keep)
        })
    }

    /// After checkpoint `ts` is durable: delete the older checkpoint files
    /// but those [`kept`] keeps for `keep.history_marks` (with `k`, the one
    /// recovery will start from), and history files older than `ts`; then
    /// the log segments whose records are all at or below `ts`, `k` and
    /// `keep.changes_after`. Checkpoints go first, so that the log after
    /// every checkpoint left on disk stays complete (`recover`'s `oldest`).
    fn covered(&self, mut last: MutexGuard<'_, u64>, ts: u64, keep: &Keep) -> Result<u64> {
        let names = self.fs.list(&self.dir).map_err(Error::Io)?;
        let all = names
            .iter()
            .filter_map(|n| checkpoint::parse_name(n))
            .chain([ts])
            .collect();
        let (k, stay) = kept(&all, ts, &keep.history_marks);
        let old: Vec<&String> = names
            .iter()
            .filter(|n| checkpoint::parse_name(n).is_some_and(|t| !stay.contains(&t)))
            .collect();
        for n in &old {
            self.fs.remove(&self.dir.join(n)).map_err(Error::Io)?;
        }
        if hist::remove_older(&*self.fs, &self.dir, ts)? > 0 || !old.is_empty() {
            self.fs.sync_dir(&self.dir).map_err(|e| self.wal.poison(e))?;
        }
        self.wal.drop_covered(ts.min(k).min(keep.changes_after))?;
        *last = ts;
        self.log_bytes_at_checkpoint
            .store(self.log_bytes_at_begin.load(Ordering::Relaxed), Ordering::Relaxed);
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

    /// How often the sync thread syncs the log (in buffered mode only).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn sync_interval(&self) -> Option<Duration> {
        match self.mode {
            Durability::Buffered(d) => Some(d),
            _ => None,
        }
    }

    /// How often the log thread (checkpoints, cleaning) must wake: every
    /// 50 ms with a buffered log or automatic checkpoints. (A buffered log
    /// used to wake it at its sync interval, which the sync thread now
    /// keeps: with `Buffered(Duration::MAX)` no automatic checkpoint ran.)
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn tick(&self) -> Option<Duration> {
        match self.mode {
            Durability::Buffered(_) => Some(Duration::from_millis(50)),
            _ if self.checkpoint_bytes > 0 => Some(Duration::from_millis(50)),
            _ => None,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::kept;

    #[test]
    fn kept_checkpoints_step_through_the_window() {
        let all = [10, 20, 30, 40, 50, 60, 70, 80].into();
        // No marks: the new checkpoint only.
        assert_eq!(kept(&all, 80, &[]), (80, [80].into()));
        // Marks at 65, 45, 25, 15 (a quarter window apart): k = 10, the
        // oldest in (15, 25], (25, 45], (45, 65] and above, the new one.
        assert_eq!(kept(&all, 80, &[65, 45, 25, 15]), (10, [10, 20, 30, 50, 70, 80].into()));
        // Nothing is old enough yet: k = 0 (the log from the start stays),
        // and 10, the next to become k, stays too.
        assert_eq!(kept(&all, 80, &[25, 9, 9, 9]), (0, [0, 10, 30, 80].into()));
        // The horizon has just missed 35: it stays though a newer
        // checkpoint is below the next mark.
        let all = [35, 90, 150, 210, 270, 330].into();
        assert_eq!(
            kept(&all, 330, &[250, 175, 100, 25]),
            (0, [0, 35, 150, 210, 270, 330].into())
        );
    }
}
