//! Concurrent ordered maps as `--compare` peers for the index workloads
//! (YCSB A–F): crossbeam-skiplist's `SkipMap` and scc's `TreeIndex` (and
//! Bf-Tree, in `bftree.rs`, through the same [`Index`] trait).
//!
//! They have no transactions: each operation runs on its own, a
//! read-modify-write is a read then a write that another thread may
//! interleave, and nothing is ever aborted. They show what the plain index
//! costs without snapshots, versions or validation; `bank` skips them.

use std::ops::Bound;

use crossbeam_skiplist::SkipMap;
use scc::TreeIndex;

use crate::bench::{key, rmw_value, Engine, Op, Outcome};

/// The operations of an index without transactions.
pub(super) trait Index: Sync {
    fn get_len(&self, k: &[u8]) -> Option<usize>;
    fn get_vec(&self, k: &[u8]) -> Option<Vec<u8>>;
    /// Insert or overwrite; `Err` if the index refuses the record.
    fn put(&self, k: Vec<u8>, v: Vec<u8>) -> Result<(), String>;
    /// Read up to `len` entries from `k` on; returns how many were read.
    fn scan(&self, k: &[u8], len: usize) -> usize;
}

/// An [`Index`] run as an [`Engine`], one operation at a time.
pub(super) struct Plain<I> {
    pub(super) name: &'static str,
    pub(super) settings: String,
    pub(super) index: I,
}

impl<I: Index> Engine for Plain<I> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn settings(&self) -> String {
        self.settings.clone()
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        for (i, v) in batch {
            self.index.put(key(*i).into_bytes(), v.clone())?;
        }
        Ok(())
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        for op in ops {
            match *op {
                Op::Read(i) => {
                    std::hint::black_box(self.index.get_len(key(i).as_bytes()));
                }
                Op::Update(i) | Op::Insert(i) => self.index.put(key(i).into_bytes(), value.to_vec())?,
                Op::Scan(i, len) => {
                    std::hint::black_box(self.index.scan(key(i).as_bytes(), len as usize));
                }
                Op::Rmw(i) => {
                    let k = key(i).into_bytes();
                    let v = rmw_value(self.index.get_vec(&k).as_deref(), value);
                    self.index.put(k, v)?;
                }
                Op::Transfer(..) => return Err(format!("{} has no transactions for bank transfers", self.name)),
            }
        }
        Ok(Outcome::Committed)
    }
    fn bank_total(&self, _n: u64) -> Result<u64, String> {
        Err(format!("{} has no transactions for bank transfers", self.name))
    }
}

impl Index for SkipMap<Vec<u8>, Vec<u8>> {
    fn get_len(&self, k: &[u8]) -> Option<usize> {
        self.get(k).map(|e| e.value().len())
    }
    fn get_vec(&self, k: &[u8]) -> Option<Vec<u8>> {
        self.get(k).map(|e| e.value().clone())
    }
    fn put(&self, k: Vec<u8>, v: Vec<u8>) -> Result<(), String> {
        self.insert(k, v);
        Ok(())
    }
    fn scan(&self, k: &[u8], len: usize) -> usize {
        let range = (Bound::Included(k), Bound::Unbounded);
        let mut n = 0;
        for e in self.range::<[u8], _>(range).take(len) {
            std::hint::black_box(e.value().len());
            n += 1;
        }
        n
    }
}

impl Index for TreeIndex<Vec<u8>, Vec<u8>> {
    fn get_len(&self, k: &[u8]) -> Option<usize> {
        self.peek_with(k, |_, v| v.len())
    }
    fn get_vec(&self, k: &[u8]) -> Option<Vec<u8>> {
        self.peek_with(k, |_, v| v.clone())
    }
    fn put(&self, k: Vec<u8>, v: Vec<u8>) -> Result<(), String> {
        self.upsert_sync(k, v);
        Ok(())
    }
    fn scan(&self, k: &[u8], len: usize) -> usize {
        let guard = scc::Guard::new();
        let range = (Bound::Included(k), Bound::Unbounded);
        let mut n = 0;
        for (_, v) in self.range::<[u8], _>(range, &guard).take(len) {
            std::hint::black_box(v.len());
            n += 1;
        }
        n
    }
}

/// An empty `crossbeam_skiplist::SkipMap`.
pub fn skiplist() -> Box<dyn Engine> {
    Box::new(Plain {
        name: "crossbeam-skiplist",
        settings: "crossbeam-skiplist 0.1 SkipMap<Vec<u8>, Vec<u8>>: in memory, no transactions (each operation on \
                   its own, read-modify-write not atomic)"
            .to_owned(),
        index: SkipMap::new(),
    })
}

/// An empty `scc::TreeIndex`.
pub fn scc() -> Box<dyn Engine> {
    Box::new(Plain {
        name: "scc",
        settings: "scc 3 TreeIndex<Vec<u8>, Vec<u8>>: in memory, no transactions (each operation on its own, \
                   upsert_sync for writes, read-modify-write not atomic)"
            .to_owned(),
        index: TreeIndex::new(),
    })
}
