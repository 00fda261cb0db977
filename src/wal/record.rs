//! Byte layouts of log segments (see `design/durability.md`, section 1, "Files").
//!
//! Segment: a 16-byte header, then records back to back.
//! ```text
//! header  = "BWTXWAL\0" (8) | version u32 LE | base u32 LE
//!           version 8 (written by databases that log commits): records as
//!           version 7, and `base` = the low 32 bits of the highest commit
//!           timestamp logged before this segment (recovery checks that
//!           segments without commits at the log's end follow every commit:
//!           none went with a lost file); version 7 (written without a log,
//!           `Durability::None`), 1, 2 and 4: `base` = 0
//! record  = len u32 LE | crc u32 LE | payload (len bytes)
//!           crc = CRC32C over the 4 len bytes and the payload
//!
//! version 7 (compact, written since 2026-12-06):
//! payload = commit_ts varint | count varint | count x entry
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
//! how to read its records. (There are no versions 3, 5 and 6: the header
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
/// as [`VERSION`]'s). Written by logging databases since 2026-12-07.
pub(crate) const VERSION_BASE: u32 = 8;

/// A segment's header: with `base`, version [`VERSION_BASE`] carrying it;
/// without (a database that logs no commit, `Durability::None`, whose
/// checkpoints move its timestamp past what any segment could say),
/// version [`VERSION`] and a zero word.
pub(crate) fn header(base: Option<u64>) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    let version = if base.is_some() { VERSION_BASE } else { VERSION };
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
    if v == VERSION_BASE {
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
    (h.len() >= HEADER_LEN && &h[..8] == SEGMENT_MAGIC && u32_at(h, 8)? == VERSION_BASE)
        .then(|| u32_at(h, 12))
        .flatten()
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

/// Decode the frame at the start of `b`, in a segment of format `version`:
/// the commit and the frame's length.
pub(crate) fn decode(b: &[u8], version: u32) -> Result<(Commit, usize), Bad> {
    let len = u32_at(b, 0).ok_or(Bad::Truncated)? as usize;
    let crc = u32_at(b, 4).ok_or(Bad::Truncated)?;
    if len > MAX_PAYLOAD {
        return Err(Bad::Checksum);
    }
    let payload = b.get(FRAME_LEN..FRAME_LEN + len).ok_or(Bad::Truncated)?;
    if crc32c::crc32c_append(crc32c::crc32c(&(len as u32).to_le_bytes()), payload) != crc {
        return Err(Bad::Checksum);
    }
    let commit = parse(payload, version).ok_or(Bad::Malformed)?;
    Ok((commit, FRAME_LEN + len))
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
    walk(p, version, |_, _, _| {}).is_some()
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
mod tests {
    use super::*;

    /// `fits` bounds every encoding: its 20 bytes cover the timestamp's and
    /// the count's varints at their widest, its 25 an entry's (keyspace,
    /// key length and value code at their widest, or a reference's code
    /// and 12 bytes); it refuses 9 values of the largest size the tree
    /// takes (about 2.25 GiB) and takes 7; and a record of such entries
    /// encodes within the bound.
    #[test]
    fn fits_bounds_the_payload() {
        let width = |v: u64| varint_array(v).1;
        assert!(width(u64::MAX) + width(u64::MAX) <= 20, "timestamp and count");
        let (k_max, v_max) = (crate::bwtree::MAX_KEY_LEN as u64, crate::bwtree::MAX_VALUE_LEN as u64);
        let ks = width(u64::from(u32::MAX));
        let inline = ks + width(k_max) + width(V_INLINE + v_max).max(width(V_DELETE));
        let reference = ks + width(k_max) + width(V_REF) + 12;
        assert!(inline <= 25 && reference <= 25, "{inline} {reference}");
        let (k, v) = (k_max as usize, v_max as usize);
        assert!(fits(std::iter::repeat_n((k, v), 7)));
        assert!(!fits(std::iter::repeat_n((k, v), 9)), "about 2.25 GiB");
        assert!(
            !fits(std::iter::repeat_n((0, 0), MAX_PAYLOAD / 25 + 1)),
            "empty entries"
        );
        assert!(fits(std::iter::empty()));
        let key = Bytes::from(vec![7u8; 300]);
        let value = Bytes::from(vec![9u8; 70_000]);
        let mut out = Vec::new();
        let v = Some(value.clone());
        encode(
            &mut out,
            u64::MAX >> 2,
            (0..3).map(|_| (u32::MAX, &key, ToLog::Inline(&v))),
        );
        let bound = 20 + 3 * (25 + key.len() + value.len());
        assert!(out.len() - FRAME_LEN <= bound, "{} > {bound}", out.len() - FRAME_LEN);
    }

    /// The version-4 encoder (fixed-width fields), as builds before version
    /// 7 wrote it: for the tests that such records still read.
    fn encode_v4<'a>(out: &mut Vec<u8>, ts: u64, writes: impl Iterator<Item = (u32, &'a Bytes, ToLog<'a>)>) {
        let start = out.len();
        out.extend_from_slice(&[0u8; FRAME_LEN]);
        out.extend_from_slice(&ts.to_le_bytes());
        let count_at = out.len();
        out.extend_from_slice(&0u32.to_le_bytes());
        let mut count = 0u32;
        for (ks, k, v) in writes {
            count += 1;
            out.extend_from_slice(&ks.to_le_bytes());
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            match v {
                ToLog::Inline(v) => {
                    out.extend_from_slice(&v.as_ref().map_or(TOMB, |v| v.len() as u32).to_le_bytes());
                    out.extend_from_slice(k);
                    if let Some(v) = v {
                        out.extend_from_slice(v);
                    }
                }
                ToLog::Ref { addr, len } => {
                    out.extend_from_slice(&REF.to_le_bytes());
                    out.extend_from_slice(k);
                    out.extend_from_slice(&addr.to_le_bytes());
                    out.extend_from_slice(&len.to_le_bytes());
                }
            }
        }
        out[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
        seal(out, start);
    }

    /// Encode `w` (inline values and references) in `version` (7 as the
    /// writer does, or 4).
    fn encode_writes(out: &mut Vec<u8>, ts: u64, w: &[Write], version: u32) {
        let values: Vec<Option<Bytes>> = w
            .iter()
            .map(|(_, _, v)| match v {
                Logged::Put(b) => Some(b.clone()),
                _ => None,
            })
            .collect();
        let writes = w.iter().zip(&values).map(|((ks, k, v), inline)| {
            let v = match v {
                Logged::Ref { addr, len } => ToLog::Ref { addr: *addr, len: *len },
                _ => ToLog::Inline(inline),
            };
            (*ks, k, v)
        });
        if version == VERSION {
            encode(out, ts, writes);
        } else {
            encode_v4(out, ts, writes);
        }
    }

    #[test]
    fn round_trip_and_damage() {
        // Writes to the default keyspace, another one and the catalog, and
        // a value in the value log.
        let w: Vec<Write> = vec![
            (0, Bytes::from_static(b"a"), Logged::Put(Bytes::from_static(b"1"))),
            (0, Bytes::from_static(b"b"), Logged::Delete),
            (
                0,
                Bytes::from_static(b"big"),
                Logged::Ref {
                    addr: 3 << 32 | 4096,
                    len: 5000,
                },
            ),
            (3, Bytes::from_static(b"a"), Logged::Put(Bytes::from_static(b"2"))),
            (
                u32::MAX,
                Bytes::from_static(b"ks"),
                Logged::Put(Bytes::from_static(b"\x03\0\0\0")),
            ),
        ];
        for version in [VERSION, VERSION_4] {
            let mut out = Vec::new();
            encode_writes(&mut out, 7, &w, version);
            let (c, n) = decode(&out, version).unwrap();
            assert_eq!(n, out.len());
            assert_eq!(
                c,
                Commit {
                    ts: 7,
                    writes: w.clone()
                }
            );
            for cut in 0..out.len() {
                assert_eq!(
                    decode(&out[..cut], version).unwrap_err(),
                    Bad::Truncated,
                    "cut at {cut}"
                );
            }
            for bit in 0..out.len() * 8 {
                let mut d = out.clone();
                d[bit / 8] ^= 1 << (bit % 8);
                assert!(decode(&d, version).is_err(), "flip of bit {bit} went unnoticed");
            }
            // A version-2 segment has no references: the same record is
            // malformed there.
            assert_eq!(decode(&out, VERSION_2).unwrap_err(), Bad::Malformed);
        }
    }

    /// Version 7's lengths: a commit of two 16-byte keys with 100-byte
    /// values (the benchmarks' updates) takes 251 record bytes against
    /// version 4's 276; large counts, keys and values round-trip.
    #[test]
    fn version_7_is_shorter_and_reads_long_varints() {
        let put = |k: u8| (0, Bytes::from(vec![k; 16]), Logged::Put(Bytes::from(vec![k; 100])));
        let w: Vec<Write> = vec![put(1), put(2)];
        let (mut v7, mut v4) = (Vec::new(), Vec::new());
        encode_writes(&mut v7, 200_000_000, &w, VERSION);
        encode_writes(&mut v4, 200_000_000, &w, VERSION_4);
        assert_eq!((v7.len(), v4.len()), (251, 276));
        let w: Vec<Write> = (0..300u32)
            .map(|i| {
                let key = Bytes::from(vec![i as u8; 100 + i as usize]);
                let value = if i % 7 == 0 {
                    Logged::Delete
                } else {
                    Logged::Put(Bytes::from(vec![3; 2 * i as usize]))
                };
                (i * 1000, key, value)
            })
            .collect();
        let mut out = Vec::new();
        encode_writes(&mut out, MAX_TS, &w, VERSION);
        assert_eq!(decode(&out, VERSION).unwrap().0, Commit { ts: MAX_TS, writes: w });
    }

    /// Any payload under a valid frame parses or is refused, in every
    /// version, without a panic; a version-7 payload that parses re-encodes
    /// to its own bytes (every varint in its shortest form) unless it holds
    /// a reference.
    #[test]
    fn arbitrary_payloads_never_panic() {
        use proptest::prelude::*;
        let payload = prop::collection::vec(any::<u8>(), 0..64);
        let prefix = prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 3, 0x7f, 0x80, 0xff]), 0..12);
        proptest!(ProptestConfig::with_cases(3000), |(p in payload, pre in prefix)| {
            let p = [pre, p].concat();
            for version in [VERSION, VERSION_4, VERSION_2, VERSION_1] {
                if let (Some(c), true) = (parse(&p, version), version == VERSION) {
                    if c.writes.iter().all(|w| !matches!(w.2, Logged::Ref { .. })) {
                        let mut out = Vec::new();
                        encode_writes(&mut out, c.ts, &c.writes, VERSION);
                        prop_assert_eq!(&out[FRAME_LEN..], &p[..]);
                    }
                }
            }
        });
    }

    /// A version-2 record (no references) reads as before, and so does
    /// the same record in a version-4 segment.
    #[test]
    fn version_2_records_read_as_inline_values() {
        let w: Vec<Write> = vec![
            (0, Bytes::from_static(b"a"), Logged::Put(Bytes::from_static(b"1"))),
            (2, Bytes::from_static(b"b"), Logged::Delete),
        ];
        let mut out = Vec::new();
        encode_writes(&mut out, 5, &w, VERSION_4);
        for version in [VERSION_2, VERSION_4] {
            assert_eq!(
                decode(&out, version).unwrap().0,
                Commit {
                    ts: 5,
                    writes: w.clone()
                }
            );
        }
        let mut h = header(None);
        h[8..12].copy_from_slice(&VERSION_2.to_le_bytes());
        assert_eq!(header_version(&h), Some(VERSION_2));
    }

    /// The header's versions: the five readable ones are read, and differ
    /// pairwise in at least two bits, so one flipped bit never turns one
    /// into another; others are refused. A base is carried by version 8
    /// alone, and another version with a nonzero word is refused.
    #[test]
    fn header_versions_are_two_bits_apart() {
        let readable = [VERSION, VERSION_4, VERSION_2, VERSION_1];
        for v in 0..64u32 {
            let mut h = header(None);
            h[8..12].copy_from_slice(&v.to_le_bytes());
            let want = if v == VERSION_BASE {
                Some(VERSION)
            } else {
                readable.contains(&v).then_some(v)
            };
            assert_eq!(header_version(&h), want, "version {v}");
        }
        let all = [VERSION, VERSION_4, VERSION_2, VERSION_1, VERSION_BASE];
        for a in all {
            for b in all.into_iter().filter(|&b| b != a) {
                assert!((a ^ b).count_ones() >= 2, "versions {a} and {b}");
            }
        }
        assert_eq!(header_version(&header(None)), Some(7));
        assert_eq!(header_base(&header(None)), None);
        let based = header(Some((5 << 32) + 77));
        assert_eq!((header_version(&based), header_base(&based)), (Some(VERSION), Some(77)));
        let mut h = header(None);
        h[12] = 1;
        assert_eq!(header_version(&h), None, "version 7 with a nonzero word");
    }

    /// A version-1 record (no keyspace ids, as written before keyspaces)
    /// reads as writes to keyspace 0; every bit flip in it is noticed.
    #[test]
    fn version_1_records_read_as_the_default_keyspace() {
        // ts 7, two entries: "a" = "1", "b" deleted.
        let mut payload = Vec::new();
        payload.extend_from_slice(&7u64.to_le_bytes());
        payload.extend_from_slice(&2u32.to_le_bytes());
        payload.extend_from_slice(&1u32.to_le_bytes());
        payload.extend_from_slice(&1u32.to_le_bytes());
        payload.extend_from_slice(b"a1");
        payload.extend_from_slice(&1u32.to_le_bytes());
        payload.extend_from_slice(&TOMB.to_le_bytes());
        payload.extend_from_slice(b"b");
        let len = (payload.len() as u32).to_le_bytes();
        let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &payload);
        let mut out = len.to_vec();
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&payload);
        let (c, n) = decode(&out, VERSION_1).unwrap();
        assert_eq!(n, out.len());
        let w: Vec<Write> = vec![
            (0, Bytes::from_static(b"a"), Logged::Put(Bytes::from_static(b"1"))),
            (0, Bytes::from_static(b"b"), Logged::Delete),
        ];
        assert_eq!(c, Commit { ts: 7, writes: w });
        // The same bytes are not a valid version-4 or version-7 record.
        assert!(decode(&out, VERSION_4).is_err());
        assert!(decode(&out, VERSION).is_err());
        for bit in 0..out.len() * 8 {
            let mut d = out.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&d, VERSION_1).is_err(), "flip of bit {bit} went unnoticed");
        }
        let mut h = header(None);
        h[8..12].copy_from_slice(&VERSION_1.to_le_bytes());
        assert_eq!(header_version(&h), Some(VERSION_1));
        assert_eq!(header_version(&header(None)), Some(VERSION));
        h[8] = 9;
        assert_eq!(header_version(&h), None);
    }

    /// A commit refused by serializable validation logs a record with no
    /// writes (the log has no gaps): it round-trips.
    #[test]
    fn a_record_with_no_writes_round_trips() {
        let mut out = Vec::new();
        encode(&mut out, 9, std::iter::empty());
        assert_eq!(out.len(), FRAME_LEN + 2, "a 1-byte timestamp and a 1-byte count");
        let (c, n) = decode(&out, VERSION).unwrap();
        assert_eq!(n, out.len());
        assert_eq!(
            c,
            Commit {
                ts: 9,
                writes: Vec::new()
            }
        );
    }
}
