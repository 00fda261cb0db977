//! Leaf page images (`design/storage.md` §2.2): [`encode_leaf`] writes a
//! [`LeafBase`] as one contiguous blob, [`decode_leaf_with`] validates an image
//! and builds the base page back, zero-copy (keys, fences and values are
//! slices of the image's `Bytes`).
//!
//! ```text
//! header  kind u8 (= 1) | flags u8 (= 0) | pad u16 | n u32 | m u32 | pad u32 |
//!         low_len u32 | high_len u32 | sibling u64                      32 bytes
//! fences  low | high                          (len u32::MAX: none), pad to 8
//! offs    [u32; n + 1]                        offs[0] = 0, pad to 8
//! vstart  [u32; n + 1]                        only if m != n, pad to 8
//! vers    [ts u64 | off u32 | len u32; m]     newest first per key
//! keys    key i = keys[offs[i]..offs[i + 1]]  pad to 8
//! vals    the rest of the payload
//! ```
//!
//! Values the page keeps inline come first in `vals` (the page's blob, copied
//! whole, so their offsets do not change), then its large values in version
//! order. Decoding puts values longer than `INLINE_MAX` in `big` again (as
//! slices of the image), so a decoded page has the layout consolidation builds.

use bytes::Bytes;

use super::super::base::{LeafBase, PageRange, Ver, BIG, INLINE_MAX, TOMBSTONE};
use super::super::keys::KeyArray;
use super::layout::{Layout, Raw, HEADER, KIND_LEAF};
use super::wire::{
    align8, bad, pad8, u32_at, Fetched, Malformed, ValueSink, ValueSource, NO_FENCE, REF, REF_BYTES, TOMB_LEN,
};
use crate::{Error, Result};

