//! The engine's [`PageIo`]: leaf images in `pages-*.seg` segments of the
//! database directory, through [`SegmentStore`] and the image codec
//! (`design/storage.md` §2, §5). Used only with `Options::cache_size`.
//!
//! Swap-style first step: restart does not read page images (recovery loads
//! the checkpoint and replays the log as without a cache), so [`PageFile::open`]
//! deletes the segments a previous run left before opening the store.

use std::path::{Path, PathBuf};

use crate::bwtree::{decode_leaf, encode_leaf, LeafBase, PageIo};
use crate::fs::Fs;
use crate::pagestore::record::{addr_offset, addr_seq, Kind, Meta, RecordKind, NO_ADDR, RECORD_HEADER_LEN};
use crate::pagestore::segment;
use crate::pagestore::store::SegmentStore;
use crate::sync::{AtomicU64, Ordering};
use crate::{Error, Result};

/// Page segments hold at most this many bytes each.
const PAGE_SEGMENT_BYTES: u64 = 64 << 20;

/// The page segments of one database directory.
pub(crate) struct PageFile {
    store: SegmentStore,
    dir: PathBuf,
    /// Payload bytes of the images written.
    pub(crate) bytes_written: AtomicU64,
}

impl PageFile {
    /// Delete the page segments of a previous run in `dir`, then open an
    /// empty store there. The caller holds the directory's lock.
    pub(crate) fn open(fs: std::sync::Arc<dyn Fs>, dir: &Path) -> Result<PageFile> {
        let mut removed = false;
        for name in fs.list(dir).map_err(Error::Io)? {
            if segment::parse_name(Kind::Pages, &name).is_some() {
                fs.remove(&dir.join(&name)).map_err(Error::Io)?;
                removed = true;
            }
        }
        if removed {
            fs.sync_dir(dir).map_err(Error::Io)?;
        }
        Ok(PageFile {
            store: SegmentStore::open(fs, dir, Kind::Pages, PAGE_SEGMENT_BYTES)?,
            dir: dir.to_path_buf(),
            bytes_written: AtomicU64::new(0),
        })
    }

    /// `Err(Poisoned)` once a page write or sync failed.
    pub(crate) fn check(&self) -> Result<()> {
        self.store.check()
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
        decode_leaf(&record.payload).map_err(|m| m.corruption(file(), addr_offset(addr) + RECORD_HEADER_LEN as u64))
    }

    fn write_leaf(&self, pid: u64, base: &LeafBase) -> Result<u64> {
        let mut buf = Vec::new();
        encode_leaf(base, &mut buf, None)?;
        let max_ts = (0..base.len())
            .filter_map(|i| base.versions(i).first().map(|v| v.ts))
            .max()
            .unwrap_or(0);
        let meta = Meta {
            rkind: RecordKind::Base,
            flags: 0,
            tree: 0,
            id: pid,
            prev: NO_ADDR,
            max_ts,
        };
        let addr = self.store.append(&meta, &buf)?;
        self.bytes_written.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(addr)
    }

    fn sync(&self) -> Result<()> {
        self.store.sync()
    }
}
