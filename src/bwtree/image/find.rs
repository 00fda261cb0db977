//! Point look-ups in page images and delta flushes without decoding them
//! into a base page (`design/storage.md` §5.4, read-through): the newest
//! version of one key at or below a snapshot timestamp.
//!
//! [`find_in_leaf`] parses the image's header ([`Layout::parse`]), binary
//! searches its key offsets and reads the key's versions; it checks the
//! bounds of everything it reads (so no input makes it panic or read out of
//! the image) and the order of the versions it passes, but not the order
//! of keys it does not compare: the page store checked the record's crc,
//! and the full decode at fault-in checks the rest. [`find_in_delta`]
//! searches a delta flush that [`super::decode_delta`] validated.
//!
//! A chain's answer is the newest version any of its parts gives, the
//! newer part winning a tie, as [`super::merge_chain_at`] merges them.

use std::cmp::Ordering;

use bytes::Bytes;

use super::delta::{DeltaFlush, DeltaValue};
use super::layout::{Layout, Raw};
use super::wire::{bad, Malformed};

/// A version found: its timestamp and value (a value is a slice of the
/// payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) ts: u64,
    pub(crate) value: DeltaValue,
}

/// The newest version of `key` at or below `ts` in the leaf image `image`,
/// `None` if the image has none.
pub(crate) fn find_in_leaf(image: &Bytes, key: &[u8], ts: u64) -> Result<Option<Found>, Malformed> {
    let l = Layout::parse(image)?;
    let (mut lo, mut hi) = (0, l.n);
    let i = loop {
        if lo >= hi {
            return Ok(None);
        }
        let mid = lo + (hi - lo) / 2;
        match l.key(mid)?.cmp(key) {
            Ordering::Less => lo = mid + 1,
            Ordering::Greater => hi = mid,
            Ordering::Equal => break mid,
        }
    };
    let range = l.versions(i)?;
    let mut newer = u64::MAX;
    for j in range.clone() {
        let t = l.ts(j);
        if t == 0 || (j > range.start && t >= newer) {
            return bad(l.vers_at + 16 * j, "timestamps not newest first, or 0");
        }
        newer = t;
        if t > ts {
            continue;
        }
        let value = match l.value(j, true)? {
            Raw::Tomb => DeltaValue::Tomb,
            Raw::Inline { off, len } => {
                let at = l.vals_at + off as usize;
                DeltaValue::Value(image.slice(at..at + len as usize))
            }
            Raw::Ref { addr, len } => DeltaValue::Ref { addr, len },
        };
        return Ok(Some(Found { ts: t, value }));
    }
    Ok(None)
}

/// Every key of the leaf image `image`, in key order, with its newest
/// version's timestamp and whether that version is a value (not a
/// tombstone): what a stub's key set is built from
/// (`super::super::blind::key_set`). Bounds are checked as
/// [`find_in_leaf`] checks them.
pub(crate) fn newest_in_leaf(image: &Bytes, mut each: impl FnMut(&[u8], u64, bool)) -> Result<(), Malformed> {
    let l = Layout::parse(image)?;
    for i in 0..l.n {
        let range = l.versions(i)?;
        let j = range.start;
        if range.is_empty() {
            return bad(l.vers_at + 16 * j, "a key without versions");
        }
        let t = l.ts(j);
        if t == 0 {
            return bad(l.vers_at + 16 * j, "timestamp 0");
        }
        each(l.key(i)?, t, !matches!(l.value(j, true)?, Raw::Tomb));
    }
    Ok(())
}

/// The newest version of `key` at or below `ts` in the delta flush `d`.
pub(crate) fn find_in_delta(d: &DeltaFlush, key: &[u8], ts: u64) -> Option<Found> {
    d.iter()
        .skip_while(|e| e.key < key)
        .take_while(|e| e.key == key)
        .find(|e| e.ts <= ts)
        .map(|e| Found {
            ts: e.ts,
            value: e.value,
        })
}

/// The answer of a chain from the answers of its parts, newest part first
/// (`None`: the part has no version at or below the snapshot).
pub(crate) fn newest(parts: impl IntoIterator<Item = Option<Found>>) -> Option<Found> {
    parts
        .into_iter()
        .flatten()
        .fold(None, |best: Option<Found>, f| match best {
            Some(b) if b.ts >= f.ts => Some(b),
            _ => Some(f),
        })
}
