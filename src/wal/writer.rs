//! The log writer: group commit over segment files.
//!
//! The log holds records in commit-timestamp order, with no gaps: a power
//! loss keeps a prefix of the commit order. Committers encode their record
//! outside any lock and append it under a short mutex: into the *pending*
//! buffer if it is the next timestamp (followed by any records parked behind
//! it), else *parked* until the commits before it arrive (they are between
//! taking their timestamp and appending: microseconds). Then they wait until
//! the log is durable (sync mode) or written (buffered mode) up to their
//! timestamp. Waiting is leader/follower:
//!
//! - *Write* (buffered mode): whoever takes the `out` mutex, which owns the
//!   current segment, takes *all* pending records and writes them with one
//!   `write`.
//! - *Sync* (sync mode, the buffered mode's timer, checkpoints, close):
//!   whoever takes the `sync_lock` mutex writes everything pending under
//!   `out`, then runs the [`BeforeSync`] hook and the fsync *without* `out`
//!   (through the segment's [`FsSync`] handle), so concurrent committers
//!   share one fsync and buffered writers are not held up by it. While a
//!   sync is in flight (`syncing`), records that reference value-log values
//!   are not written: the fsync could make them durable before their values
//!   (V5 of `design/storage.md` §10.1); they wait for the sync's end.
//!
//! A committer whose record was written (synced) by another returns at
//! once. No tree or transaction lock is held while waiting. Lock order:
//! `sync_lock`, then `out`, then `pending`.
//!
//! Any failed write or sync *poisons* the log: every later append or wait
//! fails with [`Error::Poisoned`] (an fsync is never retried: after a failed
//! fsync the kernel may have dropped the dirty pages).

use crate::poison::Poison;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::record;
use crate::fs::{Fs, FsFile, FsSync};
use crate::sync::{lock, AtomicU64, Mutex, MutexGuard, Ordering, TryLockError, WakeUps};
use crate::{Error, Result};

/// How far ahead a segment's space is reserved (`FsFile::preallocate`, or
/// `FsFile::zero_fill` when every commit waits for a sync; at most the
/// segment size): a sync whose writes stay inside the reservation changes
/// no file size, so `fdatasync` writes no inode, and in zeros written
/// ahead it converts no extent. On this project's machine (ext4, a
/// virtual disk) `fallocate` made about 1.3x the sync commits a second of
/// appending, and the zeros 1.2-1.7x more again (`design/durability.md`,
/// "Reserved space").
pub(crate) const PREALLOCATE: u64 = 1 << 20;

/// The unit a zero-filled reservation grows by: the log keeps
/// [`PREALLOCATE`] of zeros ahead of its records, adding a chunk at a time,
/// so a group commit writes (and syncs) about as many zeros as records,
/// rounded up to a chunk. With 1 MiB at a time, the group crossing each
/// MiB of log paid a 1 MiB write and its
/// sync (1.3 ms against 0.1 ms for a group's sync alone, measured on this
/// project's machine), and `bwtx bench --durability sync --value-size 1000`
/// saw it in its 99th percentile (`design/durability.md`, "Reserved
/// space").
const ZERO_CHUNK: u64 = 64 << 10;

/// Records written after a mark up to this size are copied behind it and
/// written with it in one `write`; a larger write gets its own.
const FRAMED_COPY: usize = 64 << 10;

/// File name of segment `seq`.
pub(crate) fn segment_name(seq: u64) -> String {
    format!("wal-{seq:010}.log")
}

/// The sequence number of a segment file name.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?.strip_suffix(".log")?.parse().ok()
}

struct Pending {
    /// Records ready to write, in timestamp order.
    buf: Vec<u8>,
    /// The timestamp the next record in `buf` must have.
    next: u64,
    /// Records whose predecessors have not arrived yet, and whether each
    /// references value-log values.
    parked: BTreeMap<u64, (Vec<u8>, bool)>,
    /// Some record in `buf` references value-log values.
    buf_refs: bool,
    /// Bytes appended since open.
    bytes: u64,
    /// Bytes of the values the records appended since open reference (in
    /// the value log, `design/storage.md` §10.1).
    referenced: u64,
}

