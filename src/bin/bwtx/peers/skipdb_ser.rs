//! skipdb's serializable mode as a `--compare` peer under `--isolation
//! serializable`: `SerializableDb` with `serializable_write()`, its full
//! serializable snapshot isolation (keys read and ranges scanned are
//! tracked and checked at commit, indirect dependencies included).

use std::sync::Arc;

use skipdb::serializable::SerializableDb;

use super::skipdb::{skip_attempt, skip_conflict};
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
        skip_attempt!(self.0.read(), self.0.serializable_write(), k, ops, value)
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
