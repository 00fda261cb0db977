//! Delta-flush tests: round trips in both encodings, order checks, damage
//! never panics, the encode/decode timing note, a chain merged
//! (`merge_chain`), and the GC rule applied at fault-in (`collect_base`).

use bytes::Bytes;
use proptest::prelude::*;

use super::tests::{arb_key, arb_value};
use super::*;

type Entries = Vec<(Vec<u8>, u64, Option<Vec<u8>>)>;

/// Versions in key order, newest first per key.
fn arb_entries() -> impl Strategy<Value = Entries> {
    let versions = prop::collection::btree_map(1u64..1000, arb_value(), 1..4);
    prop::collection::btree_map(arb_key(), versions, 0..20).prop_map(|map| {
        map.into_iter()
            .flat_map(|(k, vs)| vs.into_iter().rev().map(move |(ts, v)| (k.clone(), ts, v)))
            .collect()
    })
}

/// A delta-flush payload with what its record's header says of it.
#[derive(Clone, Debug)]
struct Payload {
    bytes: Bytes,
    flags: u8,
    max_ts: u64,
}

impl Payload {
    fn decode(&self) -> Result<DeltaFlush, Malformed> {
        decode_delta(&self.bytes, self.flags, self.max_ts)
    }

    /// The same bytes under other flags.
    fn with_flags(self, flags: u8) -> Payload {
        Payload { flags, ..self }
    }

    /// The same header over other bytes.
    fn with(&self, bytes: &[u8]) -> Payload {
        Payload {
            bytes: Bytes::copy_from_slice(bytes),
            ..self.clone()
        }
    }
}

/// The compact payload of `entries` (as this build writes it).
fn encode(entries: &Entries) -> Payload {
    let mut out = Vec::new();
    let it = entries.iter().map(|(k, ts, v)| (&k[..], *ts, v.as_deref()));
    let max_ts = encode_delta(it, &mut out, None).unwrap();
    assert_eq!(max_ts, entries.iter().map(|e| e.1).max().unwrap_or(0));
    Payload {
        bytes: Bytes::from(out),
        flags: COMPACT_DELTA,
        max_ts,
    }
}

/// The fixed payload of `entries` (as builds before the compact encoding
/// wrote it; its record's `max_ts` is not read).
fn encode_fixed(entries: &Entries) -> Payload {
    let mut out = Vec::new();
    let it = entries.iter().map(|(k, ts, v)| (&k[..], *ts, v.as_deref()));
    encode_delta_fixed(it, &mut out, None).unwrap();
    Payload {
        bytes: Bytes::from(out),
        flags: 0,
        max_ts: entries.iter().map(|e| e.1).max().unwrap_or(0),
    }
}

/// The payload of `entries` in the encoding `flags` names.
fn encode_as(flags: u8, entries: &Entries) -> Payload {
    if flags == COMPACT_DELTA {
        encode(entries)
    } else {
        encode_fixed(entries)
    }
}

/// The entries of `d`, or `None` if one is a value-log reference (a
/// damaged code can read as one: these tests have no value log).
fn content(d: &DeltaFlush) -> Option<Entries> {
    d.iter()
        .map(|e| {
            let v = match e.value {
                DeltaValue::Tomb => None,
                DeltaValue::Value(b) => Some(b.to_vec()),
                DeltaValue::Ref { .. } => return None,
            };
            Some((e.key.to_vec(), e.ts, v))
        })
        .collect()
}

#[test]
fn delta_round_trip() {
    proptest!(ProptestConfig::with_cases(500), |(entries in arb_entries())| {
        for flags in [COMPACT_DELTA, 0] {
            let d = encode_as(flags, &entries).decode().unwrap();
            prop_assert_eq!(d.len(), entries.len());
            prop_assert_eq!(content(&d), Some(entries.clone()));
        }
        // The compact encoding is never the longer.
        prop_assert!(encode(&entries).bytes.len() <= encode_fixed(&entries).bytes.len());
    });
}

