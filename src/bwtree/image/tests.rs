//! Leaf image tests: round trips against a model, damage never panics, and
//! pages built by the tree's own consolidation survive the trip.

use bytes::Bytes;
use proptest::prelude::*;

use super::super::base::{LeafBase, LeafBuilder, PageRange, ValRef};
use super::super::mapping_table::NO_PID;
use super::*;

/// A key's versions, newest first: `(ts, value)`, `None` a tombstone.
type Versions = Vec<(u64, Option<Vec<u8>>)>;

/// A page's model: fences, and per key its versions newest first.
#[derive(Clone, Debug)]
pub(super) struct Model {
    pub(super) low: Option<Vec<u8>>,
    pub(super) high: Option<Vec<u8>>,
    pub(super) entries: Vec<(Vec<u8>, Versions)>,
}

/// Keys over a small alphabet rich in zero bytes (empty keys included), so
/// that prefixes, equal heads and binary keys all occur.
pub(super) fn arb_key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0u8, 0, 1, b'a', b'b', 0xff]), 0..12)
}

/// Values: tombstones, small values, and values long enough to be `big`.
pub(super) fn arb_value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        2 => Just(None),
        6 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Some),
        2 => (257usize..700, any::<u8>()).prop_map(|(n, b)| Some(vec![b; n])),
    ]
}

pub(super) fn arb_model() -> impl Strategy<Value = Model> {
    let versions = prop::collection::vec((1u64..1000, arb_value()), 1..5);
    (
        prop::collection::btree_map(arb_key(), versions, 0..30),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(map, with_low, with_high)| {
            let mut entries: Vec<_> = map
                .into_iter()
                .map(|(k, mut vs)| {
                    vs.sort_by_key(|v| std::cmp::Reverse(v.0));
                    vs.dedup_by_key(|v| v.0);
                    (k, vs)
                })
                .collect();
            // The fences come from the keys: the low fence may equal the first
            // key; the high fence is past the last one kept.
            let high = if with_high { entries.pop().map(|e| e.0) } else { None };
            let low = if with_low {
                entries.first().map(|e| e.0.clone())
            } else {
                None
            };
            Model { low, high, entries }
        })
}

pub(super) fn build(model: &Model) -> LeafBase {
    let mut b = LeafBuilder::new(model.entries.len());
    for (i, (k, vs)) in model.entries.iter().enumerate() {
        b.push_key(k);
        for (ts, v) in vs {
            match v {
                None => b.push_version(*ts, ValRef::Tomb),
                // Alternate the two ways consolidation hands values over.
                Some(v) if i % 2 == 0 => b.push_version(*ts, ValRef::Inline(v)),
                Some(v) => b.push_version(*ts, ValRef::Refcounted(&Bytes::copy_from_slice(v))),
            }
        }
        b.end_key();
    }
    let sibling = if model.high.is_some() { 7 } else { NO_PID };
    b.finish(PageRange::new(
        model.low.clone().map(Bytes::from),
        model.high.clone().map(Bytes::from),
        sibling,
    ))
}

/// The content of a base page, as a model.
pub(super) fn content(base: &LeafBase) -> Model {
    let entries = (0..base.len())
        .map(|i| {
            let vs = base
                .versions(i)
                .iter()
                .map(|v| (v.ts, base.value(v).map(|b| b.to_vec())))
                .collect();
            (base.keys.key(i).to_vec(), vs)
        })
        .collect();
    Model {
        low: base.range.low().map(<[u8]>::to_vec),
        high: base.range.high().map(<[u8]>::to_vec),
        entries,
    }
}

fn same(a: &Model, b: &Model) -> bool {
    a.low == b.low && a.high == b.high && a.entries == b.entries
}

pub(super) fn encode(base: &LeafBase) -> Bytes {
    let mut out = Vec::new();
    encode_leaf(base, &mut out, None).unwrap();
    Bytes::from(out)
}

/// Everything a read relies on holds in a decoded page, and it encodes to
/// an image that decodes to the same content.
fn check_consistent(base: &LeafBase) {
    let m = content(base);
    for w in m.entries.windows(2) {
        assert!(w[0].0 < w[1].0, "keys ascending");
    }
    for (k, vs) in &m.entries {
        assert!(m.low.as_ref().is_none_or(|l| l <= k) && m.high.as_ref().is_none_or(|h| k < h));
        assert!(!vs.is_empty() && vs[vs.len() - 1].0 >= 1);
        assert!(vs.windows(2).all(|w| w[0].0 > w[1].0), "newest first");
    }
    assert_eq!(m.high.is_some(), base.range.sibling != NO_PID);
    for i in 0..base.len() {
        assert_eq!(base.keys.find(base.keys.key(i)), Some(i));
    }
    let again = decode_leaf(&encode(base)).expect("a decoded page re-encodes");
    assert!(same(&content(&again), &m));
}

