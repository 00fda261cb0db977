//! Model-based test: the tree against a `BTreeMap<key, BTreeMap<ts, value>>`,
//! with tiny pages so that splits, merges and consolidations happen constantly.

use std::collections::BTreeMap;
use std::ops::Bound;

use bwtx::tree::{Config, Tree};
use proptest::prelude::*;

type Model = BTreeMap<Vec<u8>, BTreeMap<u64, Option<Vec<u8>>>>;

#[derive(Debug, Clone)]
enum Op {
    Put(usize, u8),
    Delete(usize),
    Get(usize, u64),
    NewestTs(usize),
    Range(Option<usize>, Option<usize>, u64, bool, bool),
    Gc(u64),
}

/// Keys with shared 8-byte heads, short keys, and the empty key.
fn key(i: usize) -> Vec<u8> {
    match i % 4 {
        0 => format!("k{:03}", i).into_bytes(),
        1 => format!("common-prefix-{:03}", i).into_bytes(),
        2 => (i as u16).to_be_bytes().to_vec(),
        _ => {
            if i == 3 {
                Vec::new()
            } else {
                format!("k{:03}\0", i - 3).into_bytes()
            }
        }
    }
}

fn op(keys: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..keys, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        4 => (0..keys).prop_map(Op::Delete),
        2 => (0..keys, any::<u64>()).prop_map(|(k, t)| Op::Get(k, t)),
        1 => (0..keys).prop_map(Op::NewestTs),
        2 => (proptest::option::of(0..keys), proptest::option::of(0..keys), any::<u64>(), any::<bool>(), any::<bool>())
            .prop_map(|(a, b, t, rev, incl)| Op::Range(a, b, t, rev, incl)),
        1 => any::<u64>().prop_map(Op::Gc),
    ]
}

fn model_get(m: &Model, k: &[u8], ts: u64) -> Option<Vec<u8>> {
    m.get(k)?.range(..=ts).next_back()?.1.clone()
}

fn value(v: u8, ts: u64) -> Vec<u8> {
    // Some values are large enough to live outside the page blob.
    let len = if v.is_multiple_of(7) { 300 } else { (v % 13) as usize };
    let mut out = vec![v; len];
    out.extend_from_slice(&ts.to_be_bytes());
    out
}

fn run(ops: Vec<Op>, keys: usize) {
    run_with(ops, keys, Config::tiny())
}

