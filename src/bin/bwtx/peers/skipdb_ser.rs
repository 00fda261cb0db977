//! skipdb's serializable mode as a `--compare` peer under `--isolation
//! serializable`: `SerializableDb` with `serializable_write()`, its full
//! serializable snapshot isolation (keys read and ranges scanned are
//! tracked and checked at commit, indirect dependencies included).

use std::sync::Arc;

use skipdb::serializable::SerializableDb;

use super::skipdb::skip_conflict;
use crate::bench::{balance_of, key, read_only, rmw_value, Engine, Op, Outcome};

/// A key as `SerializableDb` needs it: `Ord` and cheap to clone.
type K = Arc<[u8]>;

fn k(i: u64) -> K {
    Arc::from(key(i).as_bytes())
}

/// skipdb's `SerializableDb`, in memory.
struct SkipSer(SerializableDb<K, Vec<u8>>);

impl Engine for SkipSer {
    fn name(&self) -> &'static str {
        "skipdb"
    }
    fn settings(&self) -> String {
        "skipdb 0.2 SerializableDb<Arc<[u8]>, Vec<u8>> (serializable): in memory only; serializable_write() per \
         transaction with writes (full SSI), read() for read-only ones"
            .to_owned()
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        let mut tx = self.0.serializable_write();
        for (i, v) in batch {
            tx.insert(k(*i), v.clone()).map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        if read_only(ops) {
            let r = self.0.read();
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(r.get(key(i).as_bytes()).map(|e| e.value().len()));
                    }
                    Op::Scan(i, len) => {
                        for e in r.range(k(i)..).take(len as usize) {
                            std::hint::black_box(e.value().len());
                        }
                    }
                    _ => unreachable!("read-only"),
                }
            }
            return Ok(Outcome::Committed);
        }
        let err = |e: &dyn std::fmt::Display| format!("skipdb: {e}");
        let mut tx = self.0.serializable_write();
        for op in ops {
            match *op {
                Op::Read(i) => {
                    std::hint::black_box(tx.get(&k(i)).map_err(|e| err(&e))?.map(|e| e.value().len()));
                }
                Op::Update(i) | Op::Insert(i) => tx.insert(k(i), value.to_vec()).map_err(|e| err(&e))?,
                Op::Scan(i, len) => {
                    for e in tx.range(k(i)..).map_err(|e| err(&e))?.take(len as usize) {
                        std::hint::black_box(e.value().len());
                    }
                }
                Op::Rmw(i) => {
                    let v = match tx.get(&k(i)).map_err(|e| err(&e))? {
                        Some(e) => rmw_value(Some(&e.value()), value),
                        None => rmw_value(None, value),
                    };
                    tx.insert(k(i), v).map_err(|e| err(&e))?;
                }
                Op::Transfer(a, b, amount) => {
                    let fa = tx
                        .get(&k(a))
                        .map_err(|e| err(&e))?
                        .map_or(0, |e| balance_of(&e.value()));
                    let fb = tx
                        .get(&k(b))
                        .map_err(|e| err(&e))?
                        .map_or(0, |e| balance_of(&e.value()));
                    let amount = amount.min(fa);
                    tx.insert(k(a), (fa - amount).to_le_bytes().to_vec())
                        .map_err(|e| err(&e))?;
                    tx.insert(k(b), (fb + amount).to_le_bytes().to_vec())
                        .map_err(|e| err(&e))?;
                }
            }
        }
        match tx.commit() {
            Ok(()) => Ok(Outcome::Committed),
            Err(e) if skip_conflict(&e) => Ok(Outcome::Conflict),
            Err(e) => Err(err(&e)),
        }
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        let r = self.0.read();
        Ok(r.range(k(0)..=k(n - 1)).map(|e| balance_of(&e.value())).sum())
    }
}

/// An empty skipdb `SerializableDb`.
pub fn open() -> Box<dyn Engine> {
    Box::new(SkipSer(SerializableDb::new()))
}
