//! Blind writes (`design/storage.md` §3, P4-P6): version deltas posted on
//! an evicted leaf's stub without faulting it in, against a model.
//!
//! A page store with a tiny cache (leaves evicted all the time, and by
//! `Db::evict_all`), single-write transactions (the blind candidates),
//! larger ones, deletes, reads, scans, kept snapshots, checkpoints,
//! segment cleaning (which relocates stubs under their deltas) and
//! restarts with and without a power loss. The reference is a `BTreeMap`
//! per committed state; every kept snapshot must read its state exactly,
//! `len` included (the live-key count of a blind write comes from the
//! stub's key fingerprints). A transaction whose snapshot is older than a
//! newer commit of its key must get `Error::Conflict` (first committer
//! wins), the leaf evicted in between or not.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Error, Options, Snapshot};
use proptest::prelude::*;

const KEYS: u8 = 48;

type State = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Clone, Debug)]
enum Op {
    /// One write in a transaction of its own (`None`: a delete).
    Put(u8, Option<u8>),
    /// Several writes in one transaction.
    Tx(Vec<(u8, Option<u8>)>),
    /// A transaction begins, another commits a write of the same key, the
    /// leaves are evicted if `evict`, then the first writes the key: it
    /// must fail with a conflict.
    Stale {
        key: u8,
        evict: bool,
    },
    /// Take a snapshot and keep it.
    Snap,
    /// Forget the oldest kept snapshot.
    Forget,
    /// Evict every resident leaf.
    Evict,
    /// Evict every resident leaf, then pack every stub into a cold stub
    /// (`design/storage.md` §5.9): the next use of each leaf unpacks it.
    Pack,
    Checkpoint,
    /// Clean the page segments (relocating published images).
    Clean,
    /// Close (or lose power while open) and open again.
    Restart {
        power_loss: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let write = (0..KEYS, prop::option::weighted(0.85, any::<u8>()));
    prop_oneof![
        10 => write.clone().prop_map(|(k, v)| Op::Put(k, v)),
        2 => prop::collection::vec(write, 1..5).prop_map(Op::Tx),
        1 => (0..KEYS, any::<bool>()).prop_map(|(key, evict)| Op::Stale { key, evict }),
        2 => Just(Op::Snap),
        1 => Just(Op::Forget),
        3 => Just(Op::Evict),
        2 => Just(Op::Pack),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Clean),
        1 => any::<bool>().prop_map(|power_loss| Op::Restart { power_loss }),
    ]
}