#[test]
fn damaged_deltas_never_panic() {
    let strat = (
        arb_entries(),
        any::<prop::sample::Index>(),
        1u8..=255,
        any::<prop::sample::Index>(),
    );
    proptest!(ProptestConfig::with_cases(2000), |((entries, at, xor, cut) in strat)| {
        for flags in [COMPACT_DELTA, 0] {
            let good = encode_as(flags, &entries);
            let mut bad = good.bytes.to_vec();
            let i = at.index(bad.len());
            bad[i] ^= xor;
            if let Ok(d) = good.with(&bad).decode() {
                // Whatever decodes is in order and re-encodes to its own
                // bytes (every varint in its shortest form).
                if let Some(back) = content(&d) {
                    prop_assert_eq!(&encode_as(flags, &back).bytes[..], &bad[..]);
                }
            }
            let cut = cut.index(good.bytes.len());
            prop_assert!(good.with(&good.bytes[..cut]).decode().is_err());
        }
    });
    proptest!(ProptestConfig::with_cases(2000), |(bytes in prop::collection::vec(any::<u8>(), 0..200), max_ts in 0u64..2000)| {
        for flags in [COMPACT_DELTA, 0] {
            let p = Payload { bytes: Bytes::from(bytes.clone()), flags, max_ts };
            if let Some(back) = p.decode().ok().as_ref().and_then(content) {
                prop_assert_eq!(&encode_as(flags, &back).bytes[..], &bytes[..]);
            }
        }
    });
}

#[test]
fn delta_order_is_checked_both_ways() {
    let mut out = vec![7];
    let unordered = [(&b"b"[..], 5, None), (&b"a"[..], 9, None)];
    assert!(encode_delta(unordered, &mut out, None).is_err());
    let oldest_first = [(&b"a"[..], 5, None), (&b"a"[..], 9, None)];
    assert!(encode_delta(oldest_first, &mut out, None).is_err());
    assert!(encode_delta([(&b"a"[..], 0, None)], &mut out, None).is_err());
    assert!(encode_delta_fixed(unordered, &mut out, None).is_err());
    assert_eq!(out, [7], "a failed encode leaves the buffer as it was");

    // Swap two encoded entries: the decoder names the second one's offset.
    let a = encode(&vec![(b"a".to_vec(), 3, None)]);
    let b = encode(&vec![(b"b".to_vec(), 3, None)]);
    assert_eq!(&a.bytes[..], [1, 0, 1, 0, b'a'], "count, back, klen, tombstone, key");
    let swapped = [&[2][..], &b.bytes[1..], &a.bytes[1..]].concat();
    let err = a.with(&swapped).decode().unwrap_err();
    assert_eq!((err.offset, err.reason), (5, "entries not in key order, newest first"));
    let (a, b) = (
        encode_fixed(&vec![(b"a".to_vec(), 3, None)]),
        encode_fixed(&vec![(b"b".to_vec(), 3, None)]),
    );
    let swapped = [&[2, 0, 0, 0, 0, 0, 0, 0][..], &b.bytes[8..], &a.bytes[8..]].concat();
    let err = a.with(&swapped).decode().unwrap_err();
    assert_eq!(
        (err.offset, err.reason),
        (8 + 17, "entries not in key order, newest first")
    );
}

/// What the compact decoder refuses beyond bounds and order: timestamps at
/// or below 0, a record `max_ts` no entry has, varints longer than their
/// shortest form or past 64 bits, more entries than the bytes can hold,
/// and flags naming no encoding.
#[test]
fn compact_deltas_check_their_header_and_varints() {
    let p = |bytes: &[u8], max_ts: u64| Payload {
        bytes: Bytes::copy_from_slice(bytes),
        flags: COMPACT_DELTA,
        max_ts,
    };
    assert!(p(&[1, 0, 1, 0, b'a'], 5).decode().is_ok());
    let reason = |q: Payload| q.decode().unwrap_err().reason;
    assert_eq!(reason(p(&[1, 5, 1, 0, b'a'], 5)), "timestamp 0 or below");
    assert_eq!(reason(p(&[1, 0, 1, 0, b'a'], 0)), "timestamp 0 or below");
    assert_eq!(reason(p(&[1, 1, 1, 0, b'a'], 5)), "no entry at the record's max_ts");
    assert_eq!(
        reason(p(&[1, 0x80, 0, 1, 0, b'a'], 5)),
        "varint not in its shortest form"
    );
    let long = [&[1][..], &[0xff; 9], &[2], &[1, 0, b'a']].concat();
    assert_eq!(reason(p(&long, 5)), "varint past 64 bits");
    assert_eq!(reason(p(&[0x80, 0x01], 5)), "more entries than the payload holds");
    assert_eq!(reason(p(&[0], 0).with_flags(2)), "a delta flush of unknown flags");
    assert_eq!(reason(p(&[1, 0, 1, 0, b'a', 0], 5)), "bytes after the last entry");
    // An empty flush: no entry, any max_ts.
    assert_eq!(p(&[0], 0).decode().unwrap().len(), 0);
}

