//! The page file's read side (`design/storage.md` §4, §5 fault-in): a page's
//! on-disk chain read from its head and merged into one base page
//! ([`PageFile::read_leaf`], the trees' `PageIo::read_leaf`). Each part is
//! one positional read when its length is known (from the chain map for a
//! lone base image, else from the cleaner's record lengths), its crc, kind,
//! tree tag and page id checked, `prev` strictly backwards and at most
//! `FLUSH_CHAIN` parts; a base image's value-log references are read while
//! it is decoded, a delta flush's while the chain is merged, and noted per
//! part. A chain read for the first time is remembered (`ChainMeta`), so
//! the next read of it takes its length and the map entry from one look-up.

use std::path::PathBuf;

use bytes::Bytes;

use super::chain_map::ChainMeta;
use super::chain_parts::Parts;
use super::pages::PageFile;
use crate::bwtree::{
    decode_delta, decode_leaf_with, find_in_delta, find_in_leaf, fingerprint, merge_chain_at, newest, newest_in_leaf,
    DeltaFlush, DeltaValue, Fetched, Found, LeafBase, Malformed, Over, Unread, FLUSH_CHAIN,
};
use crate::pagestore::record::{addr_offset, addr_seq, record_bytes, Kind, RecordKind, RECORD_HEADER_LEN};
use crate::pagestore::segment;
use crate::pagestore::store::{Record, Scratch};
use crate::{Error, Result};

/// Which versions of a base image a read that its caller collects at
/// `watermark` leaves unread: those older than a version of their key at or
/// below the watermark, newer in the image, in one of the chain's delta
/// flushes or over the image in memory (GC at the watermark drops them).
struct Hide<'a> {
    watermark: u64,
    over: Over<'a>,
    /// Per key, the newest version at or below the watermark in the delta
    /// flushes (empty without any).
    deltas: std::collections::HashMap<&'a [u8], u64>,
}

impl<'a> Hide<'a> {
    fn new(watermark: u64, parts: &'a [DeltaFlush], over: Over<'a>) -> Self {
        let mut deltas = std::collections::HashMap::new();
        if watermark > 0 {
            for e in parts.iter().flat_map(DeltaFlush::iter).filter(|e| e.ts <= watermark) {
                let t = deltas.entry(e.key).or_insert(0);
                *t = e.ts.max(*t);
            }
        }
        Hide {
            watermark,
            over,
            deltas,
        }
    }

    /// Does GC at the watermark drop version `ts` of `key`, whose next
    /// newer version in its image is at `newer`?
    fn hides(&self, key: &[u8], ts: u64, newer: Option<u64>) -> bool {
        let w = self.watermark;
        w > 0
            && (newer.is_some_and(|n| n <= w) || self.deltas.get(key).is_some_and(|&t| t > ts) || (self.over)(key) > ts)
    }
}

/// The page I/O of one tree (`tree`: its tag in the records), called by
/// its [`super::tree_pages::TreePages`]: the read side.
impl PageFile {
    /// The corruption error for the record at `addr`.
    pub(super) fn corrupt(&self, addr: u64, reason: &'static str) -> Error {
        Error::Corruption {
            file: self.dir.join(segment::name(Kind::Pages, addr_seq(addr))),
            offset: addr_offset(addr),
            reason,
        }
    }

    /// The corruption error for damage `m` in the payload of the record at
    /// `addr` (the path is built only here: reads that find no damage
    /// allocate none).
    fn malformed(&self, addr: u64, m: Malformed) -> Error {
        m.corruption(
            self.dir.join(segment::name(Kind::Pages, addr_seq(addr))),
            addr_offset(addr) + RECORD_HEADER_LEN as u64,
        )
    }

