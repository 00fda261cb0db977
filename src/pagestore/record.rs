//! Byte layouts of page-store segments (`design/storage.md` §2.1): the
//! segment header, record framing and addresses. Pure encode and decode:
//! decoding never panics and never allocates.
//!
//! Little-endian integers, CRC32C (Castagnoli).
//! ```text
//! segment = header record*
//! header  = magic "BWTXSEG\0" (8) | version u32 | kind u32 | seq u64 | crc u32 | pad u32 (= 0)
//!           32 bytes; kind 1 = pages, 2 = value log; crc = CRC32C(bytes 0..24)
//!           version: VERSION (2) for page segments written now (a delta flush's
//!           record may set its flags, `design/storage.md` §2.3), 1 for value-log
//!           segments and for page segments of builds before (still read)
//! record  = len u32 | crc u32 | rkind u8 | flags u8 | tree u16 | reserved u32 (= 0) |
//!           id u64 | prev u64 | max_ts u64 | payload (len bytes) | pad (zeros to a multiple of 8)
//!           40 + len + pad bytes;
//!           crc = CRC32C(bytes 0..4 ++ bytes 8..40 ++ payload ++ pad)
//! ```
//! Record header offsets: 0 `len`, 4 `crc`, 8 `rkind`, 9 `flags`, 10 `tree`,
//! 12 `reserved`, 16 `id`, 24 `prev`, 32 `max_ts`, 40 the payload.
//!
//! - `rkind`: 1 = base page image, 2 = delta flush (pages segments only),
//!   3 = value (value-log segments only). Any other value is malformed.
//! - `flags`: opaque here; the engine marks a delta flush's encoding in it
//!   (`design/storage.md` §2.3: 1 compact, 0 the fixed encoding of version-1
//!   segments).
//! - The crc covers `len` too (so a flipped length bit is a checksum
//!   mismatch, not a misread) and the padding (so every byte of a segment is
//!   checked). Records start 8-aligned: the header is 32 bytes and every
//!   record a multiple of 8.
//! - Address: `addr = seq << 32 | offset` of the record header in segment
//!   `seq`; a segment is at most 4 GiB. [`NO_ADDR`] (`u64::MAX`, a misaligned
//!   offset) names no record.

/// The address of a record: `seq << 32 | offset`.
pub(crate) type Addr = u64;

/// No record (for example, a base image's `prev`).
pub(crate) const NO_ADDR: Addr = u64::MAX;

pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"BWTXSEG\0";
/// The version of the page segments this build writes: 2 since delta
/// flushes may be compact (their records' `flags`); builds before wrote 1
/// and refuse 2 at its header, instead of reading a compact delta flush as
/// damage. Value-log segments stay at 1.
pub(crate) const VERSION: u32 = 2;
pub(crate) const SEGMENT_HEADER_LEN: usize = 32;
pub(crate) const RECORD_HEADER_LEN: usize = 40;
/// Records start at multiples of this.
pub(crate) const ALIGN: usize = 8;
/// A segment's size limit: offsets must fit the low 32 bits of an address.
pub(crate) const MAX_SEGMENT_BYTES: u64 = 1 << 32;

/// What a segment file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Page images and delta flushes (`pages-<seq>.seg`).
    Pages = 1,
    /// Large values (`vlog-<seq>.seg`).
    ValueLog = 2,
}

impl Kind {
    /// The file-name prefix of this kind's segments.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Kind::Pages => "pages",
            Kind::ValueLog => "vlog",
        }
    }
}

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// A consolidated page image (`design/storage.md` §2.2).
    Base = 1,
    /// The versions installed on a page since its previous flush (§2.3).
    Delta = 2,
    /// One large value (§2.4).
    Value = 3,
}

impl RecordKind {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(RecordKind::Base),
            2 => Some(RecordKind::Delta),
            3 => Some(RecordKind::Value),
            _ => None,
        }
    }

    /// Whether a segment of `kind` may hold this record.
    pub(crate) fn belongs_in(self, kind: Kind) -> bool {
        (self == RecordKind::Value) == (kind == Kind::ValueLog)
    }
}

/// The address of `offset` in segment `seq`.
pub(crate) fn addr(seq: u64, offset: u64) -> Addr {
    debug_assert!(seq <= u64::from(u32::MAX) && offset < MAX_SEGMENT_BYTES);
    seq << 32 | offset
}

/// The segment of an address.
pub(crate) fn addr_seq(a: Addr) -> u64 {
    a >> 32
}

/// The offset of an address in its segment.
pub(crate) fn addr_offset(a: Addr) -> u64 {
    a & u64::from(u32::MAX)
}

/// `len` rounded up to a multiple of [`ALIGN`].
pub(crate) fn padded(len: usize) -> usize {
    len.div_ceil(ALIGN) * ALIGN
}

/// Bytes a record with a payload of `payload_len` bytes takes in a segment.
pub(crate) fn record_bytes(payload_len: usize) -> u64 {
    (RECORD_HEADER_LEN + padded(payload_len)) as u64
}

