//! The value log (`design/storage.md` §2.4, §10): values longer than
//! `Options::value_log_threshold` leave the page images for `vlog-*.seg`
//! segments (a [`SegmentStore`] of kind 2, one `rkind 3` record a value),
//! and the images hold 12-byte references.
//!
//! - Write (a page flush, [`ValueLog::place`]): a version `(key, ts)` whose
//!   value was written once keeps its address: the `placed` map remembers
//!   it from the append or the fault-in that read it, so a page rewritten
//!   later references the same record instead of appending it again.
//!   A committed version never changes its value, so `(key, ts)` names it.
//!   The map's lock is held across the append, so two flushes of one page
//!   at once (a checkpoint's and an eviction's) append a version once (lock
//!   order: `placed`, then the segment store's own locks).
//! - Read ([`ValueLog::resolve`]): references are read when their page is
//!   faulted in (the decoded base holds each value as `Bytes`, a slice of the
//!   record read: zero-copy afterwards, and no read path does I/O). The
//!   record's crc, kind, key, timestamp and length must match the reference:
//!   anything else is [`Error::Corruption`] naming the file and offset.
//! - Durability: [`ValueLog::sync`] runs before the page segment's sync of a
//!   checkpoint (it syncs the current segment; closed ones were synced when
//!   the next began, and the open syncs the previous run's newest), so a
//!   published table references only synced values.
//! - GC ([`ValueLog::collect`], at a checkpoint with evictions held off):
//!   a segment is deleted once no image the new table or the mapping table
//!   names references it. Which values an image references is known for the
//!   images this run wrote or read (`refs`; an image this run wrote that
//!   references nothing has no entry, [`ValueLog::knows`]); an image of an earlier run not
//!   read yet may reference any segment up to the opening table's
//!   `vlog_head`, so those stay while such an image is listed. `placed` entries into deleted segments
//!   are dropped (a resident version that had one is appended again at its
//!   next flush).
//! - Prune ([`ValueLog::prune`], from the evictor thread): `refs` entries of
//!   superseded images are dropped between checkpoints too, so `refs` stays
//!   about as large as the number of reachable images.
//! - Cleaning (`super::vlog_clean`): segments mostly dead by the known
//!   references are *evacuating* ([`ValueLog::set_evacuating`]): a flush
//!   appends a version placed in one again (and `placed` names the copy;
//!   a fault-in reading the old record does not take it back), and a delta
//!   flush on a chain referencing one is declined
//!   ([`ValueLog::references_evacuating`]); the cleaner rewrites the
//!   published pages that reference them, and collection deletes them once
//!   nothing reachable does.
//! - Open ([`ValueLog::delete_unpublished`]): segments written after the
//!   opened table's `vlog_head` by runs that crashed are deleted once
//!   recovery succeeded, but those the replayed log references.
//! - Values written once (`design/storage.md` §10.1,
//!   [`ValueLog::place_at_commit`]): with a buffered log, a committed value above
//!   the threshold is appended at commit and the log record references it;
//!   `placed` then gives every later flush its address. The log syncs these
//!   values before each of its own syncs ([`ValueLog::sync_logged`]), and
//!   a segment holding one stays while the log may be read back to it
//!   (`logged`: until a table covers its commits and the change stream's
//!   retention passed them).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::fs::Fs;
use crate::pagestore::record::{
    addr_offset, addr_seq, record_bytes, Kind, Meta, RecordKind, NO_ADDR, SEGMENT_HEADER_LEN,
};
use crate::pagestore::segment;
use crate::pagestore::store::SegmentStore;
use crate::sync::{lock, AtomicU64, Mutex, Ordering};
use crate::{Error, Result};

/// Bytes of a value record's payload before its key: `ts u64 | klen u32 | vlen u32`.
const VALUE_HEADER: usize = 16;

/// A version: its tree's tag, its key and commit timestamp.
type Version = (u16, Box<[u8]>, u64);
/// A value record referenced: its address and its record bytes.
type ValueRef = (u64, u64);