/// Append the image of `base` to `out` (the image starts at `out.len()` on
/// entry; offsets inside it are from there). One pass over the page after
/// sizing it, so `out` grows at most once. With `vlog`, each value longer
/// than `INLINE_MAX` is offered to it and written as a reference if it takes
/// it. Errors: the hook's, or [`Error::InvalidArgument`] if the image would
/// pass 4 GiB (its offsets are 32-bit); `out` is unchanged then.
pub(crate) fn encode_leaf(base: &LeafBase, out: &mut Vec<u8>, mut vlog: Option<ValueSink<'_>>) -> Result<()> {
    let (n, m) = (base.len(), base.version_count());
    let inline = base.inline_vals();
    let big = base.big_values();
    // Where each large value goes in `vals`: after the inline blob, in version
    // order, as its bytes or a reference. `order` lists them in that order.
    let mut place: Vec<Option<(u32, Option<u64>)>> = vec![None; big.len()];
    let mut order: Vec<usize> = Vec::with_capacity(big.len());
    let mut vals_len = inline.len() as u64;
    if !big.is_empty() {
        for i in 0..n {
            for v in base.versions(i) {
                if v.len == TOMBSTONE || v.len & BIG == 0 || place[v.off as usize].is_some() {
                    continue;
                }
                let value = &big[v.off as usize];
                let addr = match vlog.as_mut() {
                    Some(sink) => sink(base.keys.key(i), v.ts, value)?,
                    None => None,
                };
                place[v.off as usize] = Some((vals_len.min(u32::MAX as u64) as u32, addr));
                order.push(v.off as usize);
                vals_len += if addr.is_some() { REF_BYTES } else { value.len() } as u64;
            }
        }
    }
    let (low, high) = (base.range.low(), base.range.high());
    let fence_bytes = low.map_or(0, <[u8]>::len) + high.map_or(0, <[u8]>::len);
    let keys = base.keys.all_bytes();
    let index = align8(4 * (n + 1));
    let vers_at = HEADER + align8(fence_bytes) + index + if m != n { index } else { 0 };
    let vals_at = vers_at + 16 * m + align8(keys.len());
    let total = vals_at as u64 + vals_len;
    if total > u32::MAX as u64 {
        return Err(Error::InvalidArgument("page image exceeds 4 GiB"));
    }

    let start = out.len();
    out.reserve(total as usize);
    out.extend_from_slice(&[KIND_LEAF, 0, 0, 0]);
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&(m as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for f in [low, high] {
        out.extend_from_slice(&f.map_or(NO_FENCE, |f| f.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(&base.range.sibling.to_le_bytes());
    out.extend_from_slice(low.unwrap_or_default());
    out.extend_from_slice(high.unwrap_or_default());
    pad8(out, start);
    for i in 0..=n {
        out.extend_from_slice(&base.keys.key_offset(i).to_le_bytes());
    }
    pad8(out, start);
    if m != n {
        let mut at = 0u32;
        out.extend_from_slice(&at.to_le_bytes());
        for i in 0..n {
            at += base.versions(i).len() as u32;
            out.extend_from_slice(&at.to_le_bytes());
        }
        pad8(out, start);
    }
    for i in 0..n {
        for v in base.versions(i) {
            let (off, len) = match v.len {
                TOMBSTONE => (0, TOMB_LEN),
                l if l & BIG != 0 => match place[v.off as usize] {
                    Some((off, Some(_))) => (off, REF | (l & !BIG)),
                    Some((off, None)) => (off, l & !BIG),
                    None => unreachable!("every large value was placed above"),
                },
                l => (v.off, l),
            };
            out.extend_from_slice(&v.ts.to_le_bytes());
            out.extend_from_slice(&off.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
    }
    out.extend_from_slice(keys);
    pad8(out, start);
    out.extend_from_slice(inline);
    for j in order {
        match place[j] {
            Some((_, Some(addr))) => {
                out.extend_from_slice(&addr.to_le_bytes());
                out.extend_from_slice(&(big[j].len() as u32).to_le_bytes());
            }
            _ => out.extend_from_slice(&big[j]),
        }
    }
    debug_assert_eq!((out.len() - start) as u64, total);
    Ok(())
}

/// Validate a page image and build its base page (keys, fences and values
/// are slices of `image`). Errors name the first offset found damaged.
/// A value-log reference is malformed here: use [`decode_leaf_with`]
/// (tests only: the page file always decodes with its value log).
#[cfg(all(test, not(loom)))]
pub(crate) fn decode_leaf(image: &Bytes) -> Result<LeafBase, Malformed> {
    decode_leaf_with(image, None)
}

/// `decode_leaf` (tests only), reading each value-log reference through `vlog` while
/// decoding (`design/storage.md` §10: values are read at fault-in, so the
/// base page holds every value as `Bytes`, zero-copy, and no read path has
/// to do I/O). A reference must be longer than `INLINE_MAX` (the encoder
/// offers only such values to its sink); a value the hook cannot read fails
/// the decode at the reference's version.
pub(crate) fn decode_leaf_with(image: &Bytes, mut vlog: Option<ValueSource<'_>>) -> Result<LeafBase, Malformed> {
    let l = Layout::parse(image)?;
    let (n, m, offs, keys_at, keys_len) = (l.n, l.m, l.offs, l.keys_at, l.keys_len);

    // Keys: offsets from 0, each key at most MAX_KEY_LEN, strictly ascending,
    // inside the fences.
    if u32_at(offs, 0) != 0 {
        return bad(l.offs_at, "first key offset is not 0");
    }
    // (Ascending keys are inside the fences iff the first is at or above
    // the low one and the last below the high one.)
    let mut prev: Option<&[u8]> = None;
    for i in 0..n {
        let key = l.key(i)?;
        let in_range = match prev {
            None => l.low.as_deref().is_none_or(|lo| lo <= key),
            Some(p) => p < key,
        } && (i + 1 < n || l.high.as_deref().is_none_or(|h| key < h));
        if !in_range {
            return bad(
                keys_at + u32_at(offs, i) as usize,
                "keys not ascending or outside the fences",
            );
        }
        prev = Some(key);
    }
    // The version index: from 0 to m, every key at least one version.
    if let Some(v) = l.vstart {
        if u32_at(v, 0) != 0 || u32_at(v, n) as usize != m {
            return bad(l.vstart_at, "version index does not span the versions");
        }
        for i in 0..n {
            if u32_at(v, i + 1) <= u32_at(v, i) {
                return bad(l.vstart_at + 4 * i + 4, "a key without versions");
            }
        }
    }

    // Versions: newest first per key, ts >= 1, values in bounds.
    let mut out: Vec<Ver> = Vec::with_capacity(m);
    let mut big: Vec<Bytes> = Vec::new();
    let mut inline_end = 0usize;
    for i in 0..n {
        let mut newer = u64::MAX;
        let range = l.versions(i)?;
        for j in range.clone() {
            let ts = l.ts(j);
            if ts == 0 || (j > range.start && ts >= newer) {
                return bad(l.vers_at + 16 * j, "timestamps not newest first, or 0");
            }
            let next_newer = (j > range.start).then_some(newer);
            newer = ts;
            let ver = match l.value(j, vlog.is_some())? {
                Raw::Tomb => Ver {
                    ts,
                    off: 0,
                    len: TOMBSTONE,
                },
                Raw::Ref { addr, len } => {
                    let source = vlog
                        .as_mut()
                        .expect("Layout::value takes references only with a value log");
                    match source(l.key(i)?, ts, addr, len, next_newer) {
                        Some(Fetched::Value(v)) if v.len() == len as usize => big.push(v),
                        Some(Fetched::Unread) => big.push(Bytes::new()),
                        _ => return bad(l.vers_at + 16 * j + 8, "value-log value could not be read"),
                    }
                    Ver {
                        ts,
                        off: (big.len() - 1) as u32,
                        len: BIG | len,
                    }
                }
                Raw::Inline { off, len } => {
                    let end = off as usize + len as usize;
                    if len as usize > INLINE_MAX {
                        big.push(image.slice(l.vals_at + off as usize..l.vals_at + end));
                        Ver {
                            ts,
                            off: (big.len() - 1) as u32,
                            len: BIG | len,
                        }
                    } else {
                        inline_end = inline_end.max(end);
                        Ver { ts, off, len }
                    }
                }
            };
            out.push(ver);
        }
    }
    let keys = KeyArray::from_offsets(n, |i| u32_at(offs, i), image.slice(keys_at..keys_at + keys_len));
    let version_start = match l.vstart {
        Some(v) => (0..=n).map(|i| u32_at(v, i)).collect(),
        None => Box::default(),
    };
    Ok(LeafBase::from_parts(
        PageRange::new(l.low, l.high, l.sibling),
        keys,
        version_start,
        out.into_boxed_slice(),
        image.slice(l.vals_at..l.vals_at + inline_end),
        big.into_boxed_slice(),
    ))
}
