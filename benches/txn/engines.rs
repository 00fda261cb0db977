//! The engines under test behind one [`Engine`] trait: bwtx (`Db`),
//! skipdb's `OptimisticDb` and a `Mutex<BTreeMap>`; and [`Subject`], an
//! engine with the tallies the final check needs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

use bwtx::Db;
use bwtx_kit::par::value_of;
use skipdb::optimistic::OptimisticDb;

use crate::table::{fmt_rate, rate};
use crate::workload::Workload;

/// Writes per transaction when loading.
pub(crate) const LOAD_BATCH: usize = 1000;
/// Reads per read-only transaction.
pub(crate) const READS: usize = 10;

pub(crate) trait Engine: Send + Sync {
    const NAME: &'static str;
    fn new() -> Self;
    /// Store `value_of(k)` under every key.
    fn load(&self, keys: &[u64]);
    /// The committed value of `key`, 0 if absent.
    fn value(&self, key: u64) -> u64;
    /// One read-modify-write transaction `v -> v + 1` on `key`, retried until
    /// it commits; the number of attempts that failed with a conflict.
    fn rmw(&self, key: u64) -> u64;
    /// One read-only transaction reading `keys`; a checksum of the values.
    fn ro(&self, keys: &[u64]) -> u64;
    /// Untimed housekeeping after a timed pass.
    fn tidy(&self) {}
}

pub(crate) fn be(v: &[u8]) -> u64 {
    u64::from_be_bytes(v[..8].try_into().expect("8-byte value"))
}

impl Engine for Db {
    const NAME: &'static str = "bwtx";
    fn new() -> Self {
        Db::in_memory()
    }
    fn load(&self, keys: &[u64]) {
        for chunk in keys.chunks(LOAD_BATCH) {
            let mut tx = self.begin();
            for &k in chunk {
                tx.put(k.to_be_bytes(), value_of(k).to_be_bytes()).expect("bwtx put");
            }
            tx.commit().expect("bwtx load commit");
        }
    }
    fn value(&self, key: u64) -> u64 {
        self.snapshot()
            .get(key.to_be_bytes())
            .expect("bwtx get")
            .map_or(0, |v| be(&v))
    }
    fn rmw(&self, key: u64) -> u64 {
        let k = key.to_be_bytes();
        let mut conflicts = 0;
        loop {
            let mut tx = self.begin();
            let v = tx.get(k).expect("bwtx get").map_or(0, |v| be(&v));
            tx.put(k, v.wrapping_add(1).to_be_bytes()).expect("bwtx put");
            match tx.commit() {
                Ok(_) => return conflicts,
                Err(e) if e.is_conflict() => conflicts += 1,
                Err(e) => panic!("bwtx commit: {e}"),
            }
        }
    }
    fn ro(&self, keys: &[u64]) -> u64 {
        let s = self.snapshot();
        keys.iter()
            .map(|k| s.get(k.to_be_bytes()).expect("bwtx get").map_or(0, |v| be(&v)))
            .fold(0, u64::wrapping_add)
    }
}

/// The `raw10` baseline: `keys` read straight from bwtx's tree at `ts`.
pub(crate) fn raw(db: &Db, ts: u64, keys: &[u64]) -> u64 {
    let tree = db.tree();
    keys.iter()
        .map(|k| tree.get(k.to_be_bytes(), ts).expect("tree get").map_or(0, |v| be(&v)))
        .fold(0, u64::wrapping_add)
}

/// skipdb's optimistic (snapshot + first-committer-wins) database; see the
/// module docs for why this variant.
pub(crate) type Skip = OptimisticDb<u64, u64>;

