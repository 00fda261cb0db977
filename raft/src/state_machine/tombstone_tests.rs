//! Tombstone collection: a tombstone goes once the floor passes it, a
//! proposal below the floor is refused, collection never changes a
//! decision, and the state at every applied position is the same however
//! the entries were batched (`design/replication.md` §3, "Tombstone
//! collection").

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::types::{log_id, Conflicted, KeyRange};

fn entry(index: u64, cmd: Command) -> Entry {
    Entry {
        log_id: log_id(1, 0, index),
        payload: EntryPayload::Normal(cmd),
    }
}

fn write(snapshot: u64, key: &str, value: Option<&str>) -> Command {
    Command::Txn {
        snapshot,
        writes: vec![(key.into(), value.map(Into::into))],
        reads: vec![],
        ranges: vec![],
    }
}

/// Every key of the default keyspace with its value (data, tombstone
/// index, applied state).
fn raw(db: &bwtx::Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.snapshot()
        .range::<&[u8], _>(..)
        .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect()
}

fn has(db: &bwtx::Db, key: &[u8]) -> bool {
    db.snapshot().get(key).unwrap().is_some()
}

#[test]
fn a_tombstone_goes_once_the_floor_passes_it_and_older_snapshots_are_refused() {
    let db = bwtx::Db::in_memory();
    let r = apply_batch(
        &db,
        vec![
            entry(1, Command::SetTombstoneHorizon { entries: 3 }),
            entry(2, write(1, "k", Some("v"))),
            entry(3, write(2, "k", None)),
            entry(4, write(3, "x", Some("1"))),
            entry(5, write(4, "x", Some("2"))),
        ],
    )
    .unwrap();
    assert_eq!(r[0], Response::Committed { index: 1 });
    // After entry 5 the floor is 2: the tombstone written at 3 stays, with
    // its index key.
    assert!(has(&db, &keys::data_key(b"k")));
    assert!(has(&db, &keys::tomb_key(3, b"k").unwrap()));
    assert_eq!(read_applied(&db.snapshot()).unwrap().floor(), 2);

    // A snapshot at 2 missed the delete at 3: still a conflict.
    let r = apply_batch(&db, vec![entry(6, write(2, "k", Some("late")))]).unwrap();
    let conflict = Response::Conflict {
        key: b"k".to_vec(),
        winner: 3,
        snapshot: 2,
        reason: Conflicted::Write,
    };
    assert_eq!(r, [conflict]);
    // Entry 6 raised the floor to 3: the tombstone and its index key went.
    assert!(!has(&db, &keys::data_key(b"k")), "the tombstone is collected");
    assert!(!has(&db, &keys::tomb_key(3, b"k").unwrap()), "its index key too");

    // The same proposal now: below the floor, refused as too old (with the
    // tombstone gone it would otherwise have committed over the delete).
    let r = apply_batch(&db, vec![entry(7, write(2, "k", Some("late")))]).unwrap();
    assert_eq!(r, [Response::TooOld { snapshot: 2, oldest: 3 }]);
    assert!(!has(&db, &keys::data_key(b"k")), "a refused proposal writes nothing");
    // At the floor it commits: nothing after 3 wrote k.
    let r = apply_batch(&db, vec![entry(8, write(4, "k", Some("again")))]).unwrap();
    assert_eq!(r, [Response::Committed { index: 8 }]);
    // A horizon of 0 is rejected and changes nothing.
    let r = apply_batch(&db, vec![entry(9, Command::SetTombstoneHorizon { entries: 0 })]).unwrap();
    assert!(matches!(r[0], Response::Rejected { .. }));
    assert_eq!(read_applied(&db.snapshot()).unwrap().horizon(), 3);
}

#[test]
fn a_key_deleted_again_or_rewritten_keeps_one_index_key_or_none() {
    let db = bwtx::Db::in_memory();
    apply_batch(
        &db,
        vec![
            entry(1, write(0, "k", None)),
            entry(2, write(1, "k", None)),
            entry(3, write(2, "j", None)),
            entry(4, write(3, "j", Some("back"))),
        ],
    )
    .unwrap();
    let index_keys: Vec<_> = raw(&db)
        .into_iter()
        .filter(|(k, _)| k.starts_with(keys::TOMB_PREFIX))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(index_keys, [keys::tomb_key(2, b"k").unwrap()]);
}

#[test]
fn an_index_key_without_its_tombstone_is_corruption() {
    let db = bwtx::Db::in_memory();
    apply_batch(
        &db,
        vec![
            entry(1, Command::SetTombstoneHorizon { entries: 1 }),
            entry(2, write(1, "k", None)),
        ],
    )
    .unwrap();
    // Damage: the tombstone is overwritten behind the index's back.
    let mut tx = db.begin();
    tx.put(keys::data_key(b"k"), keys::encode_value(2, Some(b"v"))).unwrap();
    tx.commit().unwrap();
    let err = apply_batch(&db, vec![entry(3, write(2, "x", Some("1")))]).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
}

