//! Keyspaces against a model: three keyspaces ("default", "a", "b") with
//! the same keys in each, transactions spanning them (committed or rolled
//! back, with savepoints), snapshots held open across drops and
//! re-creations, checkpoints and restarts (with a power loss) on `FaultFs`.
//! The reference is a `BTreeMap<(keyspace, key), value>` per committed
//! timestamp; every open snapshot must read its timestamp's state exactly
//! (a dropped keyspace included), and one that begins after a drop must get
//! `KeyspaceNotFound` from the dropped keyspace's handle.
//!
//! The paged variant runs the same model on a page store with a tiny cache
//! (every tree, the catalog's too, evicting), small segments, and two more
//! operations: evict every leaf, and clean the segments (`Db::clean_now`,
//! which relocates pages of every tree and checkpoints).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Error, Keyspace, Options, Snapshot};
use proptest::prelude::*;

const NAMES: [&str; 3] = ["default", "a", "b"];
const KEYS: u8 = 6;

/// The reference: per keyspace slot, the instance live (a counter bumped
/// by every re-creation) and its contents.
type State = [Option<(u32, BTreeMap<Vec<u8>, Vec<u8>>)>; 3];

#[derive(Clone, Debug)]
enum Op {
    /// Writes `(keyspace, key, value or delete)`; a savepoint before the
    /// writes from `rollback_from` on, rolled back to; commit or roll back.
    Tx {
        writes: Vec<(usize, u8, Option<u8>)>,
        rollback_from: Option<usize>,
        commit: bool,
    },
    /// Take a snapshot and keep it.
    Snap,
    /// Forget the oldest kept snapshot.
    Forget,
    /// Drop keyspace 1 or 2; with `writer`, a transaction that began
    /// before the drop and wrote to it commits after it (and must fail).
    Drop {
        ks: usize,
        writer: bool,
    },
    /// Open (or create) keyspace 1 or 2.
    Create(usize),
    Checkpoint,
    /// Close (or lose power while open) and open again.
    Restart {
        power_loss: bool,
    },
    /// Evict every resident leaf of every tree (paged: faults them in again).
    Evict,
    /// Clean the page segments to the end (`Db::clean_now`).
    Clean,
}

fn op() -> impl Strategy<Value = Op> {
    let write = (0..3usize, 0..KEYS, prop::option::weighted(0.8, any::<u8>()));
    prop_oneof![
        6 => (prop::collection::vec(write, 1..6), prop::option::of(0..6usize), prop::bool::weighted(0.85))
            .prop_map(|(writes, rollback_from, commit)| Op::Tx { writes, rollback_from, commit }),
        2 => Just(Op::Snap),
        1 => Just(Op::Forget),
        1 => (1..3usize, any::<bool>()).prop_map(|(ks, writer)| Op::Drop { ks, writer }),
        2 => (1..3usize).prop_map(Op::Create),
        1 => Just(Op::Checkpoint),
        1 => any::<bool>().prop_map(|power_loss| Op::Restart { power_loss }),
        1 => Just(Op::Evict),
        1 => Just(Op::Clean),
    ]
}

struct Harness {
    fs: FaultFs,
    /// With a page store and a tiny cache.
    paged: bool,
    db: Option<Db>,
    /// Handles of the live instances.
    handles: [Option<Keyspace>; 3],
    state: State,
    next_instance: u32,
    /// Kept snapshots: the snapshot, the handles then, the state then.
    snaps: Vec<(Snapshot, [Option<Keyspace>; 3], State)>,
    /// Handles of dropped instances (and the state they were dropped in).
    dead: Vec<Keyspace>,
}

