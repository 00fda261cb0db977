//! Read-through (`design/storage.md` §5.4): point reads of evicted leaves
//! answered from the on-disk chain without a fault-in, against a model.
//!
//! - The admission rule, counted: with read-through forced on, each of the
//!   first 31 reads of an evicted leaf reads through, the 32nd faults it
//!   in, later ones hit the cache; a scan reads through and installs
//!   nothing; with it forced off, the first read faults in.
//! - A model test: a tiny cache and tiny leaves, writes, deletes, values
//!   in the value log, kept snapshots (old versions in images and delta
//!   flushes), evictions, checkpoints (delta flushes), segment cleaning
//!   (which moves chains under their stubs) and restarts. Every kept
//!   snapshot must read its state exactly through point reads and a scan.

mod common;

use std::collections::BTreeMap;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Snapshot};
use common::{fault_opts, DIR};
use proptest::prelude::*;

const KEYS: u8 = 40;

/// Point read-throughs of an evicted leaf before the next point read faults
/// it in (the hand not passing meanwhile): `design/storage.md` §5.4.
const ADMIT: u64 = 31;

type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn open(fs: &FaultFs) -> Db {
    let db = fault_opts(fs)
        .durability(Durability::Sync)
        .cache_size(2 << 10)
        .segment_bytes(8 << 10)
        .value_log_threshold(300)
        .open(DIR)
        .expect("open");
    db.force_read_through(Some(true));
    db
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

/// A value of `len` bytes: small ones stay in the page, the longest go
/// to the value log.
fn value(v: u8, len: usize) -> Vec<u8> {
    vec![v; len]
}

#[test]
fn thirty_one_reads_through_then_a_fault_in() {
    let fs = FaultFs::new();
    // A cache far larger than the data: the evictor never runs, so no turn
    // of the clock's hand lowers a count between the reads.
    let db = fault_opts(&fs)
        .tree_config(bwtx::tree::Config::default())
        .cache_size(1 << 30)
        .open(DIR)
        .unwrap();
    let mut tx = db.begin();
    for k in 0..10u8 {
        tx.put(key(k), value(k, 50)).unwrap();
    }
    tx.commit().unwrap();
    assert!(db.evict_all().unwrap() >= 1);
    db.force_read_through(Some(true));
    let base = db.stats();
    let snap = db.snapshot();
    for n in 1..=ADMIT {
        let k = (n % 10) as u8;
        assert_eq!(snap.get(key(k)).unwrap().as_deref(), Some(&value(k, 50)[..]));
        let s = db.stats();
        assert_eq!(s.read_throughs - base.read_throughs, n, "read {n} reads through");
        assert_eq!(s.cache_misses, base.cache_misses, "read {n} faults nothing in");
    }
    assert_eq!(snap.get(key(4)).unwrap().as_deref(), Some(&value(4, 50)[..]));
    let s = db.stats();
    assert_eq!(
        s.read_throughs - base.read_throughs,
        ADMIT,
        "the 32nd read is not read through"
    );
    assert_eq!(
        s.cache_misses - base.cache_misses,
        1,
        "the 32nd read faults the leaf in"
    );
    for k in 0..10 {
        assert_eq!(snap.get(key(k)).unwrap().as_deref(), Some(&value(k, 50)[..]));
    }
    assert_eq!(db.stats().cache_misses - base.cache_misses, 1, "the rest hit the cache");
    assert_eq!(snap.get(key(99)).unwrap(), None);

    // A scan reads evicted leaves through too, and installs none of them.
    assert!(db.evict_all().unwrap() >= 1);
    let base = db.stats();
    let snap = db.snapshot();
    let all: Vec<_> = snap.range::<&[u8], _>(..).map(|kv| kv.unwrap()).collect();
    assert_eq!(all.len(), 10);
    let s = db.stats();
    assert!(s.read_throughs > base.read_throughs, "the scan read through");
    assert_eq!(s.cache_misses, base.cache_misses, "the scan faulted nothing in");

    // Forced off, the first read faults in.
    db.evict_all().unwrap();
    db.force_read_through(Some(false));
    let base = db.stats();
    assert_eq!(snap.get(key(3)).unwrap().as_deref(), Some(&value(3, 50)[..]));
    let s = db.stats();
    assert_eq!(
        (s.read_throughs, s.cache_misses - base.cache_misses),
        (base.read_throughs, 1)
    );
}

#[derive(Clone, Debug)]
enum Op {
    /// Writes in one transaction: `(key, None)` a delete, else a value byte
    /// and a length class.
    Write(Vec<(u8, Option<(u8, u8)>)>),
    Snap,
    Forget,
    Evict,
    /// Evict every resident leaf, then pack every stub into a cold stub
    /// (`design/storage.md` §5.9): the next use of each leaf unpacks it.
    Pack,
    Checkpoint,
    Clean,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    let write = (0..KEYS, prop::option::weighted(0.85, (any::<u8>(), 0u8..3)));
    prop_oneof![
        8 => prop::collection::vec(write, 1..4).prop_map(Op::Write),
        2 => Just(Op::Snap),
        1 => Just(Op::Forget),
        3 => Just(Op::Evict),
        2 => Just(Op::Pack),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Clean),
        1 => Just(Op::Restart),
    ]
}