#[test]
fn leaf_round_trip() {
    proptest!(ProptestConfig::with_cases(500), |(model in arb_model())| {
        let base = build(&model);
        let image = encode(&base);
        let back = decode_leaf(&image).unwrap();
        prop_assert!(same(&content(&back), &model), "{:?}", content(&back));
        prop_assert_eq!(back.range.sibling, base.range.sibling);
        prop_assert_eq!(back.single_version(), base.single_version());
        prop_assert_eq!(back.inline_value_bytes(), base.inline_value_bytes());
        prop_assert_eq!(back.big_values().len(), base.big_values().len());
        // The decoded page has the original's layout: it encodes to the same bytes.
        prop_assert_eq!(encode(&back), image.clone());
        // Appending after other bytes writes the same image.
        let mut out = vec![9u8; 5];
        encode_leaf(&base, &mut out, None).unwrap();
        prop_assert_eq!(&out[5..], &image[..]);
    });
}

#[test]
fn empty_page_round_trips() {
    // Header, fences padded to 8, offs = [0] padded to 8.
    for (range, len) in [
        (PageRange::full(), 32 + 8),
        (
            PageRange::new(Some(Bytes::from_static(b"")), Some(Bytes::from_static(b"\0")), 3),
            32 + 8 + 8,
        ),
    ] {
        let base = LeafBase::empty(range);
        let image = encode(&base);
        assert_eq!(image.len(), len);
        let back = decode_leaf(&image).unwrap();
        assert!(same(&content(&back), &content(&base)));
    }
}

#[test]
fn damaged_images_never_panic() {
    let strat = (
        arb_model(),
        any::<prop::sample::Index>(),
        1u8..=255,
        any::<prop::sample::Index>(),
    );
    proptest!(ProptestConfig::with_cases(2000), |((model, at, xor, cut) in strat)| {
        let image = encode(&build(&model)).to_vec();
        let mut bad = image.clone();
        bad[at.index(image.len())] ^= xor;
        if let Ok(base) = decode_leaf(&Bytes::from(bad)) {
            check_consistent(&base);
        }
        let cut = cut.index(image.len());
        prop_assert!(decode_leaf(&Bytes::copy_from_slice(&image[..cut])).is_err());
    });
}

#[test]
fn random_bytes_never_panic() {
    // Random bytes behind a plausible header, so decoding gets past it often.
    let strat = (
        prop::collection::vec(any::<u8>(), 0..400),
        0u32..8,
        0u32..12,
        any::<bool>(),
    );
    proptest!(ProptestConfig::with_cases(3000), |((mut bytes, n, m, header) in strat)| {
        if header && bytes.len() >= 32 {
            bytes[..4].copy_from_slice(&[1, 0, 0, 0]);
            bytes[4..8].copy_from_slice(&n.to_le_bytes());
            bytes[8..12].copy_from_slice(&m.to_le_bytes());
        }
        if let Ok(base) = decode_leaf(&Bytes::from(bytes)) {
            check_consistent(&base);
        }
    });
}

#[test]
fn errors_name_the_offset() {
    let model = Model {
        low: None,
        high: None,
        entries: vec![
            (b"a".to_vec(), vec![(5, Some(b"x".to_vec()))]),
            (b"b".to_vec(), vec![(3, None)]),
        ],
    };
    let image = encode(&build(&model)).to_vec();
    // Layout: header 32, no fences, offs 3 * 4 -> 16, vers at 48.
    let mut bad = image.clone();
    bad[48..56].copy_from_slice(&0u64.to_le_bytes());
    assert_eq!(
        decode_leaf(&Bytes::from(bad)).unwrap_err(),
        Malformed {
            offset: 48,
            reason: "timestamps not newest first, or 0"
        }
    );
    let mut bad = image.clone();
    bad[36] = 0; // offs = [0, 0, 2]: keys "" and "ab", still ascending
    assert!(decode_leaf(&Bytes::from(bad)).is_ok());
    let mut bad = image;
    bad[32 + 4] = 2; // offs = [0, 2, 2]: key 1 == "" < key 0 == "ab"
    let err = decode_leaf(&Bytes::from(bad)).unwrap_err();
    assert_eq!(err.reason, "keys not ascending or outside the fences");
    let e = err.corruption("pages-0000000001.seg".into(), 1000);
    assert!(matches!(e, crate::Error::Corruption { offset, .. } if offset == 1000 + err.offset as u64));
}

