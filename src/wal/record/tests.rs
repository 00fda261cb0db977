//! Tests of the log record format (`super`).

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

/// The header's versions: the six readable ones are read, and differ
/// pairwise in at least two bits, so one flipped bit never turns one
/// into another; others are refused. A base is carried by versions 8
/// and 11 alone, and another version with a nonzero word is refused.
#[test]
fn header_versions_are_two_bits_apart() {
    let readable = [VERSION, VERSION_4, VERSION_2, VERSION_1];
    for v in 0..64u32 {
        let mut h = header(None);
        h[8..12].copy_from_slice(&v.to_le_bytes());
        let want = if v == VERSION_BASE || v == VERSION_MARKS {
            Some(VERSION)
        } else {
            readable.contains(&v).then_some(v)
        };
        assert_eq!(header_version(&h), want, "version {v}");
    }
    let all = [VERSION, VERSION_4, VERSION_2, VERSION_1, VERSION_BASE, VERSION_MARKS];
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
    let mut h = based;
    h[8..12].copy_from_slice(&VERSION_BASE.to_le_bytes());
    assert_eq!((header_version(&h), header_base(&h)), (Some(VERSION), Some(77)));
}

/// A mark reads back with its offset; it is no commit (`decode` refuses
/// it), every bit flip and truncation of it is noticed, and only
/// version 7 has marks.
#[test]
fn marks_round_trip() {
    for synced in [16, 4095, 1 << 20, (1 << 26) + 3] {
        let mut out = Vec::new();
        encode_mark(&mut out, synced);
        assert_eq!(decode_frame(&out, VERSION).unwrap(), (Frame::Mark(synced), out.len()));
        assert_eq!(decode(&out, VERSION).unwrap_err(), Bad::Malformed);
        assert!(well_formed(&out[FRAME_LEN..], VERSION));
        assert!(!well_formed(&out[FRAME_LEN..], VERSION_4));
        for bit in 0..out.len() * 8 {
            let mut d = out.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_frame(&d, VERSION).is_err(), "flip of bit {bit} went unnoticed");
        }
        for cut in 0..out.len() {
            assert!(decode_frame(&out[..cut], VERSION).is_err());
        }
    }
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
