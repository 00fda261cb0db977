//! Apply's decisions: first committer wins in log order, within a batch
//! and a batch entry too, and malformed proposals rejected alike.

use super::*;
use crate::types::log_id;

fn txn(index: u64, snapshot: u64, writes: &[(&str, Option<&str>)]) -> Entry {
    let writes = writes
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
        .collect();
    Entry {
        log_id: log_id(1, 0, index),
        payload: EntryPayload::Normal(Command::Txn {
            snapshot,
            writes,
            reads: vec![],
            ranges: vec![],
        }),
    }
}

fn value(db: &bwtx::Db, key: &str) -> Option<(u64, Option<bytes::Bytes>)> {
    let raw = db.snapshot().get(keys::data_key(key.as_bytes())).unwrap()?;
    Some(keys::decode_value(&raw).unwrap())
}

fn conflict(key: &str, winner: u64, snapshot: u64) -> Response {
    Response::Conflict {
        key: key.as_bytes().to_vec(),
        winner,
        snapshot,
        reason: crate::types::Conflicted::Write,
    }
}

#[test]
fn first_committer_wins_in_log_order() {
    let db = bwtx::Db::in_memory();
    let r = apply_batch(&db, vec![txn(1, 0, &[("k", Some("a"))])]).unwrap();
    assert_eq!(r, [Response::Committed { index: 1 }]);
    // Same snapshot position 0: entry 1 wrote k after it.
    let r = apply_batch(&db, vec![txn(2, 0, &[("j", Some("x")), ("k", Some("b"))])]).unwrap();
    assert_eq!(r, [conflict("k", 1, 0)]);
    assert_eq!(value(&db, "j"), None, "a conflicting entry writes nothing");
    assert_eq!(value(&db, "k"), Some((1, Some("a".into()))));
    // A snapshot at 1 saw entry 1's write: no conflict.
    let r = apply_batch(&db, vec![txn(3, 1, &[("k", Some("c"))])]).unwrap();
    assert_eq!(r, [Response::Committed { index: 3 }]);
    assert_eq!(value(&db, "k"), Some((3, Some("c".into()))));
    assert_eq!(read_applied(&db.snapshot()).unwrap().index(), 3);
}

#[test]
fn a_batch_validates_against_its_own_earlier_entries_and_tombstones() {
    let db = bwtx::Db::in_memory();
    let r = apply_batch(
        &db,
        vec![
            txn(1, 0, &[("a", Some("1"))]),
            txn(2, 0, &[("a", Some("2"))]),
            txn(3, 1, &[("a", None)]),
            txn(4, 2, &[("a", Some("4"))]),
            txn(5, 3, &[("a", Some("5"))]),
        ],
    )
    .unwrap();
    assert_eq!(
        r,
        [
            Response::Committed { index: 1 },
            conflict("a", 1, 0),
            Response::Committed { index: 3 },
            // Deleted at 3, after snapshot 2: the tombstone remembers it.
            conflict("a", 3, 2),
            Response::Committed { index: 5 },
        ]
    );
    assert_eq!(value(&db, "a"), Some((5, Some("5".into()))));
    assert_eq!(read_applied(&db.snapshot()).unwrap().index(), 5);
}

#[test]
fn a_batch_entry_decides_its_proposals_in_order_at_its_index() {
    let db = bwtx::Db::in_memory();
    apply_batch(&db, vec![txn(1, 0, &[("k", Some("a"))])]).unwrap();
    let p = |snapshot, key: &str, v: &str| crate::types::Proposal {
        snapshot,
        writes: vec![(key.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))],
        reads: vec![],
        ranges: vec![],
    };
    let batch = Entry {
        log_id: log_id(1, 0, 2),
        payload: EntryPayload::Normal(Command::Batch {
            txns: vec![p(0, "k", "stale"), p(1, "k", "b"), p(1, "k", "c"), p(1, "j", "d")],
        }),
    };
    let r = apply_batch(&db, vec![batch]).unwrap();
    let outcomes = vec![
        conflict("k", 1, 0),
        Response::Committed { index: 2 },
        // The proposal before it in the batch wrote k at this index.
        conflict("k", 2, 1),
        Response::Committed { index: 2 },
    ];
    assert_eq!(r, [Response::Batch { outcomes }]);
    assert_eq!(value(&db, "k"), Some((2, Some("b".into()))));
    assert_eq!(value(&db, "j"), Some((2, Some("d".into()))));
}

