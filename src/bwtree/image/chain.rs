//! A page's on-disk chain merged into one base page (`design/storage.md`
//! §4, fault-in): a base image and the delta flushes written on it since,
//! newest first. Each key's versions come out newest first; a version
//! found in two parts (the same key and timestamp) is taken from the newer
//! part. [`collect_base`] then drops what the page had dropped before it
//! was evicted (the GC rule at its watermark).
//!
//! [`merge_collect`] does both at once and reads no value-log value of a
//! version the collection drops ([`Shadows`]): a leaf whose values were
//! overwritten or deleted since its image was written is faulted in
//! without reading the dead values back (`design/storage.md` §10).

use std::collections::HashMap;

use bytes::Bytes;

use super::super::base::{LeafBase, LeafBuilder, ValRef, Ver};
use super::delta::{DeltaFlush, DeltaValue};
use super::leaf::decode_leaf_with;
use super::wire::{Fetched, Malformed};

/// A version's value while merging.
enum Val {
    Tomb,
    Delta(Bytes),
    Base(Ver),
}

/// The hook [`merge_chain`] reads a delta flush's value-log references
/// through: called with the part (0 the newest delta) and the reference's
/// `(key, ts, addr, len)`, it returns the value (exactly `len` bytes, the
/// version's) or the error that stops the merge.
pub(crate) type RefSource<'a> = &'a mut dyn FnMut(usize, &[u8], u64, u64, u32) -> crate::Result<Bytes>;

/// Merge `base` (the chain's oldest part) with `deltas` (the delta flushes
/// on it, newest first) into one base page with `base`'s range, reading
/// each value-log reference of the deltas through `resolve` (its first
/// error is returned). With no delta, `base` is returned as it is.
pub(crate) fn merge_chain(base: LeafBase, deltas: &[DeltaFlush], resolve: RefSource<'_>) -> crate::Result<LeafBase> {
    if deltas.is_empty() {
        return Ok(base);
    }
    // (key, ts, part: 0 the newest delta, values: base last).
    let mut all: Vec<(&[u8], u64, usize, Val)> =
        Vec::with_capacity(base.version_count() + deltas.iter().map(DeltaFlush::len).sum::<usize>());
    for (part, d) in deltas.iter().enumerate() {
        for e in d.iter() {
            let v = match e.value {
                DeltaValue::Tomb => Val::Tomb,
                DeltaValue::Value(b) => Val::Delta(b),
                DeltaValue::Ref { addr, len } => Val::Delta(resolve(part, e.key, e.ts, addr, len)?),
            };
            all.push((e.key, e.ts, part, v));
        }
    }
    for i in 0..base.len() {
        let key = base.keys.key(i);
        for v in base.versions(i) {
            all.push((key, v.ts, deltas.len(), Val::Base(*v)));
        }
    }
    all.sort_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    all.dedup_by(|later, first| later.0 == first.0 && later.1 == first.1);
    let keys = all.windows(2).filter(|w| w[0].0 != w[1].0).count() + usize::from(!all.is_empty());
    let key_bytes = all.iter().map(|e| e.0.len()).sum();
    let mut b = LeafBuilder::with_capacity(keys, key_bytes, all.len(), base.inline_value_bytes());
    let mut last: Option<&[u8]> = None;
    for (key, ts, _, v) in &all {
        if last != Some(*key) {
            if last.is_some() {
                b.end_key();
            }
            b.push_key(key);
            last = Some(key);
        }
        let value = match v {
            Val::Tomb => ValRef::Tomb,
            Val::Delta(bytes) => ValRef::Refcounted(bytes),
            Val::Base(ver) => base.value_ref(ver),
        };
        b.push_version(*ts, value);
    }
    if last.is_some() {
        b.end_key();
    }
    Ok(b.finish(base.range.clone()))
}

/// `base` with the GC rule applied at `watermark` (per key: every version
/// above it, and the newest at or below it unless a tombstone), built with
/// that watermark. Returned as it is when nothing would be dropped.
pub(crate) fn collect_base(base: LeafBase, watermark: u64) -> LeafBase {
    collect_shadowed(base, watermark, &|_| false)
}

