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
use super::super::mapping_table::NO_PID;
use super::super::tree::{MAX_KEY_LEN, MAX_VALUE_LEN};
use super::wire::{
    align8, bad, pad8, u32_at, Malformed, Reader, ValueSink, ValueSource, NO_FENCE, REF, REF_BYTES, TOMB_LEN,
};
use crate::{Error, Result};

/// `kind` of a leaf image.
const KIND_LEAF: u8 = 1;
/// Bytes of the fixed header.
const HEADER: usize = 32;

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

/// `count * each` bytes, or `reason` at `at` if that overflows.
fn size(count: usize, each: usize, at: usize, reason: &'static str) -> Result<usize, Malformed> {
    count.checked_mul(each).map_or_else(|| bad(at, reason), Ok)
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
    let mut r = Reader::new(image);
    let kind = r.bytes(1, "truncated header")?[0];
    if kind != KIND_LEAF {
        return bad(0, "not a leaf image");
    }
    if r.bytes(3, "truncated header")? != [0, 0, 0] {
        return bad(1, "unknown flags or nonzero padding");
    }
    let n = r.u32("truncated header")? as usize;
    let m = r.u32("truncated header")? as usize;
    if r.u32("truncated header")? != 0 {
        return bad(12, "nonzero padding");
    }
    let low_len = r.u32("truncated header")?;
    let high_len = r.u32("truncated header")?;
    let sibling = r.u64("truncated header")?;
    let mut fence = |len: u32| -> Result<Option<Bytes>, Malformed> {
        if len == NO_FENCE {
            return Ok(None);
        }
        let at = r.pos();
        if len as usize > MAX_KEY_LEN {
            return bad(at, "fence longer than a key can be");
        }
        r.bytes(len as usize, "fence past the end")?;
        Ok(Some(image.slice(at..at + len as usize)))
    };
    let (low, high) = (fence(low_len)?, fence(high_len)?);
    if high.is_some() != (sibling != NO_PID) {
        return bad(24, "sibling present iff high fence is not");
    }
    if let (Some(l), Some(h)) = (&low, &high) {
        if l >= h {
            return bad(HEADER, "low fence not below high fence");
        }
    }
    r.pad8("truncated fences")?;
    if m < n {
        return bad(4, "fewer versions than keys");
    }
    let offs_at = r.pos();
    let offs = r.bytes(
        size(n + 1, 4, offs_at, "key count overflows")?,
        "key offsets past the end",
    )?;
    r.pad8("truncated key offsets")?;
    let vstart_at = r.pos();
    let vstart = if m != n {
        let v = r.bytes(4 * (n + 1), "version index past the end")?;
        r.pad8("truncated version index")?;
        Some(v)
    } else {
        None
    };
    let vers_at = r.pos();
    let vers = r.bytes(size(m, 16, 8, "version count overflows")?, "versions past the end")?;
    let keys_at = r.pos();
    let keys_len = u32_at(offs, n) as usize;
    r.bytes(keys_len, "keys past the end")?;
    r.pad8("truncated keys")?;
    let vals_at = r.pos();
    let vals = &image[vals_at..];

    // Keys: offsets from 0, each key at most MAX_KEY_LEN, strictly ascending,
    // inside the fences.
    if u32_at(offs, 0) != 0 {
        return bad(offs_at, "first key offset is not 0");
    }
    // (Ascending keys are inside the fences iff the first is at or above
    // the low one and the last below the high one.)
    let mut prev: Option<&[u8]> = None;
    for i in 0..n {
        let (a, b) = (u32_at(offs, i) as usize, u32_at(offs, i + 1) as usize);
        if b < a || b - a > MAX_KEY_LEN || b > keys_len {
            return bad(offs_at + 4 * i + 4, "key offsets out of order or key too long");
        }
        let key = &image[keys_at + a..keys_at + b];
        let in_range = match prev {
            None => low.as_deref().is_none_or(|l| l <= key),
            Some(p) => p < key,
        } && (i + 1 < n || high.as_deref().is_none_or(|h| key < h));
        if !in_range {
            return bad(keys_at + a, "keys not ascending or outside the fences");
        }
        prev = Some(key);
    }
    // The version index: from 0 to m, every key at least one version.
    if let Some(v) = vstart {
        if u32_at(v, 0) != 0 || u32_at(v, n) as usize != m {
            return bad(vstart_at, "version index does not span the versions");
        }
        for i in 0..n {
            if u32_at(v, i + 1) <= u32_at(v, i) {
                return bad(vstart_at + 4 * i + 4, "a key without versions");
            }
        }
    }
    let version_range = |i: usize| match vstart {
        Some(v) => u32_at(v, i) as usize..u32_at(v, i + 1) as usize,
        None => i..i + 1,
    };

    // Versions: newest first per key, ts >= 1, values in bounds.
    let mut out: Vec<Ver> = Vec::with_capacity(m);
    let mut big: Vec<Bytes> = Vec::new();
    let mut inline_end = 0usize;
    for i in 0..n {
        let mut newer = u64::MAX;
        for j in version_range(i) {
            let at = vers_at + 16 * j;
            let rec = &vers[16 * j..16 * j + 16];
            let ts = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
            let (off, len) = (u32_at(rec, 2), u32_at(rec, 3));
            if ts == 0 || (j > version_range(i).start && ts >= newer) {
                return bad(at, "timestamps not newest first, or 0");
            }
            newer = ts;
            let ver = match len {
                TOMB_LEN if off == 0 => Ver {
                    ts,
                    off,
                    len: TOMBSTONE,
                },
                TOMB_LEN => return bad(at + 8, "tombstone with an offset"),
                l if l & REF != 0 => {
                    let l = l & !REF;
                    let Some(source) = vlog.as_mut() else {
                        return bad(at + 12, "value-log reference (no value log to read it from)");
                    };
                    let end = off as usize + REF_BYTES;
                    if l as usize > MAX_VALUE_LEN || (l as usize) <= INLINE_MAX || end > vals.len() {
                        return bad(at + 8, "value-log reference out of bounds");
                    }
                    let r = &vals[off as usize..end];
                    let addr = u64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
                    if u32_at(r, 2) != l {
                        return bad(vals_at + off as usize + 8, "value-log reference length differs");
                    }
                    let (a, b) = (u32_at(offs, i) as usize, u32_at(offs, i + 1) as usize);
                    match source(&image[keys_at + a..keys_at + b], ts, addr, l) {
                        Some(v) if v.len() == l as usize => big.push(v),
                        _ => return bad(at + 8, "value-log value could not be read"),
                    }
                    Ver {
                        ts,
                        off: (big.len() - 1) as u32,
                        len: BIG | l,
                    }
                }
                l => {
                    let end = off as usize + l as usize;
                    if l as usize > MAX_VALUE_LEN || end > vals.len() {
                        return bad(at + 8, "value past the end");
                    }
                    if l as usize > INLINE_MAX {
                        big.push(image.slice(vals_at + off as usize..vals_at + end));
                        Ver {
                            ts,
                            off: (big.len() - 1) as u32,
                            len: BIG | l,
                        }
                    } else {
                        inline_end = inline_end.max(end);
                        Ver { ts, off, len: l }
                    }
                }
            };
            out.push(ver);
        }
    }
    let keys = KeyArray::from_offsets(n, |i| u32_at(offs, i), image.slice(keys_at..keys_at + keys_len));
    let version_start = match vstart {
        Some(v) => (0..=n).map(|i| u32_at(v, i)).collect(),
        None => Box::default(),
    };
    Ok(LeafBase::from_parts(
        PageRange::new(low, high, sibling),
        keys,
        version_start,
        out.into_boxed_slice(),
        image.slice(vals_at..vals_at + inline_end),
        big.into_boxed_slice(),
    ))
}
