//! A chain read and collected at once (`merge_collect`): the same page as
//! merging everything and collecting after, with the values of dropped
//! versions left unread, and the count of versions dropped above a
//! watermark counted before.

use std::cell::RefCell;

use bytes::Bytes;
use proptest::prelude::*;

use super::chain::{merge_collect, ReadGc};
use super::tests_delta::{arb_entries, base_of, content_of, gc_model, Entries};
use super::*;

/// A chain in memory: its base image, its delta flushes (newest first) and
/// the value log its references point into (address = index).
struct Chain {
    image: Bytes,
    deltas: Vec<DeltaFlush>,
    vlog: Vec<Bytes>,
}

/// `base` as an image and `deltas` (newest first) as delta flushes, every
/// value longer than `INLINE_MAX` placed in the value log.
fn chain(base: &Entries, deltas: &[&Entries]) -> Chain {
    let vlog = RefCell::new(Vec::new());
    let mut sink = |_: &[u8], _: u64, v: &[u8]| -> crate::Result<Option<u64>> {
        let mut l = vlog.borrow_mut();
        l.push(Bytes::copy_from_slice(v));
        Ok(Some(l.len() as u64 - 1))
    };
    let mut image = Vec::new();
    encode_leaf(&base_of(base), &mut image, Some(&mut sink)).unwrap();
    let deltas = deltas
        .iter()
        .map(|d| {
            let mut out = Vec::new();
            let it = d.iter().map(|(k, ts, v)| (&k[..], *ts, v.as_deref()));
            encode_delta(it, &mut out, Some(&mut sink)).unwrap();
            decode_delta(&Bytes::from(out)).unwrap()
        })
        .collect();
    Chain {
        image: Bytes::from(image),
        deltas,
        vlog: vlog.into_inner(),
    }
}

/// Versions newer than every part of a chain (1000 and above, as blind
/// writes over an evicted leaf are newer than its image), key order.
fn arb_newer() -> impl Strategy<Value = Entries> {
    arb_entries().prop_map(|e| e.into_iter().map(|(k, ts, v)| (k, ts + 1000, v)).collect())
}

/// The GC rule on the chain with `newer` over it, at `w`: what remains of
/// the chain's own versions (`whole`).
fn collected_under(whole: &Entries, newer: &Entries, w: u64) -> Entries {
    if w == 0 {
        return whole.clone();
    }
    let mut all: Vec<_> = whole.iter().chain(newer).cloned().collect();
    all.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let kept = gc_model(&all, w);
    kept.into_iter().filter(|e| e.1 < 1000).collect()
}

/// References by (address, part).
type Refs = Vec<(u64, usize)>;

/// `c` read with `gc`: the page, the versions dropped above `gc.counted`,
/// and the references read and skipped (address, part), sorted.
fn read_chain(c: &Chain, gc: ReadGc) -> (crate::bwtree::LeafBase, u64, Refs, Refs) {
    let (read, skipped) = (RefCell::new(Vec::new()), RefCell::new(Vec::new()));
    let got = merge_collect(
        &c.image,
        &c.deltas,
        gc,
        &mut |part, _, _, addr, len| {
            read.borrow_mut().push((addr, part));
            let v = c.vlog[addr as usize].clone();
            assert_eq!(v.len(), len as usize);
            Ok(v)
        },
        &mut |part, _, addr, _| skipped.borrow_mut().push((addr, part)),
        &|m| panic!("malformed: {m:?}"),
    )
    .unwrap();
    let (mut read, mut skipped) = (read.into_inner(), skipped.into_inner());
    read.sort_unstable();
    skipped.sort_unstable();
    // A tombstone above `counted`, at or below the watermark, dropped.
    let tombs = |p: &crate::bwtree::LeafBase| {
        content_of(p)
            .into_iter()
            .filter(|e| e.2.is_none() && e.1 > gc.counted && e.1 <= gc.watermark)
            .count()
    };
    let whole = merge_collect(
        &c.image,
        &c.deltas,
        ReadGc::NONE,
        &mut |_, _, _, addr, _| Ok(c.vlog[addr as usize].clone()),
        &mut |_, _, _, _| panic!("nothing is skipped without a watermark"),
        &|m| panic!("malformed: {m:?}"),
    )
    .unwrap()
    .page;
    assert_eq!(got.tombstone_dropped, tombs(&got.page) < tombs(&whole));
    (got.page, got.dropped, read, skipped)
}