/// The value-log segments of one database directory.
pub(crate) struct ValueLog {
    store: SegmentStore,
    dir: PathBuf,
    /// Values longer than this are placed in the log.
    threshold: u64,
    /// The address of each version known to be in the log: `(tree, key, ts)`
    /// (two keyspaces may hold one key at one timestamp: one commit).
    placed: Mutex<HashMap<Version, u64>>,
    /// The value records (address, record bytes) each page image this run
    /// wrote or read references, by the image's address. An image this run
    /// wrote (in a page segment from `pages_first_seq` on) with no entry
    /// references nothing: images without references, the common case with
    /// small values, are not noted, so this map (and the prune that walks
    /// every chain to shrink it) stays empty when no value is large.
    refs: Mutex<HashMap<u64, Box<[ValueRef]>>>,
    /// The first segment of this run: older ones may be referenced by images
    /// not read yet.
    first_seq: u64,
    /// The first page segment of this run: images in older ones are known
    /// only through `refs` (one not read yet may reference anything up to
    /// `published_seq`).
    pages_first_seq: u64,
    /// The newest segment the location table loaded at open may reference
    /// (its `vlog_head`'s; 0: none). Older segments after it hold only
    /// values no published image references.
    published_seq: AtomicU64,
    /// That `vlog_head` itself (0: none): every record below it was synced
    /// before the table was, so none is a torn tail.
    published_head: AtomicU64,
    /// Payload bytes of the value records appended.
    pub(crate) bytes_written: AtomicU64,
    /// Record bytes referenced by the images listed at the last collection
    /// (segments of earlier runs that may be referenced count whole);
    /// `u64::MAX` before the first one.
    live: AtomicU64,
    /// Segments deleted by collections.
    pub(crate) segments_deleted: AtomicU64,
    /// Held by a checkpoint from its first flush to its collection, and by a
    /// prune: a prune never runs between a checkpoint's listing and its
    /// collection.
    cycle: Mutex<()>,
    /// `refs` entries after the last collection or prune.
    refs_kept: AtomicU64,
    /// The segments being emptied (`super::vlog_clean`): a version placed
    /// in one is appended again at its next flush, and a delta flush on a
    /// chain referencing one is declined (a whole image is written).
    /// Lock order: `placed`, then this.
    evacuating: Mutex<BTreeSet<u64>>,
    /// Payload bytes appended again out of evacuated segments.
    pub(crate) bytes_relocated: AtomicU64,
    /// Evacuated segments deleted by collections.
    pub(crate) segments_cleaned: AtomicU64,
    /// Pages the cleaner rewrote off evacuating segments.
    pub(crate) pages_rewritten: AtomicU64,
    /// Values read by reference ([`ValueLog::resolve`]).
    pub(crate) reads: AtomicU64,
    /// References a fault-in left unread ([`ValueLog::unread`]).
    pub(crate) reads_skipped: AtomicU64,
    /// Collections so far, and their count when a cleaning pass last found
    /// no victim (`u64::MAX`: none did): the background pass waits for a
    /// collection after one that found nothing.
    collections: AtomicU64,
    idle_at: AtomicU64,
    /// Segments holding values placed at commit, with the newest commit
    /// timestamp among them: the log references them until a table covers
    /// those commits and the change stream's retention has passed them.
    logged: Mutex<std::collections::BTreeMap<u64, u64>>,
    /// The end (`seq << 32 | offset`) of the last value placed at commit:
    /// the log syncs the value log up to it before its own sync.
    logged_end: AtomicU64,
}

impl ValueLog {
    /// Open the value-log segments in `dir` (headers checked; appends go to
    /// a new segment). The previous run's newest segment is synced: the log
    /// may reference values a crash left unsynced in it, which recovery
    /// reads and a table may then reference; a reference into its torn
    /// tail is found by [`ValueLog::fetch_logged`].
    /// `pages_first_seq`: the first page segment this run appends to.
    pub(crate) fn open(
        fs: std::sync::Arc<dyn Fs>,
        dir: &Path,
        segment_bytes: u64,
        threshold: u64,
        pages_first_seq: u64,
    ) -> Result<ValueLog> {
        let store = SegmentStore::open_fresh(fs, dir, Kind::ValueLog, segment_bytes)?;
        let first_seq = addr_seq(store.ends().0);
        Ok(ValueLog {
            store,
            dir: dir.to_path_buf(),
            threshold,
            placed: Mutex::new(HashMap::new()),
            refs: Mutex::new(HashMap::new()),
            first_seq,
            pages_first_seq,
            published_seq: AtomicU64::new(0),
            published_head: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            live: AtomicU64::new(u64::MAX),
            segments_deleted: AtomicU64::new(0),
            cycle: Mutex::new(()),
            refs_kept: AtomicU64::new(0),
            evacuating: Mutex::new(BTreeSet::new()),
            bytes_relocated: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            reads_skipped: AtomicU64::new(0),
            segments_cleaned: AtomicU64::new(0),
            pages_rewritten: AtomicU64::new(0),
            collections: AtomicU64::new(0),
            idle_at: AtomicU64::new(u64::MAX),
            logged: Mutex::new(std::collections::BTreeMap::new()),
            logged_end: AtomicU64::new(0),
        })
    }