#[test]
fn value_log_hook_writes_references() {
    let model = Model {
        low: None,
        high: None,
        entries: vec![
            (
                b"a".to_vec(),
                vec![(9, Some(vec![1; 300])), (4, Some(b"small".to_vec()))],
            ),
            (b"b".to_vec(), vec![(8, Some(vec![2; 400]))]),
        ],
    };
    let base = build(&model);
    let mut seen = Vec::new();
    let mut sink = |k: &[u8], ts: u64, v: &[u8]| -> crate::Result<Option<u64>> {
        seen.push((k.to_vec(), ts, v.len()));
        Ok((ts == 9).then_some(0xabcd))
    };
    let mut out = Vec::new();
    encode_leaf(&base, &mut out, Some(&mut sink)).unwrap();
    assert_eq!(seen, vec![(b"a".to_vec(), 9, 300), (b"b".to_vec(), 8, 400)]);
    // vers at 32 + 16 (offs) + 16 (vstart); the first version is the reference.
    let len = u32::from_le_bytes(out[64 + 12..64 + 16].try_into().unwrap());
    assert_eq!(len, 1 << 31 | 300);
    let off = u32::from_le_bytes(out[64 + 8..64 + 12].try_into().unwrap()) as usize;
    let vals_at = 64 + 3 * 16 + 8;
    assert_eq!(
        &out[vals_at + off..vals_at + off + 12],
        &[&0xabcdu64.to_le_bytes()[..], &300u32.to_le_bytes()].concat()
    );
    assert_eq!(out.len(), vals_at + 5 + 12 + 400);
    let err = decode_leaf(&Bytes::from(out.clone())).unwrap_err();
    assert_eq!(err.offset, 64 + 12);
    // With a source the reference reads back, and the page re-encodes to
    // the same bytes with the same address; a source that cannot read it,
    // or returns the wrong length, fails the decode at the version.
    let image = Bytes::from(out.clone());
    let mut asked = Vec::new();
    let mut source = |k: &[u8], ts: u64, addr: u64, len: u32, newer: Option<u64>| {
        asked.push((k.to_vec(), ts, addr, len, newer));
        Some(Fetched::Value(Bytes::from(vec![1u8; len as usize])))
    };
    let back = decode_leaf_with(&image, Some(&mut source)).unwrap();
    assert_eq!(asked, vec![(b"a".to_vec(), 9, 0xabcd, 300, None)]);
    assert_eq!(back.value(&back.versions(0)[0]).as_deref(), Some(&[1u8; 300][..]));
    let mut again = Vec::new();
    encode_leaf(
        &back,
        &mut again,
        Some(&mut |_: &[u8], ts: u64, _: &[u8]| Ok((ts == 9).then_some(0xabcd))),
    )
    .unwrap();
    assert_eq!(again, out);
    for give in [None, Some(299)] {
        let mut source =
            |_: &[u8], _: u64, _: u64, _: u32, _: Option<u64>| give.map(|n| Fetched::Value(Bytes::from(vec![1u8; n])));
        let err = decode_leaf_with(&image, Some(&mut source)).unwrap_err();
        assert_eq!(err.offset, 64 + 8);
    }
    // A failing hook fails the encode and leaves the buffer as it was.
    let mut out = vec![1, 2, 3];
    let mut failing = |_: &[u8], _: u64, _: &[u8]| -> crate::Result<Option<u64>> { Err(crate::Error::Poisoned) };
    assert!(encode_leaf(&base, &mut out, Some(&mut failing)).is_err());
    assert_eq!(out, [1, 2, 3]);
}

/// Leaves built by the tree itself (splits, merges, consolidation with
/// several versions per key and large values) decode to what was encoded.
#[test]
fn consolidated_tree_leaves_round_trip() {
    use super::super::chain::Node;
    use super::super::delta::Body;
    use super::super::tree::{Config, Tree};

    let tree = Tree::with_config(Config::tiny()).unwrap();
    let mut ts = 0;
    for round in 0..4u64 {
        for i in 0..120u64 {
            ts += 1;
            let key = format!("key{:04}", (i * 37) % 120);
            match (i + round) % 7 {
                0 => tree.delete(&key, ts).unwrap(),
                1 => tree.put(&key, ts, vec![round as u8; 300 + i as usize]).unwrap(),
                _ => tree.put(&key, ts, format!("v{round}-{i}")).unwrap(),
            }
        }
    }
    let guard = crossbeam_epoch::pin();
    let mut bases = 0;
    for pid in 0..tree.table.high_water() {
        let Some(mut node) = tree.table.load(pid, &guard) else {
            continue;
        };
        while let Some(next) = node.next() {
            node = next;
        }
        let node: &Node = node;
        if let Body::Leaf(base) = &node.body {
            let image = encode(base);
            let back = decode_leaf(&image).unwrap();
            assert!(same(&content(&back), &content(base)));
            assert_eq!(back.range.sibling, base.range.sibling);
            assert_eq!(encode(&back), image);
            bases += 1;
        }
    }
    assert!(bases > 10, "only {bases} leaf bases");
}
