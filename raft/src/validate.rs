//! Apply-time validation of one replicated transaction: is it well formed,
//! and did an entry applied after its snapshot write what it wrote, read or
//! scanned (`design/replication.md` §3)?
//!
//! Both checks read only the proposal and the state machine's data as the
//! entries before it left it (through the apply's bwtx transaction, so the
//! earlier proposals of the same batch count), so every replica decides
//! alike. The data check rests on the last-written index `L(k)` stored
//! beside every value and kept by tombstones ([`keys::encode_value`]):
//! - a written key `k` conflicts if `L(k) > P` (first committer wins, both
//!   isolation levels);
//! - a read key `k` conflicts if `L(k) > P` (serializable; a key read as
//!   absent and inserted later has `L(k) > P` too);
//! - a scanned range conflicts if any stored key in it, tombstones
//!   included, has `L(k) > P` (serializable: an insert into the range, an
//!   update, and a delete, which left a tombstone, all count).

use std::collections::HashSet;
use std::ops::Bound;

use crate::error::Result;
use crate::keys::{self, DATA_PREFIX, MAX_USER_KEY_LEN, MAX_USER_VALUE_LEN};
use crate::types::{Conflicted, KeyRange, Proposal, Response};

/// Why a proposal at log index `index` cannot be applied, if it cannot:
/// decided from the proposal alone, so every replica agrees.
pub fn malformed(index: u64, p: &Proposal) -> Option<String> {
    if p.snapshot >= index {
        return Some(format!("snapshot position {} is not before entry {index}", p.snapshot));
    }
    let mut seen = HashSet::new();
    for (k, v) in &p.writes {
        if k.len() > MAX_USER_KEY_LEN {
            return Some(format!("key of {} bytes exceeds {MAX_USER_KEY_LEN}", k.len()));
        }
        if v.as_ref().is_some_and(|v| v.len() > MAX_USER_VALUE_LEN) {
            return Some(format!("value exceeds {MAX_USER_VALUE_LEN} bytes"));
        }
        if !seen.insert(k.as_slice()) {
            return Some("a key is written twice".to_string());
        }
    }
    if let Some(k) = p.reads.iter().find(|k| k.len() > MAX_USER_KEY_LEN) {
        return Some(format!("read key of {} bytes exceeds {MAX_USER_KEY_LEN}", k.len()));
    }
    for r in &p.ranges {
        let too_long = r.start.len() > MAX_USER_KEY_LEN || r.end.as_ref().is_some_and(|e| e.len() > MAX_USER_KEY_LEN);
        if too_long {
            return Some(format!("a scanned range's bound exceeds {MAX_USER_KEY_LEN} bytes"));
        }
        if r.end.as_ref().is_some_and(|e| *e <= r.start) {
            return Some("a scanned range is empty or reversed".to_string());
        }
    }
    None
}

/// The first conflict of proposal `p` against the state in `tx`, whose
/// data keys are in keyspace `ks` (the active generation), as a
/// [`Response::Conflict`], or `None` if it may commit. Also pushes onto
/// `tombs`, for each written key in order until the first conflict, the
/// index of the tombstone it replaces, if it has one (the apply drops that
/// tombstone's index key).
pub fn conflict(
    tx: &bwtx::Transaction,
    ks: &bwtx::Keyspace,
    p: &Proposal,
    tombs: &mut Vec<Option<u64>>,
) -> Result<Option<Response>> {
    let found = |key: &[u8], winner: u64, reason: Conflicted| Response::Conflict {
        key: key.to_vec(),
        winner,
        snapshot: p.snapshot,
        reason,
    };
    for (k, _) in &p.writes {
        let last = last_written(tx, ks, k)?;
        if let Some((l, _)) = last.filter(|&(l, _)| l > p.snapshot) {
            return Ok(Some(found(k, l, Conflicted::Write)));
        }
        tombs.push(last.filter(|&(_, tomb)| tomb).map(|(l, _)| l));
    }
    for k in &p.reads {
        if let Some((last, _)) = last_written(tx, ks, k)?.filter(|&(l, _)| l > p.snapshot) {
            return Ok(Some(found(k, last, Conflicted::Read)));
        }
    }
    for r in &p.ranges {
        if let Some((k, last)) = first_written_after(tx, ks, r, p.snapshot)? {
            return Ok(Some(found(&k, last, Conflicted::Range(r.clone()))));
        }
    }
    Ok(None)
}

/// `L(k)`: the index of the last committed entry that wrote user key `k`
/// (a tombstone included), if any did and its tombstone is not collected,
/// and whether that write was a delete.
fn last_written(tx: &bwtx::Transaction, ks: &bwtx::Keyspace, key: &[u8]) -> Result<Option<(u64, bool)>> {
    match tx.get_in(ks, keys::data_key(key))? {
        Some(raw) => {
            let (l, v) = keys::decode_value(&raw)?;
            Ok(Some((l, v.is_none())))
        }
        None => Ok(None),
    }
}

