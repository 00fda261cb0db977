//! Opening a [`SegmentStore`]: list the segments of the kind, check each
//! header, and scan the newest one (`super::super::segment::scan`), or
//! with `fresh` start a new segment after them (see the parent module's
//! "Open").

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::{pos, Out, Seg, SegmentStore};
use crate::fs::{Fs, FsRead};
use crate::pagestore::record::{self, Kind, MAX_SEGMENT_BYTES, SEGMENT_HEADER_LEN};
use crate::pagestore::segment::{self, Scan};
use crate::poison::Poison;
use crate::sync::{AtomicU64, Mutex, WakeUps};
use crate::{Error, Result};

impl SegmentStore {
    /// Open the store of `kind` in `dir` (created if missing). A segment
    /// reaching `segment_bytes` (clamped to 4 GiB) is closed before the next
    /// append.
    pub(crate) fn open(fs: Arc<dyn Fs>, dir: &Path, kind: Kind, segment_bytes: u64) -> Result<SegmentStore> {
        Self::open_with(fs, dir, kind, segment_bytes, false)
    }

    /// [`SegmentStore::open`] without reading the newest segment: every
    /// existing segment gets the closed segments' header check, and appends
    /// go to a new segment after them. For a caller that reads only
    /// addresses it knows were synced (a location table's): a torn tail of
    /// the newest old segment is then never read, and the open costs one
    /// header read per segment instead of a read of the newest one whole
    /// (64 MiB by default). A newest segment shorter than its header (a
    /// crash while creating it) holds nothing synced: it is deleted.
    pub(crate) fn open_fresh(fs: Arc<dyn Fs>, dir: &Path, kind: Kind, segment_bytes: u64) -> Result<SegmentStore> {
        Self::open_with(fs, dir, kind, segment_bytes, true)
    }

