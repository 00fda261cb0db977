//! fjall as a `--compare` peer: its optimistic transactional database,
//! whose write transactions are serializable (SSI: keys read and ranges
//! scanned are checked at commit) whatever `--isolation` says; fjall has no
//! snapshot-only mode.

use std::path::PathBuf;

use crate::bench::{balance_of, key, read_only, rmw_value, Engine, Op, Outcome};

struct Fjall {
    db: fjall::OptimisticTxDatabase,
    ks: fjall::OptimisticTxKeyspace,
    mode: Option<fjall::PersistMode>,
    dir: PathBuf,
    /// `Database::builder().cache_size`, if `--cache-size` set it.
    cache: Option<u64>,
}

impl Fjall {
    fn open(dir: PathBuf, sync: bool, cache: Option<u64>) -> Result<Self, String> {
        let e = |e: fjall::Error| format!("fjall: {e}");
        let mut builder = fjall::OptimisticTxDatabase::builder(&dir);
        if let Some(n) = cache {
            builder = builder.cache_size(n);
        }
        let db = builder.open().map_err(e)?;
        let ks = db.keyspace("bench", fjall::KeyspaceCreateOptions::default).map_err(e)?;
        let mode = sync.then_some(fjall::PersistMode::SyncAll);
        Ok(Fjall {
            db,
            ks,
            mode,
            dir,
            cache,
        })
    }
}

impl Engine for Fjall {
    fn name(&self) -> &'static str {
        "fjall"
    }
    fn settings(&self) -> String {
        format!(
            "fjall 3 OptimisticTxDatabase in {}, cache: {} (memtables and journal at fjall's defaults): \
             write_tx().durability({}) per transaction with writes, read_tx() for read-only ones; serializable \
             (SSI: keys read and ranges scanned are validated at commit) in every run",
            self.dir.display(),
            match self.cache {
                Some(n) => format!("builder().cache_size({n}) (its block cache)"),
                None => "fjall's default block cache (builder().cache_size not set)".to_owned(),
            },
            match self.mode {
                Some(m) => format!("Some(PersistMode::{m:?})"),
                None => "None".to_owned(),
            }
        )
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        // With the run's durability, as bwtx's load commits with its own: a
        // synced comparison syncs each loading transaction on every engine.
        let mut tx = self
            .db
            .write_tx()
            .map_err(|e| format!("fjall: {e}"))?
            .durability(self.mode);
        for (i, v) in batch {
            tx.insert(&self.ks, key(*i).as_bytes(), v.as_slice());
        }
        match tx.commit().map_err(|e| format!("fjall: {e}"))? {
            Ok(()) => Ok(()),
            Err(fjall::Conflict) => Err("fjall: conflict while loading".into()),
        }
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        use fjall::Readable;
        let err = |e: fjall::Error| format!("fjall: {e}");
        if read_only(ops) {
            let r = self.db.read_tx();
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(r.get(&self.ks, key(i)).map_err(err)?);
                    }
                    Op::Scan(i, len) => {
                        for g in r.range(&self.ks, key(i)..).take(len as usize) {
                            std::hint::black_box(g.into_inner().map_err(err)?);
                        }
                    }
                    _ => unreachable!("read-only"),
                }
            }
            return Ok(Outcome::Committed);
        }
        let mut tx = self.db.write_tx().map_err(err)?.durability(self.mode);
        for op in ops {
            match *op {
                Op::Read(i) => {
                    std::hint::black_box(tx.get(&self.ks, key(i)).map_err(err)?);
                }
                Op::Update(i) | Op::Insert(i) => tx.insert(&self.ks, key(i).as_bytes(), value),
                Op::Scan(i, len) => {
                    for g in tx.range(&self.ks, key(i)..).take(len as usize) {
                        std::hint::black_box(g.into_inner().map_err(err)?);
                    }
                }
                Op::Rmw(i) => {
                    let k = key(i);
                    let v = rmw_value(tx.get(&self.ks, k).map_err(err)?.as_deref(), value);
                    tx.insert(&self.ks, k.as_bytes(), v);
                }
                Op::Transfer(a, b, amount) => {
                    let (ka, kb) = (key(a), key(b));
                    let fa = tx.get(&self.ks, ka).map_err(err)?.map_or(0, |v| balance_of(&v));
                    let fb = tx.get(&self.ks, kb).map_err(err)?.map_or(0, |v| balance_of(&v));
                    let amount = amount.min(fa);
                    tx.insert(&self.ks, ka.as_bytes(), (fa - amount).to_le_bytes());
                    tx.insert(&self.ks, kb.as_bytes(), (fb + amount).to_le_bytes());
                }
            }
        }
        match tx.commit().map_err(err)? {
            Ok(()) => Ok(Outcome::Committed),
            Err(fjall::Conflict) => Ok(Outcome::Conflict),
        }
    }
    fn persist(&self) -> Result<(), String> {
        // The journal's buffer to the OS (what a later write would flush).
        self.db
            .persist(fjall::PersistMode::Buffer)
            .map_err(|e| format!("fjall: {e}"))
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        use fjall::Readable;
        let r = self.db.read_tx();
        let mut sum = 0;
        for g in r.range(&self.ks, key(0)..=key(n - 1)) {
            let (_, v) = g.into_inner().map_err(|e| format!("fjall: {e}"))?;
            sum += balance_of(&v);
        }
        Ok(sum)
    }
}

/// fjall in `dir`, syncing every commit if `sync`, with a block cache of
/// `cache` bytes if given.
pub fn open(dir: PathBuf, sync: bool, cache: Option<u64>) -> Result<Box<dyn Engine>, String> {
    Ok(Box::new(Fjall::open(dir, sync, cache)?))
}