fn open(fs: &FaultFs, paged: bool) -> Db {
    let mut o = Options::new()
        .durability(Durability::Sync)
        .gc_interval(None)
        .checkpoint_bytes(0)
        .tree_config(bwtx::tree::Config::tiny())
        .file_system(Arc::new(fs.clone()));
    if paged {
        o = o.cache_size(2 << 10).segment_bytes(4 << 10);
    }
    o.open(Path::new("/db")).expect("open")
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

impl Harness {
    fn new(paged: bool) -> Harness {
        let fs = FaultFs::new();
        let db = open(&fs, paged);
        let default = db.keyspace("default").unwrap();
        Harness {
            fs,
            paged,
            db: Some(db),
            handles: [Some(default), None, None],
            state: [Some((0, BTreeMap::new())), None, None],
            next_instance: 1,
            snaps: Vec::new(),
            dead: Vec::new(),
        }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
    }

    /// Every live keyspace of `snap` reads `state` exactly.
    fn check(snap: &Snapshot, handles: &[Option<Keyspace>; 3], state: &State, ctx: &str) -> Result<(), TestCaseError> {
        for i in 0..3 {
            let (Some(h), Some((_, want))) = (&handles[i], &state[i]) else {
                continue;
            };
            let got: Vec<(Vec<u8>, Vec<u8>)> = snap
                .range_in::<&[u8], _>(h, ..)
                .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<Result<_, _>>()
                .map_err(|e| TestCaseError::fail(format!("{ctx}: scan of {}: {e}", NAMES[i])))?;
            let want_v: Vec<(Vec<u8>, Vec<u8>)> = want.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(&got, &want_v, "{}: contents of {}", ctx, NAMES[i]);
            prop_assert_eq!(
                snap.len_in(h).unwrap(),
                want.len() as u64,
                "{}: len of {}",
                ctx,
                NAMES[i]
            );
            for k in 0..KEYS {
                let got = snap.get_in(h, key(k)).unwrap().map(|v| v.to_vec());
                prop_assert_eq!(got.as_ref(), want.get(&key(k)), "{}: get in {}", ctx, NAMES[i]);
            }
        }
        Ok(())
    }

    fn check_now(&self, ctx: &str) -> Result<(), TestCaseError> {
        let snap = self.db().snapshot();
        Self::check(&snap, &self.handles, &self.state, ctx)?;
        let mut names: Vec<String> = (0..3)
            .filter(|&i| self.state[i].is_some())
            .map(|i| NAMES[i].to_string())
            .collect();
        names.sort();
        prop_assert_eq!(self.db().keyspaces().unwrap(), names, "{}: keyspaces()", ctx);
        for d in &self.dead {
            prop_assert!(
                matches!(snap.get_in(d, key(0)), Err(Error::KeyspaceNotFound { .. })),
                "{}: a dropped handle read in a later snapshot",
                ctx
            );
        }
        for (i, (s, h, st)) in self.snaps.iter().enumerate() {
            Self::check(s, h, st, &format!("{ctx}, kept snapshot {i}"))?;
        }
        Ok(())
    }

    fn step(&mut self, i: usize, op: &Op) -> Result<(), TestCaseError> {
        let ctx = format!("op {i} {op:?}");
        match op {
            Op::Tx {
                writes,
                rollback_from,
                commit,
            } => {
                let mut tx = self.db().begin();
                let mut next = self.state.clone();
                let mut undo = None;
                for (j, &(ks, k, v)) in writes.iter().enumerate() {
                    if *rollback_from == Some(j) {
                        undo = Some((tx.savepoint(), next.clone()));
                    }
                    let Some(h) = &self.handles[ks] else { continue };
                    let m = &mut next[ks].as_mut().unwrap().1;
                    match v {
                        Some(v) => {
                            tx.put_in(h, key(k), [v]).unwrap();
                            m.insert(key(k), vec![v]);
                        }
                        None => {
                            tx.delete_in(h, key(k)).unwrap();
                            m.remove(&key(k));
                        }
                    }
                    // Reads see the transaction's own writes.
                    let got = tx.get_in(h, key(k)).unwrap().map(|v| v.to_vec());
                    prop_assert_eq!(got.as_ref(), m.get(&key(k)), "{}: read own write", ctx);
                    prop_assert_eq!(tx.len_in(h).unwrap(), m.len() as u64, "{}: tx len_in", ctx);
                }
                if let Some((sp, before)) = undo {
                    tx.rollback_to(&sp).unwrap();
                    next = before;
                }
                if *commit {
                    tx.commit()
                        .map_err(|e| TestCaseError::fail(format!("{ctx}: commit: {e}")))?;
                    self.state = next;
                } else {
                    tx.rollback();
                }
            }
            Op::Snap => {
                let s = self.db().snapshot();
                self.snaps.push((s, self.handles.clone(), self.state.clone()));
            }
            Op::Forget => {
                if !self.snaps.is_empty() {
                    self.snaps.remove(0);
                }
            }
            Op::Drop { ks, writer } => {
                let name = NAMES[*ks];
                let mut tx = self.db().begin();
                let wrote = *writer && self.handles[*ks].is_some();
                if let (Some(h), true) = (&self.handles[*ks], *writer) {
                    tx.put_in(h, key(0), b"late").unwrap();
                }
                let r = self.db().drop_keyspace(name);
                match self.handles[*ks].take() {
                    Some(h) => {
                        prop_assert!(r.is_ok(), "{}: drop: {:?}", ctx, r);
                        self.state[*ks] = None;
                        self.dead.push(h);
                    }
                    None => prop_assert!(
                        matches!(&r, Err(Error::KeyspaceNotFound { name: n }) if n == name),
                        "{}: drop of a missing keyspace: {:?}",
                        ctx,
                        r
                    ),
                }
                let c = tx.commit();
                if wrote {
                    prop_assert!(
                        matches!(c, Err(Error::KeyspaceNotFound { .. })),
                        "{}: a commit into a dropped keyspace: {:?}",
                        ctx,
                        c
                    );
                }
            }
            Op::Create(ks) => {
                let h = self.db().keyspace(NAMES[*ks]).unwrap();
                prop_assert_eq!(h.name(), NAMES[*ks]);
                if self.state[*ks].is_none() {
                    self.state[*ks] = Some((self.next_instance, BTreeMap::new()));
                    self.next_instance += 1;
                }
                self.handles[*ks] = Some(h);
            }
            Op::Checkpoint => {
                self.db().checkpoint().unwrap();
            }
            Op::Evict => {
                let n = self.db().evict_all().unwrap();
                if !self.paged {
                    prop_assert_eq!(n, 0, "{}: evicted without a page store", ctx);
                }
            }
            Op::Clean => {
                self.db().clean_now().unwrap();
            }
            Op::Restart { power_loss } => {
                self.snaps.clear();
                self.dead.clear();
                self.handles = [None, None, None];
                let db = self.db.take().unwrap();
                if *power_loss {
                    // The process dies with the machine: its next sync
                    // and everything after fail (the close's checkpoint
                    // too), then the unsynced bytes are gone.
                    self.fs.crash_at_sync(self.fs.syncs());
                    drop(db);
                    self.fs.power_loss();
                } else {
                    drop(db);
                    self.fs.power_loss();
                }
                let db = open(&self.fs, self.paged);
                for (i, name) in NAMES.iter().enumerate() {
                    if self.state[i].is_some() {
                        self.handles[i] = Some(db.keyspace(name).unwrap());
                    }
                }
                self.db = Some(db);
            }
        }
        self.check_now(&ctx)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn keyspaces_match_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let mut h = Harness::new(false);
        for (i, op) in ops.iter().enumerate() {
            h.step(i, op)?;
        }
        h.step(ops.len(), &Op::Restart { power_loss: true })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The same model on a page store: every tree evicts under the tiny
    /// cache, checkpoints list every tree, cleaning relocates their pages.
    #[test]
    fn paged_keyspaces_match_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let mut h = Harness::new(true);
        for (i, op) in ops.iter().enumerate() {
            h.step(i, op)?;
        }
        h.step(ops.len(), &Op::Restart { power_loss: true })?;
    }
}