fn run_with(ops: Vec<Op>, keys: usize, cfg: Config) {
    let tree = Tree::with_config(cfg).unwrap();
    let mut model: Model = BTreeMap::new();
    let mut ts = 0u64;
    let mut wm = 0u64; // reads at or above the watermark are exact
    for op in ops {
        match op {
            Op::Put(k, v) => {
                ts += 1;
                let val = value(v, ts);
                tree.put(key(k), ts, &val).unwrap();
                model.entry(key(k)).or_default().insert(ts, Some(val));
            }
            Op::Delete(k) => {
                ts += 1;
                tree.delete(key(k), ts).unwrap();
                model.entry(key(k)).or_default().insert(ts, None);
            }
            Op::Get(k, t) => {
                let t = wm + t % (ts - wm + 2);
                let got = tree.get(key(k), t).unwrap().map(|b| b.to_vec());
                assert_eq!(got, model_get(&model, &key(k), t), "get {:?} at {t}", key(k));
            }
            Op::NewestTs(k) => {
                // GC may drop a tombstone at or below the watermark: only
                // newer timestamps are exact.
                let got = tree.newest_ts(key(k)).unwrap();
                let want = model.get(&key(k)).and_then(|v| v.keys().next_back().copied());
                match want {
                    Some(w) if w > wm => assert_eq!(got, Some(w)),
                    _ => assert!(got.is_none_or(|g| g <= wm)),
                }
            }
            Op::Range(a, b, t, rev, incl) => {
                let t = wm + t % (ts - wm + 2);
                let lo = a.map_or(Bound::Unbounded, |a| Bound::Included(key(a)));
                let hi = b.map_or(Bound::Unbounded, |b| {
                    if incl {
                        Bound::Included(key(b))
                    } else {
                        Bound::Excluded(key(b))
                    }
                });
                let valid = match (&lo, &hi) {
                    (Bound::Included(l), Bound::Included(h)) => l <= h,
                    (Bound::Included(l), Bound::Excluded(h)) => l <= h,
                    _ => true,
                };
                if !valid {
                    continue;
                }
                let mut want: Vec<(Vec<u8>, Vec<u8>)> = model
                    .range::<Vec<u8>, _>((lo.clone(), hi.clone()))
                    .filter_map(|(k, _)| model_get(&model, k, t).map(|v| (k.clone(), v)))
                    .collect();
                let cur = tree.range((lo, hi), t);
                let got: Vec<(Vec<u8>, Vec<u8>)> = if rev {
                    want.reverse();
                    cur.rev()
                        .map(|r| r.unwrap())
                        .map(|(k, v)| (k.to_vec(), v.to_vec()))
                        .collect()
                } else {
                    cur.map(|r| r.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
                };
                assert_eq!(got, want, "range at {t} rev={rev}");
            }
            Op::Gc(w) => {
                wm = wm.max(w % (ts + 1));
                tree.collect_garbage(wm);
            }
        }
    }
    // Final check: every key at every timestamp at or above the watermark.
    for t in wm..=ts + 1 {
        for (k, _) in model.iter() {
            assert_eq!(tree.get(k, t).unwrap().map(|b| b.to_vec()), model_get(&model, k, t));
        }
        let got: Vec<Vec<u8>> = tree.range::<Vec<u8>, _>(.., t).map(|r| r.unwrap().0.to_vec()).collect();
        let want: Vec<Vec<u8>> = model
            .keys()
            .filter(|k| model_get(&model, k, t).is_some())
            .cloned()
            .collect();
        assert_eq!(got, want, "full scan at {t}");
    }
    let _ = keys;
}

proptest! {
    // 256 cases per property in CI; PROPTEST_CASES=N for a longer soak.
    #![proptest_config(ProptestConfig {
        cases: bwtx_kit::env::parse("PROPTEST_CASES").unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn tree_matches_model_small_keyspace(ops in proptest::collection::vec(op(24), 1..300)) {
        run(ops, 24);
    }

    #[test]
    fn tree_matches_model_large_keyspace(ops in proptest::collection::vec(op(400), 1..600)) {
        run(ops, 400);
    }

    /// Mid-sized pages: most consolidations take the fast path (version
    /// deltas merged straight into a single-version base).
    #[test]
    fn tree_matches_model_mid_pages(ops in proptest::collection::vec(op(300), 1..600)) {
        let cfg = Config { leaf_chain: 4, leaf_max: 32, leaf_min: 4, inner_max: 8, inner_min: 2, ..Config::default() };
        run_with(ops, 300, cfg);
    }
}

/// Interleaved forward and backward iteration meets in the middle exactly once.
#[test]
fn double_ended_iteration_meets_once() {
    let tree = Tree::with_config(Config::tiny()).unwrap();
    for i in 0..200u32 {
        tree.put(i.to_be_bytes(), 1, [1]).unwrap();
    }
    let mut cur = tree.range::<&[u8], _>(.., 1);
    let mut seen = Vec::new();
    loop {
        let f = cur.next();
        let b = cur.next_back();
        if let Some(f) = &f {
            seen.push(f.as_ref().unwrap().0.clone());
        }
        if let Some(b) = &b {
            seen.push(b.as_ref().unwrap().0.clone());
        }
        if f.is_none() && b.is_none() {
            break;
        }
    }
    seen.sort();
    let want: Vec<_> = (0..200u32)
        .map(|i| bytes::Bytes::copy_from_slice(&i.to_be_bytes()))
        .collect();
    assert_eq!(seen, want);
}