/// A record's header fields other than its length and crc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) rkind: RecordKind,
    /// Opaque to the store (the page layer's).
    pub(crate) flags: u8,
    /// The tree (keyspace) the record belongs to.
    pub(crate) tree: u16,
    /// The page id (pages) or 0 (values).
    pub(crate) id: u64,
    /// A delta flush's previous part, else [`NO_ADDR`].
    pub(crate) prev: Addr,
    /// The newest version timestamp in the payload.
    pub(crate) max_ts: u64,
}

/// The header of segment `seq` of `kind`, as this build writes it.
pub(crate) fn segment_header(kind: Kind, seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let version = match kind {
        Kind::Pages => VERSION,
        Kind::ValueLog => 1,
    };
    header_of(kind, seq, version)
}

fn header_of(kind: Kind, seq: u64, version: u32) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[12..16].copy_from_slice(&(kind as u32).to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Check that `b` starts with the header of segment `seq` of `kind`.
pub(crate) fn check_segment_header(b: &[u8], kind: Kind, seq: u64) -> Result<(), &'static str> {
    let h = b.get(..SEGMENT_HEADER_LEN).ok_or("segment header truncated")?;
    if u32_at(h, 24) != Some(crc32c::crc32c(&h[..24])) {
        return Err("segment header checksum mismatch");
    }
    // A page segment of version 1 (an earlier build's) reads as well.
    let earlier = kind == Kind::Pages && h[..SEGMENT_HEADER_LEN] == header_of(kind, seq, 1);
    if h[..SEGMENT_HEADER_LEN] != segment_header(kind, seq) && !earlier {
        return Err("segment header names another kind, version or sequence number");
    }
    Ok(())
}

/// Append the record of `meta` and `payload` to `out` (`payload` is at most
/// `u32::MAX` bytes; the store checks that).
pub(crate) fn encode(out: &mut Vec<u8>, meta: &Meta, payload: &[u8]) {
    debug_assert!(payload.len() <= u32::MAX as usize);
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(meta.rkind as u8);
    out.push(meta.flags);
    out.extend_from_slice(&meta.tree.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&meta.id.to_le_bytes());
    out.extend_from_slice(&meta.prev.to_le_bytes());
    out.extend_from_slice(&meta.max_ts.to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(start + RECORD_HEADER_LEN + padded(payload.len()), 0);
    let crc = record_crc(
        &out[start..start + RECORD_HEADER_LEN],
        &out[start + RECORD_HEADER_LEN..],
    );
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn record_crc(header: &[u8], body: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&header[..4]);
    crc32c::crc32c_append(crc32c::crc32c_append(crc, &header[8..RECORD_HEADER_LEN]), body)
}

/// Why a record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bad {
    /// The record runs past the end of the data.
    Truncated,
    /// The checksum does not match.
    Checksum,
    /// The checksum matched but a field is invalid.
    Malformed,
}

impl Bad {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Bad::Truncated => "record runs past the end of the segment",
            Bad::Checksum => "record checksum mismatch",
            Bad::Malformed => "record header malformed",
        }
    }
}

use crate::le::{u32_at, u64_at};

/// The payload length a record header claims (not yet verified).
pub(crate) fn payload_len(header: &[u8; RECORD_HEADER_LEN]) -> usize {
    u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize
}

/// Verify a record: `header` and `body` (the payload and its padding, of
/// `padded(payload_len(header))` bytes). Returns the header's fields.
pub(crate) fn verify(header: &[u8; RECORD_HEADER_LEN], body: &[u8]) -> Result<Meta, Bad> {
    if body.len() != padded(payload_len(header)) {
        return Err(Bad::Truncated);
    }
    if u32_at(header, 4) != Some(record_crc(header, body)) {
        return Err(Bad::Checksum);
    }
    let rkind = RecordKind::from_u8(header[8]).ok_or(Bad::Malformed)?;
    let pad_ok = body[payload_len(header)..].iter().all(|&b| b == 0);
    let (Some(0), true) = (u32_at(header, 12), pad_ok) else {
        return Err(Bad::Malformed);
    };
    Ok(Meta {
        rkind,
        flags: header[9],
        tree: u16::from_le_bytes([header[10], header[11]]),
        id: u64_at(header, 16).ok_or(Bad::Malformed)?,
        prev: u64_at(header, 24).ok_or(Bad::Malformed)?,
        max_ts: u64_at(header, 32).ok_or(Bad::Malformed)?,
    })
}

/// Whether `b` starts with a record header whose fixed fields are valid (a
/// known kind, the reserved word zero): a cheap test before
/// [`decode`]'s checksum, for scans that try many offsets.
pub(crate) fn plausible_header(b: &[u8]) -> bool {
    b.get(..RECORD_HEADER_LEN)
        .is_some_and(|h| RecordKind::from_u8(h[8]).is_some() && u32_at(h, 12) == Some(0))
}