/// The first stored key in `r` (tombstones included) with `L(k) > after`,
/// with that index.
fn first_written_after(
    tx: &bwtx::Transaction,
    ks: &bwtx::Keyspace,
    r: &KeyRange,
    after: u64,
) -> Result<Option<(Vec<u8>, u64)>> {
    let start = keys::data_key(&r.start);
    let end = match &r.end {
        Some(e) => keys::data_key(e),
        None => keys::data_end(),
    };
    for kv in tx.range_in(ks, (Bound::Included(start), Bound::Excluded(end))) {
        let (k, raw) = kv?;
        let (last, _) = keys::decode_value(&raw)?;
        if last > after {
            return Ok(Some((k[DATA_PREFIX.len()..].to_vec(), last)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_machine::apply_batch;
    use crate::types::{log_id, Entry, EntryPayload};

    fn entry(index: u64, p: Proposal) -> Entry {
        Entry {
            log_id: log_id(1, 0, index),
            payload: EntryPayload::Normal(p.into_command()),
        }
    }

    fn write(snapshot: u64, key: &str, value: Option<&str>) -> Proposal {
        Proposal {
            snapshot,
            writes: vec![(key.into(), value.map(Into::into))],
            reads: vec![],
            ranges: vec![],
        }
    }

    fn range(start: &str, end: Option<&str>) -> KeyRange {
        KeyRange {
            start: start.into(),
            end: end.map(Into::into),
        }
    }

    fn conflict(key: &str, winner: u64, snapshot: u64, reason: Conflicted) -> Response {
        Response::Conflict {
            key: key.into(),
            winner,
            snapshot,
            reason,
        }
    }

    #[test]
    fn reads_conflict_with_later_writes_even_of_absent_keys() {
        let db = bwtx::Db::in_memory();
        apply_batch(&db, vec![entry(1, write(0, "a", Some("1")))]).unwrap();
        let reader = |reads: &[&str]| Proposal {
            reads: reads.iter().map(|k| k.as_bytes().to_vec()).collect(),
            ..write(1, "out", Some("x"))
        };
        let r = apply_batch(
            &db,
            vec![
                entry(2, write(1, "b", Some("2"))),
                // Read "a" (written at 1, not after) and "b" (absent at 1,
                // inserted at 2): a read conflict on "b".
                entry(3, reader(&["a", "b"])),
                // Only "a": commits.
                entry(4, reader(&["a"])),
            ],
        )
        .unwrap();
        assert_eq!(r[1], conflict("b", 2, 1, Conflicted::Read));
        assert_eq!(r[2], Response::Committed { index: 4 });
    }

    #[test]
    fn ranges_catch_phantom_inserts_updates_and_deletes_but_not_outside_writes() {
        let db = bwtx::Db::in_memory();
        apply_batch(
            &db,
            vec![
                entry(1, write(0, "r/1", Some("1"))),
                entry(2, write(1, "r/2", Some("2"))),
            ],
        )
        .unwrap();
        // Each scanner writes a key of its own.
        let scanner = |snapshot, r: KeyRange| Proposal {
            ranges: vec![r.clone()],
            ..write(snapshot, &format!("out/{r:?}/{snapshot}"), Some("x"))
        };
        let r = apply_batch(
            &db,
            vec![
                entry(3, write(2, "r/0", Some("new"))), // phantom insert
                entry(4, scanner(2, range("r/", Some("r0")))),
                entry(5, write(4, "r/2", None)), // a delete
                entry(6, scanner(4, range("r/2", None))),
                entry(7, write(6, "s", Some("outside"))),
                entry(8, scanner(6, range("r/", Some("r0")))),
                // Narrowed to "r/0" alone: the delete of "r/2" is outside it.
                entry(9, scanner(4, range("r/", Some("r/0\0")))),
            ],
        )
        .unwrap();
        assert_eq!(r[1], conflict("r/0", 3, 2, Conflicted::Range(range("r/", Some("r0")))));
        assert_eq!(r[3], conflict("r/2", 5, 4, Conflicted::Range(range("r/2", None))));
        assert_eq!(r[5], Response::Committed { index: 8 });
        assert_eq!(r[6], Response::Committed { index: 9 });
    }

    #[test]
    fn write_skew_aborts_the_second_serializable_doctor_only() {
        let db = bwtx::Db::in_memory();
        apply_batch(
            &db,
            vec![
                entry(1, write(0, "alice", Some("on"))),
                entry(2, write(1, "bob", Some("on"))),
            ],
        )
        .unwrap();
        // Both read both doctors at 2 and each takes themself off call.
        let doctor = |me: &str, snapshot, serializable: bool| Proposal {
            reads: if serializable {
                vec![b"alice".to_vec(), b"bob".to_vec()]
            } else {
                vec![]
            },
            ..write(snapshot, me, Some("off"))
        };
        let r = apply_batch(
            &db,
            vec![entry(3, doctor("alice", 2, true)), entry(4, doctor("bob", 2, true))],
        )
        .unwrap();
        assert_eq!(r[0], Response::Committed { index: 3 });
        assert_eq!(r[1], conflict("alice", 3, 2, Conflicted::Read));
        // Under snapshot isolation (no reads carried) both commit.
        let r = apply_batch(
            &db,
            vec![entry(5, doctor("alice", 4, false)), entry(6, doctor("bob", 4, false))],
        )
        .unwrap();
        assert_eq!(r, [Response::Committed { index: 5 }, Response::Committed { index: 6 }]);
    }

    #[test]
    fn bad_reads_and_ranges_are_malformed() {
        let p = |reads: Vec<Vec<u8>>, ranges: Vec<KeyRange>| Proposal {
            snapshot: 0,
            writes: vec![(b"w".to_vec(), None)],
            reads,
            ranges,
        };
        let range = |s: &[u8], e: Option<&[u8]>| KeyRange {
            start: s.to_vec(),
            end: e.map(<[u8]>::to_vec),
        };
        assert_eq!(malformed(1, &p(vec![b"r".to_vec()], vec![range(b"a", None)])), None);
        assert!(malformed(1, &p(vec![vec![0; MAX_USER_KEY_LEN + 1]], vec![])).is_some());
        assert!(malformed(1, &p(vec![], vec![range(b"b", Some(b"a"))])).is_some());
        assert!(malformed(1, &p(vec![], vec![range(b"a", Some(b"a"))])).is_some());
        assert!(malformed(1, &p(vec![], vec![range(&[0; MAX_USER_KEY_LEN + 1], None)])).is_some());
    }
}
