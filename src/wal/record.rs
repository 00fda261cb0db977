//! Byte layouts of log segments (see `design/durability.md`, section 1, "Files").
//!
//! Segment: a 16-byte header, then records back to back.
//! ```text
//! header  = "BWTXWAL\0" (8) | version u32 LE | base u32 LE
//!           version 11 (written by databases that log commits): records
//!           as version 7, marks among them, and `base` = the low 32 bits
//!           of the highest commit timestamp logged before this segment
//!           (recovery checks that segments without commits at the log's
//!           end follow every commit: none went with a lost file);
//!           version 8: the same, written before marks (none in it);
//!           version 7 (written without a log, `Durability::None`), 1, 2
//!           and 4: `base` = 0
//! record  = len u32 LE | crc u32 LE | payload (len bytes)
//!           crc = CRC32C over the 4 len bytes and the payload
//!
//! version 7 (compact, written since 2026-12-06):
//! payload = commit_ts varint | count varint | count x entry    (a commit)
//!         | 0x00 | synced varint                               (a mark)
//!           a mark precedes the records of a write once the segment's
//!           durable frontier moved: its first `synced` bytes were durable
//!           when they were written (no commit has timestamp 0)
//! entry   = keyspace varint | klen varint | vcode varint | key | value
//!           vcode 0: a delete, no value;
//!           vcode 1: value = addr u64 LE | len u32 LE, a reference to the
//!           value-log record at `addr` holding this version's `len`-byte
//!           value (`design/storage.md` §10.1);
//!           vcode 2 + l: l value bytes
//!
//! versions 1, 2 and 4 (fixed):
//! payload = commit_ts u64 LE | count u32 LE | count x entry
//! entry   = keyspace u32 LE | klen u32 LE | vlen u32 LE | key | value
//!           vlen 0xFFFF_FFFF: a delete, no value;
//!           vlen 0xFFFF_FFFE (version 4): a reference, as vcode 1 above
//! ```
//! Varints are unsigned LEB128 in their shortest form (`crate::le`). Version
//! 1 (before keyspaces, `design/keyspaces.md`) has no `keyspace` field:
//! every entry belongs to keyspace 0, the default one. Version 2 has no
//! references. The writer always writes version 7; a segment's header says
//! how to read its records. (There are no versions 3, 5, 6, 9 and 10: the header
//! has no checksum, so the readable versions differ pairwise in at least two
//! bits, and one flipped bit in a header never turns it into another one.)
//! A two-put commit of 16-byte keys and 100-byte values is 251 record bytes
//! in version 7 (a 4-byte timestamp: 2^21 <= ts < 2^28) and 276 in version 4.

use bytes::Bytes;

pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"BWTXWAL\0";
pub(crate) const VERSION: u32 = 7;
/// The format before keyspaces (entries without a keyspace id), still read.
pub(crate) const VERSION_1: u32 = 1;
/// The format before value-log references, still read.
pub(crate) const VERSION_2: u32 = 2;
/// The fixed-width format with value-log references, before varints; still
/// read.
pub(crate) const VERSION_4: u32 = 4;
pub(crate) const HEADER_LEN: usize = 16;
/// `len` and `crc`.
pub(crate) const FRAME_LEN: usize = 8;
const TOMB: u32 = u32::MAX;
/// `vlen` of an entry whose value is a value-log reference (version 4).
const REF: u32 = u32::MAX - 1;
/// Value codes of version 7: a delete, a reference, `V_INLINE + l` a value
/// of `l` bytes.
const V_DELETE: u64 = 0;
const V_REF: u64 = 1;
const V_INLINE: u64 = 2;
/// The bytes of a reference: `addr u64 | len u32`.
const REF_LEN: usize = 12;
/// Largest payload a reader accepts (a corrupted length must not make it
/// allocate gigabytes): a record holds at most one transaction's writes.
pub(crate) const MAX_PAYLOAD: usize = 1 << 31;

/// The largest commit timestamp a reader accepts (a crafted record with
/// `u64::MAX` would make the oracle overflow).
pub(crate) const MAX_TS: u64 = 1 << 62;

/// The header version of a segment whose header carries its *base*: the
/// low 32 bits of the highest commit timestamp logged before it (records
/// as [`VERSION`]'s). Written by logging databases from 2026-12-07 until
/// [`VERSION_MARKS`]; still read.
pub(crate) const VERSION_BASE: u32 = 8;

