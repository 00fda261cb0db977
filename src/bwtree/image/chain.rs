//! A page's on-disk chain merged into one base page (`design/storage.md`
//! §4, fault-in): a base image and the delta flushes written on it since,
//! newest first. Each key's versions come out newest first; a version
//! found in two parts (the same key and timestamp) is taken from the newer
//! part. [`collect_base`] then drops what the page had dropped before it
//! was evicted (the GC rule at its watermark), and [`collect_counted`]
//! what GC passed since, too (at the tree's current watermark), counting
//! those drops.

use bytes::Bytes;

use super::super::base::{LeafBase, LeafBuilder, ValRef, Ver};
use super::delta::{DeltaFlush, DeltaValue};

/// A version's value while merging.
enum Val {
    Tomb,
    Delta(Bytes),
    /// A delta flush's value-log reference, not read yet.
    Ref {
        addr: u64,
        len: u32,
    },
    Base(Ver),
}

/// The hook [`merge_chain_at`] reads a delta flush's value-log references
/// through: called with the part (0 the newest delta) and the reference's
/// `(key, ts, addr, len)`, it returns the value (exactly `len` bytes, the
/// version's) or the error that stops the merge.
pub(crate) type RefSource<'a> = &'a mut dyn FnMut(usize, &[u8], u64, u64, u32) -> crate::Result<Bytes>;

/// The hook [`merge_chain_at`] reports a reference it leaves unread
/// through (same arguments as [`RefSource`]).
pub(crate) type RefUnread<'a> = &'a mut dyn FnMut(usize, &[u8], u64, u64, u32);

/// [`merge_chain_at`] with nothing collected (the unit tests' form).
#[cfg(all(test, not(loom)))]
pub(crate) fn merge_chain(base: LeafBase, deltas: &[DeltaFlush], resolve: RefSource<'_>) -> crate::Result<LeafBase> {
    merge_chain_at(base, deltas, resolve, 0, &|_| 0, &mut |_, _, _, _, _| {})
}

/// Merge `base` (the chain's oldest part) with `deltas` (the delta flushes
/// on it, newest first) into one base page with `base`'s range, reading
/// each value-log reference of the deltas through `resolve` (its first
/// error is returned), for a page its caller collects at `watermark` (0:
/// none): a reference to a version that collection drops (a newer version
/// of its key in the chain, or `over` it, is at or below the watermark) is
/// not read but reported to `unread`, and the page holds an empty
/// placeholder for it (`design/storage.md` §5, fault-in). With no delta,
/// `base` is returned as it is.
pub(crate) fn merge_chain_at(
    base: LeafBase,
    deltas: &[DeltaFlush],
    resolve: RefSource<'_>,
    watermark: u64,
    over: &dyn Fn(&[u8]) -> u64,
    unread: RefUnread<'_>,
) -> crate::Result<LeafBase> {
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
                DeltaValue::Ref { addr, len } => Val::Ref { addr, len },
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
    // Read the references, but not those older than their key's newest
    // version at or below the watermark: GC at it drops them.
    let mut hidden: Option<&[u8]> = None;
    for (key, ts, part, v) in all.iter_mut() {
        if let Val::Ref { addr, len } = *v {
            *v = if hidden == Some(*key) || (watermark > 0 && over(key) > *ts) {
                unread(*part, key, *ts, addr, len);
                Val::Delta(Bytes::new())
            } else {
                Val::Delta(resolve(*part, key, *ts, addr, len)?)
            };
        }
        if watermark > 0 && *ts <= watermark {
            hidden = Some(*key);
        }
    }
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
            Val::Ref { .. } => unreachable!("every reference was read or left unread above"),
            Val::Base(ver) => base.value_ref(ver),
        };
        b.push_version(*ts, value);
    }
    if last.is_some() {
        b.end_key();
    }
    Ok(b.finish(base.range.clone()))
}

/// How many of `vers` (one key's versions, newest first) the GC rule at
/// `watermark` keeps: those above it and the newest at or below it, unless
/// that is a tombstone. Never grows with the watermark.
fn keep(vers: &[Ver], watermark: u64) -> usize {
    match vers.iter().position(|v| v.ts <= watermark) {
        None => vers.len(),
        Some(i) if vers[i].len == super::super::base::TOMBSTONE => i,
        Some(i) => i + 1,
    }
}

/// `base` with the GC rule applied at `watermark` (per key: every version
/// above it, and the newest at or below it unless a tombstone), built with
/// that watermark. Returned as it is when nothing would be dropped.
pub(crate) fn collect_base(base: LeafBase, watermark: u64) -> LeafBase {
    collect_counted(base, watermark, watermark, &|_| 0).page
}

/// A collection at fault-in ([`collect_counted`]).
pub(crate) struct Collected {
    /// The page, built with the watermark if anything was dropped.
    pub(crate) page: LeafBase,
    /// Versions dropped that a collection at the counted watermark keeps:
    /// drops GC has not counted yet.
    pub(crate) dropped: usize,
    /// Whether one of those is a tombstone.
    pub(crate) tombstone_dropped: bool,
}

/// `base` with the GC rule applied at `watermark` ([`collect_base`]), and
/// what that dropped beyond a collection at `counted` (at most
/// `watermark`): a fault-in collects at the tree's GC watermark, while the
/// versions at or below its stub's watermark were dropped, and counted,
/// before the leaf was evicted (`design/storage.md` §5, fault-in).
/// `over(key)`: the newest version of `key` at or below the watermark that
/// is over the page in memory (blind writes over the stub, each newer than
/// every version of the image: P5), 0 if none; the versions of the page
/// older than it are dropped too (counted, and never a reason to flag a
/// tombstone: the newer version over the page hides what it hid).
pub(crate) fn collect_counted(base: LeafBase, watermark: u64, counted: u64, over: &dyn Fn(&[u8]) -> u64) -> Collected {
    let counted = counted.min(watermark);
    // Versions kept of entry `i`, and of those the GC rule alone keeps.
    let kept = |i: usize| {
        let vers = base.versions(i);
        let by_rule = keep(vers, watermark);
        let b = if watermark > 0 { over(base.keys.key(i)) } else { 0 };
        let now = if b > 0 {
            by_rule.min(vers.iter().take_while(|v| v.ts > b).count())
        } else {
            by_rule
        };
        (now, by_rule)
    };
    let (mut drops, mut dropped, mut tombstone_dropped) = (false, 0, false);
    for i in 0..base.len() {
        let vers = base.versions(i);
        let ((now, by_rule), before) = (kept(i), keep(vers, counted));
        drops |= now < vers.len();
        dropped += before - now;
        tombstone_dropped |= vers[by_rule..before]
            .iter()
            .any(|v| v.len == super::super::base::TOMBSTONE);
    }
    if watermark == 0 || !drops {
        return Collected {
            page: base,
            dropped,
            tombstone_dropped,
        };
    }
    let mut b = LeafBuilder::with_capacity(
        base.len(),
        base.keys.byte_len(),
        base.version_count(),
        base.inline_value_bytes(),
    );
    for i in 0..base.len() {
        let vers = base.versions(i);
        let n = kept(i).0;
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
    Collected {
        page,
        dropped,
        tombstone_dropped,
    }
}
