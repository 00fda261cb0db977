//! sled as a `--compare` peer: `Tree::transaction` per transaction with writes.

use std::path::PathBuf;

use crate::bench::{balance_of, key, read_only, rmw_value, Engine, Op, Outcome};

struct Sled {
    db: sled::Db,
    sync: bool,
    dir: PathBuf,
    /// `Config::cache_capacity`, if `--cache-size` set it.
    cache: Option<u64>,
}

fn sled_err(e: impl std::fmt::Display) -> String {
    format!("sled: {e}")
}

impl Engine for Sled {
    fn name(&self) -> &'static str {
        "sled"
    }
    fn settings(&self) -> String {
        format!(
            "sled 0.34 in {}, cache: {}: Tree::transaction per transaction with writes (it retries conflicts \
             itself, so aborts show 0; scans read the tree before the transaction: sled's transactions cannot \
             scan){}; read-only ones read the tree directly (sled has no read snapshots)",
            self.dir.display(),
            match self.cache {
                Some(n) => format!("Config::cache_capacity({n})"),
                None => "sled's default Config::cache_capacity (1 GiB)".to_owned(),
            },
            if self.sync {
                ", then Db::flush() (sync_file_range)"
            } else {
                ", no flush() (background flush every 500 ms)"
            }
        )
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        let mut b = sled::Batch::default();
        for (i, v) in batch {
            b.insert(key(*i).as_bytes(), v.as_slice());
        }
        self.db.apply_batch(b).map_err(sled_err)?;
        // Flushed as a synced run's transactions are (bwtx's load commits
        // with the run's durability too).
        if self.sync {
            self.db.flush().map_err(sled_err)?;
        }
        Ok(())
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        let scan = |i: u64, len: u64| -> Result<(), String> {
            for kv in self.db.range(key(i).as_bytes()..).take(len as usize) {
                std::hint::black_box(kv.map_err(sled_err)?.1.len());
            }
            Ok(())
        };
        if read_only(ops) {
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(self.db.get(key(i)).map_err(sled_err)?);
                    }
                    Op::Scan(i, len) => scan(i, len)?,
                    _ => unreachable!("read-only"),
                }
            }
            return Ok(Outcome::Committed);
        }
        // Scans first, outside the transaction: scanning the tree from inside
        // a sled transaction can block on the transaction's own locks.
        for op in ops {
            if let Op::Scan(i, len) = *op {
                scan(i, len)?;
            }
        }
        use sled::transaction::TransactionError;
        let r: Result<(), TransactionError<String>> = self.db.transaction(|tx| {
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(tx.get(key(i))?);
                    }
                    Op::Update(i) | Op::Insert(i) => {
                        tx.insert(key(i).as_bytes(), value)?;
                    }
                    Op::Scan(..) => {}
                    Op::Rmw(i) => {
                        let k = key(i);
                        let v = rmw_value(tx.get(k)?.as_deref(), value);
                        tx.insert(k.as_bytes(), v)?;
                    }
                    Op::Transfer(a, b, amount) => {
                        let (ka, kb) = (key(a), key(b));
                        let fa = tx.get(ka)?.map_or(0, |v| balance_of(&v));
                        let fb = tx.get(kb)?.map_or(0, |v| balance_of(&v));
                        let amount = amount.min(fa);
                        tx.insert(ka.as_bytes(), &(fa - amount).to_le_bytes()[..])?;
                        tx.insert(kb.as_bytes(), &(fb + amount).to_le_bytes()[..])?;
                    }
                }
            }
            Ok(())
        });
        match r {
            Ok(()) => {}
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(sled_err(e)),
        }
        if self.sync {
            self.db.flush().map_err(sled_err)?;
        }
        Ok(Outcome::Committed)
    }
    fn persist(&self) -> Result<(), String> {
        // What the background flusher would write within 500 ms.
        self.db.flush().map(drop).map_err(sled_err)
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        let mut sum = 0;
        for kv in self.db.range(key(0).as_bytes()..=key(n - 1).as_bytes()) {
            sum += balance_of(&kv.map_err(sled_err)?.1);
        }
        Ok(sum)
    }
}

/// sled in `dir`, flushing every commit if `sync`, with a cache of `cache`
/// bytes if given.
pub fn open(dir: PathBuf, sync: bool, cache: Option<u64>) -> Result<Box<dyn Engine>, String> {
    let mut config = sled::Config::new().path(&dir);
    if let Some(n) = cache {
        config = config.cache_capacity(n);
    }
    let db = config.open().map_err(sled_err)?;
    Ok(Box::new(Sled { db, sync, dir, cache }))
}