impl Engine for Skip {
    const NAME: &'static str = "skipdb";
    fn new() -> Self {
        OptimisticDb::new()
    }
    fn load(&self, keys: &[u64]) {
        for chunk in keys.chunks(LOAD_BATCH) {
            let mut tx = self.write();
            for &k in chunk {
                tx.insert(k, value_of(k)).expect("skipdb insert");
            }
            tx.commit().expect("skipdb load commit");
        }
    }
    fn value(&self, key: u64) -> u64 {
        self.read().get(&key).map_or(0, |r| *r.value())
    }
    fn rmw(&self, key: u64) -> u64 {
        let mut conflicts = 0;
        loop {
            let mut tx = self.write();
            let v = tx.get(&key).expect("skipdb get").map_or(0, |r| *r.value());
            tx.insert(key, v.wrapping_add(1)).expect("skipdb insert");
            match tx.commit() {
                Ok(()) => return conflicts,
                // skipdb does not re-export its error types (they live in the
                // `txn` crate); every other variant is impossible here or a bug.
                Err(e) if format!("{e:?}") == "Transaction(Conflict)" => conflicts += 1,
                Err(e) => panic!("skipdb commit: {e}"),
            }
        }
    }
    fn ro(&self, keys: &[u64]) -> u64 {
        let r = self.read();
        keys.iter()
            .map(|k| r.get(k).map_or(0, |e| *e.value()))
            .fold(0, u64::wrapping_add)
    }
    fn tidy(&self) {
        self.compact();
    }
}

pub(crate) type Locked = Mutex<BTreeMap<Vec<u8>, Vec<u8>>>;

impl Engine for Locked {
    const NAME: &'static str = "mutex-btree";
    fn new() -> Self {
        Mutex::new(BTreeMap::new())
    }
    fn load(&self, keys: &[u64]) {
        let mut m = self.lock().expect("lock");
        for &k in keys {
            m.insert(k.to_be_bytes().to_vec(), value_of(k).to_be_bytes().to_vec());
        }
    }
    fn value(&self, key: u64) -> u64 {
        self.lock()
            .expect("lock")
            .get(&key.to_be_bytes()[..])
            .map_or(0, |v| be(v))
    }
    fn rmw(&self, key: u64) -> u64 {
        let k = key.to_be_bytes();
        let mut m = self.lock().expect("lock");
        let v = m.get(&k[..]).map_or(0, |v| be(v));
        m.insert(k.to_vec(), v.wrapping_add(1).to_be_bytes().to_vec());
        0
    }
    fn ro(&self, keys: &[u64]) -> u64 {
        let m = self.lock().expect("lock");
        keys.iter()
            .map(|k| m.get(&k.to_be_bytes()[..]).map_or(0, |v| be(v)))
            .fold(0, u64::wrapping_add)
    }
}

/// An engine with the tallies its final check needs.
pub(crate) struct Subject<E> {
    pub(crate) e: E,
    /// Read-modify-write transactions committed (each added 1 to one key).
    pub(crate) committed: AtomicU64,
    /// Attempts that failed with a conflict and were retried.
    pub(crate) conflicts: AtomicU64,
}

impl<E: Engine> Subject<E> {
    pub(crate) fn loaded(w: &Workload) -> Self {
        let e = E::new();
        let start = Instant::now();
        e.load(&w.keys);
        e.tidy();
        let d = start.elapsed();
        if w.keys.len() > 64 {
            let r = fmt_rate(rate(w.keys.len(), d));
            println!("  {:<12} loaded in {:.2}s ({r} keys/s)", E::NAME, d.as_secs_f64());
        }
        Subject {
            e,
            committed: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
        }
    }

    /// Every key's value grew by exactly the increments committed.
    pub(crate) fn check(&self, w: &Workload) {
        let mut grown = 0u64;
        for &k in &w.keys {
            let v = self.e.value(k);
            assert_ne!(v, 0, "{}: key {k:#x} lost", E::NAME);
            grown = grown.wrapping_add(v.wrapping_sub(value_of(k)));
        }
        let committed = self.committed.load(Relaxed);
        assert_eq!(
            grown,
            committed,
            "{}: values grew by {grown}, but {committed} increments committed",
            E::NAME
        );
    }
}