struct CurrentSegment {
    file: Box<dyn FsFile>,
    /// `file`'s sync handle ([`FsFile::syncer`]; `None`: the file system
    /// has none, and syncs hold `out`).
    syncer: Option<Arc<dyn FsSync>>,
    /// A sync of this segment runs without `out` now.
    syncing: bool,
    /// A writer held a record back while `syncing` (it waits for the
    /// sync's end to be woken).
    held_back: bool,
    seq: u64,
    size: u64,
    /// Bytes of the file reserved so far ([`FsFile::preallocate`]).
    reserved: u64,
    max_ts: u64,
    /// The segment's durable frontier: its first `synced` bytes were
    /// durable after the last sync (the header's sync, W0, to begin with).
    synced: u64,
    /// The frontier the last mark written carries: a write after the
    /// frontier moved starts with a mark of it (`record::encode_mark`).
    marked: u64,
    /// The mark and records of a write that starts with a mark.
    framed: Vec<u8>,
    /// Closed segments: sequence number -> highest commit ts in it.
    closed: BTreeMap<u64, u64>,
    spare: Vec<u8>,
}

/// Run before every sync of a log segment: the engine syncs the values
/// placed in the value log at commit (`design/storage.md` §10.1; only a
/// buffered log's commits place them), so a record the log makes durable
/// never references a value still unsynced.
pub(crate) type BeforeSync = Box<dyn Fn() -> Result<()> + Send + Sync>;

pub(crate) struct Wal {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    segment_bytes: u64,
    pending: Mutex<Pending>,
    /// Held by the one caller running a sync.
    sync_lock: Mutex<()>,
    out: Mutex<CurrentSegment>,
    /// Every commit at or below this timestamp is appended (in `pending`'s
    /// buffer or written): `pending.next - 1`, stored under `pending`.
    appended_ts: AtomicU64,
    /// Every commit at or below this timestamp is written / durable.
    written: AtomicU64,
    /// Shared with the page store, whose flushes read it (the WAL rule W1).
    durable: crate::sync::Arc<AtomicU64>,
    poisoned: Poison,
    /// Followers sleep here while a leader writes and syncs.
    flushed: WakeUps,
    syncs: AtomicU64,
    records: AtomicU64,
    /// Every commit above this is in a segment on disk (`super::changes`).
    retained_from: AtomicU64,
    before_sync: Option<BeforeSync>,
    /// Reserve space by writing zeros ([`FsFile::zero_fill`]), not with
    /// [`FsFile::preallocate`]: when every commit waits for a sync.
    zero_fill: bool,
    /// New segments' headers carry their base (`record::header`): the
    /// database logs its commits.
    bases: bool,
}

impl Wal {
    /// Start a new segment after what recovery found in `dir`
    /// (`rec.next_seq`); its segments, with their highest commit timestamps,
    /// are the closed ones; the next record is `rec.last_ts + 1`. The log
    /// keeps its durable timestamp in `durable` (set to `last_ts` now).
    /// `before_sync` runs before each sync of a segment holding records.
    /// `mode`: with `Sync` the log reserves space by writing zeros (every
    /// commit waits for a sync: `design/durability.md`, "Reserved space");
    /// with a mode that logs commits, segment headers carry their base.
    pub(crate) fn create(
        fs: Arc<dyn Fs>,
        dir: &Path,
        rec: &super::recovery::Recovered,
        segment_bytes: u64,
        durable: crate::sync::Arc<AtomicU64>,
        before_sync: Option<BeforeSync>,
        mode: crate::Durability,
    ) -> Result<Self> {
        let (seq, closed, last_ts) = (rec.next_seq, rec.segments.clone(), rec.last_ts);
        // Every commit above this is in the log (the change stream).
        let retained_from = rec.retained_from;
        durable.store(last_ts, Ordering::Release);
        let bases = mode != crate::Durability::None;
        let (file, syncer) = new_segment(&*fs, dir, seq, bases.then_some(last_ts))?;
        Ok(Wal {
            fs,
            dir: dir.to_owned(),
            segment_bytes,
            pending: Mutex::new(Pending {
                buf: Vec::new(),
                next: last_ts + 1,
                parked: BTreeMap::new(),
                buf_refs: false,
                bytes: 0,
                referenced: 0,
            }),
            sync_lock: Mutex::new(()),
            out: Mutex::new(CurrentSegment {
                file,
                syncer,
                syncing: false,
                held_back: false,
                seq,
                size: record::HEADER_LEN as u64,
                reserved: 0,
                max_ts: 0,
                synced: record::HEADER_LEN as u64,
                marked: record::HEADER_LEN as u64,
                framed: Vec::new(),
                closed,
                spare: Vec::new(),
            }),
            appended_ts: AtomicU64::new(last_ts),
            written: AtomicU64::new(last_ts),
            durable,
            poisoned: Poison::new(),
            flushed: WakeUps::new(),
            syncs: AtomicU64::new(0),
            records: AtomicU64::new(0),
            retained_from: AtomicU64::new(retained_from),
            before_sync,
            zero_fill: mode == crate::Durability::Sync,
            bases,
        })
    }