/// The record bytes the compact encoding saves: a one-version flush of a
/// 16-byte key and a 100-byte value (the benchmarks' records) is 120
/// payload bytes against the fixed encoding's 140.
#[test]
fn compact_deltas_are_shorter() {
    let one = vec![(vec![7u8; 16], 123_456_789, Some(vec![1u8; 100]))];
    assert_eq!((encode(&one).bytes.len(), encode_fixed(&one).bytes.len()), (120, 140));
    let two = vec![
        (vec![7u8; 16], 123_456_789, Some(vec![1u8; 100])),
        (vec![8u8; 16], 123_400_000, None),
    ];
    // The second entry's timestamp 56,789 back: a 3-byte varint.
    assert_eq!(
        (encode(&two).bytes.len(), encode_fixed(&two).bytes.len()),
        (120 + 21, 140 + 32)
    );
}

/// Multi-byte varints: more than 127 entries, keys of 128 bytes and more,
/// values of 126 bytes and more, timestamps far below the newest.
#[test]
fn compact_deltas_round_trip_long_varints() {
    let entries: Entries = (0..300u64)
        .map(|i| {
            let key = [vec![b'k'; 120 + i as usize], i.to_be_bytes().to_vec()].concat();
            let value = (i % 3 != 0).then(|| vec![i as u8; 100 + 3 * i as usize]);
            (key, (1 << 40) - i * (1 << 30), value)
        })
        .collect();
    let p = encode(&entries);
    assert_eq!(p.max_ts, 1 << 40);
    assert_eq!(content(&p.decode().unwrap()), Some(entries.clone()));
    assert_eq!(content(&encode_fixed(&entries).decode().unwrap()), Some(entries));
    assert_eq!(&p.bytes[..2], [0xac, 0x02], "300 entries: a 2-byte count");
}

#[test]
fn delta_value_log_references() {
    let big = vec![5u8; 500];
    let entries = [(&b"k"[..], 4, Some(&big[..])), (&b"k"[..], 2, Some(&b"v"[..]))];
    for flags in [COMPACT_DELTA, 0] {
        let mut sink = |_: &[u8], ts: u64, v: &[u8]| -> crate::Result<Option<u64>> {
            assert_eq!((ts, v.len()), (4, 500));
            Ok(Some(77))
        };
        let mut out = Vec::new();
        if flags == COMPACT_DELTA {
            assert_eq!(encode_delta(entries, &mut out, Some(&mut sink)).unwrap(), 4);
            assert_eq!(out.len(), 1 + (3 + 1 + 12) + (3 + 1 + 1));
        } else {
            encode_delta_fixed(entries, &mut out, Some(&mut sink)).unwrap();
            assert_eq!(out.len(), 8 + (16 + 1 + 12) + (16 + 1 + 1));
        }
        let d = decode_delta(&Bytes::from(out), flags, 4).unwrap();
        let got: Vec<_> = d.iter().map(|e| e.value).collect();
        assert_eq!(
            got,
            [
                DeltaValue::Ref { addr: 77, len: 500 },
                DeltaValue::Value(Bytes::from_static(b"v"))
            ]
        );
    }
}

/// The timing note: encode and decode of a 128-key page with 100-byte
/// values. Informational (prints; asserts only a loose bound in release
/// builds): `cargo test --release --lib image_timing -- --nocapture`.
#[test]
fn image_timing() {
    use super::super::base::{LeafBuilder, PageRange, ValRef};
    use std::time::Instant;

    let mut b = LeafBuilder::new(128);
    for i in 0..128u32 {
        b.push_key(format!("user{:012}", i * 7919).as_bytes());
        b.push_version(u64::from(i) + 1, ValRef::Inline(&[i as u8; 100]));
        b.end_key();
    }
    let base = b.finish(PageRange::full());
    let mut out = Vec::new();
    let rounds = if cfg!(debug_assertions) { 100 } else { 20_000 };
    let t = Instant::now();
    for _ in 0..rounds {
        out.clear();
        encode_leaf(&base, &mut out, None).unwrap();
    }
    let enc = t.elapsed() / rounds;
    let image = Bytes::from(out);
    let t = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(decode_leaf(&image).unwrap());
    }
    let dec = t.elapsed() / rounds;
    println!(
        "128 keys x 100 B values, {} B image: encode {enc:?}, decode {dec:?}",
        image.len()
    );
    if !cfg!(debug_assertions) {
        assert!(dec.as_micros() < 50, "decode took {dec:?}");
    }
}