    /// Decode the base image at `at` (its record's payload `payload`),
    /// reading its value-log references but those `hide` hides (listed in
    /// `unread`), and note them all.
    fn decode_base(
        &self,
        tree: u16,
        at: u64,
        payload: &Bytes,
        file: &dyn Fn(u64) -> PathBuf,
        hide: &Hide<'_>,
        unread: &mut Unread,
    ) -> Result<LeafBase> {
        let (mut refs, mut failed) = (Vec::new(), None);
        let mut source = |key: &[u8], ts, va, len, newer: Option<u64>| {
            if hide.hides(key, ts, newer) {
                self.vlog.unread(key, va, len, &mut refs);
                unread.push((key.into(), ts));
                return Some(Fetched::Unread);
            }
            match self.vlog.resolve(tree, key, ts, va, len, &mut refs) {
                Ok(v) => Some(Fetched::Value(v)),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            }
        };
        let base = decode_leaf_with(payload, Some(&mut source));
        if let Some(e) = failed {
            return Err(e);
        }
        let payload_at = addr_offset(at) + RECORD_HEADER_LEN as u64;
        let base = base.map_err(|m| m.corruption(file(at), payload_at))?;
        self.vlog.note_image(at, refs);
        Ok(base)
    }

    /// The record at `at`, a part of page `pid`'s chain in tree `tree`:
    /// one positional read when its length is known (`bytes`, else the
    /// cleaner's record lengths), checked to be that tree's and page's.
    /// With `scratch`, the record is read into the thread's scratch buffer
    /// (`SegmentStore::read_scratch`): for a caller that keeps no slice of
    /// it.
    fn read_part(&self, tree: u16, pid: u64, at: u64, bytes: Option<u64>, scratch: bool) -> Result<Scratch> {
        #[cfg(test)]
        if bytes.is_none() {
            self.len_lookups.fetch_add(1, crate::sync::Ordering::Relaxed);
        }
        let hint = bytes.or_else(|| self.clean.len_of(at));
        let record = if scratch {
            self.store.read_scratch(at, hint)?
        } else {
            Scratch::owned(self.store.read_hinted(at, hint)?)
        };
        if record.meta.tree != tree {
            return Err(self.corrupt(at, "a page address names another tree's record"));
        }
        if record.meta.id != pid {
            return Err(self.corrupt(at, "a page address names another page's record"));
        }
        let bytes = record_bytes(record.payload.len());
        if hint != Some(bytes) {
            self.clean.note_len(at, bytes);
        }
        Ok(record)
    }

    /// The value of `key` as of `ts` in the chain of page `pid` of tree
    /// `tree` at `addr`, looked up in each part without building the page
    /// (read-through, `design/storage.md` §5.4): each part read and checked
    /// as [`PageFile::read_leaf`] reads it, the newest version any part
    /// gives taken, and only its value read from the value log if it is
    /// there. The value is copied out of its part, whose buffer is the
    /// thread's scratch buffer (`SegmentStore::read_scratch`).
    /// `hint`: the record bytes of a one-part chain, from the stub
    /// (`PageIo::read_hint`; 0: look the chain up).
    pub(crate) fn read_version(
        &self,
        tree: u16,
        pid: u64,
        addr: u64,
        hint: u32,
        key: &[u8],
        ts: u64,
    ) -> Result<Option<Bytes>> {
        match self.newest_in_chain(tree, pid, addr, hint, key, ts)? {
            None => Ok(None),
            Some(Found { value, ts: vts }) => match value {
                DeltaValue::Tomb => Ok(None),
                DeltaValue::Value(v) => Ok(Some(v)),
                DeltaValue::Ref { addr, len } => {
                    self.vlog.resolve(tree, key, vts, addr, len, &mut Vec::new()).map(Some)
                }
            },
        }
    }