#[test]
fn a_key_too_long_to_index_is_deleted_and_its_tombstone_stays() {
    let db = bwtx::Db::in_memory();
    let long = "k".repeat(keys::MAX_USER_KEY_LEN);
    let indexed = "j".repeat(keys::MAX_INDEXED_KEY_LEN);
    let r = apply_batch(
        &db,
        vec![
            entry(1, Command::SetTombstoneHorizon { entries: 2 }),
            entry(2, write(1, &long, Some("v"))),
            entry(3, write(2, &long, None)),
            entry(4, write(3, &indexed, None)),
            entry(5, write(4, &long, None)),
            entry(6, write(5, "x", Some("1"))),
            entry(7, write(6, "x", Some("2"))),
        ],
    )
    .unwrap();
    assert!(r.iter().all(|r| matches!(r, Response::Committed { .. })), "{r:?}");
    // The floor is 5: the indexed key's tombstone (4) went, the long one's
    // (5, replacing the one at 3) stays, with no index key.
    assert!(!has(&db, &keys::data_key(indexed.as_bytes())));
    assert!(has(&db, &keys::data_key(long.as_bytes())));
    assert!(raw(&db).iter().all(|(k, _)| !k.starts_with(keys::TOMB_PREFIX)));
}

/// A proposal as the generator makes it: snapshot `back` entries before its
/// entry, writes, reads and one range over keys `a`..`e`.
#[derive(Clone, Debug)]
struct Gen {
    back: u64,
    writes: Vec<(u8, Option<u8>)>,
    reads: Vec<u8>,
    range: Option<(u8, u8)>,
}

#[derive(Clone, Debug)]
enum Op {
    Txns(Vec<Gen>),
    Horizon(u64),
}

fn key(k: u8) -> Vec<u8> {
    vec![b'a' + k]
}

fn proposal(index: u64, g: &Gen) -> Proposal {
    let mut writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for (k, v) in &g.writes {
        writes.insert(key(*k), v.map(|v| vec![v]));
    }
    Proposal {
        snapshot: index.saturating_sub(g.back),
        writes: writes.into_iter().collect(),
        reads: g.reads.iter().map(|k| key(*k)).collect(),
        ranges: g
            .range
            .map(|(s, len)| KeyRange {
                start: key(s),
                end: Some(key(s + len + 1)),
            })
            .into_iter()
            .collect(),
    }
}

/// The rules without collection: every tombstone stays; a proposal below
/// the floor is too old.
#[derive(Default)]
struct Model {
    horizon: Option<u64>,
    floor: u64,
    data: BTreeMap<Vec<u8>, (u64, Option<Vec<u8>>)>,
}

impl Model {
    fn decide(&mut self, index: u64, p: &Proposal) -> Response {
        if p.snapshot < self.floor {
            return Response::TooOld {
                snapshot: p.snapshot,
                oldest: self.floor,
            };
        }
        let later = |k: &[u8]| self.data.get(k).map(|d| d.0).filter(|&l| l > p.snapshot);
        let conflict = |key: &[u8], winner, reason| Response::Conflict {
            key: key.to_vec(),
            winner,
            snapshot: p.snapshot,
            reason,
        };
        for (k, _) in &p.writes {
            if let Some(l) = later(k) {
                return conflict(k, l, Conflicted::Write);
            }
        }
        for k in &p.reads {
            if let Some(l) = later(k) {
                return conflict(k, l, Conflicted::Read);
            }
        }
        for r in &p.ranges {
            if let Some((k, (l, _))) = self.data.iter().find(|(k, (l, _))| r.contains(k) && *l > p.snapshot) {
                return conflict(k, *l, Conflicted::Range(r.clone()));
            }
        }
        for (k, v) in &p.writes {
            self.data.insert(k.clone(), (index, v.clone()));
        }
        Response::Committed { index }
    }

    fn apply(&mut self, index: u64, cmd: &Command) -> Response {
        let r = match cmd {
            Command::Batch { txns } => Response::Batch {
                outcomes: txns.iter().map(|p| self.decide(index, p)).collect(),
            },
            Command::SetTombstoneHorizon { entries } => {
                self.horizon = Some(*entries);
                Response::Committed { index }
            }
            Command::Txn { .. } => unreachable!("the generator makes batches"),
        };
        let horizon = self.horizon.unwrap_or(keys::DEFAULT_TOMBSTONE_HORIZON);
        self.floor = self.floor.max(index.saturating_sub(horizon));
        r
    }
}

