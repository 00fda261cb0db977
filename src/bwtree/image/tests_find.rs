//! Look-up tests (`find`): one key's version at a snapshot, found in an
//! image or a chain in place, against the decoded page and the merged
//! chain; damage never panics.

use bytes::Bytes;
use proptest::prelude::*;

use super::delta::DeltaValue;
use super::tests::{arb_key, arb_model, arb_value, build, encode, Model};
use super::*;

/// The model's answer: the newest version of `key` at or below `ts`.
fn model_find(model: &Model, key: &[u8], ts: u64) -> Option<(u64, Option<Vec<u8>>)> {
    let (_, vs) = model.entries.iter().find(|(k, _)| k == key)?;
    vs.iter().find(|(t, _)| *t <= ts).cloned()
}

fn plain(f: Found) -> (u64, Option<Vec<u8>>) {
    let v = match f.value {
        DeltaValue::Tomb => None,
        DeltaValue::Value(b) => Some(b.to_vec()),
        DeltaValue::Ref { .. } => panic!("no value log here"),
    };
    (f.ts, v)
}

/// Snapshots to probe a model at: every version's timestamp, one below,
/// and the extremes.
fn probes(model: &Model) -> Vec<u64> {
    let mut ts: Vec<u64> = vec![0, 1, u64::MAX];
    for (_, vs) in &model.entries {
        for (t, _) in vs {
            ts.extend([*t, t - 1]);
        }
    }
    ts
}

proptest! {
    /// Every key of an image, and keys it lacks, at every interesting
    /// snapshot: the look-up gives what the model holds.
    #[test]
    fn a_leaf_look_up_reads_what_the_page_holds(model in arb_model(), extra in prop::collection::vec(arb_key(), 0..8)) {
        let image = encode(&build(&model));
        let keys = model.entries.iter().map(|e| e.0.clone()).chain(extra);
        for key in keys {
            for ts in probes(&model) {
                let got = find_in_leaf(&image, &key, ts).unwrap().map(plain);
                prop_assert_eq!(got, model_find(&model, &key, ts), "key {:?} at {}", key, ts);
            }
        }
    }

    /// A base and two delta flushes: the newest version any part gives is
    /// the merged chain's (`merge_chain`), the newer part winning a tie.
    #[test]
    fn a_chain_look_up_reads_what_the_merged_chain_holds(
        base in arb_model(),
        d1 in prop::collection::btree_map(arb_key(), prop::collection::btree_map(1u64..1000, arb_value(), 1..3), 0..10),
        d2 in prop::collection::btree_map(arb_key(), prop::collection::btree_map(1u64..1000, arb_value(), 1..3), 0..10),
    ) {
        let delta = |m: &std::collections::BTreeMap<Vec<u8>, std::collections::BTreeMap<u64, Option<Vec<u8>>>>| {
            let mut out = Vec::new();
            let entries = m.iter().flat_map(|(k, vs)| vs.iter().rev().map(move |(ts, v)| (&k[..], *ts, v.as_deref())));
            let max_ts = encode_delta(entries, &mut out, None).unwrap();
            decode_delta(&Bytes::from(out), COMPACT_DELTA, max_ts).unwrap()
        };
        let (p1, p2) = (delta(&d1), delta(&d2));
        let image = encode(&build(&base));
        let merged = merge_chain(build(&base), &[p2.clone(), p1.clone()], &mut |_, _, _, _, _| panic!("no value log")).unwrap();
        let keys: Vec<Vec<u8>> = base.entries.iter().map(|e| e.0.clone()).chain(d1.keys().cloned()).chain(d2.keys().cloned()).collect();
        let mut stamps = probes(&base);
        stamps.extend(d1.values().chain(d2.values()).flat_map(|vs| vs.keys().copied()));
        for key in &keys {
            for &ts in &stamps {
                let got = newest([
                    find_in_delta(&p2, key, ts),
                    find_in_delta(&p1, key, ts),
                    find_in_leaf(&image, key, ts).unwrap(),
                ]).map(plain);
                let want = merged.keys.find(key).and_then(|i| {
                    merged.versions(i).iter().find(|v| v.ts <= ts).map(|v| (v.ts, merged.value(v).map(|b| b.to_vec())))
                });
                prop_assert_eq!(got, want, "key {:?} at {}", key, ts);
            }
        }
    }
}

/// A damaged or cut image never makes the look-up panic or read outside it.
#[test]
fn damaged_images_never_panic_a_look_up() {
    let strat = (
        arb_model(),
        any::<prop::sample::Index>(),
        1u8..=255,
        any::<prop::sample::Index>(),
        arb_key(),
    );
    proptest!(ProptestConfig::with_cases(2000), |((model, at, xor, cut, key) in strat)| {
        let image = encode(&build(&model)).to_vec();
        let mut bad = image.clone();
        bad[at.index(image.len())] ^= xor;
        let bad = Bytes::from(bad);
        for ts in [0, 500, u64::MAX] {
            let _ = find_in_leaf(&bad, &key, ts);
            let cut = Bytes::copy_from_slice(&image[..cut.index(image.len())]);
            let _ = find_in_leaf(&cut, &key, ts);
        }
    });
}

/// A value-log reference comes back as the reference (the caller reads
/// only the one it needs); the version below it as its bytes.
#[test]
fn a_look_up_returns_references_unread() {
    let model = Model {
        low: None,
        high: None,
        entries: vec![(
            b"a".to_vec(),
            vec![(9, Some(vec![1; 300])), (4, Some(b"small".to_vec()))],
        )],
    };
    let mut out = Vec::new();
    let mut sink = |_: &[u8], ts: u64, _: &[u8]| -> crate::Result<Option<u64>> { Ok((ts == 9).then_some(0xabcd)) };
    encode_leaf(&build(&model), &mut out, Some(&mut sink)).unwrap();
    let image = Bytes::from(out);
    let found = find_in_leaf(&image, b"a", 10).unwrap().unwrap();
    assert_eq!(
        found,
        Found {
            ts: 9,
            value: DeltaValue::Ref { addr: 0xabcd, len: 300 }
        }
    );
    let found = find_in_leaf(&image, b"a", 8).unwrap().unwrap();
    assert_eq!(found.value, DeltaValue::Value(Bytes::from_static(b"small")));
    assert_eq!(find_in_leaf(&image, b"a", 3).unwrap(), None);
    assert_eq!(find_in_leaf(&image, b"b", 10).unwrap(), None);
}
