//! Delta-flush payloads (`design/storage.md` §2.3): the versions a page
//! gained since its last flush, in key order and newest first per key (the
//! order of a base page, so fault-in merges them without sorting).
//!
//! ```text
//! delta flush = count u32 | pad u32 | entry * count
//! entry       = ts u64 | klen u32 | vlen u32 | key | value
//!               vlen u32::MAX: tombstone (no value bytes);
//!               1 << 31 | l: a value-log reference, value = addr u64 | l u32
//! ```
//!
//! [`decode_delta`] validates a payload and returns a [`DeltaFlush`], a view
//! that allocates nothing and iterates the entries zero-copy.

use bytes::Bytes;

use super::super::base::INLINE_MAX;
use super::super::tree::{MAX_KEY_LEN, MAX_VALUE_LEN};
use super::wire::{bad, Malformed, Reader, ValueSink, REF, TOMB_LEN};
use crate::{Error, Result};

/// Append the delta-flush payload of `entries` — `(key, ts, value)`, `None`
/// a tombstone — to `out`. The entries must be in key order, newest first
/// per key, with `ts >= 1`; else [`Error::InvalidArgument`] and `out` is
/// unchanged. With `vlog`, each value longer than `INLINE_MAX` is offered to
/// it and written as a reference if it takes it (its errors are returned,
/// `out` unchanged).
pub(crate) fn encode_delta<'a>(
    entries: impl IntoIterator<Item = (&'a [u8], u64, Option<&'a [u8]>)>,
    out: &mut Vec<u8>,
    mut vlog: Option<ValueSink<'_>>,
) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    let mut count = 0u32;
    let mut prev: Option<(&[u8], u64)> = None;
    let result = (|| {
        for (key, ts, value) in entries {
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
            prev = Some((key, ts));
            count = count
                .checked_add(1)
                .ok_or(Error::InvalidArgument("delta flush of 2^32 entries"))?;
            let addr = match (value, vlog.as_mut()) {
                (Some(v), Some(sink)) if v.len() > INLINE_MAX => sink(key, ts, v)?,
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
        if out.len() - start > u32::MAX as usize {
            return Err(Error::InvalidArgument("delta flush exceeds 4 GiB"));
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            out[start..start + 4].copy_from_slice(&count.to_le_bytes());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
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
}

impl DeltaFlush {
    /// Entries in the payload.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The entries, in key order and newest first per key.
    pub(crate) fn iter(&self) -> impl Iterator<Item = DeltaEntry<'_>> + '_ {
        let mut r = Reader::new(&self.buf);
        r.bytes(8, "").expect("validated");
        (0..self.count).map(move |_| entry(&self.buf, &mut r).expect("validated"))
    }
}

/// Parse the entry at the reader's position (checking bounds, lengths and
/// codes, not order).
fn entry<'a>(buf: &'a Bytes, r: &mut Reader<'a>) -> Result<DeltaEntry<'a>, Malformed> {
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

/// Validate a delta-flush payload: every entry in bounds, `ts >= 1`, value
/// codes valid, key order and newest first per key, no bytes after the last
/// entry. Errors name the first offset found damaged.
pub(crate) fn decode_delta(payload: &Bytes) -> Result<DeltaFlush, Malformed> {
    let mut r = Reader::new(payload);
    let count = r.u32("truncated header")? as usize;
    if r.u32("truncated header")? != 0 {
        return bad(4, "nonzero padding");
    }
    let mut prev: Option<(&[u8], u64)> = None;
    for _ in 0..count {
        let at = r.pos();
        let e = entry(payload, &mut r)?;
        if let Some((k, t)) = prev {
            if !(k < e.key || (k == e.key && e.ts < t)) {
                return bad(at, "entries not in key order, newest first");
            }
        }
        prev = Some((e.key, e.ts));
    }
    if r.pos() != payload.len() {
        return bad(r.pos(), "bytes after the last entry");
    }
    Ok(DeltaFlush {
        buf: payload.clone(),
        count,
    })
}