    /// Record the `vlog_head` of the location table the database opened
    /// from (`NO_ADDR`: it references no value).
    pub(crate) fn set_published_head(&self, head: u64) {
        let seq = if head == NO_ADDR { 0 } else { addr_seq(head) };
        self.published_seq.store(seq, Ordering::Relaxed);
        let head = if head == NO_ADDR { 0 } else { head };
        self.published_head.store(head, Ordering::Relaxed);
    }

    /// `Err(Poisoned)` once a value-log write or sync failed.
    pub(crate) fn check(&self) -> Result<()> {
        self.store.check()
    }

    /// Why the value log is poisoned, if it is.
    pub(crate) fn poison_cause(&self) -> Option<String> {
        self.store.poison_cause()
    }

    /// Sync every value appended so far.
    pub(crate) fn sync(&self) -> Result<()> {
        self.store.sync()
    }

    /// The end of what is appended (`seq << 32 | offset`): the table's `vlog_head`.
    pub(crate) fn head(&self) -> u64 {
        self.store.ends().0
    }

    /// Segment files now, and their bytes.
    pub(crate) fn usage(&self) -> (u64, u64) {
        let segs = self.store.segments();
        (segs.len() as u64, segs.iter().map(|s| s.bytes).sum())
    }

    /// Record bytes referenced as of the last collection (`u64::MAX`
    /// before the first).
    pub(crate) fn live_bytes(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    /// The encoder's hook: `Some(addr)` if `value` belongs in the log (its
    /// address, appended now unless the version is there already), `None`
    /// to keep it in the image. Each reference is noted in `refs`.
    pub(crate) fn place(
        &self,
        tree: u16,
        key: &[u8],
        ts: u64,
        value: &[u8],
        refs: &mut Vec<ValueRef>,
    ) -> Result<Option<u64>> {
        if value.len() as u64 <= self.threshold {
            return Ok(None);
        }
        let bytes = record_bytes(VALUE_HEADER + key.len() + value.len());
        let id: Version = (tree, key.into(), ts);
        // Held across the append: two flushes of one page at once (a
        // checkpoint's and an eviction's; one loses its CAS) must not both
        // append the version.
        let mut placed = lock(&self.placed);
        let mut moved = false;
        if let Some(&addr) = placed.get(&id) {
            // A version in a segment being emptied is appended again (and
            // `placed` names the new record from now on).
            moved = lock(&self.evacuating).contains(&addr_seq(addr));
            if !moved {
                refs.push((addr, bytes));
                return Ok(Some(addr));
            }
        }
        let addr = self.append(&mut placed, id, value, moved)?;
        refs.push((addr, bytes));
        Ok(Some(addr))
    }

    /// Append version `id`'s value record (no sync) and name it in `placed`
    /// (whose lock the caller holds). `moved`: appended again out of a
    /// segment being emptied.
    fn append(&self, placed: &mut HashMap<Version, u64>, id: Version, value: &[u8], moved: bool) -> Result<u64> {
        let (tree, key, ts) = (id.0, &id.1, id.2);
        let mut payload = Vec::with_capacity(VALUE_HEADER + key.len() + value.len());
        payload.extend_from_slice(&ts.to_le_bytes());
        payload.extend_from_slice(&(key.len() as u32).to_le_bytes());
        payload.extend_from_slice(&(value.len() as u32).to_le_bytes());
        payload.extend_from_slice(key);
        payload.extend_from_slice(value);
        let meta = Meta {
            rkind: RecordKind::Value,
            flags: 0,
            tree,
            id: 0,
            prev: NO_ADDR,
            max_ts: ts,
        };
        let addr = self.store.append(&meta, &payload)?;
        self.bytes_written.fetch_add(payload.len() as u64, Ordering::Relaxed);
        if moved {
            self.bytes_relocated.fetch_add(payload.len() as u64, Ordering::Relaxed);
        }
        placed.insert(id, addr);
        Ok(addr)
    }

    /// The decoder's hook: the value of version `(key, ts)` of tree `tree` at `addr`,
    /// `len` bytes, a slice of the record read. The record must be a value
    /// record of exactly that version and length: anything else is
    /// [`Error::Corruption`] at the record's file and offset.
    pub(crate) fn resolve(
        &self,
        tree: u16,
        key: &[u8],
        ts: u64,
        addr: u64,
        len: u32,
        refs: &mut Vec<ValueRef>,
    ) -> Result<Bytes> {
        let value = self.read_value(tree, key, ts, addr, len)?;
        self.note_placed(tree, key, ts, addr);
        refs.push((addr, record_bytes(VALUE_HEADER + key.len() + value.len())));
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(value)
    }

    /// Version `(key, ts)` of tree `tree` was read at `addr`: `placed`
    /// names it there unless it names a record already. A version may have
    /// two records while its segment is emptied: `placed` keeps naming the
    /// copy outside the segment.
    ///
    /// Never a segment deleted since: a reader may finish reading a record
    /// through its handle after a collection removed the segment and
    /// dropped its `placed` entries (V3), and noting it then would make a
    /// later flush reference a segment that is gone. A collection delists a
    /// segment before it takes `placed` to drop its entries, so the check,
    /// under `placed`, sees the segment gone or is cleaned up after.
    pub(super) fn note_placed(&self, tree: u16, key: &[u8], ts: u64, addr: u64) {
        let mut placed = lock(&self.placed);
        if !self.store.has(addr_seq(addr)) {
            return;
        }
        let evacuating = lock(&self.evacuating);
        let entry = placed.entry((tree, key.into(), ts)).or_insert(addr);
        if evacuating.contains(&addr_seq(*entry)) {
            *entry = addr;
        }
    }

    /// The value of version `(key, ts)` of tree `tree` at `addr`, `len`
    /// bytes, checked as [`ValueLog::resolve`] checks it; nothing noted
    /// (the change stream's reads of the log's references).
    pub(crate) fn read_value(&self, tree: u16, key: &[u8], ts: u64, addr: u64, len: u32) -> Result<Bytes> {
        let corrupt = |reason| Error::Corruption {
            file: self.dir.join(segment::name(Kind::ValueLog, addr_seq(addr))),
            offset: addr_offset(addr),
            reason,
        };
        // The record's length follows from the reference: one positional read.
        let hint = record_bytes(VALUE_HEADER + key.len() + len as usize);
        let record = self.store.read_hinted(addr, Some(hint))?;
        let p = &record.payload;
        if record.meta.rkind != RecordKind::Value || p.len() < VALUE_HEADER {
            return Err(corrupt("a value-log reference names a record that is not a value"));
        }
        let rts = u64::from_le_bytes(p[..8].try_into().expect("8 bytes"));
        let klen = u32::from_le_bytes(p[8..12].try_into().expect("4 bytes")) as usize;
        let vlen = u32::from_le_bytes(p[12..16].try_into().expect("4 bytes")) as usize;
        let whole = VALUE_HEADER.checked_add(klen).and_then(|x| x.checked_add(vlen));
        if whole != Some(p.len()) {
            return Err(corrupt("value record lengths do not add up"));
        }
        if record.meta.tree != tree {
            return Err(corrupt("a value-log reference names another tree's value"));
        }
        if rts != ts || record.meta.max_ts != ts || vlen != len as usize || &p[VALUE_HEADER..VALUE_HEADER + klen] != key
        {
            return Err(corrupt("value record is not the version its reference names"));
        }
        Ok(record.payload.slice(VALUE_HEADER + klen..))
    }

    /// A reference to version `(key, ts)` at `addr` (`len` value bytes) that
    /// its reader leaves unread (a fault-in whose collection drops the
    /// version): nothing is read, but the reference is noted in `refs` as
    /// [`ValueLog::resolve`] notes it, so the image's references stay whole
    /// for the cleaner (V1 in `design/storage.md` §10). Unchecked: a bad
    /// reference here is found when a reader does read it.
    pub(crate) fn unread(&self, key: &[u8], addr: u64, len: u32, refs: &mut Vec<ValueRef>) {
        refs.push((addr, record_bytes(VALUE_HEADER + key.len() + len as usize)));
        self.reads_skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Remember the references of the image at `image` (written or read).
    /// An image of this run that references nothing needs no entry
    /// ([`ValueLog::knows`]); one of an earlier run does (read: known).
    pub(crate) fn note_image(&self, image: u64, mut refs: Vec<ValueRef>) {
        if refs.is_empty() && self.written_here(image) {
            return;
        }
        refs.sort_unstable();
        refs.dedup();
        lock(&self.refs).insert(image, refs.into_boxed_slice());
    }

    /// Was the page image at `image` written by this run?
    fn written_here(&self, image: u64) -> bool {
        addr_seq(image) >= self.pages_first_seq
    }

    /// Are the references of the page image at `image` known: written by
    /// this run (no entry: none), or of an earlier run and read since?
    pub(crate) fn knows(&self, image: u64) -> bool {
        self.written_here(image) || lock(&self.refs).contains_key(&image)
    }

    /// Image `to` is a byte copy of image `from` (segment cleaning): it
    /// references the same values. `from`'s references must be known
    /// ([`ValueLog::knows`]; the cleaner rewrites an image whose are not):
    /// `to` is this run's, and with no entry it would count as referencing
    /// nothing.
    pub(crate) fn copy_refs(&self, from: u64, to: u64) {
        let mut refs = lock(&self.refs);
        if let Some(r) = refs.get(&from).cloned() {
            refs.insert(to, r);
        }
    }

    /// The record bytes the images in `images` reference, by segment, and
    /// whether one of them has unknown references (an image of an earlier
    /// run not read yet). Forgets the references of images not in `images`
    /// if `forget` (a collection: every reachable image is in `images`).
    fn referenced(&self, images: &super::chain_parts::AddrList, forget: bool) -> (BTreeSet<ValueRef>, bool) {
        let mut live: BTreeSet<ValueRef> = BTreeSet::new();
        let mut unknown = false;
        let mut refs = lock(&self.refs);
        if forget {
            refs.retain(|image, _| images.contains(image));
        }
        for image in images {
            match refs.get(image) {
                Some(r) => live.extend(r.iter().copied()),
                None if self.written_here(*image) => {}
                None => unknown = true,
            }
        }
        (live, unknown)
    }

    /// May segment `seq` hold values that images of an earlier run not read
    /// yet reference (`unknown`: such an image is reachable)?
    fn maybe_referenced(&self, unknown: bool, seq: u64) -> bool {
        unknown && seq <= self.published_seq.load(Ordering::Relaxed) && seq < self.first_seq
    }

    /// Every segment but the current one, with its record bytes (header
    /// excluded) and the record bytes the images in `images` reference
    /// there; segments whose references are not all known (an image of an
    /// earlier run not read yet may reference them) and segments with no
    /// record are left out. For the cleaner's victim choice
    /// (`super::vlog_clean`).
    pub(crate) fn usage_by_segment(&self, images: &super::chain_parts::AddrList) -> Vec<(u64, u64, u64)> {
        let (live, unknown) = self.referenced(images, false);
        let mut by_seq: HashMap<u64, u64> = HashMap::new();
        for &(a, b) in &live {
            *by_seq.entry(addr_seq(a)).or_default() += b;
        }
        let segs = self.store.segments();
        let Some((_current, old)) = segs.split_last() else {
            return Vec::new();
        };
        // A segment holding values placed at commit may be a victim: the
        // checkpoint after the pass covers those commits (only the change
        // stream's retention keeps it longer, `design/storage.md` §10.1).
        old.iter()
            .filter(|s| s.bytes > SEGMENT_HEADER_LEN as u64 && !self.maybe_referenced(unknown, s.seq))
            .map(|s| {
                let records = s.bytes - SEGMENT_HEADER_LEN as u64;
                (s.seq, records, by_seq.get(&s.seq).copied().unwrap_or(0))
            })
            .collect()
    }

    /// The segments being emptied are `victims` from now on (a flush
    /// appends their versions again).
    pub(crate) fn set_evacuating(&self, victims: BTreeSet<u64>) {
        if victims.is_empty() {
            self.idle_at
                .store(self.collections.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        *lock(&self.evacuating) = victims;
    }

    /// Is a background cleaning pass worth its walk over every image's
    /// references? Only after a collection measured the live bytes, while
    /// a quarter of the segment bytes or more were garbage then, and not
    /// if the last pass found no victim and no collection ran since.
    pub(crate) fn worth_cleaning(&self) -> bool {
        let live = self.live.load(Ordering::Relaxed);
        let bytes = self.usage().1;
        live != u64::MAX
            && bytes.saturating_sub(live) * 4 >= bytes
            && self.idle_at.load(Ordering::Relaxed) != self.collections.load(Ordering::Relaxed)
    }

    /// Does any of the images `parts` (one chain's) reference a segment
    /// being emptied? (A delta flush on such a chain is declined, so the
    /// page's next flush writes a whole image and appends those values
    /// again.) Parts whose references are unknown count as not.
    pub(crate) fn references_evacuating(&self, parts: &[u64]) -> bool {
        if lock(&self.evacuating).is_empty() {
            return false;
        }
        // The segments the parts reference, then the set (one lock at a
        // time, and no copy of the set per page).
        let segments: Vec<u64> = {
            let refs = lock(&self.refs);
            parts
                .iter()
                .filter_map(|p| refs.get(p))
                .flat_map(|r| r.iter().map(|&(a, _)| addr_seq(a)))
                .collect()
        };
        let evacuating = lock(&self.evacuating);
        segments.iter().any(|s| evacuating.contains(s))
    }

    /// At open, once recovery from the location table `vlog_head` came
    /// from succeeded (`NO_ADDR`: no table; nothing published references a
    /// value): delete every segment of earlier runs after the one that
    /// holds `vlog_head`. Runs that crashed after their last table wrote
    /// them, and only images no table lists reference them. This run's
    /// segments (from `first_seq` on) stay. Each deletion syncs the
    /// directory. Returns how many.
    pub(crate) fn delete_unpublished(&self, vlog_head: u64) -> Result<u64> {
        let last = if vlog_head == NO_ADDR { 0 } else { addr_seq(vlog_head) };
        let logged = lock(&self.logged).clone();
        let mut deleted = 0;
        for s in self.store.segments() {
            if s.seq > last && s.seq < self.first_seq && !logged.contains_key(&s.seq) {
                self.store.delete(s.seq)?;
                deleted += 1;
            }
        }
        self.segments_deleted.fetch_add(deleted, Ordering::Relaxed);
        Ok(deleted)
    }

    /// Delete every segment but the current one that no image in `images`
    /// references (the caller holds evictions off: no image is written
    /// meanwhile, and every image still reachable is in `images`) and that
    /// holds no value the log may still be read back to: placed at commit
    /// above `floor` (the lower of the new table's timestamp and the
    /// change stream's retention). Forgets
    /// the references of images not in `images` and the `placed` entries
    /// into deleted segments. Returns how many segments were deleted.
    pub(crate) fn collect(&self, images: &super::chain_parts::AddrList, floor: u64) -> Result<u64> {
        let (live, unknown) = self.referenced(images, true);
        let mut keep: BTreeSet<u64> = live.iter().map(|&(a, _)| addr_seq(a)).collect();
        // The segments first, then `logged`: a commit notes its segment in
        // `logged` before any later append can close that segment (both
        // under `placed`), so a segment listed as closed here has every
        // value placed in it noted already.
        let segs = self.store.segments();
        {
            let mut logged = lock(&self.logged);
            logged.retain(|_, max| *max > floor);
            keep.extend(logged.keys().copied());
        }
        // With an image of an earlier run listed but not read, every segment
        // the table loaded at open may reference is kept, and counted live
        // whole.
        let maybe = |seq: u64| self.maybe_referenced(unknown, seq);
        let mut live_bytes: u64 = live
            .iter()
            .filter(|&&(a, _)| !maybe(addr_seq(a)))
            .map(|&(_, b)| b)
            .sum();
        let mut deleted = BTreeSet::new();
        let mut failed = None;
        // The last one is the current segment.
        for (i, s) in segs.iter().enumerate() {
            // A segment with no record is referenced by nothing.
            let empty = s.bytes <= SEGMENT_HEADER_LEN as u64;
            if maybe(s.seq) && !empty {
                live_bytes += s.bytes;
            } else if !keep.contains(&s.seq) && i + 1 < segs.len() {
                if let Err(e) = self.store.delete(s.seq) {
                    // Removed, and then the directory's sync failed: gone too.
                    if !self.store.has(s.seq) {
                        deleted.insert(s.seq);
                    }
                    failed = Some(e);
                    break;
                }
                deleted.insert(s.seq);
            }
        }
        // Whatever happened, no `placed` entry may name a deleted segment:
        // a later flush would reference the value there without appending it.
        if !deleted.is_empty() {
            lock(&self.placed).retain(|_, addr| !deleted.contains(&addr_seq(*addr)));
            let mut evacuating = lock(&self.evacuating);
            let before = evacuating.len();
            evacuating.retain(|seq| !deleted.contains(seq));
            self.segments_cleaned
                .fetch_add((before - evacuating.len()) as u64, Ordering::Relaxed);
        }
        self.segments_deleted.fetch_add(deleted.len() as u64, Ordering::Relaxed);
        if let Some(e) = failed {
            return Err(e);
        }
        self.live.store(live_bytes, Ordering::Relaxed);
        self.collections.fetch_add(1, Ordering::Relaxed);
        self.refs_kept.store(lock(&self.refs).len() as u64, Ordering::Relaxed);
        Ok(deleted.len() as u64)
    }

    /// Held by a checkpoint from before its first flush until its collection
    /// is done (see [`ValueLog::prune`]).
    pub(crate) fn checkpoint_cycle(&self) -> crate::sync::MutexGuard<'_, ()> {
        lock(&self.cycle)
    }

    /// [`ValueLog::checkpoint_cycle`] if no checkpoint holds it (the page
    /// file's chain prune, `PageFile::prune_chains`).
    pub(crate) fn try_checkpoint_cycle(&self) -> Option<crate::sync::MutexGuard<'_, ()>> {
        self.cycle.try_lock().ok()
    }

    /// Has `refs` more than doubled since the last collection or prune?
    /// (Each eviction adds an entry; between checkpoints most of them name
    /// images already superseded.)
    pub(crate) fn wants_prune(&self) -> bool {
        lock(&self.refs).len() as u64 > 2 * self.refs_kept.load(Ordering::Relaxed) + 256
    }

    /// Forget the references of every image `current` (the mapping table's
    /// addresses now) does not name, unless a checkpoint is running (then
    /// nothing; returns false). The caller holds evictions off, so no image is
    /// written and not yet installed; with no checkpoint between its listing
    /// and its collection, an image the mapping table does not name now is
    /// in no later collection's set (it can only be named again through the
    /// mapping table, which never takes an old address back).
    pub(crate) fn prune(&self, current: impl IntoIterator<Item = u64>) -> bool {
        let Ok(_cycle) = self.cycle.try_lock() else {
            return false;
        };
        let current: super::chain_parts::AddrSet = current.into_iter().collect();
        let mut refs = lock(&self.refs);
        refs.retain(|image, _| current.contains(image));
        self.refs_kept.store(refs.len() as u64, Ordering::Relaxed);
        true
    }
}

impl super::Engine {
    /// Prune the value log's `refs` if it has grown ([`ValueLog::wants_prune`]):
    /// with evictions held off, keep the images the mapping table names. The
    /// evictor thread calls it after each round.
    pub(crate) fn prune_value_refs(&self) {
        let Some(pages) = &self.pages else { return };
        if !pages.vlog.wants_prune() {
            return;
        }
        // No tree joins the map until the pause ends: it would escape it.
        let _publication = self.ks.hold_publication();
        let others = self.other_trees();
        let _paused: Vec<_> = self.each_tree(&others).map(|(_, t)| t.pause_evictions()).collect();
        // Every part of each page's chain, over every tree: a delta head's
        // base image holds the references.
        pages
            .vlog
            .prune(pages.chain_parts(self.each_tree(&others).flat_map(|(_, t)| t.disk_addrs())));
    }
}

mod logged;
#[cfg(all(test, not(loom)))]
mod tests;