#[test]
fn malformed_proposals_are_rejected_the_same_everywhere() {
    let db = bwtx::Db::in_memory();
    let r = apply_batch(
        &db,
        vec![
            txn(1, 1, &[("a", Some("1"))]),
            txn(2, 0, &[("a", Some("1")), ("a", None)]),
        ],
    );
    let r = r.unwrap();
    assert!(
        matches!(r[0], Response::Rejected { .. }),
        "snapshot not before the entry"
    );
    assert!(matches!(r[1], Response::Rejected { .. }), "a key written twice");
    assert_eq!(value(&db, "a"), None);
    assert_eq!(
        read_applied(&db.snapshot()).unwrap().index(),
        2,
        "rejected entries still count as applied"
    );
}

/// An apply cut into runs of at most the budget's bytes: every entry once,
/// in order; an entry over the budget alone; and applying run by run
/// (each commit with its last entry's applied id) leaves what one commit
/// of them all leaves.
#[test]
fn apply_chunks_keep_order_and_outcome() {
    let big = "x".repeat(100);
    let entries = |n: u64| -> Vec<Entry> {
        (1..=n)
            .map(|i| {
                let v = if i % 4 == 0 { big.repeat(3) } else { big.clone() };
                txn(i, 0, &[(&format!("k{i}"), Some(v.as_str()))])
            })
            .collect()
    };
    let runs = chunks(entries(12), 250);
    let flat: Vec<u64> = runs.iter().flat_map(|(r, _)| r).map(|e| e.log_id.index).collect();
    assert_eq!(flat, (1..=12).collect::<Vec<_>>());
    for (run, counted) in &runs {
        let bytes: usize = run.iter().map(entry_bytes).sum();
        assert_eq!(bytes, *counted);
        assert!(bytes <= 250 || run.len() == 1, "{bytes} in {} entries", run.len());
    }
    let runs: Vec<_> = runs.into_iter().map(|(r, _)| r).collect();
    assert!(
        runs.iter().any(|r| r.len() == 1 && entry_bytes(&r[0]) > 250),
        "an entry over the budget alone"
    );
    assert!(runs.len() > 4);

    let whole = bwtx::Db::in_memory();
    apply_batch(&whole, entries(12)).unwrap();
    let cut = bwtx::Db::in_memory();
    for (run, _) in chunks(entries(12), 250) {
        apply_batch(&cut, run).unwrap();
    }
    let dump = |db: &bwtx::Db| {
        db.snapshot()
            .range::<&[u8], _>(..)
            .map(|kv| kv.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(dump(&whole), dump(&cut));
    assert_eq!(
        read_applied(&cut.snapshot()).unwrap().last_applied,
        Some(log_id(1, 0, 12))
    );
}

/// A batch goes inline only while it is small in transactions and in
/// bytes: a few large transactions go to the blocking pool.
#[test]
fn only_small_batches_apply_inline() {
    let bytes = |c: &[Entry]| c.iter().map(entry_bytes).sum::<usize>();
    let big = "x".repeat(INLINE_APPLY_BYTES / 2);
    let small: Vec<_> = (1..=8).map(|i| txn(i, 0, &[("k", Some("v"))])).collect();
    assert!(apply_inline(&small, bytes(&small)));
    let many: Vec<_> = (1..=INLINE_APPLY as u64 + 1)
        .map(|i| txn(i, 0, &[("k", Some("v"))]))
        .collect();
    assert!(!apply_inline(&many, bytes(&many)));
    let large: Vec<_> = (1..=3).map(|i| txn(i, 0, &[("k", Some(big.as_str()))])).collect();
    assert!(!apply_inline(&large, bytes(&large)));
    assert!(apply_inline(&large[..1], bytes(&large[..1])));
    // A scanned range, however few its bytes, goes to the pool.
    let mut scan = txn(1, 0, &[("k", Some("v"))]);
    if let EntryPayload::Normal(Command::Txn { ranges, .. }) = &mut scan.payload {
        ranges.push(crate::types::KeyRange {
            start: Vec::new(),
            end: None,
        });
    }
    let scans = [small[0].clone(), scan];
    assert!(!apply_inline(&scans, bytes(&scans)));
}