/// [`collect_base`] for a page that will have newer versions over it
/// (deltas): `shadowed(key)` says whether one of them, at or below the
/// watermark, is `key`'s; then every version of the page at or below the
/// watermark is dropped, as the GC rule drops them from the whole chain.
fn collect_shadowed(base: LeafBase, watermark: u64, shadowed: &dyn Fn(&[u8]) -> bool) -> LeafBase {
    let keep = |i: usize| {
        // Versions kept: those above the watermark and the newest at or
        // below it, unless that is a tombstone or shadowed.
        let vers = base.versions(i);
        match vers.iter().position(|v| v.ts <= watermark) {
            None => vers.len(),
            Some(i) if vers[i].len == super::super::base::TOMBSTONE => i,
            Some(p) if shadowed(base.keys.key(i)) => p,
            Some(i) => i + 1,
        }
    };
    let drops = (0..base.len()).any(|i| keep(i) < base.versions(i).len());
    if watermark == 0 || !drops {
        return base;
    }
    let mut b = LeafBuilder::with_capacity(
        base.len(),
        base.keys.byte_len(),
        base.version_count(),
        base.inline_value_bytes(),
    );
    for i in 0..base.len() {
        let vers = base.versions(i);
        let n = keep(i);
        if n == 0 {
            continue;
        }
        b.push_key(base.keys.key(i));
        for v in &vers[..n] {
            b.push_version(v.ts, base.value_ref(v));
        }
        b.end_key();
    }
    let mut page = b.finish(base.range.clone());
    page.built_watermark = watermark;
    page
}

/// Which versions [`collect_base`] at `watermark` will drop from a chain's
/// merged page, told before the page is built, so their value-log values
/// need not be read.
///
/// The GC rule drops a version at or below the watermark iff the key has
/// a newer version at or below it (the newest at or below it is dropped
/// only if a tombstone, which has no value). [`Shadows::drops`] answers
/// from the version's next newer one in its own part (`newer`) and the
/// newest at or below the watermark among all the delta flushes (`top`):
/// together every newer version a base image's version can have. For a
/// delta's version the base's versions are not consulted (they are
/// older, or a copy of the same version), so `drops` may answer `false`
/// for a version the rule drops (its value is read for nothing) but never
/// `true` for one the rule keeps.
pub(crate) struct Shadows<'a> {
    watermark: u64,
    /// Per key of the delta flushes, its newest version at or below the
    /// watermark (none collected at watermark 0).
    top: HashMap<&'a [u8], u64>,
}

impl<'a> Shadows<'a> {
    /// The shadows of the chain whose delta flushes are `deltas`, with
    /// the versions `newer` over it, for a collection at `watermark` (0:
    /// none; nothing drops).
    pub(crate) fn new(deltas: &'a [DeltaFlush], newer: &[Newer<'a>], watermark: u64) -> Self {
        let mut top: HashMap<&'a [u8], u64> = HashMap::new();
        if watermark > 0 {
            let versions = deltas.iter().flat_map(DeltaFlush::iter).map(|e| (e.key, e.ts));
            for (key, ts) in versions.chain(newer.iter().map(|&(k, ts, _)| (k, ts))) {
                if ts <= watermark {
                    let t = top.entry(key).or_insert(ts);
                    *t = (*t).max(ts);
                }
            }
        }
        Shadows { watermark, top }
    }

    /// Does the collection drop version `ts` of `key`? `newer`: the
    /// timestamp of the key's next newer version in the same part, if any.
    pub(crate) fn drops(&self, key: &[u8], ts: u64, newer: Option<u64>) -> bool {
        ts <= self.watermark
            && (newer.is_some_and(|n| n <= self.watermark) || self.top.get(key).is_some_and(|&t| t > ts))
    }
}

/// The hook [`merge_collect`] reads value-log references through: with
/// the part (0 the newest delta, `deltas.len()` the base image) and the
/// reference's `(key, ts, addr, len)`, the value (exactly `len` bytes) or
/// the error that stops the read.
pub(crate) type ReadRef<'a> = &'a mut dyn FnMut(usize, &[u8], u64, u64, u32) -> crate::Result<Bytes>;
/// Called for each reference [`merge_collect`] does not read (its version
/// is dropped), with the part and the reference's `(key, addr, len)`: the
/// image still references the value (the value log's bookkeeping notes it).
pub(crate) type SkipRef<'a> = &'a mut dyn FnMut(usize, &[u8], u64, u32);

/// A version over a chain (`(key, ts, value)`, `None` a tombstone: the
/// tree's `DeltaVersion`), for [`ReadGc::newer`].
pub(crate) type Newer<'a> = (&'a [u8], u64, Option<&'a [u8]>);

