//! The engine's page store: leaf images in `pages-*.seg` segments of the
//! database directory, through [`SegmentStore`] and the image codec
//! (`design/storage.md` §2, §5, §6). Used with `Options::cache_size`, and
//! whenever the newest checkpoint is a location table. Every tree (the
//! default keyspace, the catalog, each named keyspace) reads and writes it
//! through its own [`super::tree_pages::TreePages`], the tree's `PageIo`:
//! each record carries its tree's tag and its page id, and a read checks
//! both (an image of another tree or page is `Error::Corruption`).
//!
//! The segments a previous run left are kept: the newest location table
//! names images in them. A checkpoint deletes the segments that neither its
//! table nor any resident or evicted page references
//! ([`PageFile::delete_unreferenced`]), counting every part of each
//! referenced chain.
//!
//! Delta flushes (`design/storage.md` §2.3, §4): a page's chain is a base
//! image and delta flushes linked by `prev`. A read walks it from the head
//! (each record's crc and kind checked, `prev` strictly backwards, at most
//! `FLUSH_CHAIN` parts, one page id) and merges it (`super::page_read`). The file remembers, for
//! each chain head it wrote or read, its parts, sizes and newest timestamp
//! ([`ChainMeta`]): a delta flush is written only on a known head, while the
//! chain has fewer than `FLUSH_CHAIN` parts and its deltas stay under
//! [`DELTA_SHARE`] of the base image; else, if everything newer than the
//! base image stays under that share, one delta flush on the base replaces
//! the others (a rebase); else the tree writes a whole image.
//!
//! Large values go through the value log ([`ValueLog`], `vlog.rs`): the
//! encoders' sink places them, for base images and delta flushes alike, the
//! decoder reads them back at fault-in (the value log notes each part's
//! references), and [`PageFile::sync`] syncs the value log before the pages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::addr_shards::AddrShards;
use super::chain_map::{prune_room, ChainMeta, Stored};
use super::chain_parts::{AddrSet, Parts};
use super::clean::CleanState;
use super::vlog::ValueLog;
use crate::bwtree::{collect_base, encode_delta, encode_leaf, DeltaVersion, LeafBase, COMPACT_DELTA, FLUSH_CHAIN};
use crate::fs::Fs;
use crate::pagestore::record::{addr_seq, record_bytes, Kind, Meta, RecordKind, NO_ADDR, RECORD_HEADER_LEN};
use crate::pagestore::store::SegmentStore;
use crate::sync::{lock, Arc, AtomicU64, Mutex, Ordering};
use crate::Result;

/// Page segments hold at least this many bytes each (they hold as many as
/// the log's segments, `Options::segment_bytes`, if that is more).
const MIN_PAGE_SEGMENT_BYTES: u64 = 4 << 10;

/// A chain's delta flushes together stay under this share of its base
/// image's payload (a denominator: 4 = a quarter); a flush that would pass
/// it writes a whole image.
pub(crate) const DELTA_SHARE: u64 = 2;

/// Most parts a chain has when a delta flush on it references the value
/// log (large values): it is rebased onto its base image sooner than
/// `FLUSH_CHAIN`, so that the versions its page dropped stop holding
/// value-log segments.
const VLOG_CHAIN: usize = 4;

/// [`DELTA_SHARE`] for such a chain (a sixth). A quarter when delta
/// flushes had fixed 16-byte entry headers; a compact entry referencing a
/// value is about 0.6-0.75 times as long (19-22 against 32 bytes with a
/// 4-byte key, 31-34 against 44 with a 16-byte one), so a sixth holds about as many
/// versions, and as many old values' segments, as a quarter did
/// (`design/storage.md` §2.3).
const VLOG_SHARE: u64 = 6;

/// An encoded delta flush, not yet appended.
struct DeltaPayload {
    /// The payload.
    buf: Vec<u8>,
    /// The value records it references: (address, record bytes).
    refs: Vec<(u64, u64)>,
    /// The newest version timestamp in it.
    max_ts: u64,
}

