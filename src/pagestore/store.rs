//! [`SegmentStore`]: an append-only store of records in the segment files of
//! one directory; the page store (kind [`Kind::Pages`]) and the value log
//! ([`Kind::ValueLog`]) are each one.
//!
//! - **Append** ([`SegmentStore::append`]): the caller encodes outside any
//!   lock, then writes under the `out` mutex, which owns the current
//!   segment; the record's address is where it landed, so concurrent
//!   appenders get distinct addresses. Once the current segment holds
//!   `segment_bytes`, the next append first syncs it and starts segment
//!   `seq + 1` (created, header synced, directory synced): every segment but
//!   the newest is durable whole.
//! - **Sync** ([`SegmentStore::sync`]): group sync, leader and followers as
//!   in `crate::wal::writer`: one fsync covers every record appended before
//!   it, and a caller whose records another sync covered returns at once.
//!   The fsync goes through the segment's sync handle (`FsFile::syncer`)
//!   with `out` released, so appends go on while it runs.
//! - **Read** ([`SegmentStore::read`]): two positional reads (the header, then
//!   the payload) through a handle that concurrent readers share; the crc is
//!   checked, and a bad record is always [`Error::Corruption`] naming the
//!   file and the record's offset.
//! - **Poison**: a failed write or sync (of a segment or of the directory)
//!   poisons the store: every later append or sync fails with
//!   [`Error::Poisoned`], and no fsync is retried. Reads keep working.
//! - **Open**: lists the segments of the kind, checks each header, and scans
//!   the newest one (`super::segment::scan`): a torn tail is truncated
//!   (durably), and appending resumes at its end after a sync, so everything
//!   found at open is durable.
//!
//! Positions: `pos = (seq << 32) + offset` orders every byte of every segment;
//! `written` and `durable` are positions, the ends of what is appended and of
//! what is synced. Lock order: `sync_leader`, then `out`, then `file_sync`,
//! then `segs`.

use crate::poison::Poison;
use std::collections::BTreeMap;
use std::path::PathBuf;
// Shared file handles, like `Arc<dyn Fs>`: no protocol of ours on them.
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::record::{self, Addr, Kind, Meta, MAX_SEGMENT_BYTES, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::segment;
use crate::fs::{Fs, FsFile, FsRead, FsSync};
use crate::sync::{lock, AtomicU64, Mutex, Ordering, TryLockError, WakeUps};
use crate::{Error, Result};

mod open;

/// A record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) meta: Meta,
    pub(crate) payload: Bytes,
}

/// Scratch buffers above this are freed, not kept for the next read.
const SCRATCH_KEEP: usize = 256 << 10;

std::thread_local! {
    /// This thread's buffer for [`SegmentStore::read_scratch`].
    static SCRATCH: std::cell::Cell<Option<BytesMut>> = const { std::cell::Cell::new(None) };
}

/// A record read into this thread's scratch buffer
/// ([`SegmentStore::read_scratch`]): dropped, it hands the buffer back if
/// no slice of it is left.
pub(crate) struct Scratch {
    pub(crate) record: Record,
    full: Bytes,
}

impl Scratch {
    /// A record read into a buffer of its own (nothing handed back).
    pub(crate) fn owned(record: Record) -> Self {
        Scratch {
            record,
            full: Bytes::new(),
        }
    }
}

impl std::ops::Deref for Scratch {
    type Target = Record;
    fn deref(&self) -> &Record {
        &self.record
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.record.payload = Bytes::new();
        // (A kept buffer grew at most to the largest record it read, so
        // checking each read's length bounds what the thread keeps, to
        // about twice `SCRATCH_KEEP` with the buffer's growth.)
        let full = std::mem::take(&mut self.full);
        if full.is_empty() || full.len() > SCRATCH_KEEP {
            return;
        }
        if let Ok(buf) = full.try_into_mut() {
            // (`try_with`: a thread tearing down its locals frees it.)
            let _ = SCRATCH.try_with(|s| s.set(Some(buf)));
        }
    }
}

/// One segment's size and live bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    pub(crate) seq: u64,
    /// The segment's length (header and records).
    pub(crate) bytes: u64,
    /// Record bytes the caller counts live ([`SegmentStore::add_live`]).
    pub(crate) live: u64,
}

struct Seg {
    /// Bytes written (the file's length, or what this handle appended).
    end: u64,
    live: u64,
    reader: Arc<dyn FsRead>,
}