/// Decode the record at the start of `b`: its fields, its payload, and the
/// bytes it takes.
pub(crate) fn decode(b: &[u8]) -> Result<(Meta, &[u8], usize), Bad> {
    let header: &[u8; RECORD_HEADER_LEN] = b
        .get(..RECORD_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(Bad::Truncated)?;
    let len = payload_len(header);
    let end = RECORD_HEADER_LEN + padded(len);
    let body = b.get(RECORD_HEADER_LEN..end).ok_or(Bad::Truncated)?;
    let meta = verify(header, body)?;
    Ok((meta, &body[..len], end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(rkind: RecordKind, id: u64) -> Meta {
        Meta {
            rkind,
            flags: 0x5a,
            tree: 7,
            id,
            prev: if id > 1 { addr(3, 32) } else { NO_ADDR },
            max_ts: 1000 + id,
        }
    }

    /// Segment 3 of pages: a header and three records (payloads of 5, 0 and
    /// 16 bytes), each padded.
    fn segment() -> (Vec<u8>, Vec<(Meta, Vec<u8>)>) {
        let recs = vec![
            (meta(RecordKind::Base, 1), b"hello".to_vec()),
            (meta(RecordKind::Delta, 2), Vec::new()),
            (meta(RecordKind::Base, 3), (0..16).collect()),
        ];
        let mut b = segment_header(Kind::Pages, 3).to_vec();
        for (m, p) in &recs {
            encode(&mut b, m, p);
        }
        (b, recs)
    }

    type Records = Vec<(Meta, Vec<u8>)>;

    /// Decode a whole segment (header checked, every byte consumed).
    fn decode_segment(b: &[u8]) -> Result<Records, (usize, &'static str)> {
        check_segment_header(b, Kind::Pages, 3).map_err(|r| (0, r))?;
        let mut at = SEGMENT_HEADER_LEN;
        let mut out = Vec::new();
        while at < b.len() {
            let (m, p, n) = decode(&b[at..]).map_err(|bad| (at, bad.reason()))?;
            out.push((m, p.to_vec()));
            at += n;
        }
        Ok(out)
    }

    #[test]
    fn round_trip_alignment_and_addresses() {
        let (b, recs) = segment();
        assert_eq!(decode_segment(&b).unwrap(), recs);
        assert_eq!(
            b.len() as u64,
            32 + record_bytes(5) + record_bytes(0) + record_bytes(16)
        );
        assert_eq!(record_bytes(5), 48);
        assert_eq!(b.len() % ALIGN, 0);
        let a = addr(0xdead_beef, 0x1234_5678);
        assert_eq!((addr_seq(a), addr_offset(a)), (0xdead_beef, 0x1234_5678));
        assert_ne!(
            addr_offset(NO_ADDR) as usize % ALIGN,
            0,
            "NO_ADDR is never a record's address"
        );
        assert!(check_segment_header(&b, Kind::ValueLog, 3).is_err());
        assert!(check_segment_header(&b, Kind::Pages, 4).is_err());
        assert!(RecordKind::Value.belongs_in(Kind::ValueLog) && !RecordKind::Value.belongs_in(Kind::Pages));
        assert!(RecordKind::Delta.belongs_in(Kind::Pages) && !RecordKind::Base.belongs_in(Kind::ValueLog));
    }

    #[test]
    fn segment_header_versions() {
        // Page segments are written at version 2 and read at 1 or 2; value-log
        // segments only at 1; other versions are refused.
        let pages = segment_header(Kind::Pages, 3);
        assert_eq!(u32_at(&pages, 8), Some(2));
        assert_eq!(u32_at(&segment_header(Kind::ValueLog, 3), 8), Some(1));
        assert!(check_segment_header(&header_of(Kind::Pages, 3, 1), Kind::Pages, 3).is_ok());
        assert!(check_segment_header(&pages, Kind::Pages, 3).is_ok());
        assert!(check_segment_header(&header_of(Kind::ValueLog, 3, 2), Kind::ValueLog, 3).is_err());
        for v in [0, 3, u32::MAX] {
            assert!(check_segment_header(&header_of(Kind::Pages, 3, v), Kind::Pages, 3).is_err());
        }
    }

    #[test]
    fn every_bit_flip_and_cut_is_detected() {
        let (b, _) = segment();
        for bit in 0..b.len() * 8 {
            let mut d = b.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_segment(&d).is_err(), "flip of bit {bit} went unnoticed");
        }
        for cut in 0..b.len() {
            // A cut inside a record is truncation; at a record boundary it is
            // a shorter valid segment (what a reader tells apart by the end
            // it knows).
            if let Err((at, why)) = decode_segment(&b[..cut]) {
                assert!(at == 0 || why == Bad::Truncated.reason(), "cut at {cut}: {why}");
            }
        }
    }

    #[test]
    fn decoding_garbage_never_panics() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..2000 {
            let buf: Vec<u8> = (0..n % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode(&buf);
            let _ = check_segment_header(&buf, Kind::Pages, 1);
        }
        // A huge claimed length is a truncation, not an allocation.
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&h).unwrap_err(), Bad::Truncated);
    }
}