/// A base page of `entries`.
fn base_of(entries: &Entries) -> crate::bwtree::base::LeafBase {
    use crate::bwtree::base::{LeafBuilder, PageRange, ValRef};
    let mut b = LeafBuilder::new(entries.len());
    let mut last: Option<&[u8]> = None;
    for (k, ts, v) in entries {
        if last != Some(&k[..]) {
            if last.is_some() {
                b.end_key();
            }
            b.push_key(k);
            last = Some(k);
        }
        b.push_version(*ts, v.as_deref().map_or(ValRef::Tomb, ValRef::Inline));
    }
    if last.is_some() {
        b.end_key();
    }
    b.finish(PageRange::full())
}

proptest! {
    /// A base and two delta flushes merge into the union of their versions,
    /// newest first per key; a (key, ts) in two parts comes from the newer.
    #[test]
    fn a_chain_merges_into_the_union_of_its_parts(base in arb_entries(), d1 in arb_entries(), d2 in arb_entries()) {
        let mut want = std::collections::BTreeMap::new();
        for part in [&base, &d1, &d2] {
            for (k, ts, v) in part {
                want.insert((k.clone(), std::cmp::Reverse(*ts)), v.clone());
            }
        }
        let deltas = [encode(&d2).decode().unwrap(), encode_fixed(&d1).decode().unwrap()];
        let merged = merge_chain(base_of(&base), &deltas, &mut |_, _, _, _, _| panic!("no value log here")).unwrap();
        let mut got = std::collections::BTreeMap::new();
        for i in 0..merged.len() {
            for v in merged.versions(i) {
                let value = merged.value(v).map(|b| b.to_vec());
                got.insert((merged.keys.key(i).to_vec(), std::cmp::Reverse(v.ts)), value);
            }
        }
        prop_assert_eq!(got.len(), merged.version_count());
        prop_assert_eq!(got, want);
    }
}

/// A delta flush's value-log references are read through the merge's
/// hook, with the part they are in; the hook's error stops the merge.
#[test]
fn a_chain_reads_its_deltas_references_through_the_hook() {
    let big = |b: u8| vec![b; 400];
    let (v1, v2) = (big(1), big(2));
    let mut sink = |_: &[u8], ts: u64, _: &[u8]| -> crate::Result<Option<u64>> { Ok(Some(1000 + ts)) };
    let mut newer = Vec::new();
    let newer_ts = encode_delta([(&b"a"[..], 9, Some(&v2[..]))], &mut newer, Some(&mut sink)).unwrap();
    let mut older = Vec::new();
    let older_ts = encode_delta(
        [(&b"a"[..], 5, Some(&v1[..])), (&b"b"[..], 5, None)],
        &mut older,
        Some(&mut sink),
    )
    .unwrap();
    let deltas = [
        decode_delta(&Bytes::from(newer), COMPACT_DELTA, newer_ts).unwrap(),
        decode_delta(&Bytes::from(older), COMPACT_DELTA, older_ts).unwrap(),
    ];
    let base = || base_of(&vec![(b"b".to_vec(), 2, Some(b"old".to_vec()))]);
    let mut asked = Vec::new();
    let merged = merge_chain(base(), &deltas, &mut |part, key, ts, addr, len| {
        asked.push((part, key.to_vec(), ts, addr, len));
        Ok(Bytes::from(if ts == 9 { v2.clone() } else { v1.clone() }))
    })
    .unwrap();
    assert_eq!(
        asked,
        [(0, b"a".to_vec(), 9, 1009, 400), (1, b"a".to_vec(), 5, 1005, 400)]
    );
    let a: Vec<_> = merged
        .versions(0)
        .iter()
        .map(|v| merged.value(v).map(|b| b.to_vec()))
        .collect();
    assert_eq!(a, [Some(v2.clone()), Some(v1.clone())]);
    let b: Vec<_> = merged
        .versions(1)
        .iter()
        .map(|v| merged.value(v).map(|b| b.to_vec()))
        .collect();
    assert_eq!(b, [None, Some(b"old".to_vec())]);
    let failed = merge_chain(base(), &deltas, &mut |_, _, _, _, _| Err(crate::Error::Poisoned));
    assert!(matches!(failed, Err(crate::Error::Poisoned)));
    // Collected at watermark 9 or above, `a`@5 is hidden by `a`@9: left
    // unread, with the part it is in; below 9 nothing is hidden (`a`@9 is
    // above the watermark, and `a`@5 is the newest at or below it).
    for (w, hidden) in [(9, true), (100, true), (8, false), (5, false), (0, false)] {
        let (mut asked, mut left) = (Vec::new(), Vec::new());
        let merged = merge_chain_at(
            base(),
            &deltas,
            &mut |_, _, ts, _, _| {
                asked.push(ts);
                Ok(Bytes::from(if ts == 9 { v2.clone() } else { v1.clone() }))
            },
            w,
            &|_| 0,
            &mut |part, key, ts, addr, len| left.push((part, key.to_vec(), ts, addr, len)),
        )
        .unwrap();
        if hidden {
            assert_eq!(
                (asked, left),
                (vec![9], vec![(1, b"a".to_vec(), 5, 1005, 400)]),
                "w {w}"
            );
            // The page holds an empty placeholder until collected.
            assert_eq!(merged.value(&merged.versions(0)[1]).map(|b| b.len()), Some(0));
            let page = collect_base(merged, w);
            assert_eq!(page.versions(0).len(), 1, "w {w}");
        } else {
            assert_eq!((asked, left), (vec![9, 5], vec![]), "w {w}");
        }
    }
}