/// The current segment.
struct Out {
    file: Box<dyn FsFile>,
    /// `file`'s sync handle ([`FsFile::syncer`]; `None`: syncs hold `out`).
    syncer: Option<Arc<dyn FsSync>>,
    seq: u64,
    size: u64,
}

impl Out {
    fn new(file: Box<dyn FsFile>, seq: u64, size: u64) -> std::io::Result<Out> {
        let syncer = file.syncer()?.map(Arc::from);
        Ok(Out {
            file,
            syncer,
            seq,
            size,
        })
    }
}

/// The position of byte `offset` of segment `seq`.
fn pos(seq: u64, offset: u64) -> u64 {
    (seq << 32) + offset
}

/// Records in the segment files of one directory.
pub(crate) struct SegmentStore {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    kind: Kind,
    segment_bytes: u64,
    out: Mutex<Out>,
    segs: Mutex<BTreeMap<u64, Seg>>,
    /// Positions: the end of what is appended, and of what is synced.
    written: AtomicU64,
    durable: AtomicU64,
    poisoned: Poison,
    /// Held by the one caller running a sync.
    sync_leader: Mutex<()>,
    /// Held across every fsync of the current segment, taken under `out`:
    /// the sync leader's (which then releases `out`) and a rotation's. The
    /// two handles share one open file description, so an error one fsync
    /// reports the other may not: a rotation must not sync (and raise
    /// `durable` past) a segment whose other fsync is failing, and waits
    /// here, then sees the poison.
    file_sync: Mutex<()>,
    /// Followers sleep here while the leader syncs.
    synced: WakeUps,
    syncs: AtomicU64,
    appended: AtomicU64,
    /// The torn tail the open cut off: segment, offset and reason.
    truncated: Option<(u64, u64, &'static str)>,
}

impl SegmentStore {
    /// `Err(Poisoned)` once a write or sync failed.
    pub(crate) fn check(&self) -> Result<()> {
        self.poisoned.check()
    }

    /// Why the segments are poisoned (the first failed write or sync), if
    /// they are.
    pub(crate) fn poison_cause(&self) -> Option<String> {
        self.poisoned.cause()
    }

    /// The file system the segments are on.
    pub(crate) fn fs(&self) -> &dyn Fs {
        &*self.fs
    }

    fn poison(&self, e: std::io::Error) -> Error {
        self.poisoned.set(e)
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(segment::name(self.kind, seq))
    }

    /// Append a record; returns its address. It is durable once a later
    /// [`SegmentStore::sync`] returns.
    pub(crate) fn append(&self, meta: &Meta, payload: &[u8]) -> Result<Addr> {
        self.check()?;
        if !meta.rkind.belongs_in(self.kind) {
            return Err(Error::InvalidArgument(
                "record kind does not belong in this segment store",
            ));
        }
        let bytes = record::record_bytes(payload.len());
        if payload.len() > u32::MAX as usize || bytes > MAX_SEGMENT_BYTES - SEGMENT_HEADER_LEN as u64 {
            return Err(Error::InvalidArgument("record too large for a segment"));
        }
        let mut rec = Vec::with_capacity(bytes as usize);
        record::encode(&mut rec, meta, payload);
        let mut out = lock(&self.out);
        self.check()?;
        if out.size > SEGMENT_HEADER_LEN as u64
            && (out.size >= self.segment_bytes || out.size + bytes > MAX_SEGMENT_BYTES)
        {
            self.rotate(&mut out)?;
        }
        let offset = out.size;
        self.poisoned
            .on_panic(|| out.file.write_all(&rec))
            .map_err(|e| self.poison(e))?;
        out.size += bytes;
        if let Some(s) = lock(&self.segs).get_mut(&out.seq) {
            s.end = out.size;
        }
        self.written.store(pos(out.seq, out.size), Ordering::Release);
        self.appended.fetch_add(bytes, Ordering::Relaxed);
        Ok(record::addr(out.seq, offset))
    }