struct Harness {
    fs: FaultFs,
    db: Option<Db>,
    state: State,
    snaps: Vec<(Snapshot, State)>,
    /// Read-throughs counted by instances closed so far.
    through: u64,
}

impl Harness {
    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
    }

    fn check(snap: &Snapshot, state: &State, ctx: &str) -> Result<(), TestCaseError> {
        for k in 0..KEYS {
            let got = snap.get(key(k)).unwrap().map(|v| v.to_vec());
            prop_assert_eq!(got.as_ref(), state.get(&key(k)), "{}: get {}", ctx, k);
        }
        let got: Vec<(Vec<u8>, Vec<u8>)> = snap
            .range::<&[u8], _>(..)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(format!("{ctx}: scan: {e}")))?;
        let want: Vec<(Vec<u8>, Vec<u8>)> = state.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        prop_assert_eq!(&got, &want, "{}: scan", ctx);
        Ok(())
    }

    fn step(&mut self, i: usize, op: &Op) -> Result<(), TestCaseError> {
        let ctx = format!("op {i} {op:?}");
        match op {
            Op::Write(writes) => {
                let mut tx = self.db().begin();
                for &(k, v) in writes {
                    match v {
                        Some((v, class)) => {
                            let v = value(v, [1, 200, 400][class as usize]);
                            tx.put(key(k), v.clone()).unwrap();
                            self.state.insert(key(k), v);
                        }
                        None => {
                            tx.delete(key(k)).unwrap();
                            self.state.remove(&key(k));
                        }
                    }
                }
                tx.commit().unwrap();
            }
            Op::Snap => self.snaps.push((self.db().snapshot(), self.state.clone())),
            Op::Forget => {
                if !self.snaps.is_empty() {
                    self.snaps.remove(0);
                }
            }
            Op::Evict => {
                self.db().evict_all().unwrap();
            }
            Op::Pack => {
                self.db().evict_all().unwrap();
                self.db().pack_stubs();
            }
            Op::Checkpoint => {
                self.db().checkpoint().unwrap();
            }
            Op::Clean => {
                self.db().clean_now().unwrap();
            }
            Op::Restart => {
                self.snaps.clear();
                self.through += self.db().stats().read_throughs;
                drop(self.db.take());
                self.db = Some(open(&self.fs));
            }
        }
        Self::check(&self.db().snapshot(), &self.state, &ctx)?;
        for (j, (s, st)) in self.snaps.iter().enumerate() {
            Self::check(s, st, &format!("{ctx}, kept snapshot {j}"))?;
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn read_through_reads_every_snapshot_exactly(ops in prop::collection::vec(op(), 1..40)) {
        let fs = FaultFs::new();
        let db = open(&fs);
        let mut h = Harness { fs, db: Some(db), state: State::new(), snaps: Vec::new(), through: 0 };
        for (i, op) in ops.iter().enumerate() {
            h.step(i, op)?;
        }
        let through = h.through + h.db().stats().read_throughs;
        let evicted = ops.iter().any(|o| matches!(o, Op::Evict | Op::Pack | Op::Restart));
        prop_assert!(!evicted || h.state.is_empty() || through > 0, "no read went through");
    }
}