/// The GC rule at `w` on a model: per key, every version above `w` and the
/// newest at or below it unless a tombstone.
fn gc_model(entries: &Entries, w: u64) -> Entries {
    let mut out = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let key = &entries[i].0;
        let j = i + entries[i..].iter().take_while(|e| &e.0 == key).count();
        let vers = &entries[i..j];
        let keep = match vers.iter().position(|e| e.1 <= w) {
            None => vers.len(),
            Some(p) if vers[p].2.is_none() => p,
            Some(p) => p + 1,
        };
        out.extend_from_slice(&vers[..keep]);
        i = j;
    }
    out
}

/// Every (key, ts, value) of `page`, in order.
fn content_of(page: &crate::bwtree::base::LeafBase) -> Entries {
    let mut got = Vec::new();
    for i in 0..page.len() {
        for v in page.versions(i) {
            got.push((page.keys.key(i).to_vec(), v.ts, page.value(v).map(|b| b.to_vec())));
        }
    }
    got
}

proptest! {
    /// `collect_base` keeps exactly what the GC rule keeps.
    #[test]
    fn collect_base_applies_the_gc_rule(entries in arb_entries(), w in 0u64..1000) {
        let page = collect_base(base_of(&entries), w);
        let want = if w == 0 { entries.clone() } else { gc_model(&entries, w) };
        prop_assert_eq!(page.max_ts(), want.iter().map(|e| e.1).max().unwrap_or(0));
        prop_assert_eq!(content_of(&page), want);
    }

    /// `collect_counted` builds what `collect_base` builds at the higher
    /// watermark, less the keys with a version over the page at or below
    /// it, and counts exactly the versions the lower one keeps and it
    /// drops (a tombstone among those the GC rule drops flagged).
    #[test]
    fn collect_counted_counts_only_the_new_drops(
        entries in arb_entries(),
        a in 0u64..1000,
        b in 0u64..1000,
        over_mask in any::<u64>(),
    ) {
        let (counted, w) = (a.min(b), a.max(b));
        // Some keys get a version over the page, newer than all of theirs
        // (P5); it hides them if at or below `w`.
        let mut over = std::collections::HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let newest = entries.iter().filter(|f| f.0 == e.0).map(|f| f.1).max().unwrap_or(0);
            if over_mask >> (i % 64) & 1 == 1 && newest < w {
                over.insert(e.0.clone(), newest + 1);
            }
        }
        let c = collect_counted(base_of(&entries), w, counted, &|k| over.get(k).copied().unwrap_or(0));
        let by_rule = if w == 0 { entries.clone() } else { gc_model(&entries, w) };
        let want: Entries = by_rule.iter().filter(|e| !over.contains_key(&e.0)).cloned().collect();
        prop_assert_eq!(content_of(&c.page), want.clone());
        let before = if counted == 0 { entries.clone() } else { gc_model(&entries, counted) };
        prop_assert_eq!(c.dropped, before.len() - want.len());
        let tomb = before.iter().any(|e| e.2.is_none() && !by_rule.contains(e));
        prop_assert_eq!(c.tombstone_dropped, tomb);
    }
}