proptest! {
    /// Read and collected at `w`, a chain is the page merged whole and
    /// collected after; every reference is read or skipped, once; the
    /// versions dropped above `c` are counted.
    #[test]
    fn a_collected_read_is_the_merge_collected(
        base in arb_entries(),
        d1 in arb_entries(),
        d2 in arb_entries(),
        newer in arb_newer(),
        w in 0u64..2100,
        c in 0u64..2100,
    ) {
        let c = c.min(w);
        let ch = chain(&base, &[&d2, &d1]);
        let (whole, _, all, none) = read_chain(&ch, ReadGc::NONE);
        prop_assert!(none.is_empty());
        let over: Vec<super::chain::Newer<'_>> =
            newer.iter().map(|(k, ts, v)| (&k[..], *ts, v.as_deref())).collect();
        let gc = ReadGc { watermark: w, counted: c, newer: &over };
        let (page, dropped, read, skipped) = read_chain(&ch, gc);
        let whole = content_of(&whole);
        let want = collected_under(&whole, &newer, w);
        // Counted: every version dropped but those the rule on the chain
        // alone drops at `c`.
        let before_c = if c == 0 { 0 } else { whole.len() - gc_model(&whole, c).len() };
        prop_assert_eq!(dropped as usize, whole.len() - want.len() - before_c);
        prop_assert_eq!(content_of(&page), want);
        let mut both = [read, skipped.clone()].concat();
        both.sort_unstable();
        prop_assert_eq!(both, all);
        // Nothing is skipped without a watermark.
        if w == 0 {
            prop_assert!(skipped.is_empty());
        }
    }
}

/// A value-log value overwritten in a delta flush (or in its own image)
/// at or below the watermark is not read; above it, it is.
#[test]
fn values_of_dropped_versions_are_not_read() {
    let big = |b: u8| Some(vec![b; 300]);
    let e = |k: &[u8], ts, v: Option<Vec<u8>>| (k.to_vec(), ts, v);
    // "a": 5 in the image, 9 in the delta; "b": 7 over 3 in the image,
    // both in the value log; "c": 4 in the image, deleted at 8 in the delta.
    let base = vec![
        e(b"a", 5, big(1)),
        e(b"b", 7, big(2)),
        e(b"b", 3, big(3)),
        e(b"c", 4, big(4)),
    ];
    let delta = vec![e(b"a", 9, Some(b"new".to_vec())), e(b"c", 8, None)];
    let ch = chain(&base, &[&delta]);
    let addr_of = |v: u8| ch.vlog.iter().position(|x| x[0] == v).unwrap() as u64;
    // The image is part 1, the delta part 0.
    let (page, dropped, read, skipped) = read_chain(&ch, ReadGc::again(10));
    assert_eq!((read, dropped), (vec![(addr_of(2), 1)], 0));
    let mut want_skipped = vec![(addr_of(1), 1), (addr_of(3), 1), (addr_of(4), 1)];
    want_skipped.sort_unstable();
    assert_eq!(skipped, want_skipped);
    assert_eq!(
        content_of(&page),
        vec![e(b"a", 9, Some(b"new".to_vec())), e(b"b", 7, big(2))]
    );
    // At 6 nothing is dropped ("b"'s 7 is above it).
    let (_, _, read, skipped) = read_chain(&ch, ReadGc::again(6));
    assert_eq!(read.len(), 4);
    assert!(skipped.is_empty());
    // At 7: "b"'s 3 is (7 is at or below it), "a"'s 5 and "c"'s 4 are not
    // (their newer versions are above it); counted from 0, the one
    // version dropped is counted.
    let (_, dropped, read, skipped) = read_chain(
        &ch,
        ReadGc {
            watermark: 7,
            ..ReadGc::NONE
        },
    );
    assert_eq!(skipped, vec![(addr_of(3), 1)]);
    assert_eq!((read.len(), dropped), (3, 1));
}