    /// The key set of the chain of page `pid` of tree `tree` at `addr`
    /// (each key's fingerprint with its liveness: the newest version any
    /// part holds is a value), as `bwtree::blind::key_set` builds it from
    /// the page in memory, and the chain's newest version timestamp. Read
    /// as [`PageFile::read_version`] reads the parts; no value is copied
    /// and none is read from the value log. A blind write over a stub that
    /// has no key set reads it so (`design/storage.md` §5.5). The chain is
    /// remembered as a fault-in remembers it, so that the stub's blind
    /// writes can be appended to it as a delta flush (its parts' value-log
    /// references stay unknown until a fault-in reads them: the cleaner
    /// treats them as it treats any unread image of an earlier run).
    pub(crate) fn key_set(&self, tree: u16, pid: u64, addr: u64) -> Result<(Box<[u64]>, u64)> {
        // (fingerprint, timestamp, live) of every key's newest version in
        // each part.
        let mut all: Vec<(u64, u64, bool)> = Vec::new();
        let mut meta = ChainMeta {
            max_ts: 0,
            base_max_ts: 0,
            parts: Parts::of(&[]),
            base_bytes: 0,
            delta_bytes: 0,
            extra_reads: 0,
        };
        // The parts' addresses, head first.
        let mut heads_first = Vec::new();
        self.for_each_part(tree, pid, addr, 0, |at, record| {
            heads_first.push(at);
            meta.max_ts = meta.max_ts.max(record.meta.max_ts);
            match record.meta.rkind {
                RecordKind::Base => {
                    meta.base_max_ts = record.meta.max_ts;
                    meta.base_bytes = record.payload.len() as u64;
                    newest_in_leaf(&record.payload, |k, ts, live| all.push((fingerprint(k), ts, live)))
                        .map_err(|m| self.malformed(at, m))
                }
                _ => {
                    meta.delta_bytes += record.payload.len() as u64;
                    let d = decode_delta(&record.payload, record.meta.flags, record.meta.max_ts)
                        .map_err(|m| self.malformed(at, m))?;
                    let tomb = |v: &DeltaValue| matches!(v, DeltaValue::Tomb);
                    all.extend(d.iter().map(|e| (fingerprint(e.key), e.ts, !tomb(&e.value))));
                    Ok(())
                }
            }
        })?;
        for &at in heads_first.iter().rev() {
            meta.parts.push(at);
        }
        self.remember(addr, meta);
        // Every key's newest version is in `all`, so its newest is the
        // chain's.
        let max_ts = all.iter().map(|e| e.1).max().unwrap_or(0);
        // Newest first per fingerprint, then one entry each.
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        all.dedup_by_key(|e| e.0);
        Ok((
            all.into_iter().map(|(fp, _, live)| fp | u64::from(live)).collect(),
            max_ts,
        ))
    }

    /// The newest version of `key` at or below `ts` in the chain at `addr`
    /// (see [`PageFile::read_version`]), its value as the part holds it.
    fn newest_in_chain(&self, tree: u16, pid: u64, addr: u64, hint: u32, key: &[u8], ts: u64) -> Result<Option<Found>> {
        let mut best: Option<Found> = None;
        self.for_each_part(tree, pid, addr, hint, |at, record| {
            let found = match record.meta.rkind {
                RecordKind::Base => find_in_leaf(&record.payload, key, ts).map_err(|m| self.malformed(at, m))?,
                _ => {
                    let d = decode_delta(&record.payload, record.meta.flags, record.meta.max_ts)
                        .map_err(|m| self.malformed(at, m))?;
                    find_in_delta(&d, key, ts)
                }
            };
            // Copied out of the part (a small value), so that the part's
            // buffer goes back to the scratch when the walk moves on.
            let found = found.map(|f| match f.value {
                DeltaValue::Value(v) => Found {
                    ts: f.ts,
                    value: DeltaValue::Value(Bytes::copy_from_slice(&v)),
                },
                _ => f,
            });
            best = newest([best.take(), found]);
            Ok(())
        })?;
        Ok(best)
    }

    /// Read each part of the chain of page `pid` of tree `tree` at `addr`,
    /// head first, and hand it to `each` with its address (for
    /// `Error::Corruption`, [`PageFile::malformed`]): delta flushes, then the
    /// base image, which ends the walk. Each part is checked to be that
    /// tree's and page's (`read_part`), a page record, and older than the
    /// part before it.
    fn for_each_part(
        &self,
        tree: u16,
        pid: u64,
        addr: u64,
        hint: u32,
        mut each: impl FnMut(u64, &Record) -> Result<()>,
    ) -> Result<()> {
        // A one-part chain's length from the stub: no look-up (nor count:
        // one part reads nothing extra).
        let known = self.lens_for(addr, hint).unwrap_or_default();
        let mut at = addr;
        for _ in 0..FLUSH_CHAIN {
            let record = self.read_part(tree, pid, at, known.of(addr, at), true)?;
            if record.meta.rkind == RecordKind::Value {
                return Err(self.corrupt(at, "a page address names a record that is not a page image"));
            }
            each(at, &record)?;
            if record.meta.rkind == RecordKind::Base {
                return Ok(());
            }
            let prev = record.meta.prev;
            if prev >= at {
                return Err(self.corrupt(at, "a delta flush's prev does not point backwards"));
            }
            at = prev;
        }
        Err(self.corrupt(at, "a page's delta chain is longer than FLUSH_CHAIN"))
    }

