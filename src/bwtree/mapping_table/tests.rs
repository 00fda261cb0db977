//! Unit tests of the mapping table: resident-byte accounting, slot
//! layout, and the cold-slot protocol (T6-T8).

use super::*;
use crate::bwtree::base::{LeafBuilder, PageRange, ValRef};
use crate::bwtree::delta::Body;
use bytes::Bytes;

/// A leaf of one key whose value is `value` (large: kept as its own
/// `Bytes`, shared with the caller's).
fn leaf(value: &Bytes) -> Chain {
    let mut b = LeafBuilder::new(1);
    b.push_key(b"k");
    b.push_version(1, ValRef::Refcounted(value));
    b.end_key();
    Chain::base(Node::base(Body::Leaf(b.finish(PageRange::full()))))
}

/// A retired chain's garbage leaves out the values its successor still
/// holds, and counts them once nothing else does (`shared_bytes`).
#[test]
fn values_shared_with_the_successor_are_not_retired_garbage() {
    let mut table = MappingTable::new();
    table.count_bytes();
    let guard = crossbeam_epoch::pin();
    let pid = table.alloc(&guard);
    table.store_new(pid, leaf(&Bytes::from(vec![7u8; 10_000])));
    let head = table.load(pid, &guard).unwrap();
    let whole = chain_bytes(head);
    assert!(whole > 10_000);
    // Nothing else holds the old value: all of the chain is garbage
    // (the pinned guard keeps the destructor from running meanwhile).
    let big = Bytes::from(vec![8u8; 10_000]);
    let head = table.replace(pid, head, leaf(&big), &guard).ok().unwrap();
    assert_eq!(table.resident.retired(), whole);
    // The successor shares the value: only the node is garbage.
    let head = table.replace(pid, head, leaf(&big), &guard).ok().unwrap();
    assert_eq!(table.resident.retired(), 2 * whole - 10_000);
    assert_eq!(shared_bytes(head), 10_000);
    drop(big);
}

/// An evicted leaf's stub at `addr` with a key set.
fn stub(addr: u64) -> Chain {
    Chain::base(Node::base(Body::Evicted {
        addr,
        range: PageRange::new(Some(Bytes::from_static(b"a")), Some(Bytes::from_static(b"m")), 5),
        max_ts: 3,
        watermark: 2,
        keys: Some(vec![4u64, 7].into_boxed_slice()),
        hint: 9,
    }))
}

/// T6-T8: a packed slot is peeked as cold and unpacked by `load`; every
/// CAS that expects the stub it replaced fails; a relocation swaps the
/// cold stub; stub bytes follow each step; `unpublish` and `Drop` free
/// cold slots (leaks show under valgrind and the leak-check tests).
#[test]
fn a_cold_slot_is_peeked_unpacked_and_refuses_stale_cases() {
    let mut table = MappingTable::new();
    table.count_bytes();
    let guard = crossbeam_epoch::pin();
    let pid = table.alloc(&guard);
    table.store_new(pid, stub(64));
    let warm = table.stub_bytes();
    let head = table.load(pid, &guard).unwrap();
    assert!(table.pack(pid, head, &guard));
    let Peek::Cold(cold) = table.peek(pid, &guard) else {
        panic!("packed");
    };
    assert_eq!(
        (cold.addr(), cold.low(), cold.high()),
        (64, Some(&b"a"[..]), Some(&b"m"[..]))
    );
    assert_eq!(table.stub_bytes(), cold.bytes());
    assert!(cold.bytes() < warm / 2, "{} against {warm}", cold.bytes());
    // Every CAS that expects the stub fails (T8).
    let delta = Delta::new(Body::Version {
        ts: 4,
        kv: crate::bwtree::delta::Payload::copy(b"b", Some(b"v")),
    });
    assert!(table.install(pid, head, delta, &guard).is_err());
    assert!(table.replace(pid, head, stub(72), &guard).is_err());
    assert!(!table.unlink(pid, head, &guard));
    assert!(!table.pack(pid, head, &guard));
    // A relocation, then one from the stale cold stub.
    let packed = table.stub_bytes();
    assert!(table.replace_cold(pid, cold, cold.moved(128, 0), &guard));
    assert!(!table.replace_cold(pid, cold, cold.moved(256, 0), &guard));
    assert_eq!(table.stub_bytes(), packed, "the moved cold stub is as large");
    // `load` unpacks: the same stub at the new address.
    let h = table.load(pid, &guard).unwrap();
    assert!(h.is_stub());
    let Body::Evicted {
        addr,
        range,
        max_ts,
        watermark,
        keys,
        hint,
    } = &h.body
    else {
        panic!("a stub");
    };
    assert_eq!((*addr, *max_ts, *watermark, *hint), (128, 3, 2, 0));
    assert_eq!(keys.as_deref(), Some(&[4u64, 7][..]));
    assert_eq!(
        (range.low(), range.high(), range.sibling),
        (Some(&b"a"[..]), Some(&b"m"[..]), 5)
    );
    assert!(matches!(table.peek(pid, &guard), Peek::Node(n) if std::ptr::eq(n, h)));
    assert!(std::ptr::eq(table.load(pid, &guard).unwrap(), h), "unpacked once");
    assert_eq!(table.stub_bytes(), node_bytes(h), "counted as the stub again");
    // A resident page does not pack.
    let leaf_pid = table.alloc(&guard);
    table.store_new(leaf_pid, leaf(&Bytes::from_static(b"v")));
    assert!(!table.pack(leaf_pid, table.load(leaf_pid, &guard).unwrap(), &guard));
    // Cold slots left to `unpublish` and to `Drop`.
    assert!(table.pack(pid, h, &guard));
    assert_eq!(table.stub_bytes(), packed);
    let other = table.alloc(&guard);
    table.store_new_cold(other, Cold::new(8, &PageRange::full(), 1, 0, 0));
    assert!(table.stub_bytes() > packed);
    table.unpublish(other, &guard);
    assert!(matches!(table.peek(other, &guard), Peek::Free));
    assert_eq!(table.stub_bytes(), packed);
    drop(guard);
    drop(table);
}

#[test]
fn locate_covers_ids_without_gaps() {
    let mut expect = (0usize, 0usize);
    for pid in 0..10_000u64 {
        let got = locate(pid);
        assert_eq!(got, expect, "pid {pid}");
        expect.1 += 1;
        if expect.1 == (BASE as usize) << expect.0 {
            expect = (expect.0 + 1, 0);
        }
    }
}
