//! Delta-flush payloads (`design/storage.md` §2.3): the versions a page
//! gained since its last flush, in key order and newest first per key (the
//! order of a base page, so fault-in merges them without sorting).
//!
//! Two encodings, told apart by the record's `flags` (the payload does not
//! say which it is):
//!
//! ```text
//! compact (flags = COMPACT_DELTA; written since 2026-12-06)
//! delta flush = count varint | entry * count
//! entry       = back varint | klen varint | vcode varint | key | value
//!               ts = max_ts - back (max_ts: the record's; some entry has back = 0,
//!               and max_ts = 0 if count = 0)
//!               vcode 0: tombstone (no value bytes);
//!               vcode 1: a value-log reference, value = addr u64 | len u32;
//!               vcode 2 + l: l value bytes
//!
//! fixed (flags = 0; written before, still read)
//! delta flush = count u32 | pad u32 | entry * count
//! entry       = ts u64 | klen u32 | vlen u32 | key | value
//!               vlen u32::MAX: tombstone (no value bytes);
//!               1 << 31 | l: a value-log reference, value = addr u64 | l u32
//! ```
//!
//! Varints are unsigned LEB128 in their shortest form (`wire::put_varint`).
//! A one-version flush of a 16-byte key and a 100-byte value is 120 payload
//! bytes compact and 140 fixed: with the record's 40-byte header and its
//! padding to a multiple of 8, 160 record bytes against 184.
//!
//! [`decode_delta`] validates a payload and returns a [`DeltaFlush`], a view
//! that allocates nothing and iterates the entries zero-copy.

use bytes::Bytes;

use super::super::base::INLINE_MAX;
use super::super::tree::{MAX_KEY_LEN, MAX_VALUE_LEN};
use super::wire::{bad, put_varint, Malformed, Reader, ValueSink, REF, TOMB_LEN};
use crate::{Error, Result};

/// The record flag of a compact delta flush (the only bit a delta flush's
/// record may set).
pub(crate) const COMPACT_DELTA: u8 = 1;

/// Compact value codes.
const V_TOMB: u64 = 0;
const V_REF: u64 = 1;
const V_INLINE: u64 = 2;

/// Check that `(key, ts, value)` may follow `prev` in a delta flush: key
/// order, newest first per key, `ts >= 1`, lengths in bounds.
fn check_next(prev: Option<(&[u8], u64)>, key: &[u8], ts: u64, value: Option<&[u8]>) -> Result<()> {
    let ordered = match prev {
        None => true,
        Some((k, t)) => k < key || (k == key && ts < t),
    };
    if !ordered || ts == 0 {
        return Err(Error::InvalidArgument(
            "delta flush entries must be in key order, newest first, ts >= 1",
        ));
    }
    if key.len() > MAX_KEY_LEN || value.is_some_and(|v| v.len() > MAX_VALUE_LEN) {
        return Err(Error::InvalidArgument("key or value too long for a delta flush"));
    }
    Ok(())
}

