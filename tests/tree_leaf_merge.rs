//! Focused cases of the leaf-chain merge that consolidation and cursors share
//! (`src/bwtree/leaf_merge.rs`): a version installed twice at one timestamp,
//! tombstones at and just above the GC watermark on both consolidation
//! paths, and cursors stepped from both ends over chains of deltas.

use std::collections::BTreeMap;
use std::ops::Bound;

use bwtx::tree::{Config, Tree};

/// Pages that hold every key of these tests and chains that never reach the
/// consolidation threshold: only `collect_garbage` consolidates.
fn long_chains() -> Config {
    Config {
        leaf_chain: 1000,
        ..Config::default()
    }
}

fn get(t: &Tree, k: &str, ts: u64) -> Option<Vec<u8>> {
    t.get(k, ts).unwrap().map(|v| v.to_vec())
}

fn scan(t: &Tree, ts: u64, rev: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let cur = t.range::<&[u8], _>(.., ts);
    let pairs: Box<dyn Iterator<Item = _>> = if rev { Box::new(cur.rev()) } else { Box::new(cur) };
    let mut out: Vec<_> = pairs
        .map(|r| r.unwrap())
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    if rev {
        out.reverse();
    }
    out
}

fn pairs(kv: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    kv.iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// Both directions of a full scan at `ts` return `want`.
fn assert_scans(t: &Tree, ts: u64, want: &[(&str, &str)]) {
    assert_eq!(scan(t, ts, false), pairs(want), "forward scan at {ts}");
    assert_eq!(scan(t, ts, true), pairs(want), "reverse scan at {ts}");
}

/// Two installs of one key at one timestamp: the later one wins in reads,
/// in cursors and through consolidation, whether the earlier one is a delta
/// or in the base, on the fast path (single-version base) and on the view
/// path (multi-version base).
#[test]
fn same_timestamp_twice_keeps_the_later_install() {
    let t = Tree::with_config(long_chains()).unwrap();
    for k in ["a", "b", "c"] {
        t.put(k, 1, "old").unwrap();
    }
    // Both installs are deltas.
    t.put("b", 1, "new").unwrap();
    assert_eq!(get(&t, "b", 1).as_deref(), Some(&b"new"[..]));
    assert_scans(&t, 1, &[("a", "old"), ("b", "new"), ("c", "old")]);
    t.collect_garbage(0);
    assert_eq!(
        t.stats().versions_dropped,
        0,
        "a duplicate delta is not a dropped version"
    );
    assert_scans(&t, 1, &[("a", "old"), ("b", "new"), ("c", "old")]);

    // The earlier install is in a single-version base: the fast path.
    t.put("c", 1, "newer").unwrap();
    assert_scans(&t, 1, &[("a", "old"), ("b", "new"), ("c", "newer")]);
    t.collect_garbage(0);
    assert_eq!(t.stats().versions_dropped, 1, "the base's copy is superseded");
    assert_eq!(get(&t, "c", 1).as_deref(), Some(&b"newer"[..]));
    assert_scans(&t, 1, &[("a", "old"), ("b", "new"), ("c", "newer")]);

    // A second version of "a" makes the base multi-version: the view path.
    t.put("a", 2, "two").unwrap();
    t.collect_garbage(0);
    t.put("a", 2, "TWO").unwrap();
    t.put("a", 1, "ONE").unwrap();
    assert_scans(&t, 1, &[("a", "ONE"), ("b", "new"), ("c", "newer")]);
    assert_scans(&t, 2, &[("a", "TWO"), ("b", "new"), ("c", "newer")]);
    t.collect_garbage(0);
    assert_eq!(t.stats().versions_dropped, 3);
    assert_eq!(get(&t, "a", 1).as_deref(), Some(&b"ONE"[..]));
    assert_eq!(get(&t, "a", 2).as_deref(), Some(&b"TWO"[..]));
    assert_scans(&t, 1, &[("a", "ONE"), ("b", "new"), ("c", "newer")]);
    assert_scans(&t, 2, &[("a", "TWO"), ("b", "new"), ("c", "newer")]);
}

/// A tombstone at the watermark goes, with every version below it; one just
/// above stays, with the newest version at or below the watermark. Checked
/// with the tombstones in deltas (fast path) and in the base (view path).
#[test]
fn tombstones_at_and_above_the_watermark() {
    let t = Tree::with_config(long_chains()).unwrap();
    for k in ["j", "k", "m"] {
        t.put(k, 1, k).unwrap();
    }
    t.collect_garbage(0);
    t.delete("k", 2).unwrap();
    t.delete("j", 3).unwrap();
    assert_eq!(t.stats().versions_dropped, 0);

    // Fast path: deltas over a single-version base.
    t.collect_garbage(2);
    assert_eq!(t.stats().versions_dropped, 2, "k@1 and k's tombstone at the watermark");
    assert_eq!(t.newest_ts("k").unwrap(), None);
    assert_eq!(t.newest_ts("j").unwrap(), Some(3));
    assert_eq!(get(&t, "j", 2).as_deref(), Some(&b"j"[..]));
    assert_eq!(get(&t, "j", 3), None);
    assert_scans(&t, 2, &[("j", "j"), ("m", "m")]);
    assert_scans(&t, 3, &[("m", "m")]);

    // View path: "j" now holds two versions in the base.
    t.put("j", 4, "z").unwrap();
    t.put("m", 4, "m4").unwrap();
    t.collect_garbage(3);
    assert_eq!(t.stats().versions_dropped, 4, "j's tombstone at the watermark and j@1");
    assert_eq!(t.newest_ts("j").unwrap(), Some(4));
    assert_eq!(get(&t, "j", 3), None);
    assert_eq!(get(&t, "m", 3).as_deref(), Some(&b"m"[..]));
    assert_scans(&t, 3, &[("m", "m")]);
    assert_scans(&t, 4, &[("j", "z"), ("m", "m4")]);
}

type Model = BTreeMap<Vec<u8>, BTreeMap<u64, Option<Vec<u8>>>>;

fn model_at(m: &Model, ts: u64, lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    m.range::<Vec<u8>, _>((lo.clone(), hi.clone()))
        .filter_map(|(k, vs)| {
            let v = vs.range(..=ts).next_back()?.1.clone()?;
            Some((k.clone(), v))
        })
        .collect()
}

/// Cursors stepped from both ends in varying patterns over leaves whose
/// chains mix new keys, updates (several versions of one key in different
/// deltas), deletes and versions newer than the snapshot, on one big page
/// and on tiny pages.
#[test]
fn cursors_from_both_ends_over_delta_chains() {
    for cfg in [long_chains(), Config::tiny()] {
        let t = Tree::with_config(cfg).unwrap();
        let mut m = Model::new();
        let mut ts = 0;
        let mut put = |k: u32, v: Option<u32>| {
            ts += 1;
            let key = format!("key{k:03}").into_bytes();
            match v {
                Some(v) => t.put(&key, ts, v.to_be_bytes()).unwrap(),
                None => t.delete(&key, ts).unwrap(),
            }
            m.entry(key)
                .or_default()
                .insert(ts, v.map(|v| v.to_be_bytes().to_vec()));
        };
        for k in (0..120).step_by(2) {
            put(k, Some(k));
        }
        t.collect_garbage(0);
        // Deltas: new odd keys, updates of even keys, deletes, repeats.
        for i in 0..90u32 {
            let k = (i * 37) % 120;
            put(k, if i % 5 == 0 { None } else { Some(1000 + i) });
        }
        let last = ts;
        let keys = |k: u32| format!("key{k:03}").into_bytes();
        let bounds = [
            (Bound::Unbounded, Bound::Unbounded),
            (Bound::Included(keys(13)), Bound::Excluded(keys(97))),
            (Bound::Excluded(keys(40)), Bound::Included(keys(41))),
            (Bound::Included(keys(119)), Bound::Unbounded),
        ];
        for snap in [1, 60, 61, 100, last] {
            for (lo, hi) in &bounds {
                let want = model_at(&m, snap, lo, hi);
                for pattern in [0b0u32, 0b1, 0b01, 0b011, 0b0001_0111] {
                    let mut cur = t.range::<Vec<u8>, _>((lo.clone(), hi.clone()), snap);
                    let (mut front, mut back) = (Vec::new(), Vec::new());
                    for step in 0.. {
                        let from_back = (pattern >> (step % 8)) & 1 == 1;
                        let item = if from_back { cur.next_back() } else { cur.next() };
                        let Some(item) = item else { break };
                        let (k, v) = item.unwrap();
                        let side = if from_back { &mut back } else { &mut front };
                        side.push((k.to_vec(), v.to_vec()));
                    }
                    back.reverse();
                    front.extend(back);
                    assert_eq!(
                        front, want,
                        "snapshot {snap}, bounds {lo:?}..{hi:?}, pattern {pattern:b}"
                    );
                }
            }
        }
    }
}