    /// `Err(Poisoned)` once a write or sync failed.
    pub(crate) fn check(&self) -> Result<()> {
        self.poisoned.check()
    }

    /// Run `f`; if it panics, poison the log and let the panic go on (a
    /// sync that panicked may or may not have taken effect).
    pub(crate) fn on_panic<T>(&self, f: impl FnOnce() -> T) -> T {
        self.poisoned.on_panic(f)
    }

    /// Poison the log with the failure `e` (of a write or a sync), and
    /// return the error for it.
    pub(crate) fn poison(&self, e: std::io::Error) -> Error {
        self.poisoned.set(e)
    }

    /// Why the log is poisoned (its first failed write or sync), if it is.
    pub(crate) fn poison_cause(&self) -> Option<String> {
        self.poisoned.cause()
    }

    /// Append the record of commit `ts` (every allocated timestamp gets one,
    /// or the log is poisoned and nobody waits for it).
    pub(crate) fn append<'a>(
        &self,
        ts: u64,
        writes: impl Iterator<Item = (u32, &'a Bytes, record::ToLog<'a>)>,
    ) -> Result<()> {
        self.check()?;
        let mut rec = Vec::new();
        let referenced = record::encode(&mut rec, ts, writes);
        let mut p = lock(&self.pending);
        p.bytes += rec.len() as u64;
        p.referenced += referenced;
        let refs = referenced > 0;
        if ts != p.next {
            p.parked.insert(ts, (rec, refs));
        } else {
            p.buf.extend_from_slice(&rec);
            p.buf_refs |= refs;
            p.next += 1;
            while let Some((r, refs)) = {
                let n = p.next;
                p.parked.remove(&n)
            } {
                p.buf.extend_from_slice(&r);
                p.buf_refs |= refs;
                p.next += 1;
            }
            self.appended_ts.store(p.next - 1, Ordering::Release);
        }
        self.records.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Wait until every commit up to `ts` is written (`sync` false) or
    /// durable (`sync` true). If no leader is writing (syncing), become
    /// it: write everything pending (and sync it). Otherwise sleep until
    /// the leader is done (followers never queue on the leader's mutex,
    /// where one could become the next leader while its own record is
    /// already durable).
    pub(crate) fn wait(&self, ts: u64, sync: bool) -> Result<()> {
        let done = if sync { &self.durable } else { &self.written };
        loop {
            // Done first: a record written (or synced) before the log was
            // poisoned is what its mode promises, and the commit succeeded.
            if done.load(Ordering::Acquire) >= ts {
                return Ok(());
            }
            self.check()?;
            let seen = self.flushed.seen();
            let led = if sync { self.try_sync(ts)? } else { self.try_write()? };
            if led {
                if done.load(Ordering::Acquire) >= ts {
                    return Ok(());
                }
                // Our record is parked behind an earlier commit still
                // installing: give it the CPU.
                crate::sync::yield_now();
                continue;
            }
            // A leader that finished after our attempt began counted a
            // wake-up, and we look again instead of sleeping.
            self.flushed
                .sleep(seen, || done.load(Ordering::Acquire) >= ts || self.poisoned.is_set());
        }
    }

    /// Write what is pending if `out` is free and no sync holds the
    /// pending records back: `Ok(false)` if not (wait for the holder).
    /// Followers are woken if something was written (or failed), or if
    /// records appended meanwhile wait to be written (their writers may
    /// have found `out` taken and gone to sleep); not when a sync held the
    /// records back, nor for a record parked behind its predecessor, so
    /// that such writers do not wake one another in a loop.
    fn try_write(&self) -> Result<bool> {
        let before = self.written.load(Ordering::Acquire);
        let wrote = match self.out.try_lock() {
            Ok(mut out) => self.check().and_then(|()| self.write_pending(&mut out)),
            Err(TryLockError::Poisoned(_)) => return Err(self.panicked()),
            Err(TryLockError::WouldBlock) => return Ok(false),
        };
        let written = self.written.load(Ordering::Acquire);
        let waiting = matches!(wrote, Ok(Some(_))) && self.appended_ts.load(Ordering::Acquire) > written;
        if wrote.is_err() || written != before || waiting {
            self.wake_followers();
        }
        Ok(wrote?.is_some())
    }

    /// Sync if no one else is syncing and commit `ts` is not durable yet
    /// (another leader may have synced it meanwhile): `Ok(false)` if
    /// someone is syncing.
    fn try_sync(&self, ts: u64) -> Result<bool> {
        let r = match self.sync_lock.try_lock() {
            Ok(_leader) if self.durable.load(Ordering::Acquire) >= ts => return Ok(true),
            Ok(_leader) => self.sync_led(),
            Err(TryLockError::Poisoned(_)) => return Err(self.panicked()),
            Err(TryLockError::WouldBlock) => return Ok(false),
        };
        self.wake_followers();
        r.map(|()| true)
    }

    /// A thread panicked holding a writers' mutex: poison the log (if the
    /// panic did not already), since what it was writing is unknown.
    fn panicked(&self) -> Error {
        self.poisoned
            .set(std::io::Error::other("a thread panicked writing the log"));
        self.wake_followers();
        Error::Poisoned
    }

    /// A commit took timestamp `ts` and unwound before appending its
    /// record: every later record would wait behind the missing one
    /// forever, so the log is poisoned (and its waiters woken to see it).
    pub(crate) fn poison_unlogged(&self, ts: u64) {
        self.poisoned.set(std::io::Error::other(format!(
            "commit {ts} panicked between its timestamp and its log record"
        )));
        self.wake_followers();
    }

    fn wake_followers(&self) {
        self.flushed.wake();
    }

    /// Release `out` after a hold that wrote nothing (the segments'
    /// bookkeeping: checkpoints, the change stream, stats). A buffered
    /// writer that found `out` taken meanwhile went to sleep ([`Wal::try_write`]),
    /// so wake the followers if records wait to be written; else they
    /// would wait out the sleep's 1 ms timeout.
    fn release_out(&self, out: MutexGuard<'_, CurrentSegment>) {
        drop(out);
        if self.appended_ts.load(Ordering::Acquire) > self.written.load(Ordering::Acquire) {
            self.wake_followers();
        }
    }

    /// Every commit at or below this timestamp is written (`sync` false) or
    /// durable (`sync` true).
    pub(crate) fn done_ts(&self, sync: bool) -> u64 {
        if sync { &self.durable } else { &self.written }.load(Ordering::Acquire)
    }

    /// Wait up to `timeout` for every commit up to `ts` to be durable,
    /// without leading a sync (the change stream, which waits for the
    /// buffered mode's timer or a commit's sync): whether it is. Every sync
    /// and every failure wakes it ([`Wal::wake_followers`]).
    pub(crate) fn wait_durable(&self, ts: u64, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let done = || self.durable.load(Ordering::Acquire) >= ts || self.poisoned.is_set();
        loop {
            let seen = self.flushed.seen();
            if done() {
                return self.durable.load(Ordering::Acquire) >= ts;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            self.flushed.sleep_up_to(seen, done, left);
        }
    }

    /// Write everything pending and sync: for the buffered mode's timer,
    /// checkpoints and close.
    pub(crate) fn sync_now(&self) -> Result<()> {
        self.check()?;
        let r = {
            let _leader = lock(&self.sync_lock);
            self.sync_led()
        };
        self.wake_followers();
        r
    }

    /// At a clean close: sync what is pending, then, if the segment's
    /// durable frontier moved since its last mark, write a mark of it and
    /// sync that too. A crash leaves the bytes of the last sync with no
    /// mark past them, so a sector the medium loses from them later would
    /// read as a torn write (`reader::is_torn`); after a clean close it
    /// reads as damage.
    pub(crate) fn seal(&self) -> Result<()> {
        self.sync_now()?;
        let _leader = lock(&self.sync_lock);
        let mut out = lock(&self.out);
        self.check()?;
        if !self.bases || out.synced <= out.marked {
            return Ok(());
        }
        let mut mark = Vec::new();
        record::encode_mark(&mut mark, out.synced);
        let file = &mut out.file;
        self.poisoned
            .on_panic(|| file.write_all(&mark).and_then(|()| file.sync()))
            .map_err(|e| self.poison(e))?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        out.size += mark.len() as u64;
        out.marked = out.synced;
        out.synced = out.size;
        Ok(())
    }

    /// Write what is pending into the current segment: `Some(end)`, every
    /// commit up to `end` written, or `None` if a sync is in flight and
    /// a pending record references value-log values (it waits for the
    /// sync's end, so the fsync cannot make it durable before its values).
    fn write_pending(&self, out: &mut CurrentSegment) -> Result<Option<u64>> {
        let mut buf = std::mem::take(&mut out.spare);
        // `end`: every commit up to it is in `buf` or written before.
        let end = {
            let mut p = lock(&self.pending);
            if out.syncing && p.buf_refs {
                out.held_back = true;
                out.spare = buf;
                return Ok(None);
            }
            std::mem::swap(&mut buf, &mut p.buf);
            p.buf_refs = false;
            p.next - 1
        };
        if !buf.is_empty() {
            // Once the segment's durable frontier moved, the write starts
            // with a mark of it: recovery then tells a torn tail (what a
            // power loss left of writes after the frontier, in whatever
            // pages the disk kept) from damage to durable bytes
            // (`reader::is_torn`). A segment that logs no commit has none.
            let data = if self.bases && out.synced > out.marked {
                out.framed.clear();
                record::encode_mark(&mut out.framed, out.synced);
                out.marked = out.synced;
                if buf.len() > FRAMED_COPY {
                    // A large write: the mark on its own rather than a copy.
                    let (file, mark) = (&mut out.file, &out.framed);
                    self.poisoned
                        .on_panic(|| file.write_all(mark))
                        .map_err(|e| self.poison(e))?;
                    out.size += out.framed.len() as u64;
                    &buf
                } else {
                    out.framed.extend_from_slice(&buf);
                    &out.framed
                }
            } else {
                &buf
            };
            // A panic here lost the records taken from `pending`: the log
            // is poisoned, so that no later record is written after the gap.
            self.poisoned
                .on_panic(|| out.file.write_all(data))
                .map_err(|e| self.poison(e))?;
            out.size += data.len() as u64;
            out.max_ts = out.max_ts.max(end);
            self.written.store(end, Ordering::Release);
            // Reserve ahead, past the records just written (the zeros of
            // a zero fill then start after them), so that the syncs of the
            // commits after these write no inode (their writes change no
            // file size) and, zero-filled, convert no extent. This group's
            // sync makes the reservation durable with them. Zeros are kept
            // a step ahead and added a chunk at a time, so that a group
            // writes about as many zeros as records (rounded up to a
            // chunk), not a whole step at the write that crosses it.
            let step = PREALLOCATE.min(self.segment_bytes).max(1);
            let (ahead, chunk) = if self.zero_fill {
                (step, ZERO_CHUNK.min(step))
            } else {
                (0, step)
            };
            // Not past the segment's end (rounded up to a chunk): it closes
            // there; nor for a segment already full, which closes after
            // this group's sync.
            let seg_end = self.segment_bytes.div_ceil(chunk) * chunk;
            let to = ((out.size + ahead).div_ceil(chunk) * chunk).min(seg_end.max(out.size.div_ceil(chunk) * chunk));
            if to > out.reserved && out.size < self.segment_bytes {
                let file = &mut out.file;
                self.poisoned
                    .on_panic(|| {
                        if self.zero_fill {
                            file.zero_fill(to)
                        } else {
                            file.preallocate(to)
                        }
                    })
                    .map_err(|e| self.poison(e))?;
                out.reserved = to;
            }
        }
        buf.clear();
        out.spare = buf;
        Ok(Some(end))
    }

    /// The sync leader's step (the caller holds `sync_lock`): write what is
    /// pending, then run the [`BeforeSync`] hook and sync it, with `out`
    /// released meanwhile when the segment has a sync handle; close the
    /// segment if it is full.
    fn sync_led(&self) -> Result<()> {
        let (end, syncer, (seq, size)) = {
            let mut out = lock(&self.out);
            self.check()?;
            // Only the holder of `sync_lock` sets `syncing`: nothing is
            // held back.
            let end = self.write_pending(&mut out)?.unwrap_or(0);
            if self.durable.load(Ordering::Acquire) >= end {
                return self.close_if_full(&mut out);
            }
            let Some(syncer) = out.syncer.clone() else {
                self.sync_written(&mut out)?;
                return self.close_if_full(&mut out);
            };
            out.syncing = true;
            // What the sync makes durable: the segment as written now.
            (end, syncer, (out.seq, out.size))
        };
        let syncing = Syncing(self);
        // Buffered writers whose records this leader wrote return now, not
        // at the fsync's end, and those that found `out` taken write now.
        self.wake_followers();
        // Every record written so far, ours included, was appended after
        // the values it references: the hook syncs them first (V5).
        let r = self.poisoned.on_panic(|| {
            self.before_sync()
                .and_then(|()| syncer.sync().map_err(|e| self.poison(e)))
        });
        drop(syncing);
        r?;
        let mut out = lock(&self.out);
        // A buffered writer's write may have failed meanwhile (poisoning
        // the log, a torn record at the end of the segment): raise
        // nothing, close nothing (D5).
        self.check()?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.durable.fetch_max(end, Ordering::AcqRel);
        // Only this leader (holding `sync_lock`) closes the segment.
        if out.seq == seq {
            out.synced = out.synced.max(size);
        }
        self.close_if_full(&mut out)
    }

    /// Sync everything written to the current segment, holding `out` (so
    /// nothing is written meanwhile), after the [`BeforeSync`] hook.
    fn sync_written(&self, out: &mut CurrentSegment) -> Result<()> {
        let end = self.written.load(Ordering::Acquire);
        if self.durable.load(Ordering::Acquire) >= end {
            return Ok(());
        }
        self.poisoned.on_panic(|| {
            self.before_sync()?;
            out.file.sync().map_err(|e| self.poison(e))
        })?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.durable.fetch_max(end, Ordering::AcqRel);
        out.synced = out.size;
        Ok(())
    }

    /// Close the current segment once it holds `segment_bytes`, syncing
    /// what buffered writers wrote to it since the last sync first.
    fn close_if_full(&self, out: &mut CurrentSegment) -> Result<()> {
        if out.size < self.segment_bytes {
            return Ok(());
        }
        self.check()?;
        self.sync_written(out)?;
        self.rotate_locked(out)
    }

    /// Run the [`BeforeSync`] hook. A failure poisons the value log's store
    /// and the log (nothing after it is durable for sure).
    fn before_sync(&self) -> Result<()> {
        if let Some(before) = &self.before_sync {
            if let Err(e) = before() {
                self.poisoned
                    .set(std::io::Error::other(format!("value log sync failed: {e}")));
                return Err(e);
            }
        }
        Ok(())
    }
}

/// A sync in flight without `out` ([`Wal::sync_led`]): dropping it clears
/// `syncing` and wakes the writers it held back, so that they do not wait
/// forever. (Every follower is woken again once the leader returns:
/// [`Wal::try_sync`], [`Wal::sync_now`].) After a panic in the hook or the
/// fsync, which poisoned the log ([`Poison::on_panic`]), it wakes every
/// follower, since the leader's own wake-up will not come.
struct Syncing<'a>(&'a Wal);

impl Drop for Syncing<'_> {
    fn drop(&mut self) {
        let held_back = {
            let mut out = lock(&self.0.out);
            out.syncing = false;
            std::mem::take(&mut out.held_back)
        };
        if held_back || self.0.poisoned.is_set() {
            self.0.wake_followers();
        }
    }
}

mod segments;
use segments::new_segment;
