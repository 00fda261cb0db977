//! The engine's [`PageIo`]: leaf images in `pages-*.seg` segments of the
//! database directory, through [`SegmentStore`] and the image codec
//! (`design/storage.md` §2, §5, §6). Used with `Options::cache_size`, and
//! whenever the newest checkpoint is a location table.
//!
//! The segments a previous run left are kept: the newest location table
//! names images in them. A checkpoint deletes the segments that neither its
//! table nor any resident or evicted page references
//! ([`PageFile::delete_unreferenced`]).
//!
//! Large values go through the value log ([`ValueLog`], `vlog.rs`): the
//! encoder's sink places them, the decoder's source reads them back at
//! fault-in, and [`PageIo::sync`] syncs the value log before the pages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::clean::CleanState;
use super::vlog::ValueLog;
use crate::bwtree::{decode_leaf_with, encode_leaf, LeafBase, PageIo};
use crate::fs::Fs;
use crate::pagestore::record::{
    addr_offset, addr_seq, record_bytes, Kind, Meta, RecordKind, NO_ADDR, RECORD_HEADER_LEN,
};
use crate::pagestore::segment;
use crate::pagestore::store::SegmentStore;
use crate::sync::{Arc, AtomicU64, Ordering};
use crate::{Error, Result};

/// Page segments hold at least this many bytes each (they hold as many as
/// the log's segments, `Options::segment_bytes`, if that is more).
const MIN_PAGE_SEGMENT_BYTES: u64 = 4 << 10;

/// The page segments of one database directory.
pub(crate) struct PageFile {
    pub(super) store: SegmentStore,
    dir: PathBuf,
    /// Payload bytes of the images written.
    pub(crate) bytes_written: AtomicU64,
    /// The log's durable timestamp (shared with the log, `wal::Store`).
    durable: Arc<AtomicU64>,
    /// The value log (large values, `design/storage.md` §10).
    pub(crate) vlog: ValueLog,
    /// Segment cleaning's state (`super::clean`).
    pub(crate) clean: CleanState,
}

impl PageFile {
    /// Open the page segments in `dir` (headers checked; appends go to a new
    /// segment, `SegmentStore::open_fresh`). The caller holds the
    /// directory's lock. `durable` is the
    /// log's durable timestamp, which flushes obey (W1). Segments close at
    /// `segment_bytes` (the log's; at least [`MIN_PAGE_SEGMENT_BYTES`]).
    pub(crate) fn open(
        fs: std::sync::Arc<dyn Fs>,
        dir: &Path,
        segment_bytes: u64,
        durable: Arc<AtomicU64>,
        value_log_threshold: u64,
    ) -> Result<PageFile> {
        let segment_bytes = segment_bytes.clamp(MIN_PAGE_SEGMENT_BYTES, u32::MAX as u64);
        Ok(PageFile {
            vlog: ValueLog::open(fs.clone(), dir, segment_bytes, value_log_threshold)?,
            // Only addresses from a location table (synced) or written by
            // this run are ever read: the newest old segment is not scanned.
            store: SegmentStore::open_fresh(fs, dir, Kind::Pages, segment_bytes)?,
            dir: dir.to_path_buf(),
            bytes_written: AtomicU64::new(0),
            durable,
            clean: CleanState::new(segment_bytes),
        })
    }

    /// `Err(Poisoned)` once a page write or sync failed.
    pub(crate) fn check(&self) -> Result<()> {
        self.store.check()?;
        self.vlog.check()
    }

    /// Page segment files now.
    pub(crate) fn segments(&self) -> u64 {
        self.store.segments().len() as u64
    }

    /// The end of what is appended (`seq << 32 | offset`).
    pub(crate) fn head(&self) -> u64 {
        self.store.ends().0
    }

    /// Delete every segment but the current one that no address in `keep`
    /// names (the caller holds evictions off, so no image is written and
    /// not yet referenced meanwhile). Returns how many were deleted.
    pub(crate) fn delete_unreferenced(&self, keep: impl IntoIterator<Item = u64>) -> Result<u64> {
        let keep: BTreeSet<u64> = keep.into_iter().map(addr_seq).collect();
        let segs = self.store.segments();
        let mut deleted = 0;
        // The last one is the current segment.
        for s in segs.iter().take(segs.len().saturating_sub(1)) {
            if !keep.contains(&s.seq) {
                self.store.delete(s.seq)?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Append a copy of the record at `addr` (for the cleaner: same kind,
    /// page id and `max_ts`; not synced). Returns the copy's address and
    /// its record bytes.
    pub(crate) fn copy_record(&self, addr: u64) -> Result<(u64, u64)> {
        let record = self.store.read(addr)?;
        let to = self.store.append(&record.meta, &record.payload)?;
        let bytes = record_bytes(record.payload.len());
        self.clean.note_len(to, bytes);
        // The copy references the same values as the original: value-log
        // collection must count them live through the copy too.
        self.vlog.copy_refs(addr, to);
        Ok((to, bytes))
    }

    /// Record bytes of every page segment file now (headers included).
    pub(crate) fn disk_bytes(&self) -> u64 {
        self.store.segments().iter().map(|s| s.bytes).sum()
    }
}

impl PageIo for PageFile {
    fn read_leaf(&self, addr: u64) -> Result<LeafBase> {
        let record = self.store.read(addr)?;
        let file = || self.dir.join(segment::name(Kind::Pages, addr_seq(addr)));
        if record.meta.rkind != RecordKind::Base {
            return Err(Error::Corruption {
                file: file(),
                offset: addr_offset(addr),
                reason: "a page address names a record that is not a page image",
            });
        }
        self.clean.note_len(addr, record_bytes(record.payload.len()));
        let (mut refs, mut failed) = (Vec::new(), None);
        let mut source = |key: &[u8], ts, at, len| match self.vlog.resolve(key, ts, at, len, &mut refs) {
            Ok(v) => Some(v),
            Err(e) => {
                failed = Some(e);
                None
            }
        };
        let base = decode_leaf_with(&record.payload, Some(&mut source));
        if let Some(e) = failed {
            return Err(e);
        }
        let base = base.map_err(|m| m.corruption(file(), addr_offset(addr) + RECORD_HEADER_LEN as u64))?;
        self.vlog.note_image(addr, refs);
        Ok(base)
    }

    fn write_leaf(&self, pid: u64, base: &LeafBase) -> Result<u64> {
        let mut buf = Vec::new();
        let mut refs = Vec::new();
        let mut sink = |key: &[u8], ts, value: &[u8]| self.vlog.place(key, ts, value, &mut refs);
        encode_leaf(base, &mut buf, Some(&mut sink))?;
        let max_ts = base.max_ts();
        let meta = Meta {
            rkind: RecordKind::Base,
            flags: 0,
            tree: 0,
            id: pid,
            prev: NO_ADDR,
            max_ts,
        };
        let addr = self.store.append(&meta, &buf)?;
        self.clean.note_len(addr, record_bytes(buf.len()));
        self.bytes_written.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.vlog.note_image(addr, refs);
        Ok(addr)
    }

    /// The value log first: an image synced is then never ahead of the
    /// values it references (`design/storage.md` §10).
    fn sync(&self) -> Result<()> {
        self.vlog.sync()?;
        self.store.sync()
    }

    fn durable_ts(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }
}