fn open(fs: &FaultFs) -> Db {
    Options::new()
        .durability(Durability::Sync)
        .gc_interval(None)
        .checkpoint_bytes(0)
        .tree_config(bwtx::tree::Config::tiny())
        .file_system(Arc::new(fs.clone()))
        .cache_size(2 << 10)
        .segment_bytes(4 << 10)
        .open(Path::new("/db"))
        .expect("open")
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

struct Harness {
    fs: FaultFs,
    db: Option<Db>,
    state: State,
    snaps: Vec<(Snapshot, State)>,
    /// Blind writes and reads counted by instances closed so far.
    blind: (u64, u64),
}

impl Harness {
    fn new() -> Harness {
        let fs = FaultFs::new();
        let db = open(&fs);
        Harness {
            fs,
            db: Some(db),
            state: State::new(),
            snaps: Vec::new(),
            blind: (0, 0),
        }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
    }

    /// Blind writes and reads so far, over every instance.
    fn blind(&self) -> (u64, u64) {
        let s = self.db().stats();
        (self.blind.0 + s.blind_writes, self.blind.1 + s.blind_reads)
    }

    fn write(&mut self, writes: &[(u8, Option<u8>)]) {
        let mut tx = self.db().begin();
        for &(k, v) in writes {
            match v {
                Some(v) => {
                    tx.put(key(k), [v]).unwrap();
                    self.state.insert(key(k), vec![v]);
                }
                None => {
                    tx.delete(key(k)).unwrap();
                    self.state.remove(&key(k));
                }
            }
        }
        tx.commit().unwrap();
    }

    /// `snap` reads `state` exactly: point reads, a scan, the count.
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
        prop_assert_eq!(snap.len(), state.len() as u64, "{}: len", ctx);
        Ok(())
    }

    fn step(&mut self, i: usize, op: &Op) -> Result<(), TestCaseError> {
        let ctx = format!("op {i} {op:?}");
        match op {
            Op::Put(k, v) => self.write(&[(*k, *v)]),
            Op::Tx(writes) => self.write(writes),
            Op::Stale { key: k, evict } => {
                let mut tx = self.db().begin();
                self.write(&[(*k, Some(0xee))]);
                if *evict {
                    self.db().evict_all().unwrap();
                }
                tx.put(key(*k), [1]).unwrap();
                let r = tx.commit();
                prop_assert!(matches!(r, Err(Error::Conflict { .. })), "{}: {:?}", ctx, r);
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
            Op::Restart { power_loss } => {
                self.snaps.clear();
                let s = self.db().stats();
                self.blind = (self.blind.0 + s.blind_writes, self.blind.1 + s.blind_reads);
                let db = self.db.take().unwrap();
                if *power_loss {
                    // The process dies with the machine: its next sync and
                    // everything after fail, then the unsynced bytes are gone.
                    self.fs.crash_at_sync(self.fs.syncs());
                }
                drop(db);
                self.fs.power_loss();
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

/// A fixed run through the blind paths: writes over evicted leaves (new
/// keys, overwrites, deletes), reads a delta answers, a checkpoint and an
/// eviction that flush the deltas, a restart; the counters show the blind
/// paths ran and the model holds throughout.
#[test]
fn blind_writes_over_evicted_leaves() {
    let mut h = Harness::new();
    let mut ops: Vec<Op> = (0..KEYS).step_by(2).map(|k| Op::Put(k, Some(k))).collect();
    ops.push(Op::Evict);
    // Overwrites, new keys between the old ones, deletes: over the stubs.
    ops.extend((0..KEYS).step_by(3).map(|k| Op::Put(k, Some(k + 1))));
    ops.extend((0..KEYS).step_by(8).map(|k| Op::Put(k, None)));
    ops.push(Op::Snap);
    ops.push(Op::Evict);
    ops.extend((0..KEYS).step_by(5).map(|k| Op::Put(k, Some(7))));
    ops.push(Op::Checkpoint);
    ops.extend((1..KEYS).step_by(4).map(|k| Op::Put(k, Some(9))));
    ops.push(Op::Stale { key: 3, evict: true });
    ops.push(Op::Clean);
    ops.push(Op::Restart { power_loss: true });
    ops.push(Op::Evict);
    ops.extend((0..KEYS).step_by(6).map(|k| Op::Put(k, Some(11))));
    ops.push(Op::Restart { power_loss: false });
    for (i, op) in ops.iter().enumerate() {
        h.step(i, op).unwrap();
    }
    let (writes, _) = h.blind();
    assert!(writes >= 10, "blind writes: {writes}");
}

/// With a cache that holds everything (leaves evicted only by
/// `Db::evict_all`): a write over an evicted leaf does not read it, a read
/// of the key written is answered by its delta, a read of another key of
/// the leaf faults it in, and a write whose snapshot is older than the
/// leaf's newest version faults it in (and conflicts).
#[test]
fn blind_reads_and_fault_ins() {
    let fs = FaultFs::new();
    let db = Options::new()
        .durability(Durability::Sync)
        .gc_interval(None)
        .tree_config(bwtx::tree::Config::tiny())
        .file_system(Arc::new(fs.clone()))
        .cache_size(16 << 20)
        .open(Path::new("/db"))
        .unwrap();
    let mut tx = db.begin();
    tx.put(key(1), [1]).unwrap();
    tx.put(key(2), [2]).unwrap();
    tx.commit().unwrap();
    assert!(db.evict_all().unwrap() > 0);
    let s0 = db.stats();
    let stale = db.begin();
    let mut tx = db.begin();
    tx.put(key(1), [10]).unwrap();
    tx.commit().unwrap();
    let s1 = db.stats();
    assert_eq!(
        (s1.blind_writes, s1.cache_misses),
        (s0.blind_writes + 1, s0.cache_misses)
    );
    assert_eq!(s1.live_keys, 2, "an overwrite of a live key over a stub");
    let snap = db.snapshot();
    assert_eq!(snap.get(key(1)).unwrap().as_deref(), Some(&[10u8][..]));
    let s2 = db.stats();
    assert_eq!((s2.blind_reads, s2.cache_misses), (s1.blind_reads + 1, s1.cache_misses));
    // The stale snapshot does not see the delta's version: the image answers.
    assert_eq!(stale.get(key(1)).unwrap().as_deref(), Some(&[1u8][..]));
    assert_eq!(db.stats().cache_misses, s2.cache_misses + 1);
    // A write at a snapshot older than the leaf's newest version faults in
    // and loses (first committer wins).
    db.evict_all().unwrap();
    let mut stale = stale;
    let before = db.stats();
    stale.put(key(2), [20]).unwrap();
    // Key 2's newest version is older than the snapshot: no conflict, but
    // the leaf's image is newer (key 1's), so validation faults it in.
    stale.commit().unwrap();
    let after = db.stats();
    assert_eq!(
        (after.blind_writes, after.cache_misses),
        (before.blind_writes, before.cache_misses + 1)
    );
    drop(snap);
    let mut late = db.begin();
    let mut tx = db.begin();
    tx.put(key(3), [3]).unwrap();
    tx.commit().unwrap();
    db.evict_all().unwrap();
    late.put(key(3), [30]).unwrap();
    assert!(matches!(late.commit(), Err(Error::Conflict { .. })));
    let s = db.stats();
    assert_eq!(s.live_keys, 3, "{s:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn blind_writes_match_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut h = Harness::new();
        for (i, op) in ops.iter().enumerate() {
            h.step(i, op)?;
        }
        h.step(ops.len(), &Op::Restart { power_loss: true })?;
    }
}