/// As [`VERSION_BASE`], and its records may include marks ([`Frame::Mark`],
/// the synced frontier, which recovery reads to tell a torn tail from
/// damage). Written by logging databases since stop 57 (2026-12-07).
/// 11: two bits from each of 1, 2, 4, 7 and 8.
pub(crate) const VERSION_MARKS: u32 = 11;

/// A segment's header: with `base`, version [`VERSION_MARKS`] carrying it;
/// without (a database that logs no commit, `Durability::None`, whose
/// checkpoints move its timestamp past what any segment could say),
/// version [`VERSION`] and a zero word.
pub(crate) fn header(base: Option<u64>) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    let version = if base.is_some() { VERSION_MARKS } else { VERSION };
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[12..16].copy_from_slice(&(base.unwrap_or(0) as u32).to_le_bytes());
    h
}

/// The record format of a segment header `h` (magic and reserved bytes
/// checked), if this build reads it: [`VERSION`] for a
/// [`VERSION_BASE`] header.
pub(crate) fn header_version(h: &[u8]) -> Option<u32> {
    if h.len() < HEADER_LEN || &h[..8] != SEGMENT_MAGIC {
        return None;
    }
    let v = u32_at(h, 8)?;
    if v == VERSION_BASE || v == VERSION_MARKS {
        return Some(VERSION);
    }
    if h[12..16] != [0; 4] {
        return None;
    }
    [VERSION, VERSION_4, VERSION_2, VERSION_1].contains(&v).then_some(v)
}

/// The base a [`VERSION_BASE`] header carries (see [`header`]); `None`
/// for another header.
pub(crate) fn header_base(h: &[u8]) -> Option<u32> {
    (h.len() >= HEADER_LEN && &h[..8] == SEGMENT_MAGIC && [VERSION_BASE, VERSION_MARKS].contains(&u32_at(h, 8)?))
        .then(|| u32_at(h, 12))
        .flatten()
}

/// Whether a segment header says its records may include marks (version
/// [`VERSION_MARKS`]): recovery then reads its torn tails by them.
pub(crate) fn header_marks(h: &[u8]) -> bool {
    header_base(h).is_some() && u32_at(h, 8) == Some(VERSION_MARKS)
}

/// A logged write's value, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Logged {
    /// The value, in the record.
    Put(Bytes),
    /// A delete.
    Delete,
    /// The value is in the value log: the record at `addr` holds its `len`
    /// bytes (written at commit, `design/storage.md` §10.1).
    Ref { addr: u64, len: u32 },
}

/// One logged write: the keyspace id, the key, the value.
pub(crate) type Write = (u32, Bytes, Logged);

/// A write's value to log: in the record (`Inline`, `None` a delete) or a
/// reference to the value log.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ToLog<'a> {
    Inline(&'a Option<Bytes>),
    Ref { addr: u64, len: u32 },
}

/// Append the framed record (current version) of a commit to `out`.
/// Returns the bytes of the values it references.
pub(crate) fn encode<'a>(out: &mut Vec<u8>, ts: u64, writes: impl Iterator<Item = (u32, &'a Bytes, ToLog<'a>)>) -> u64 {
    let mut referenced = 0u64;
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_LEN]);
    put_varint(out, ts);
    // The count goes before the entries, which are an iterator walked once:
    // one byte is kept for it (a count below 128), and the entries are
    // moved up only for a longer one.
    let count_at = out.len();
    out.push(0);
    let mut count = 0u64;
    for (ks, k, v) in writes {
        count += 1;
        put_varint(out, u64::from(ks));
        put_varint(out, k.len() as u64);
        match v {
            ToLog::Inline(v) => {
                put_varint(out, v.as_ref().map_or(V_DELETE, |v| V_INLINE + v.len() as u64));
                out.extend_from_slice(k);
                if let Some(v) = v {
                    out.extend_from_slice(v);
                }
            }
            ToLog::Ref { addr, len } => {
                referenced += u64::from(len);
                put_varint(out, V_REF);
                out.extend_from_slice(k);
                out.extend_from_slice(&addr.to_le_bytes());
                out.extend_from_slice(&len.to_le_bytes());
            }
        }
    }
    if count < 0x80 {
        out[count_at] = count as u8;
    } else {
        let (c, n) = varint_array(count);
        out.splice(count_at..count_at + 1, c[..n].iter().copied());
    }
    seal(out, start);
    referenced
}

