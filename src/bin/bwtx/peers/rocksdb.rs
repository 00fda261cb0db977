//! RocksDB as a `--compare` peer: `OptimisticTransactionDB`, the optimistic
//! (validate at commit) flavour closest to bwtx. Needs the `peer-rocksdb`
//! feature, whose C++ build (about 343 files) takes 12-29 minutes on 2
//! cores with the machine to itself and hours at `nice 19` beside other
//! builds, and needs `apt-get install clang libclang-dev` (with
//! `LIBCLANG_PATH` if libclang is not found); CI never builds it. Built
//! without compression libraries, RocksDB compresses nothing.
//!
//! Each transaction with writes takes a snapshot at its start
//! (`OptimisticTransactionOptions::set_snapshot(true)`) and reads from it,
//! so its commit fails with `Busy` when a key it wrote changed after that
//! snapshot: snapshot isolation with first-committer-wins, as bwtx.
//! Read-only transactions read one `db.snapshot()`.

use std::path::PathBuf;

use rocksdb::{
    Direction, ErrorKind, IteratorMode, OptimisticTransactionDB, OptimisticTransactionOptions, ReadOptions,
    WriteOptions,
};

use crate::bench::{balance_of, key, read_only, rmw_value, Engine, Op, Outcome};

struct Rocks {
    db: OptimisticTransactionDB,
    write: WriteOptions,
    sync: bool,
    dir: PathBuf,
    /// The block cache, if `--cache-size` set it.
    cache: Option<u64>,
}

fn rocks_err(e: rocksdb::Error) -> String {
    format!("rocksdb: {e}")
}

/// A commit that lost to a concurrent writer.
fn is_conflict(e: &rocksdb::Error) -> bool {
    matches!(e.kind(), ErrorKind::Busy | ErrorKind::TryAgain)
}

impl Engine for Rocks {
    fn name(&self) -> &'static str {
        "rocksdb"
    }
    fn settings(&self) -> String {
        format!(
            "rocksdb 0.25 OptimisticTransactionDB in {}: default options (create_if_missing, \
             increase_parallelism(2)), cache: {} (write buffers at the defaults: write_buffer_size 64 MiB, \
             max_write_buffer_number 2), no compression (built without compression libraries); \
             transaction_opt with set_snapshot(true) per transaction with writes, reads at its snapshot; \
             WriteOptions::set_sync({}){}; db.snapshot() for read-only ones",
            self.dir.display(),
            match self.cache {
                Some(n) => format!("block cache Cache::new_lru_cache({n})"),
                None => "the default block cache (32 MiB LRU)".to_owned(),
            },
            self.sync,
            if self.sync { "" } else { " (WAL written, not synced)" }
        )
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        let tx = self
            .db
            .transaction_opt(&self.write, &OptimisticTransactionOptions::new());
        for (i, v) in batch {
            tx.put(key(*i).as_bytes(), v).map_err(rocks_err)?;
        }
        tx.commit().map_err(rocks_err)
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        if read_only(ops) {
            let snap = self.db.snapshot();
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(snap.get(key(i).as_bytes()).map_err(rocks_err)?.map(|v| v.len()));
                    }
                    Op::Scan(i, len) => {
                        let k = key(i);
                        let it = snap.iterator(IteratorMode::From(k.as_bytes(), Direction::Forward));
                        for kv in it.take(len as usize) {
                            std::hint::black_box(kv.map_err(rocks_err)?.1.len());
                        }
                    }
                    _ => unreachable!("read-only"),
                }
            }
            return Ok(Outcome::Committed);
        }
        let mut topts = OptimisticTransactionOptions::new();
        topts.set_snapshot(true);
        let tx = self.db.transaction_opt(&self.write, &topts);
        let snap = tx.snapshot();
        let read_opts = || {
            let mut r = ReadOptions::default();
            r.set_snapshot(&snap);
            r
        };
        let get = |k: &[u8]| tx.get_opt(k, &read_opts()).map_err(rocks_err);
        for op in ops {
            match *op {
                Op::Read(i) => {
                    std::hint::black_box(get(key(i).as_bytes())?);
                }
                Op::Update(i) | Op::Insert(i) => tx.put(key(i).as_bytes(), value).map_err(rocks_err)?,
                Op::Scan(i, len) => {
                    let k = key(i);
                    let it = tx.iterator_opt(IteratorMode::From(k.as_bytes(), Direction::Forward), read_opts());
                    for kv in it.take(len as usize) {
                        std::hint::black_box(kv.map_err(rocks_err)?.1.len());
                    }
                }
                Op::Rmw(i) => {
                    let k = key(i);
                    let v = rmw_value(get(k.as_bytes())?.as_deref(), value);
                    tx.put(k.as_bytes(), v).map_err(rocks_err)?;
                }
                Op::Transfer(a, b, amount) => {
                    let (ka, kb) = (key(a), key(b));
                    let fa = get(ka.as_bytes())?.map_or(0, |v| balance_of(&v));
                    let fb = get(kb.as_bytes())?.map_or(0, |v| balance_of(&v));
                    let amount = amount.min(fa);
                    tx.put(ka.as_bytes(), (fa - amount).to_le_bytes()).map_err(rocks_err)?;
                    tx.put(kb.as_bytes(), (fb + amount).to_le_bytes()).map_err(rocks_err)?;
                }
            }
        }
        drop(snap);
        match tx.commit() {
            Ok(()) => Ok(Outcome::Committed),
            Err(e) if is_conflict(&e) => Ok(Outcome::Conflict),
            Err(e) => Err(rocks_err(e)),
        }
    }
    fn persist(&self) -> Result<(), String> {
        // The WAL is written to the OS at each commit; flush it anyway in
        // case a build buffers it (manual_wal_flush is off by default).
        self.db.flush_wal(false).map_err(rocks_err)
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        let snap = self.db.snapshot();
        let (lo, hi) = (key(0), key(n - 1));
        let mut sum = 0;
        for kv in snap.iterator(IteratorMode::From(lo.as_bytes(), Direction::Forward)) {
            let (k, v) = kv.map_err(rocks_err)?;
            if &k[..] > hi.as_bytes() {
                break;
            }
            sum += balance_of(&v);
        }
        Ok(sum)
    }
}

/// RocksDB in `dir`, syncing its WAL at every commit if `sync`.
pub fn open(dir: PathBuf, sync: bool, cache: Option<u64>) -> Result<Box<dyn Engine>, String> {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.increase_parallelism(2);
    if let Some(n) = cache {
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_cache(&rocksdb::Cache::new_lru_cache(
            usize::try_from(n).map_err(|e| e.to_string())?,
        ));
        opts.set_block_based_table_factory(&table);
    }
    let db = OptimisticTransactionDB::open(&opts, &dir).map_err(rocks_err)?;
    let mut write = WriteOptions::default();
    write.set_sync(sync);
    Ok(Box::new(Rocks {
        db,
        write,
        sync,
        dir,
        cache,
    }))
}