    /// Sync the current segment and start the next one.
    fn rotate(&self, out: &mut Out) -> Result<()> {
        {
            let _file_sync = lock(&self.file_sync);
            self.check()?;
            self.poisoned.on_panic(|| out.file.sync()).map_err(|e| self.poison(e))?;
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.durable.fetch_max(pos(out.seq, out.size), Ordering::AcqRel);
        let seq = out.seq + 1;
        if seq > u64::from(u32::MAX) {
            return Err(Error::InvalidConfig("segment store ran out of segment numbers"));
        }
        // Everything that can fail first, then the switch: a rotation that
        // fails leaves `segs` and `out` naming the same current segment
        // (and the store poisoned).
        let file = self
            .poisoned
            .on_panic(|| segment::create(&*self.fs, &self.dir, self.kind, seq))
            .map_err(|e| self.poison(e))?;
        let reader = self.fs.open_read(&self.path(seq)).map_err(|e| self.poison(e))?.into();
        let size = SEGMENT_HEADER_LEN as u64;
        let next = Out::new(file, seq, size).map_err(|e| self.poison(e))?;
        lock(&self.segs).insert(
            seq,
            Seg {
                end: size,
                live: 0,
                reader,
            },
        );
        *out = next;
        self.written.store(pos(seq, size), Ordering::Release);
        self.durable.fetch_max(pos(seq, size), Ordering::AcqRel);
        Ok(())
    }

    /// Make every record appended before this call durable. Concurrent
    /// callers share one fsync: the leader syncs, followers wait for it.
    pub(crate) fn sync(&self) -> Result<()> {
        let target = self.written.load(Ordering::Acquire);
        loop {
            self.check()?;
            if self.durable.load(Ordering::Acquire) >= target {
                return Ok(());
            }
            let seen = self.synced.seen();
            match self.sync_leader.try_lock() {
                Ok(leader) => {
                    let r = if self.durable.load(Ordering::Acquire) >= target {
                        Ok(())
                    } else {
                        self.sync_current()
                    };
                    drop(leader);
                    self.synced.wake();
                    r?;
                }
                Err(TryLockError::Poisoned(_)) => {
                    // A sync leader panicked: `sync_current` poisoned the store.
                    self.poisoned
                        .set(std::io::Error::other("a sync of the segment store panicked"));
                    return Err(Error::Poisoned);
                }
                // A leader that finished after our try_lock counted a
                // wake-up, and we look again instead of sleeping.
                Err(TryLockError::WouldBlock) => self.synced.sleep(seen, || {
                    self.durable.load(Ordering::Acquire) >= target || self.poisoned.is_set()
                }),
            }
        }
    }

    /// Sync the current segment up to its end now (the leader's step).
    /// With a sync handle the fsync runs without `out`, so appends (a
    /// buffered log's commits placing values) go on meanwhile; a rotation
    /// meanwhile synced the segment whole itself.
    fn sync_current(&self) -> Result<()> {
        let mut out = lock(&self.out);
        self.check()?;
        let end = pos(out.seq, out.size);
        if self.durable.load(Ordering::Acquire) >= end {
            return Ok(());
        }
        let file_sync = lock(&self.file_sync);
        match out.syncer.clone() {
            Some(syncer) => {
                drop(out);
                // Poisoned (on a failure or a panic) before `file_sync` is
                // released.
                self.poisoned.on_panic(|| syncer.sync()).map_err(|e| self.poison(e))?;
            }
            None => self.poisoned.on_panic(|| out.file.sync()).map_err(|e| self.poison(e))?,
        }
        drop(file_sync);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.durable.fetch_max(end, Ordering::AcqRel);
        Ok(())
    }

    /// Read the record at `addr`, checking its crc.
    pub(crate) fn read(&self, addr: Addr) -> Result<Record> {
        let (reader, header, _) = self.header_at(addr)?;
        let len = record::payload_len(&header);
        let mut body = vec![0u8; record::padded(len)];
        let offset = record::addr_offset(addr);
        reader
            .read_exact_at(offset + RECORD_HEADER_LEN as u64, &mut body)
            .map_err(Error::Io)?;
        let meta = self.verify(addr, &header, &body)?;
        body.truncate(len);
        Ok(Record {
            meta,
            payload: Bytes::from(body),
        })
    }

    /// [`SegmentStore::read`] in one positional read when the caller knows
    /// the record's bytes (`hint`: header, payload and padding, as
    /// [`record::record_bytes`] counts them; remembered from a write or an
    /// earlier read, or computed from a reference). A hint that does not fit
    /// the segment or disagrees with the header read falls back to
    /// [`SegmentStore::read`], so every check and error is the same. The
    /// payload is a slice of the one buffer read.
    pub(crate) fn read_hinted(&self, addr: Addr, hint: Option<u64>) -> Result<Record> {
        self.read_hinted_in(addr, hint, BytesMut::new())
            .map(|(record, _)| record)
    }

    /// [`SegmentStore::read_hinted`] into this thread's scratch buffer, for
    /// a reader that keeps no slice of the payload past the [`Scratch`]:
    /// dropping it hands the buffer back for the next read, so a point read
    /// that reads through a page's image allocates nothing for it once the
    /// thread has read one (no trip to the allocator's shared arenas, whose
    /// lock the readers and the evictor contend for). A slice kept longer
    /// only costs the reuse.
    pub(crate) fn read_scratch(&self, addr: Addr, hint: Option<u64>) -> Result<Scratch> {
        let buf = SCRATCH.try_with(|s| s.take()).ok().flatten().unwrap_or_default();
        let (record, full) = self.read_hinted_in(addr, hint, buf)?;
        Ok(Scratch { record, full })
    }

    /// [`SegmentStore::read_hinted`] into `buf` (its capacity reused):
    /// the record, and the whole buffer read (empty when the hint was not
    /// used).
    fn read_hinted_in(&self, addr: Addr, hint: Option<u64>, mut buf: BytesMut) -> Result<(Record, Bytes)> {
        let Some(bytes) = hint.filter(|&b| b >= RECORD_HEADER_LEN as u64) else {
            return Ok((self.read(addr)?, Bytes::new()));
        };
        let (seq, offset) = (record::addr_seq(addr), record::addr_offset(addr));
        // (The guard is dropped before `read` takes the lock again.)
        let found = lock(&self.segs).get(&seq).map(|s| (s.reader.clone(), s.end));
        let Some((reader, end)) = found else {
            return Ok((self.read(addr)?, Bytes::new()));
        };
        if !offset.is_multiple_of(record::ALIGN as u64)
            || offset < SEGMENT_HEADER_LEN as u64
            || offset.checked_add(bytes).is_none_or(|e| e > end)
        {
            return Ok((self.read(addr)?, Bytes::new()));
        }
        buf.clear();
        buf.resize(bytes as usize, 0);
        reader.read_exact_at(offset, &mut buf).map_err(Error::Io)?;
        let (head, body) = buf.split_at(RECORD_HEADER_LEN);
        let header: [u8; RECORD_HEADER_LEN] = head.try_into().expect("RECORD_HEADER_LEN bytes");
        let len = record::payload_len(&header);
        if record::record_bytes(len) != bytes {
            return Ok((self.read(addr)?, Bytes::new()));
        }
        let meta = self.verify(addr, &header, body)?;
        let full = buf.freeze();
        let payload = full.slice(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len);
        Ok((Record { meta, payload }, full))
    }

    /// Check the record at `addr` read as `header` and `body` (its CRC, and
    /// that its kind belongs in this store's segments).
    fn verify(&self, addr: Addr, header: &[u8; RECORD_HEADER_LEN], body: &[u8]) -> Result<record::Meta> {
        let meta = record::verify(header, body).map_err(|bad| self.corruption(addr, bad.reason()))?;
        if !meta.rkind.belongs_in(self.kind) {
            return Err(self.corruption(addr, "record of the wrong kind for its segment"));
        }
        Ok(meta)
    }

    /// `Error::Corruption` at `addr`'s segment file and offset.
    fn corruption(&self, addr: Addr, reason: &'static str) -> Error {
        Error::Corruption {
            file: self.path(record::addr_seq(addr)),
            offset: record::addr_offset(addr),
            reason,
        }
    }

    /// The record header at `addr` (one positional read), after the bounds
    /// checks every reader shares: the segment exists, `addr` is a record
    /// boundary, and the record (header, payload, padding) ends within the
    /// segment. Returns the segment's reader, the header (its crc not yet
    /// checked) and the record's bytes.
    fn header_at(&self, addr: Addr) -> Result<(Arc<dyn FsRead>, [u8; RECORD_HEADER_LEN], u64)> {
        let (seq, offset) = (record::addr_seq(addr), record::addr_offset(addr));
        let (reader, end) = match lock(&self.segs).get(&seq) {
            Some(s) => (s.reader.clone(), s.end),
            None => return Err(self.corruption(addr, "address names a segment that does not exist")),
        };
        if !offset.is_multiple_of(record::ALIGN as u64) || offset < SEGMENT_HEADER_LEN as u64 {
            return Err(self.corruption(addr, "address is not a record boundary"));
        }
        if offset + RECORD_HEADER_LEN as u64 > end {
            return Err(self.corruption(addr, "address past the end of its segment"));
        }
        let mut header = [0u8; RECORD_HEADER_LEN];
        reader.read_exact_at(offset, &mut header).map_err(Error::Io)?;
        let bytes = record::record_bytes(record::payload_len(&header));
        if offset + bytes > end {
            return Err(self.corruption(addr, record::Bad::Truncated.reason()));
        }
        Ok((reader, header, bytes))
    }

    /// Count `bytes` of the record at `addr` live (published in a mapping).
    pub(crate) fn add_live(&self, addr: Addr, bytes: u64) {
        if let Some(s) = lock(&self.segs).get_mut(&record::addr_seq(addr)) {
            s.live += bytes;
        }
    }

    /// Count `bytes` of the record at `addr` dead (superseded).
    pub(crate) fn sub_live(&self, addr: Addr, bytes: u64) {
        if let Some(s) = lock(&self.segs).get_mut(&record::addr_seq(addr)) {
            debug_assert!(s.live >= bytes, "more bytes dead than were live");
            s.live = s.live.saturating_sub(bytes);
        }
    }

    /// The live share of segment `seq`'s record bytes (0 for a segment with
    /// none); `None` if there is no such segment.
    pub(crate) fn live_fraction(&self, seq: u64) -> Option<f64> {
        let segs = lock(&self.segs);
        let s = segs.get(&seq)?;
        let records = s.end - SEGMENT_HEADER_LEN as u64;
        Some(if records == 0 {
            0.0
        } else {
            s.live as f64 / records as f64
        })
    }

    /// Every segment, oldest first (the last is the current one).
    pub(crate) fn segments(&self) -> Vec<SegmentInfo> {
        lock(&self.segs)
            .iter()
            .map(|(&seq, s)| SegmentInfo {
                seq,
                bytes: s.end,
                live: s.live,
            })
            .collect()
    }

    /// Delete segment `seq` (not the current one) and sync the directory.
    /// Reads of its addresses fail with [`Error::Corruption`] afterwards.
    /// If the file's removal fails, the segment stays listed (and readable),
    /// so that a later deletion tries again; once the file is removed it is
    /// forgotten, even if the directory's sync then fails (which poisons the
    /// store): [`SegmentStore::has`] tells the two apart.
    pub(crate) fn delete(&self, seq: u64) -> Result<()> {
        let current = lock(&self.out).seq;
        if seq >= current {
            return Err(Error::InvalidArgument("cannot delete the current segment"));
        }
        if !self.has(seq) {
            return Err(Error::InvalidArgument("no such segment"));
        }
        match self.fs.remove(&self.path(seq)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::Io(e)),
            _ => {}
        }
        if lock(&self.segs).remove(&seq).is_none() {
            // Another deletion of `seq` ran meanwhile (callers do not race
            // so today: checkpoints are one at a time).
            return Err(Error::InvalidArgument("no such segment"));
        }
        self.poisoned
            .on_panic(|| self.fs.sync_dir(&self.dir))
            .map_err(|e| self.poison(e))
    }