/// Record bytes written to the page segments since open, by writer
/// (`Stats::page_image_bytes` and the three after it), and the location
/// tables' bytes.
#[derive(Default)]
pub(crate) struct Written {
    /// Whole images of evictions and checkpoint flushes.
    pub(crate) images: AtomicU64,
    /// Delta flushes.
    pub(crate) deltas: AtomicU64,
    /// The cleaners' copies and rewrites.
    pub(crate) cleaned: AtomicU64,
    /// Location tables (checkpoint files, not page segments).
    pub(crate) tables: AtomicU64,
}

impl Written {
    /// The counter of `writer`'s records: `flush` for evictions and
    /// checkpoint flushes, `cleaned` for the cleaners.
    fn of<'a>(&'a self, writer: Writer, flush: &'a AtomicU64) -> &'a AtomicU64 {
        match writer {
            Writer::Flush => flush,
            Writer::Cleaner => &self.cleaned,
        }
    }
}

/// Every version of `base` newer than `after`, in key order and newest
/// first per key, with its value (`None`: a tombstone).
fn versions_after(base: &LeafBase, after: u64) -> Vec<(&[u8], u64, Option<bytes::Bytes>)> {
    let mut out = Vec::new();
    for i in 0..base.len() {
        let key = base.keys.key(i);
        for v in base.versions(i).iter().filter(|v| v.ts > after) {
            out.push((key, v.ts, base.value(v)));
        }
    }
    out
}

/// Where a flush at the part limit rebases a full chain whose parts' payload
/// bytes are `sizes` (the base image's unused): the number of parts it
/// keeps (the base image and the oldest deltas, at least the base), so that
/// the newest deltas, merged with the new versions, go on the last part
/// kept. Size-tiered, as an LSM tree merges runs: the newest deltas are
/// taken while the part before them is no larger than what is taken (at
/// least two, at most half the deltas: equal parts would otherwise all be
/// taken), so a version is rewritten a few times before the chain is
/// written whole, not once per rebase.
fn merge_point(sizes: &[u64]) -> usize {
    let n = sizes.len();
    let most = ((n - 1) / 2).max(2);
    let mut keep = n - 1;
    let mut taken = sizes[keep];
    while keep > 1 && (n - keep < 2 || (n - keep < most && sizes[keep - 1] <= taken)) {
        keep -= 1;
        taken += sizes[keep];
    }
    keep
}

/// Who writes a record, for [`Written`].
#[derive(Clone, Copy)]
enum Writer {
    /// An eviction or a checkpoint flush.
    Flush,
    /// A segment cleaner (of the pages or of the value log).
    Cleaner,
}

