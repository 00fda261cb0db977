//! seerdb (an LSM store with a WAL, a value log and optimistic
//! transactions) as a `--compare` peer. Needs the `peer-seerdb` feature.
//!
//! Its transactions are optimistic: `begin_transaction()` fixes a read
//! sequence number, writes are buffered, and `commit()` fails with
//! `TransactionConflict` when a key the transaction *read* was written since
//! it began (blind writes never conflict); those count as conflicts.
//! Read-only transactions read at their start and are dropped, not
//! committed.
//!
//! Two things differ from the other peers, both because of seerdb's API:
//! - A transaction has no range read, and `db.snapshot()` swaps out (and
//!   flushes) the whole memtable, so scans read the latest committed data
//!   through `db.range` instead of the transaction's snapshot.
//! - `db.range` copies every memtable entry between its start and end key
//!   before it yields the first, so a scan of `len` records from record `i`
//!   passes the end key of record `i + len`: the same records as an
//!   open-ended scan while records are dense (they are loaded as `0..keys`
//!   and inserted in order), and at most `len` of them.
//!
//! The cache is seerdb's default unless `--cache-size` is given: a 256 MiB
//! memtable (so a run of up to a few million small records stays in memory)
//! and a block cache of 16,384 blocks of 4 KiB (64 MiB) for its SSTables.
//! With `--cache-size N` the block cache holds N / 4 KiB blocks and the
//! memtable is capped at 64 MiB (RocksDB's default write buffer), or N if
//! smaller.

use std::path::PathBuf;

use seerdb::{DBError, DBOptions, SyncPolicy, DB};

use crate::bench::{balance_of, key, read_only, rmw_value, Engine, Op, Outcome};

struct Seer {
    db: DB,
    policy: SyncPolicy,
    dir: PathBuf,
    /// The memtable capacity and block cache blocks, from `--cache-size`.
    cache: Option<(usize, usize)>,
}

/// The size of seerdb's cache blocks.
const BLOCK: usize = 4096;

fn seer_err(e: DBError) -> String {
    format!("seerdb: {e}")
}

impl Seer {
    /// Read up to `len` records from record `i` on (see the module docs for
    /// the end key).
    fn scan(&self, i: u64, len: u64) -> Result<(), String> {
        let (from, to) = (key(i), key(i + len));
        let it = self.db.range(from.as_bytes(), Some(to.as_bytes())).map_err(seer_err)?;
        for kv in it.take(len as usize) {
            let (_, v) = kv.map_err(|e| format!("seerdb: {e}"))?;
            std::hint::black_box(v.len());
        }
        Ok(())
    }
}

impl Engine for Seer {
    fn name(&self) -> &'static str {
        "seerdb"
    }
    fn settings(&self) -> String {
        format!(
            "seerdb 0.0.10 DB in {}: DBOptions::default() (cache: {}) with sync_policy(SyncPolicy::{:?}){}; \
             begin_transaction() per transaction (commit validates \
             the keys read; blind writes never conflict), scans through db.range on the latest data; read-only \
             ones read at their start and are dropped",
            self.dir.display(),
            match self.cache {
                Some((mem, blocks)) => format!(
                    "memtable_capacity({mem}), block_cache_capacity({blocks}) blocks of 4 KiB, {} bytes",
                    blocks * BLOCK
                ),
                None => "256 MiB memtable, block cache of 16,384 4 KiB blocks".to_owned(),
            },
            self.policy,
            match self.policy {
                SyncPolicy::None => " (WAL written, not synced)",
                _ => " (fdatasync at every commit)",
            }
        )
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        let mut tx = self.db.begin_transaction();
        for (i, v) in batch {
            tx.put(key(*i).as_bytes(), v).map_err(seer_err)?;
        }
        tx.commit().map_err(seer_err)
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        let mut tx = self.db.begin_transaction();
        for op in ops {
            match *op {
                Op::Read(i) => {
                    std::hint::black_box(tx.get(key(i).as_bytes()).map_err(seer_err)?);
                }
                Op::Update(i) | Op::Insert(i) => tx.put(key(i).as_bytes(), value).map_err(seer_err)?,
                Op::Scan(i, len) => self.scan(i, len)?,
                Op::Rmw(i) => {
                    let k = key(i);
                    let v = rmw_value(tx.get(k.as_bytes()).map_err(seer_err)?.as_deref(), value);
                    tx.put(k.as_bytes(), v).map_err(seer_err)?;
                }
                Op::Transfer(a, b, amount) => {
                    let (ka, kb) = (key(a), key(b));
                    let fa = tx.get(ka.as_bytes()).map_err(seer_err)?.map_or(0, |v| balance_of(&v));
                    let fb = tx.get(kb.as_bytes()).map_err(seer_err)?.map_or(0, |v| balance_of(&v));
                    let amount = amount.min(fa);
                    tx.put(ka.as_bytes(), (fa - amount).to_le_bytes()).map_err(seer_err)?;
                    tx.put(kb.as_bytes(), (fb + amount).to_le_bytes()).map_err(seer_err)?;
                }
            }
        }
        if read_only(ops) {
            // Nothing to validate at snapshot isolation: drop it.
            return Ok(Outcome::Committed);
        }
        match tx.commit() {
            Ok(()) => Ok(Outcome::Committed),
            Err(DBError::TransactionConflict(_)) => Ok(Outcome::Conflict),
            Err(e) => Err(seer_err(e)),
        }
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        // One transaction's reads all see its start: one snapshot.
        let mut tx = self.db.begin_transaction();
        let mut sum = 0;
        for i in 0..n {
            sum += tx
                .get(key(i).as_bytes())
                .map_err(seer_err)?
                .map_or(0, |v| balance_of(&v));
        }
        Ok(sum)
    }
}

/// seerdb in `dir`, syncing its WAL at every commit if `sync`, with the
/// cache `--cache-size` asks for (see the module docs) if given.
pub fn open(dir: PathBuf, sync: bool, cache: Option<u64>) -> Result<Box<dyn Engine>, String> {
    let policy = if sync { SyncPolicy::SyncData } else { SyncPolicy::None };
    let mut opts = DBOptions::default().sync_policy(policy);
    let cache = cache.map(|n| {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        (n.min(64 << 20), (n / BLOCK).max(1))
    });
    if let Some((mem, blocks)) = cache {
        opts = opts.memtable_capacity(mem).block_cache_capacity(blocks);
    }
    let db = opts.open(&dir).map_err(seer_err)?;
    Ok(Box::new(Seer { db, policy, dir, cache }))
}