/// Whether the record of writes with these `(key, value)` lengths (a
/// delete's value 0) fits in [`MAX_PAYLOAD`], so that it reads back: the
/// payload is at most 20 bytes of timestamp and count, then per entry at
/// most 25 bytes of varints and the key and value (a value-log reference
/// is shorter than its value, so this bounds that record too).
pub(crate) fn fits(entries: impl Iterator<Item = (usize, usize)>) -> bool {
    let mut total: usize = 20;
    for (k, v) in entries {
        total = total.saturating_add(25).saturating_add(k).saturating_add(v);
        if total > MAX_PAYLOAD {
            return false;
        }
    }
    true
}

/// Fill in the frame of the record that starts at `start` and runs to the
/// end of `out`: its payload's length, and the crc over that length and the
/// payload.
fn seal(out: &mut [u8], start: usize) {
    // Callers check `fits` first: a longer payload would not read back.
    debug_assert!(out.len() - start - FRAME_LEN <= MAX_PAYLOAD);
    let len = (out.len() - start - FRAME_LEN) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), &out[start + FRAME_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// One decoded commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Commit {
    pub(crate) ts: u64,
    /// In the order logged (by keyspace id, then key).
    pub(crate) writes: Vec<Write>,
}

/// Why a frame at some offset could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bad {
    /// The frame runs past the end of the data: a torn tail if it is the last.
    Truncated,
    /// The checksum does not match.
    Checksum,
    /// The checksum matched but the payload does not parse.
    Malformed,
}

impl Bad {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Bad::Truncated => "record truncated",
            Bad::Checksum => "record checksum mismatch",
            Bad::Malformed => "record payload malformed",
        }
    }
}

use crate::le::{put_varint, u32_at, u64_at, varint_array, varint_at};

/// [`decode_frame`] for a commit (a mark is `Bad::Malformed`): the tests'.
#[cfg(test)]
pub(crate) fn decode(b: &[u8], version: u32) -> Result<(Commit, usize), Bad> {
    match decode_frame(b, version)? {
        (Frame::Commit(c), n) => Ok((c, n)),
        (Frame::Mark(_), _) => Err(Bad::Malformed),
    }
}

/// A frame of a segment, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A commit's record.
    Commit(Commit),
    /// A mark: the segment was durable up to this byte offset when the
    /// records after the mark were written (`encode_mark`).
    Mark(u64),
}

/// Append a mark frame to `out`: the segment held `synced` durable bytes
/// (from its start, header included) when what follows was written. A
/// mark's payload is a zero byte (a commit timestamp of 0, which no commit
/// has) and `synced` as a varint: 10-13 bytes with its frame.
pub(crate) fn encode_mark(out: &mut Vec<u8>, synced: u64) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_LEN]);
    out.push(0);
    put_varint(out, synced);
    seal(out, start);
}

/// The offset a mark's payload `p` carries, if it is one (only version 7
/// records have marks; the writer puts them in segments of header version
/// [`VERSION_MARKS`] only, and recovery reads them as evidence only there,
/// `reader::is_torn`).
fn mark(p: &[u8], version: u32) -> Option<u64> {
    if version != VERSION || p.first() != Some(&0) {
        return None;
    }
    let (synced, n) = varint_at(p, 1).ok()?;
    (1 + n == p.len()).then_some(synced)
}

/// Decode the frame at the start of `b`, in a segment of format `version`:
/// a commit or a mark, and the frame's length.
pub(crate) fn decode_frame(b: &[u8], version: u32) -> Result<(Frame, usize), Bad> {
    let len = u32_at(b, 0).ok_or(Bad::Truncated)? as usize;
    let crc = u32_at(b, 4).ok_or(Bad::Truncated)?;
    if len > MAX_PAYLOAD {
        return Err(Bad::Checksum);
    }
    let payload = b.get(FRAME_LEN..FRAME_LEN + len).ok_or(Bad::Truncated)?;
    if crc32c::crc32c_append(crc32c::crc32c(&(len as u32).to_le_bytes()), payload) != crc {
        return Err(Bad::Checksum);
    }
    if let Some(synced) = mark(payload, version) {
        return Ok((Frame::Mark(synced), FRAME_LEN + len));
    }
    let commit = parse(payload, version).ok_or(Bad::Malformed)?;
    Ok((Frame::Commit(commit), FRAME_LEN + len))
}