    /// Read and merge the chain of page `pid` of tree `tree` at `addr`:
    /// each part must be a page record of that tree and page.
    pub(crate) fn read_leaf(&self, tree: u16, pid: u64, addr: u64) -> Result<LeafBase> {
        self.read_leaf_at(tree, pid, addr, 0, 0, &|_| 0).map(|(page, _)| page)
    }

    /// [`PageFile::read_leaf`] for a page its caller collects at
    /// `watermark` (0: none), with the versions `over` names over it in
    /// memory: the value-log values of versions that collection drops are
    /// not read (`design/storage.md` §5, fault-in); the page holds empty
    /// placeholders for them, listed in the second part of the result.
    pub(crate) fn read_leaf_at(
        &self,
        tree: u16,
        pid: u64,
        addr: u64,
        hint: u32,
        watermark: u64,
        over: Over<'_>,
    ) -> Result<(LeafBase, Unread)> {
        let file = |a: u64| self.dir.join(segment::name(Kind::Pages, addr_seq(a)));
        // A chain this file knows (every chain this run wrote or read, as
        // long as a mapping table names it) is not remembered again, and a
        // lone base image's record length comes with it: one look-up of the
        // chain map instead of the record lengths' and a second to insert.
        // A stub's hint (`PageIo::read_hint`) says the same for a one-part
        // chain, without the look-up.
        let known = self.lens_for(addr, hint);
        let mut deltas = Vec::new();
        let mut unread = Unread::new();
        // The parts, head first (the deltas' addresses, then the base's;
        // inline: no allocation).
        let (mut parts, mut n) = ([0u64; FLUSH_CHAIN], 0);
        let (mut max_ts, mut delta_bytes) = (0, 0);
        let mut at = addr;
        let (base, base_bytes, base_max_ts) = loop {
            if n == FLUSH_CHAIN {
                return Err(self.corrupt(at, "a page's delta chain is longer than FLUSH_CHAIN"));
            }
            let hint = known.and_then(|k| k.of(addr, at));
            let record = self.read_part(tree, pid, at, hint, false)?;
            parts[n] = at;
            n += 1;
            max_ts = max_ts.max(record.meta.max_ts);
            let payload_at = addr_offset(at) + RECORD_HEADER_LEN as u64;
            match record.meta.rkind {
                RecordKind::Base => {
                    let hide = Hide::new(watermark, &deltas, over);
                    let base = self.decode_base(tree, at, &record.payload, &file, &hide, &mut unread)?;
                    break (base, record.payload.len() as u64, record.meta.max_ts);
                }
                RecordKind::Delta => {
                    let d = decode_delta(&record.payload, record.meta.flags, record.meta.max_ts)
                        .map_err(|m| m.corruption(file(at), payload_at))?;
                    delta_bytes += record.payload.len() as u64;
                    deltas.push(d);
                    let prev = record.meta.prev;
                    if prev >= at {
                        return Err(self.corrupt(at, "a delta flush's prev does not point backwards"));
                    }
                    at = prev;
                }
                RecordKind::Value => {
                    return Err(self.corrupt(at, "a page address names a record that is not a page image"));
                }
            }
        };
        // The deltas' value-log references, read and noted per part.
        let mut refs = vec![Vec::new(); deltas.len()];
        let merged = {
            let refs = std::cell::RefCell::new(&mut refs);
            merge_chain_at(
                base,
                &deltas,
                &mut |part, key, ts, va, len| self.vlog.resolve(tree, key, ts, va, len, &mut refs.borrow_mut()[part]),
                watermark,
                over,
                &mut |part, key, ts, va, len| {
                    self.vlog.unread(key, va, len, &mut refs.borrow_mut()[part]);
                    unread.push((key.into(), ts));
                },
            )?
        };
        for (&at, refs) in parts[..n].iter().zip(refs) {
            self.vlog.note_image(at, refs);
        }
        if known.is_some() {
            return Ok((merged, unread));
        }
        let mut base_first = Parts::of(&[]);
        for &at in parts[..n].iter().rev() {
            base_first.push(at);
        }
        self.remember(
            addr,
            ChainMeta {
                max_ts,
                base_max_ts,
                parts: base_first,
                base_bytes,
                delta_bytes,
                extra_reads: 0,
            },
        );
        Ok((merged, unread))
    }
}