/// The page segments of one database directory.
pub(crate) struct PageFile {
    pub(super) store: SegmentStore,
    pub(super) dir: PathBuf,
    /// Payload bytes of the images written.
    pub(crate) bytes_written: AtomicU64,
    /// Record bytes written, by writer.
    pub(crate) written: Written,
    /// The log's durable timestamp (shared with the log, `wal::Store`).
    durable: Arc<AtomicU64>,
    /// The value log (large values, `design/storage.md` §10).
    pub(crate) vlog: ValueLog,
    /// Segment cleaning's state (`super::clean`).
    pub(crate) clean: CleanState,
    /// The chains written or read in this run, by head address. Pruned to
    /// the referenced heads at each checkpoint; a head written in this run
    /// that is not listed is a base image (delta heads are only pruned
    /// when unreferenced).
    pub(super) chains: AddrShards<Stored>,
    /// Held by the chain map's prunes ([`PageFile::prune_chains`],
    /// [`PageFile::delete_unreferenced`]) and by
    /// [`PageFile::chain_parts`] while it reads its heads and looks them
    /// up, as the map's one mutex was before it was sharded: no prune
    /// forgets a chain between a head being read from a mapping table and
    /// its look-up (which would count the chain's older parts dead).
    pub(super) prunes: Mutex<()>,
    /// `chains` entries after the last prune ([`PageFile::prune_chains`]):
    /// the map is pruned again once it holds a quarter more (`chain_map::PRUNE_GROWTH`).
    pub(super) chains_kept: AtomicU64,
    /// The first segment this run appends to: heads below it were written
    /// by an earlier run.
    first_seq: u64,
    /// Look-ups of the chain map by reads ([`PageFile::chain_for_read`];
    /// tests).
    #[cfg(test)]
    pub(super) read_lookups: AtomicU64,
    /// The most entries the chain map held at once (tests).
    #[cfg(test)]
    pub(crate) chains_peak: AtomicU64,
    /// Parts read without a known length, their length looked up among
    /// the record lengths (`CleanState::len_of`; tests).
    #[cfg(test)]
    pub(super) len_lookups: AtomicU64,
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
        // Only addresses from a location table (synced) or written by this
        // run are ever read: the newest old segment is not scanned.
        let store = SegmentStore::open_fresh(fs.clone(), dir, Kind::Pages, segment_bytes)?;
        let first_seq = addr_seq(store.ends().0);
        Ok(PageFile {
            vlog: ValueLog::open(fs, dir, segment_bytes, value_log_threshold, first_seq)?,
            store,
            dir: dir.to_path_buf(),
            bytes_written: AtomicU64::new(0),
            written: Written::default(),
            durable,
            clean: CleanState::new(segment_bytes),
            chains: AddrShards::default(),
            prunes: Mutex::new(()),
            chains_kept: AtomicU64::new(0),
            first_seq,
            #[cfg(test)]
            read_lookups: AtomicU64::new(0),
            #[cfg(test)]
            chains_peak: AtomicU64::new(0),
            #[cfg(test)]
            len_lookups: AtomicU64::new(0),
        })
    }

    /// `Err(Poisoned)` once a page write or sync failed.
    pub(crate) fn check(&self) -> Result<()> {
        self.store.check()?;
        self.vlog.check()
    }

    /// Why the page store or the value log is poisoned, if one is.
    pub(crate) fn poison_cause(&self) -> Option<String> {
        let pages = self.store.poison_cause().map(|c| format!("page store: {c}"));
        pages.or_else(|| self.vlog.poison_cause().map(|c| format!("value log: {c}")))
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
    ///
    /// Each head in `keep` keeps the segments of all its chain's parts; the
    /// chain knowledge of every other head is dropped. A head an earlier run
    /// wrote and this run has not read has parts this run does not know:
    /// every segment of earlier runs up to its own is kept.
    pub(crate) fn delete_unreferenced(&self, keep: impl IntoIterator<Item = u64>) -> Result<u64> {
        let prunes = lock(&self.prunes);
        // Each shard is pruned into a fresh table (`AddrShards::prune`):
        // neither a second map of the heads kept nor a table grown by
        // tombstones doubles the map's memory at a checkpoint.
        let mut heads = AddrSet::default();
        let mut segs_kept = BTreeSet::new();
        let mut old_unknown = 0;
        for head in keep {
            if !heads.insert(head) {
                continue;
            }
            if let Some(meta) = self.chains.shard(head).get(&head) {
                segs_kept.extend(meta.parts(head).iter().map(|&a| addr_seq(a)));
            } else if addr_seq(head) >= self.first_seq {
                segs_kept.insert(addr_seq(head)); // a base image of this run
            } else {
                old_unknown = old_unknown.max(addr_seq(head));
            }
        }
        let kept = self.chains.prune(|head, _| heads.contains(&head), prune_room);
        self.chains_kept.store(kept as u64, Ordering::Relaxed);
        drop(prunes);
        let segs = self.store.segments();
        let mut deleted = 0;
        // The last one is the current segment.
        for s in segs.iter().take(segs.len().saturating_sub(1)) {
            if !segs_kept.contains(&s.seq) && s.seq > old_unknown {
                self.store.delete(s.seq)?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// At open, once recovery from the location table whose heads are
    /// `vlog_head` and `pages_head` succeeded (`NO_ADDR` for both: no
    /// table): delete every page and value-log segment of earlier runs after
    /// the ones holding those heads (`design/storage.md` §7). Runs that
    /// crashed after their last table wrote them; no table lists an image in
    /// them, nor an image that references a value in them. This run's
    /// segments (from `first_seq` on; the replay may have evicted) stay.
    /// Each deletion syncs the directory. Returns how many page and
    /// value-log segments went.
    pub(crate) fn delete_unpublished(&self, vlog_head: u64, pages_head: u64) -> Result<(u64, u64)> {
        let last = if pages_head == NO_ADDR { 0 } else { addr_seq(pages_head) };
        let mut deleted = 0;
        for s in self.store.segments() {
            if s.seq > last && s.seq < self.first_seq {
                self.store.delete(s.seq)?;
                deleted += 1;
            }
        }
        Ok((deleted, self.vlog.delete_unpublished(vlog_head)?))
    }

    /// Append a copy of the record at `addr` (for the cleaner: same kind,
    /// page id and `max_ts`; not synced), or of the chain it heads.
    /// `moving(a)`: whether the cleaner empties the segment of address `a`.
    /// Returns the copy's address and its record bytes.
    ///
    /// A base image is copied byte for byte. The head of a delta chain (its
    /// `prev` names older parts, which a byte copy would leave behind) whose
    /// base image stays (not `moving`): its delta flushes merged into one
    /// delta flush on the base, as a rebase writes it
    /// ([`PageFile::rebase_chain`]: a few hundred bytes instead of the whole
    /// image). Otherwise, the chain rewritten as one whole image: a chain
    /// whose base image moves, an image referencing a value-log segment
    /// being emptied (a copy would keep it), an image of an earlier run not
    /// read yet (it references values the value log does not know: the
    /// copy, this run's, would count as referencing none).
    pub(crate) fn copy_record(&self, addr: u64, moving: &dyn Fn(u64) -> bool) -> Result<Option<(u64, u64)>> {
        let record = self.store.read(addr)?;
        let (tree, pid) = (record.meta.tree, record.meta.id);
        if record.meta.rkind == RecordKind::Delta {
            let chain = self.chain(addr);
            if let Some(chain) = chain {
                if !moving(chain.parts[0]) && !self.vlog.references_evacuating(&chain.parts) {
                    return self.rebase_chain(tree, pid, addr, &chain).map(Some);
                }
            }
        }
        if record.meta.rkind != RecordKind::Base || self.vlog.references_evacuating(&[addr]) || !self.vlog.knows(addr) {
            return self.rewrite(tree, pid, addr, None).map(Some);
        }
        let to = self.store.append(&record.meta, &record.payload)?;
        let bytes = record_bytes(record.payload.len());
        self.clean.note_len(to, bytes);
        self.written.cleaned.fetch_add(bytes, Ordering::Relaxed);
        // The copy references the same values as the original: value-log
        // collection must count them live through the copy too.
        self.vlog.copy_refs(addr, to);
        Ok(Some((to, bytes)))
    }

    /// The cleaner's rebase of the chain `chain` at `head` (page `pid` of
    /// tree `tree`): every version newer than its base image's `max_ts` (the
    /// content of its delta flushes, DF2) appended as one delta flush on the
    /// base image. The new chain reads as the old one: the same base, and
    /// the same versions above it. Not synced. Returns the head's address
    /// and record bytes.
    fn rebase_chain(&self, tree: u16, pid: u64, head: u64, chain: &ChainMeta) -> Result<(u64, u64)> {
        let merged = self.read_leaf(tree, pid, head)?;
        let newer = versions_after(&merged, chain.base_max_ts);
        let d = self.encode_delta(tree, newer.iter().map(|(k, ts, v)| (*k, *ts, v.as_deref())))?;
        let bytes = record_bytes(d.buf.len());
        let rebased = ChainMeta {
            max_ts: chain.base_max_ts,
            delta_bytes: 0,
            parts: chain.parts.prefix(1),
            ..chain.clone()
        };
        let to = self.append_delta(tree, pid, d, &rebased, Writer::Cleaner)?;
        Ok((to, bytes))
    }

    /// Write the chain of page `pid` of tree `tree` at `addr` merged, as one
    /// whole image (the same page; its large values placed again: those in
    /// value-log segments being emptied are appended anew). With
    /// `watermark`, the versions the page had dropped by that GC watermark
    /// are left out, as a fault-in leaves them out. Not synced. Returns the
    /// image's address and record bytes.
    pub(crate) fn rewrite(&self, tree: u16, pid: u64, addr: u64, watermark: Option<u64>) -> Result<(u64, u64)> {
        let mut base = self.read_leaf(tree, pid, addr)?;
        if let Some(w) = watermark {
            base = collect_base(base, w);
        }
        self.write_image(tree, pid, &base, Writer::Cleaner)
    }

    /// Record bytes of every page segment file now (headers included).
    pub(crate) fn disk_bytes(&self) -> u64 {
        self.store.segments().iter().map(|s| s.bytes).sum()
    }
}

impl PageFile {
    /// Encode `entries` as a delta-flush payload, its large values placed
    /// in the value log (appended now unless there already).
    fn encode_delta<'a>(
        &self,
        tree: u16,
        entries: impl Iterator<Item = DeltaVersion<'a>> + Clone,
    ) -> Result<DeltaPayload> {
        let (mut buf, mut refs) = (Vec::new(), Vec::new());
        let mut sink = |key: &[u8], ts, value: &[u8]| self.vlog.place(tree, key, ts, value, &mut refs);
        let max_ts = encode_delta(entries, &mut buf, Some(&mut sink))?;
        Ok(DeltaPayload { buf, refs, max_ts })
    }

    /// Append the delta flush `d` on the chain `on` (`prev`: its newest
    /// part); remember the new chain.
    fn append_delta(&self, tree: u16, pid: u64, d: DeltaPayload, on: &ChainMeta, writer: Writer) -> Result<u64> {
        let mut parts = on.parts;
        let prev = *parts
            .last()
            .ok_or(crate::Error::InvalidArgument("a chain with no part"))?;
        let DeltaPayload {
            buf,
            refs,
            max_ts: entries_max,
        } = d;
        let meta = Meta {
            rkind: RecordKind::Delta,
            flags: COMPACT_DELTA,
            tree,
            id: pid,
            prev,
            max_ts: entries_max,
        };
        let addr = self.store.append(&meta, &buf)?;
        self.clean.note_len(addr, record_bytes(buf.len()));
        self.vlog.note_image(addr, refs);
        self.bytes_written.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.written
            .of(writer, &self.written.deltas)
            .fetch_add(record_bytes(buf.len()), Ordering::Relaxed);
        let upto = on.max_ts.max(entries_max);
        parts.push(addr);
        self.remember(
            addr,
            ChainMeta {
                max_ts: upto,
                base_max_ts: on.base_max_ts,
                parts,
                base_bytes: on.base_bytes,
                delta_bytes: on.delta_bytes + buf.len() as u64,
                extra_reads: 0,
            },
        );
        Ok(addr)
    }
}

/// The page I/O of one tree (`tree`: its tag in the records), called by
/// its [`super::tree_pages::TreePages`]: the write side (the read side is
/// `super::page_read`).
impl PageFile {
    /// Append the image of `base` (page `pid` of tree `tree`).
    pub(crate) fn write_leaf(&self, tree: u16, pid: u64, base: &LeafBase) -> Result<u64> {
        self.write_image(tree, pid, base, Writer::Flush).map(|(addr, _)| addr)
    }

    /// [`PageFile::write_leaf`] for `writer`, returning the record bytes too.
    fn write_image(&self, tree: u16, pid: u64, base: &LeafBase, writer: Writer) -> Result<(u64, u64)> {
        let mut buf = Vec::new();
        let mut refs = Vec::new();
        let mut sink = |key: &[u8], ts, value: &[u8]| self.vlog.place(tree, key, ts, value, &mut refs);
        encode_leaf(base, &mut buf, Some(&mut sink))?;
        let max_ts = base.max_ts();
        let meta = Meta {
            rkind: RecordKind::Base,
            flags: 0,
            tree,
            id: pid,
            prev: NO_ADDR,
            max_ts,
        };
        let addr = self.store.append(&meta, &buf)?;
        self.clean.note_len(addr, record_bytes(buf.len()));
        self.bytes_written.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.written
            .of(writer, &self.written.images)
            .fetch_add(record_bytes(buf.len()), Ordering::Relaxed);
        self.vlog.note_image(addr, refs);
        self.remember(
            addr,
            ChainMeta {
                max_ts,
                base_max_ts: max_ts,
                parts: Parts::of(&[addr]),
                base_bytes: buf.len() as u64,
                delta_bytes: 0,
                extra_reads: 0,
            },
        );
        Ok((addr, record_bytes(buf.len())))
    }

    /// The chain whose head is `prev`, if a delta flush may go on it: a
    /// chain this file knows, with no part in a segment the cleaner drains
    /// or chose as a victim (`CleanState::avoided`), not referencing a
    /// value-log segment being emptied (such a chain is written whole, its
    /// values appended again, so that the segment can go).
    fn chain_to_extend(&self, prev: u64) -> Option<ChainMeta> {
        let chain = self.chain(prev)?;
        let avoided = self.clean.avoided(chain.parts.iter().map(|&a| addr_seq(a)));
        (!avoided && !self.vlog.references_evacuating(&chain.parts)).then_some(chain)
    }

    /// `PageIo::write_delta` for page `pid` of tree `tree`.
    pub(crate) fn write_delta(
        &self,
        tree: u16,
        pid: u64,
        prev: u64,
        entries: &[DeltaVersion<'_>],
    ) -> Result<Option<u64>> {
        let Some(chain) = self.chain_to_extend(prev) else {
            return Ok(None);
        };
        let newer = |after: u64| entries.iter().filter(move |e| e.1 > after).copied();
        // On the chain, while it is short and its deltas small. A delta
        // that references the value log keeps the chain at
        // `VLOG_CHAIN` parts and then rebases onto the base image: the
        // older parts' references keep old values' segments alive until a
        // rebase leaves out the versions the page dropped.
        let d = self.encode_delta(tree, newer(chain.max_ts))?;
        let values = !d.refs.is_empty();
        let (limit, share) = if values {
            (VLOG_CHAIN, VLOG_SHARE)
        } else {
            (FLUSH_CHAIN, DELTA_SHARE)
        };
        if chain.parts.len() < limit {
            if (chain.delta_bytes + d.buf.len() as u64) * share < chain.base_bytes {
                return self.append_delta(tree, pid, d, &chain, Writer::Flush).map(Some);
            }
        } else if values {
            // The rebase onto the base image below.
        } else if let Ok((keep, kept, upto)) = self.partial_rebase(&chain) {
            // At the part limit: the newest deltas merged with the new
            // versions, on the part before them (size-tiered). (A part
            // that cannot be read: the rebase onto the base image below.)
            let on = chain.parts.prefix(keep);
            let d = self.encode_delta(tree, newer(upto))?;
            if (kept + d.buf.len() as u64) * DELTA_SHARE < chain.base_bytes {
                let rebased = ChainMeta {
                    max_ts: upto,
                    delta_bytes: kept,
                    parts: on,
                    ..chain.clone()
                };
                return self.append_delta(tree, pid, d, &rebased, Writer::Flush).map(Some);
            }
        }
        // Rebase: everything newer than the base image, on the base.
        let d = self.encode_delta(tree, newer(chain.base_max_ts))?;
        if d.buf.len() as u64 * share < chain.base_bytes {
            let rebased = ChainMeta {
                max_ts: chain.base_max_ts,
                delta_bytes: 0,
                parts: chain.parts.prefix(1),
                ..chain.clone()
            };
            return self.append_delta(tree, pid, d, &rebased, Writer::Flush).map(Some);
        }
        Ok(None)
    }

    /// `PageIo::write_delta_on`: only the first branch of
    /// [`PageFile::write_delta`] (a delta flush appended on `prev`), never a
    /// rebase: the tree passes blind writes' versions only, not the
    /// chain's older deltas.
    pub(crate) fn write_delta_on(
        &self,
        tree: u16,
        pid: u64,
        prev: u64,
        entries: &[DeltaVersion<'_>],
    ) -> Result<Option<u64>> {
        let Some(chain) = self.chain_to_extend(prev).filter(|c| c.parts.len() < FLUSH_CHAIN) else {
            return Ok(None);
        };
        let d = self.encode_delta(tree, entries.iter().filter(|e| e.1 > chain.max_ts).copied())?;
        // The limits of `write_delta`'s first branch, the value log's if
        // the delta references it: past them the page is faulted in and
        // flushed by `write_delta` (a partial rebase or a rebase).
        let (limit, share) = if d.refs.is_empty() {
            (FLUSH_CHAIN, DELTA_SHARE)
        } else {
            (VLOG_CHAIN, VLOG_SHARE)
        };
        if chain.parts.len() < limit && (chain.delta_bytes + d.buf.len() as u64) * share < chain.base_bytes {
            return self.append_delta(tree, pid, d, &chain, Writer::Flush).map(Some);
        }
        Ok(None)
    }

    /// Where a flush rebases the full chain `chain` ([`merge_point`]): the
    /// parts it keeps, their delta bytes, and the `upto` of the last.
    fn partial_rebase(&self, chain: &ChainMeta) -> Result<(usize, u64, u64)> {
        let mut sizes = [0u64; FLUSH_CHAIN];
        for (i, &a) in chain.parts.iter().enumerate().skip(1) {
            sizes[i] = self.part_bytes(a)?;
        }
        let keep = merge_point(&sizes[..chain.parts.len()]);
        let kept = sizes[1..keep].iter().sum();
        Ok((keep, kept, self.part_upto(chain, keep - 1)?))
    }

    /// Payload bytes of the chain part at `addr`, about: its record bytes
    /// (remembered, else from its header) less the record header, so at
    /// most 7 bytes of padding over.
    fn part_bytes(&self, addr: u64) -> Result<u64> {
        let record = match self.clean.len_of(addr) {
            Some(b) => b,
            None => self.store.record_bytes_at(addr)?,
        };
        Ok(record.saturating_sub(RECORD_HEADER_LEN as u64))
    }

    /// The `upto` of `chain` with its part `i` as the head: the base
    /// image's `max_ts` for part 0, else the part's record's `max_ts` (read
    /// and checked: a delta flush's versions are all newer than the `upto`
    /// of the part before it, so the newest part's is the chain's).
    fn part_upto(&self, chain: &ChainMeta, i: usize) -> Result<u64> {
        if i == 0 {
            return Ok(chain.base_max_ts);
        }
        let addr = chain.parts[i];
        Ok(self.store.read_hinted(addr, self.clean.len_of(addr))?.meta.max_ts)
    }

    /// Make every image and value written so far durable: the value log
    /// first, then the page segment.
    pub(crate) fn sync(&self) -> Result<()> {
        self.vlog.sync()?;
        self.store.sync()
    }

    /// The log's durable timestamp `D` (W1).
    pub(crate) fn durable_ts(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }
}