fn parse(p: &[u8], version: u32) -> Option<Commit> {
    // Walked twice: first to check it and count its entries (nothing is
    // copied from a malformed payload, and the vector is allocated once, to
    // size), then to copy them.
    let mut n = 0;
    walk(p, version, |_, _, _| n += 1)?;
    let mut writes = Vec::with_capacity(n);
    let ts = walk(p, version, |ks, key, value| {
        let value = match value {
            Entry::Put(v) => Logged::Put(Bytes::copy_from_slice(v)),
            Entry::Delete => Logged::Delete,
            Entry::Ref { addr, len } => Logged::Ref { addr, len },
        };
        writes.push((ks, Bytes::copy_from_slice(key), value));
    })?;
    Some(Commit { ts, writes })
}

/// Whether payload `p` is well formed (what [`parse`] accepts), without
/// copying a byte: a cheap test of a candidate frame before its checksum
/// (`reader::is_torn` tries every offset after a bad frame).
pub(crate) fn well_formed(p: &[u8], version: u32) -> bool {
    mark(p, version).is_some() || walk(p, version, |_, _, _| {}).is_some()
}

/// An entry as [`walk`] finds it, borrowing the payload.
enum Entry<'a> {
    Put(&'a [u8]),
    Delete,
    Ref { addr: u64, len: u32 },
}

/// Walk payload `p` of a record of `version`, calling `each` with every
/// entry's keyspace, key and value in order: its commit timestamp if the
/// payload is well formed (its entries end exactly at its end, and the
/// timestamp is in `1..=MAX_TS`), else `None` (`each` may have seen some).
fn walk<'a>(p: &'a [u8], version: u32, mut each: impl FnMut(u32, &'a [u8], Entry<'a>)) -> Option<u64> {
    if version == VERSION {
        return walk_compact(p, each);
    }
    let ts = u64_at(p, 0)?;
    let count = u32_at(p, 8)? as usize;
    let mut at = 12;
    for _ in 0..count {
        let ks = if version == VERSION_1 {
            0
        } else {
            at += 4;
            u32_at(p, at - 4)?
        };
        let klen = u32_at(p, at)? as usize;
        let vlen = u32_at(p, at + 4)?;
        at += 8;
        let key = p.get(at..at.checked_add(klen)?)?;
        at += klen;
        let value = if vlen == TOMB {
            Entry::Delete
        } else if vlen == REF && version == VERSION_4 {
            let addr = u64_at(p, at)?;
            let len = u32_at(p, at + 8)?;
            at += REF_LEN;
            Entry::Ref { addr, len }
        } else {
            let v = p.get(at..at.checked_add(vlen as usize)?)?;
            at += vlen as usize;
            Entry::Put(v)
        };
        each(ks, key, value);
    }
    (at == p.len() && ts > 0 && ts <= MAX_TS).then_some(ts)
}

/// [`walk`] for version 7.
fn walk_compact<'a>(p: &'a [u8], mut each: impl FnMut(u32, &'a [u8], Entry<'a>)) -> Option<u64> {
    let mut at = 0;
    let varint = |at: &mut usize| {
        let (v, n) = varint_at(p, *at).ok()?;
        *at += n;
        Some(v)
    };
    let ts = varint(&mut at)?;
    let count = varint(&mut at)?;
    for _ in 0..count {
        let ks = u32::try_from(varint(&mut at)?).ok()?;
        let klen = usize::try_from(varint(&mut at)?).ok()?;
        let vcode = varint(&mut at)?;
        let key = p.get(at..at.checked_add(klen)?)?;
        at += klen;
        let value = match vcode {
            V_DELETE => Entry::Delete,
            V_REF => {
                let addr = u64_at(p, at)?;
                let len = u32_at(p, at + 8)?;
                at += REF_LEN;
                Entry::Ref { addr, len }
            }
            code => {
                let vlen = usize::try_from(code - V_INLINE).ok()?;
                let v = p.get(at..at.checked_add(vlen)?)?;
                at += vlen;
                Entry::Put(v)
            }
        };
        each(ks, key, value);
    }
    (at == p.len() && ts > 0 && ts <= MAX_TS).then_some(ts)
}

#[cfg(test)]
mod tests;
