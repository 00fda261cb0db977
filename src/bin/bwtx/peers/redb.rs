//! redb as a `--compare` peer: one write transaction per transaction with writes.

use std::path::PathBuf;

use crate::bench::{balance_of, key, read_only, rmw_value, Engine, Key, Op, Outcome};

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("bench");

struct Redb {
    db: redb::Database,
    sync: bool,
    path: PathBuf,
    /// `Builder::set_cache_size`, if `--cache-size` set it.
    cache: Option<u64>,
}

fn redb_err(e: impl std::fmt::Display) -> String {
    format!("redb: {e}")
}

impl Redb {
    fn durability(&self) -> redb::Durability {
        if self.sync {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        }
    }
    fn write(&self) -> Result<redb::WriteTransaction, String> {
        let mut tx = self.db.begin_write().map_err(redb_err)?;
        tx.set_durability(self.durability()).map_err(redb_err)?;
        Ok(tx)
    }
}

impl Engine for Redb {
    fn name(&self) -> &'static str {
        "redb"
    }
    fn settings(&self) -> String {
        format!(
            "redb 4 in {}, cache: {}: one write transaction per transaction with writes, Durability::{:?} \
             (single writer, so serializable in every run); begin_read() for read-only ones",
            self.path.display(),
            match self.cache {
                Some(n) => format!("Builder::set_cache_size({n}) (its read cache and write buffer)"),
                None => "redb's default (Builder::set_cache_size not set)".to_owned(),
            },
            self.durability()
        )
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        let tx = self.write()?;
        {
            let mut t = tx.open_table(REDB_TABLE).map_err(redb_err)?;
            for (i, v) in batch {
                t.insert(key(*i).as_bytes(), v.as_slice()).map_err(redb_err)?;
            }
        }
        tx.commit().map_err(redb_err)
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        use redb::{ReadableDatabase, ReadableTable};
        if read_only(ops) {
            let tx = self.db.begin_read().map_err(redb_err)?;
            let t = tx.open_table(REDB_TABLE).map_err(redb_err)?;
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(t.get(key(i).as_bytes()).map_err(redb_err)?.map(|g| g.value().len()));
                    }
                    Op::Scan(i, len) => {
                        let k = key(i);
                        for kv in t.range::<&[u8]>(k.as_bytes()..).map_err(redb_err)?.take(len as usize) {
                            std::hint::black_box(kv.map_err(redb_err)?.1.value().len());
                        }
                    }
                    _ => unreachable!("read-only"),
                }
            }
            return Ok(Outcome::Committed);
        }
        let tx = self.write()?;
        {
            let mut t = tx.open_table(REDB_TABLE).map_err(redb_err)?;
            let get = |t: &redb::Table<&[u8], &[u8]>, k: &Key| -> Result<Option<Vec<u8>>, String> {
                Ok(t.get(k.as_bytes()).map_err(redb_err)?.map(|g| g.value().to_vec()))
            };
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(get(&t, &key(i))?);
                    }
                    Op::Update(i) | Op::Insert(i) => {
                        t.insert(key(i).as_bytes(), value).map_err(redb_err)?;
                    }
                    Op::Scan(i, len) => {
                        let k = key(i);
                        for kv in t.range::<&[u8]>(k.as_bytes()..).map_err(redb_err)?.take(len as usize) {
                            std::hint::black_box(kv.map_err(redb_err)?.1.value().len());
                        }
                    }
                    Op::Rmw(i) => {
                        let k = key(i);
                        let v = rmw_value(get(&t, &k)?.as_deref(), value);
                        t.insert(k.as_bytes(), v.as_slice()).map_err(redb_err)?;
                    }
                    Op::Transfer(a, b, amount) => {
                        let (ka, kb) = (key(a), key(b));
                        let fa = get(&t, &ka)?.map_or(0, |v| balance_of(&v));
                        let fb = get(&t, &kb)?.map_or(0, |v| balance_of(&v));
                        let amount = amount.min(fa);
                        t.insert(ka.as_bytes(), &(fa - amount).to_le_bytes()[..])
                            .map_err(redb_err)?;
                        t.insert(kb.as_bytes(), &(fb + amount).to_le_bytes()[..])
                            .map_err(redb_err)?;
                    }
                }
            }
        }
        tx.commit().map_err(redb_err)?;
        Ok(Outcome::Committed)
    }
    fn persist(&self) -> Result<(), String> {
        // Commits with Durability::None stay in redb's own buffers until a
        // durable commit writes them out: commit an empty one.
        let mut tx = self.db.begin_write().map_err(redb_err)?;
        tx.set_durability(redb::Durability::Immediate).map_err(redb_err)?;
        tx.commit().map_err(redb_err)
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        use redb::ReadableDatabase;
        let tx = self.db.begin_read().map_err(redb_err)?;
        let t = tx.open_table(REDB_TABLE).map_err(redb_err)?;
        let (lo, hi) = (key(0), key(n - 1));
        let mut sum = 0;
        for kv in t.range::<&[u8]>(lo.as_bytes()..=hi.as_bytes()).map_err(redb_err)? {
            sum += balance_of(kv.map_err(redb_err)?.1.value());
        }
        Ok(sum)
    }
}

/// redb in the file `path`, syncing every commit if `sync`, with a cache of
/// `cache` bytes if given.
pub fn open(path: PathBuf, sync: bool, cache: Option<u64>) -> Result<Box<dyn Engine>, String> {
    let mut builder = redb::Builder::new();
    if let Some(n) = cache {
        builder.set_cache_size(usize::try_from(n).map_err(redb_err)?);
    }
    let db = builder.create(&path).map_err(redb_err)?;
    Ok(Box::new(Redb { db, sync, path, cache }))
}