/// Append the compact delta-flush payload of `entries` — `(key, ts, value)`,
/// `None` a tombstone — to `out`, and return its newest timestamp (0 for no
/// entries): the record's `max_ts`, which its flags mark
/// [`COMPACT_DELTA`]. The entries must be in key order, newest first per
/// key, with `ts >= 1`; else [`Error::InvalidArgument`] and `out` is
/// unchanged. With `vlog`, each value longer than `INLINE_MAX` is offered to
/// it and written as a reference if it takes it (its errors are returned,
/// `out` unchanged).
pub(crate) fn encode_delta<'a, I>(entries: I, out: &mut Vec<u8>, mut vlog: Option<ValueSink<'_>>) -> Result<u64>
where
    I: IntoIterator<Item = (&'a [u8], u64, Option<&'a [u8]>)>,
    I::IntoIter: Clone,
{
    let entries = entries.into_iter();
    let (count, max_ts) = entries.clone().fold((0u64, 0u64), |(n, m), e| (n + 1, m.max(e.1)));
    let start = out.len();
    put_varint(out, count);
    let mut prev: Option<(&[u8], u64)> = None;
    let result = (|| {
        for (key, ts, value) in entries {
            check_next(prev, key, ts, value)?;
            prev = Some((key, ts));
            let addr = match (value, vlog.as_mut()) {
                (Some(v), Some(sink)) if v.len() > INLINE_MAX => sink(key, ts, v)?,
                _ => None,
            };
            // The entries are the ones `max_ts` was taken over (a clone of
            // the iterator); a `ts` above it would be a caller's iterator
            // that does not repeat itself.
            let back = max_ts
                .checked_sub(ts)
                .ok_or(Error::InvalidArgument("delta flush entries changed while encoded"))?;
            put_varint(out, back);
            put_varint(out, key.len() as u64);
            put_varint(
                out,
                match (value, addr) {
                    (None, _) => V_TOMB,
                    (Some(_), Some(_)) => V_REF,
                    (Some(v), None) => V_INLINE + v.len() as u64,
                },
            );
            put_key_value(out, key, value, addr);
        }
        if out.len() - start > u32::MAX as usize {
            return Err(Error::InvalidArgument("delta flush exceeds 4 GiB"));
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(max_ts),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// An entry's key and value bytes, the same in both encodings: the value,
/// nothing for a tombstone, or `addr u64 | len u32` for a value the value
/// log took at `addr`.
fn put_key_value(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>, addr: Option<u64>) {
    out.extend_from_slice(key);
    match (value, addr) {
        (Some(v), Some(addr)) => {
            out.extend_from_slice(&addr.to_le_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        }
        (Some(v), None) => out.extend_from_slice(v),
        (None, _) => {}
    }
}

/// [`encode_delta`] in the fixed encoding (record flags 0), as builds
/// before the compact one wrote it: for the tests that such payloads still
/// read.
#[cfg(all(test, not(loom)))]
pub(crate) fn encode_delta_fixed<'a>(
    entries: impl IntoIterator<Item = (&'a [u8], u64, Option<&'a [u8]>)>,
    out: &mut Vec<u8>,
    mut vlog: Option<ValueSink<'_>>,
) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    let mut count = 0u32;
    let mut prev: Option<(&[u8], u64)> = None;
    for (key, ts, value) in entries {
        if let Err(e) = check_next(prev, key, ts, value) {
            out.truncate(start);
            return Err(e);
        }
        prev = Some((key, ts));
        count += 1;
        let addr = match (value, vlog.as_mut()) {
            (Some(v), Some(sink)) if v.len() > INLINE_MAX => match sink(key, ts, v) {
                Ok(addr) => addr,
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            },
            _ => None,
        };
        out.extend_from_slice(&ts.to_le_bytes());
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        let vlen = match (value, addr) {
            (None, _) => TOMB_LEN,
            (Some(v), Some(_)) => REF | v.len() as u32,
            (Some(v), None) => v.len() as u32,
        };
        out.extend_from_slice(&vlen.to_le_bytes());
        put_key_value(out, key, value, addr);
    }
    out[start..start + 4].copy_from_slice(&count.to_le_bytes());
    Ok(())
}

/// A version's value in a delta flush.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DeltaValue {
    /// A tombstone.
    Tomb,
    /// The value, a slice of the payload.
    Value(Bytes),
    /// A value of `len` bytes at `addr` in the value log.
    Ref { addr: u64, len: u32 },
}

/// One version of a delta flush.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeltaEntry<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) ts: u64,
    pub(crate) value: DeltaValue,
}

/// A validated delta-flush payload: iterating it cannot fail.
#[derive(Clone, Debug)]
pub(crate) struct DeltaFlush {
    buf: Bytes,
    count: usize,
    /// Where the entries start.
    first: usize,
    /// The compact encoding's `max_ts`; `None` for the fixed encoding.
    max_ts: Option<u64>,
}

impl DeltaFlush {
    /// Entries in the payload.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The entries, in key order and newest first per key.
    pub(crate) fn iter(&self) -> impl Iterator<Item = DeltaEntry<'_>> + '_ {
        let mut r = Reader::new(&self.buf);
        r.bytes(self.first, "").expect("validated");
        (0..self.count).map(move |_| entry(&self.buf, &mut r, self.max_ts).expect("validated"))
    }
}

/// Parse the entry at the reader's position (checking bounds, lengths and
/// codes, not order): compact with the record's `max_ts`, fixed without.
fn entry<'a>(buf: &'a Bytes, r: &mut Reader<'a>, max_ts: Option<u64>) -> Result<DeltaEntry<'a>, Malformed> {
    let Some(max_ts) = max_ts else {
        return fixed_entry(buf, r);
    };
    let at = r.pos();
    let back = r.varint("truncated entry")?;
    if back >= max_ts {
        return bad(at, "timestamp 0 or below");
    }
    let k_at = r.pos();
    let klen = r.varint("truncated entry")?;
    if klen > MAX_KEY_LEN as u64 {
        return bad(k_at, "key too long");
    }
    let v_at = r.pos();
    let vcode = r.varint("truncated entry")?;
    let key = r.bytes(klen as usize, "key past the end")?;
    let value = match vcode {
        V_TOMB => DeltaValue::Tomb,
        V_REF => {
            let addr = r.u64("value-log reference past the end")?;
            let len = r.u32("value-log reference past the end")?;
            if len as usize > MAX_VALUE_LEN {
                return bad(v_at, "value too long");
            }
            DeltaValue::Ref { addr, len }
        }
        code => {
            let l = code - V_INLINE;
            if l > MAX_VALUE_LEN as u64 {
                return bad(v_at, "value too long");
            }
            let from = r.pos();
            r.bytes(l as usize, "value past the end")?;
            DeltaValue::Value(buf.slice(from..from + l as usize))
        }
    };
    Ok(DeltaEntry {
        key,
        ts: max_ts - back,
        value,
    })
}

/// [`entry`] in the fixed encoding.
fn fixed_entry<'a>(buf: &'a Bytes, r: &mut Reader<'a>) -> Result<DeltaEntry<'a>, Malformed> {
    let at = r.pos();
    let ts = r.u64("truncated entry")?;
    let klen = r.u32("truncated entry")?;
    let vlen = r.u32("truncated entry")?;
    if ts == 0 {
        return bad(at, "timestamp 0");
    }
    if klen as usize > MAX_KEY_LEN {
        return bad(at + 8, "key too long");
    }
    let key = r.bytes(klen as usize, "key past the end")?;
    let value = match vlen {
        TOMB_LEN => DeltaValue::Tomb,
        l if l & REF != 0 => {
            let len = l & !REF;
            let addr = r.u64("value-log reference past the end")?;
            if len as usize > MAX_VALUE_LEN || r.u32("value-log reference past the end")? != len {
                return bad(at + 12, "value-log reference length mismatch");
            }
            DeltaValue::Ref { addr, len }
        }
        l => {
            if l as usize > MAX_VALUE_LEN {
                return bad(at + 12, "value too long");
            }
            let v_at = r.pos();
            r.bytes(l as usize, "value past the end")?;
            DeltaValue::Value(buf.slice(v_at..v_at + l as usize))
        }
    };
    Ok(DeltaEntry { key, ts, value })
}

/// Validate the delta-flush payload of a record with `flags` and `max_ts`:
/// a known encoding, every entry in bounds, `ts >= 1`, value codes valid,
/// key order and newest first per key, no bytes after the last entry, and
/// (compact) some entry at the record's `max_ts` (0 for no entries). Errors name the first
/// offset found damaged (0 for flags naming no encoding).
pub(crate) fn decode_delta(payload: &Bytes, flags: u8, max_ts: u64) -> Result<DeltaFlush, Malformed> {
    let mut r = Reader::new(payload);
    let (count, max_ts) = match flags {
        0 => {
            let count = r.u32("truncated header")? as usize;
            if r.u32("truncated header")? != 0 {
                return bad(4, "nonzero padding");
            }
            (count, None)
        }
        COMPACT_DELTA => {
            let count = r.varint("truncated header")?;
            // Every entry takes at least three bytes: a count the payload
            // cannot hold is refused before the loop.
            if count > payload.len() as u64 / 3 {
                return bad(0, "more entries than the payload holds");
            }
            (count as usize, Some(max_ts))
        }
        _ => return bad(0, "a delta flush of unknown flags"),
    };
    let first = r.pos();
    let mut prev: Option<(&[u8], u64)> = None;
    let mut newest = 0;
    for _ in 0..count {
        let at = r.pos();
        let e = entry(payload, &mut r, max_ts)?;
        if let Some((k, t)) = prev {
            if !(k < e.key || (k == e.key && e.ts < t)) {
                return bad(at, "entries not in key order, newest first");
            }
        }
        newest = newest.max(e.ts);
        prev = Some((e.key, e.ts));
    }
    if r.pos() != payload.len() {
        return bad(r.pos(), "bytes after the last entry");
    }
    if max_ts.is_some_and(|m| newest != m) {
        return bad(0, "no entry at the record's max_ts");
    }
    Ok(DeltaFlush {
        buf: payload.clone(),
        count,
        first,
        max_ts,
    })
}