    fn open_with(fs: Arc<dyn Fs>, dir: &Path, kind: Kind, segment_bytes: u64, fresh: bool) -> Result<SegmentStore> {
        fs.create_dir_all(dir).map_err(Error::Io)?;
        let mut seqs: Vec<u64> = fs
            .list(dir)
            .map_err(Error::Io)?
            .iter()
            .filter_map(|n| segment::parse_name(kind, n))
            .collect();
        seqs.sort_unstable();
        let corrupt = |seq, offset, reason| Error::Corruption {
            file: dir.join(segment::name(kind, seq)),
            offset,
            reason,
        };
        let mut segs = BTreeMap::new();
        let mut next = seqs.last().map_or(1, |s| s + 1);
        if let Some(&seq) = seqs.last() {
            // The newest segment is the only one that can hold bytes a
            // failed sync lost: a failed sync poisons the store, and a
            // poisoned store does not rotate. Reads see what the device
            // holds, not what the cache kept. (A cost: a warm restart reads
            // this segment's pages from the device again.)
            fs.drop_cache(&dir.join(segment::name(kind, seq))).map_err(Error::Io)?;
        }
        let newest = if fresh { None } else { seqs.pop() };
        for &seq in &seqs {
            let reader: Arc<dyn FsRead> = fs
                .open_read(&dir.join(segment::name(kind, seq)))
                .map_err(Error::Io)?
                .into();
            let end = reader.len().map_err(Error::Io)?;
            if fresh && seq + 1 == next && end < SEGMENT_HEADER_LEN as u64 {
                drop(reader);
                fs.remove(&dir.join(segment::name(kind, seq))).map_err(Error::Io)?;
                fs.sync_dir(dir).map_err(Error::Io)?;
                next = seq;
                continue;
            }
            if end < SEGMENT_HEADER_LEN as u64 {
                return Err(corrupt(seq, 0, "segment header truncated"));
            }
            if end > MAX_SEGMENT_BYTES {
                return Err(corrupt(seq, MAX_SEGMENT_BYTES, "segment longer than 4 GiB"));
            }
            let mut h = [0u8; SEGMENT_HEADER_LEN];
            reader.read_exact_at(0, &mut h).map_err(Error::Io)?;
            let path = dir.join(segment::name(kind, seq));
            if fresh && seq + 1 == next && end == SEGMENT_HEADER_LEN as u64 && h.iter().all(|&x| x == 0) {
                // Zeros where the header goes, and nothing else: the file's
                // size reached the disk, its contents did not. Not a longer
                // file: nothing is appended before the header is synced
                // (`segment::create`), so zeros over more are damage (the
                // header check below), and the file may hold data a table
                // or the log references.
                drop(reader);
                fs.remove(&path).map_err(Error::Io)?;
                fs.sync_dir(dir).map_err(Error::Io)?;
                next = seq;
                continue;
            }
            record::check_segment_header(&h, kind, seq).map_err(|r| corrupt(seq, 0, r))?;
            if fresh && seq + 1 == next {
                // The newest segment of the runs before may end in records
                // a crash left unsynced, and this run may read them (the
                // value log: values its log references): synced now, before
                // anything of this run can depend on them.
                fs.open_append(&dir.join(segment::name(kind, seq)))
                    .and_then(|mut f| f.sync())
                    .map_err(Error::Io)?;
            }
            segs.insert(seq, Seg { end, live: 0, reader });
        }
        let mut truncated = None;
        // An address holds a segment's number in 32 bits (as rotation
        // checks): a fresh segment past them would get addresses naming
        // another one.
        if next > u64::from(u32::MAX) && newest.is_none() {
            return Err(Error::InvalidConfig("segment store ran out of segment numbers"));
        }
        let (file, seq, size) = match newest {
            None => (
                segment::create(&*fs, dir, kind, next).map_err(Error::Io)?,
                next,
                SEGMENT_HEADER_LEN as u64,
            ),
            Some(seq) => {
                let path = dir.join(segment::name(kind, seq));
                let bytes = fs.read(&path).map_err(Error::Io)?;
                if bytes.len() as u64 > MAX_SEGMENT_BYTES {
                    return Err(corrupt(seq, MAX_SEGMENT_BYTES, "segment longer than 4 GiB"));
                }
                match segment::scan(&bytes, kind, seq).map_err(|(o, r)| corrupt(seq, o, r))? {
                    Scan::TornHeader => {
                        truncated = Some((seq, 0, "segment header truncated"));
                        (
                            segment::create(&*fs, dir, kind, seq).map_err(Error::Io)?,
                            seq,
                            SEGMENT_HEADER_LEN as u64,
                        )
                    }
                    Scan::Valid { end, torn, .. } => {
                        if let Some((at, why)) = torn {
                            fs.truncate(&path, end).map_err(Error::Io)?;
                            truncated = Some((seq, at, why));
                        }
                        let mut f = fs.open_append(&path).map_err(Error::Io)?;
                        f.sync().map_err(Error::Io)?;
                        if bytes[..SEGMENT_HEADER_LEN] == record::segment_header(kind, seq) {
                            (f, seq, end)
                        } else {
                            // An earlier build's segment (a page segment of
                            // version 1): kept closed as it is, and appends go
                            // to a new segment of this build's version, so
                            // that nothing this build writes (a compact delta
                            // flush) sits in a segment such a build would read.
                            drop(f);
                            let reader: Arc<dyn FsRead> = fs.open_read(&path).map_err(Error::Io)?.into();
                            segs.insert(seq, Seg { end, live: 0, reader });
                            (
                                segment::create(&*fs, dir, kind, seq + 1).map_err(Error::Io)?,
                                seq + 1,
                                SEGMENT_HEADER_LEN as u64,
                            )
                        }
                    }
                }
            }
        };
        let reader = fs
            .open_read(&dir.join(segment::name(kind, seq)))
            .map_err(Error::Io)?
            .into();
        segs.insert(
            seq,
            Seg {
                end: size,
                live: 0,
                reader,
            },
        );
        Ok(SegmentStore {
            fs,
            dir: dir.to_owned(),
            kind,
            segment_bytes: segment_bytes.clamp(SEGMENT_HEADER_LEN as u64 + 1, MAX_SEGMENT_BYTES),
            out: Mutex::new(Out::new(file, seq, size).map_err(Error::Io)?),
            segs: Mutex::new(segs),
            written: AtomicU64::new(pos(seq, size)),
            durable: AtomicU64::new(pos(seq, size)),
            poisoned: Poison::new(),
            sync_leader: Mutex::new(()),
            file_sync: Mutex::new(()),
            synced: WakeUps::new(),
            syncs: AtomicU64::new(0),
            appended: AtomicU64::new(0),
            truncated,
        })
    }
}