    /// Whether segment `seq` is listed (on disk, as far as this store knows).
    pub(crate) fn has(&self, seq: u64) -> bool {
        lock(&self.segs).contains_key(&seq)
    }

    /// The bytes (header, payload, padding) of the record at `addr`, from its
    /// header alone (one 40-byte positional read; the crc is not checked:
    /// the cleaner's live-byte count needs only the length). Errors as
    /// [`SegmentStore::read`]'s bounds checks.
    pub(crate) fn record_bytes_at(&self, addr: Addr) -> Result<u64> {
        self.header_at(addr).map(|(_, _, bytes)| bytes)
    }

    /// Replace every segment's live-byte count: `live` maps a segment to
    /// its live record bytes; a segment it does not name has none (a
    /// recount by the cleaner from every published address).
    pub(crate) fn set_live(&self, live: &BTreeMap<u64, u64>) {
        for (seq, s) in lock(&self.segs).iter_mut() {
            s.live = live.get(seq).copied().unwrap_or(0);
        }
    }

    /// Positions (`(seq << 32) + offset`) of the end of what is appended and of
    /// what is durable.
    pub(crate) fn ends(&self) -> (u64, u64) {
        (
            self.written.load(Ordering::Acquire),
            self.durable.load(Ordering::Acquire),
        )
    }

    /// Fsyncs of segment files since open.
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Record bytes appended since open.
    pub(crate) fn appended_bytes(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// The torn tail the open cut off, if any: segment, offset and reason.
    pub(crate) fn truncated(&self) -> Option<(u64, u64, &'static str)> {
        self.truncated
    }
}