fn gen() -> impl Strategy<Value = Gen> {
    (
        1..8u64,
        prop::collection::vec((0..5u8, prop::option::weighted(0.6, 0..9u8)), 1..3),
        prop::collection::vec(0..5u8, 0..2),
        prop::option::weighted(0.3, (0..4u8, 0..2u8)),
    )
        .prop_map(|(back, writes, reads, range)| Gen {
            back,
            writes,
            reads,
            range,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        9 => prop::collection::vec(gen(), 1..4).prop_map(Op::Txns),
        1 => (1..7u64).prop_map(Op::Horizon),
    ]
}

/// The entries of `ops` (at indexes from 1), the model after them, and its
/// decision for each.
fn history(ops: &[Op]) -> (Model, Vec<Entry>, Vec<Response>) {
    let mut model = Model::default();
    let mut entries = Vec::new();
    let mut expected = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let index = i as u64 + 1;
        let cmd = match op {
            Op::Txns(gs) => Command::Batch {
                txns: gs.iter().map(|g| proposal(index, g)).collect(),
            },
            Op::Horizon(h) => Command::SetTombstoneHorizon { entries: *h },
        };
        expected.push(model.apply(index, &cmd));
        entries.push(entry(index, cmd));
    }
    (model, entries, expected)
}

/// Apply `entries` to `db` in batches of the sizes `cuts` gives in turn.
fn apply_cut(db: &bwtx::Db, entries: &[Entry], cuts: &[usize]) -> Vec<Response> {
    apply_cut_collecting(db, entries, cuts, COLLECT)
}

/// [`apply_cut`] with collection bounds `collect`.
fn apply_cut_collecting(db: &bwtx::Db, entries: &[Entry], cuts: &[usize], collect: Collect) -> Vec<Response> {
    let ks = db.keyspace("default").unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    for c in cuts.iter().cycle() {
        if at >= entries.len() {
            break;
        }
        let end = (at + c).min(entries.len());
        out.extend(apply_collecting(db, &ks, entries[at..end].to_vec(), collect).unwrap());
        at = end;
    }
    out
}

/// Two replicas whose states were written before tombstone collection (no
/// floor) and upgraded at different positions decide the same entry alike:
/// the floor is read as the applied index implies. (Before 2026-12-07 the
/// replica upgraded later read floor 0 for one entry and committed a
/// proposal the other refused as too old.)
#[test]
fn replicas_upgraded_at_different_positions_decide_alike() {
    let old_state = |index| {
        let db = bwtx::Db::in_memory();
        let state = AppliedState {
            last_applied: Some(log_id(1, 0, index)),
            ..AppliedState::default()
        };
        let json = keys::to_json(&state);
        assert!(!String::from_utf8_lossy(&json).contains("floor"), "the old layout");
        db.transaction(|tx| tx.put(keys::APPLIED, &json)).unwrap();
        db
    };
    let (a, b) = (old_state(2_000_000), old_state(1_999_990));
    let blanks = (1_999_991..=2_000_000).map(|i| Entry {
        log_id: log_id(1, 0, i),
        payload: EntryPayload::Blank,
    });
    apply_batch(&b, blanks.collect()).unwrap();
    let next = || vec![entry(2_000_001, write(0, "k", Some("v")))];
    let (ra, rb) = (apply_batch(&a, next()).unwrap(), apply_batch(&b, next()).unwrap());
    assert_eq!(ra, rb);
    assert_eq!(
        ra,
        [Response::TooOld {
            snapshot: 0,
            oldest: 1_000_000
        }]
    );
}