/// The GC a read of a leaf's on-disk chain applies ([`merge_collect`],
/// the trees' `PageIo::read_leaf`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReadGc<'a> {
    /// Collect at this watermark ([`collect_base`]; 0: drop nothing and
    /// read every value).
    pub(crate) watermark: u64,
    /// The watermark whose drops were counted before (the stub's: the
    /// page dropped those before it was evicted). The read returns how
    /// many versions it dropped above that count.
    pub(crate) counted: u64,
    /// Versions newer than every part of the chain that the page will
    /// hold too (the blind writes' deltas over an evicted leaf's stub,
    /// installed over the page read): `(key, ts, value)`, any order. They
    /// shadow the chain's versions as its own do ([`Shadows`]).
    pub(crate) newer: &'a [Newer<'a>],
}

impl ReadGc<'_> {
    /// Drop nothing: every version, every value read.
    pub(crate) const NONE: ReadGc<'static> = ReadGc {
        watermark: 0,
        counted: 0,
        newer: &[],
    };

    /// Drop what the page had dropped by `watermark`, counting nothing.
    pub(crate) fn again(watermark: u64) -> ReadGc<'static> {
        ReadGc {
            watermark,
            counted: watermark,
            newer: &[],
        }
    }
}

/// What [`merge_collect`] read.
#[derive(Debug)]
pub(crate) struct Collected {
    /// The page, merged and collected.
    pub(crate) page: LeafBase,
    /// How many versions the collection dropped that one at
    /// `ReadGc::counted` would have kept.
    pub(crate) dropped: u64,
    /// Whether it dropped a tombstone above `ReadGc::counted`. Then the
    /// page no longer *builds on* the chain (DF1 in `super::super::flush`):
    /// a delta flush of its newer versions, or a rebase on the chain's base
    /// image, would leave out the tombstone and let an older value of the
    /// chain show through. The fault-in installs it as dirty.
    pub(crate) tombstone_dropped: bool,
}

/// The chain whose base image is `image` and whose delta flushes are
/// `deltas` (newest first), merged ([`merge_chain`]) and collected at
/// `gc.watermark` ([`collect_base`]), reading through `read` only the
/// value-log values of the versions kept ([`Shadows`]); `skip` hears of
/// the others. A malformed base image is `malformed`'s error, a failed
/// read `read`'s.
pub(crate) fn merge_collect<'a>(
    image: &Bytes,
    deltas: &'a [DeltaFlush],
    gc: ReadGc<'a>,
    read: ReadRef<'_>,
    skip: SkipRef<'_>,
    malformed: &dyn Fn(Malformed) -> crate::Error,
) -> crate::Result<Collected> {
    let watermark = gc.watermark;
    let shadows = Shadows::new(deltas, gc.newer, watermark);
    let base_part = deltas.len();
    let mut failed = None;
    let mut source = |key: &[u8], ts, newer, addr, len| {
        if shadows.drops(key, ts, newer) {
            skip(base_part, key, addr, len);
            return Some(Fetched::Dropped);
        }
        match read(base_part, key, ts, addr, len) {
            Ok(v) => Some(Fetched::Value(v)),
            Err(e) => {
                failed = Some(e);
                None
            }
        }
    };
    let base = decode_leaf_with(image, Some(&mut source));
    if let Some(e) = failed {
        return Err(e);
    }
    let base = base.map_err(malformed)?;
    let merged = merge_chain(base, deltas, &mut |part, key, ts, addr, len| {
        if shadows.drops(key, ts, None) {
            skip(part, key, addr, len);
            return Ok(Bytes::new());
        }
        read(part, key, ts, addr, len)
    })?;
    if watermark <= gc.counted && gc.newer.is_empty() {
        // Nothing is dropped beyond what the rule at `counted` drops.
        return Ok(Collected {
            page: collect_base(merged, watermark),
            dropped: 0,
            tombstone_dropped: false,
        });
    }
    // Counted: what this collection drops, less what the page had
    // dropped by `gc.counted` (the rule on the chain alone).
    let counted = merged.droppable(gc.counted);
    let before = merged.version_count();
    let tombs = |p: &LeafBase| {
        (0..p.len())
            .flat_map(|i| p.versions(i))
            .filter(|v| v.len == super::super::base::TOMBSTONE && v.ts > gc.counted && v.ts <= watermark)
            .count()
    };
    let tombs_before = tombs(&merged);
    let page = if gc.newer.is_empty() || watermark == 0 {
        collect_base(merged, watermark)
    } else {
        let keys: std::collections::HashSet<&[u8]> =
            gc.newer.iter().filter(|v| v.1 <= watermark).map(|v| v.0).collect();
        collect_shadowed(merged, watermark, &|k| keys.contains(k))
    };
    let dropped = (before - page.version_count()).saturating_sub(counted);
    let tombstone_dropped = tombs(&page) < tombs_before;
    Ok(Collected {
        page,
        dropped: dropped as u64,
        tombstone_dropped,
    })
}