/// A horizon lowered over many tombstones collects them a bounded number
/// per entry, oldest first, over the entries after it; the commits of one
/// apply end early once they deleted enough (before 2026-12-07 all went in
/// one commit, which past bwtx's 2 GiB limit no replica could apply).
#[test]
fn a_lowered_horizon_collects_a_bounded_number_per_entry() {
    let db = bwtx::Db::in_memory();
    let ks = db.keyspace("default").unwrap();
    let collect = Collect {
        per_entry: 2,
        per_commit: 3,
    };
    let mut entries: Vec<Entry> = (1..=10)
        .map(|i| entry(i, write(i - 1, &format!("k{i}"), None)))
        .collect();
    entries.push(entry(11, Command::SetTombstoneHorizon { entries: 1 }));
    apply_collecting(&db, &ks, entries, collect).unwrap();
    let tombs = |db: &bwtx::Db| {
        (1..=10u64)
            .filter(|&i| has(db, &keys::tomb_key(i, format!("k{i}").as_bytes()).unwrap()))
            .count()
    };
    // Entries 1-10 each raised the floor by nothing (the default horizon);
    // entry 11 raised it to 10 and collected the two oldest.
    assert_eq!(read_applied(&db.snapshot()).unwrap().floor(), 10);
    assert_eq!(tombs(&db), 8);
    assert!(!has(&db, &keys::data_key(b"k1")) && !has(&db, &keys::data_key(b"k2")));
    assert!(has(&db, &keys::data_key(b"k3")));
    let commits = db.stats().commits;
    let blanks = (12..=15).map(|i| Entry {
        log_id: log_id(1, 0, i),
        payload: EntryPayload::Blank,
    });
    apply_collecting(&db, &ks, blanks.collect(), collect).unwrap();
    assert_eq!(tombs(&db), 0, "two more per entry");
    // 2 deleted after entry 12, 4 after 13: past 3, the commit ends; then
    // 14 and 15 in the last one.
    assert_eq!(db.stats().commits - commits, 2);
    assert_eq!(read_applied(&db.snapshot()).unwrap().index(), 15);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// With collection bounded to 1 or 2 a entry (and commits ending after
    /// 1 to 3 deleted), every decision is still the model's, two replicas
    /// that batched the same entries differently hold the same bytes, and
    /// what is stored is the model's above the floor plus some tombstones
    /// at or below it, each with its index key.
    #[test]
    fn bounded_collection_changes_no_decision_and_no_replica_differs(
        ops in prop::collection::vec(op(), 1..60),
        cuts_a in prop::collection::vec(1..6usize, 1..5),
        cuts_b in prop::collection::vec(1..6usize, 1..5),
        per_entry in 1..3usize,
        per_commit in 1..4usize,
    ) {
        let collect = Collect { per_entry, per_commit };
        let (model, entries, expected) = history(&ops);
        let (a, b) = (bwtx::Db::in_memory(), bwtx::Db::in_memory());
        prop_assert_eq!(&apply_cut_collecting(&a, &entries, &cuts_a, collect), &expected);
        prop_assert_eq!(&apply_cut_collecting(&b, &entries, &cuts_b, collect), &expected);
        prop_assert_eq!(raw(&a), raw(&b));
        let floor = model.floor;
        let mut want = Vec::new();
        let mut may = Vec::new();
        for (k, (l, v)) in &model.data {
            let pair = [
                (keys::data_key(k), keys::encode_value(*l, v.as_deref())),
                (keys::tomb_key(*l, k).unwrap(), vec![]),
            ];
            match v {
                None if *l <= floor => may.push(pair),
                None => want.extend(pair),
                Some(_) => want.push(pair[0].clone()),
            }
        }
        let got: Vec<_> = raw(&a).into_iter().filter(|(k, _)| k.as_slice() != keys::APPLIED).collect();
        let mut rest: Vec<_> = got.iter().filter(|kv| !want.contains(kv)).cloned().collect();
        prop_assert!(want.iter().all(|kv| got.contains(kv)), "a key of the model is missing");
        // The rest: whole collectable tombstones (data and index key).
        for pair in may {
            if rest.contains(&pair[0]) || rest.contains(&pair[1]) {
                prop_assert!(rest.contains(&pair[0]) && rest.contains(&pair[1]), "half a tombstone: {:?}", pair);
                rest.retain(|kv| !pair.contains(kv));
            }
        }
        prop_assert!(rest.is_empty(), "not the model's: {:?}", rest);
    }

    /// Every decision is the model's (which never collects), so collection
    /// changes none; the stored tombstones are the model's above the floor,
    /// each with its index key; and two replicas that batched the same
    /// entries differently hold the same bytes.
    #[test]
    fn collection_changes_no_decision_and_no_replica_differs(
        ops in prop::collection::vec(op(), 1..60),
        cuts_a in prop::collection::vec(1..6usize, 1..5),
        cuts_b in prop::collection::vec(1..6usize, 1..5),
    ) {
        let (model, entries, expected) = history(&ops);
        let (a, b) = (bwtx::Db::in_memory(), bwtx::Db::in_memory());
        prop_assert_eq!(&apply_cut(&a, &entries, &cuts_a), &expected);
        prop_assert_eq!(&apply_cut(&b, &entries, &cuts_b), &expected);
        prop_assert_eq!(raw(&a), raw(&b));

        let floor = model.floor;
        prop_assert_eq!(read_applied(&a.snapshot()).unwrap().floor(), floor);
        let mut want = Vec::new();
        for (k, (l, v)) in &model.data {
            if v.is_none() && *l <= floor {
                continue; // collected
            }
            want.push((keys::data_key(k), keys::encode_value(*l, v.as_deref())));
            if v.is_none() {
                want.push((keys::tomb_key(*l, k).unwrap(), vec![]));
            }
        }
        want.sort();
        let got: Vec<_> = raw(&a).into_iter().filter(|(k, _)| k.as_slice() != keys::APPLIED).collect();
        prop_assert_eq!(got, want);
    }
}
