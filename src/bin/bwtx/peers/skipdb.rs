//! skipdb as a `--compare` peer: its optimistic (snapshot + first-committer-wins) database.

use skipdb::optimistic::OptimisticDb;

use crate::bench::{balance_of, key, read_only, rmw_value, Engine, Op, Outcome};

/// skipdb's optimistic (snapshot + first-committer-wins) database, in memory.
struct Skip(OptimisticDb<Vec<u8>, Vec<u8>>);

/// skipdb does not re-export its error types; a conflict prints as this.
pub(super) fn skip_conflict(e: &impl std::fmt::Debug) -> bool {
    format!("{e:?}") == "Transaction(Conflict)"
}

impl Engine for Skip {
    fn name(&self) -> &'static str {
        "skipdb"
    }
    fn settings(&self) -> String {
        "skipdb 0.2 OptimisticDb<Vec<u8>, Vec<u8>>: in memory only (no durability in any mode); write() per \
         transaction with writes, read() for read-only ones"
            .to_owned()
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        let mut tx = self.0.write();
        for (i, v) in batch {
            tx.insert(key(*i).into_bytes(), v.clone()).map_err(|e| e.to_string())?;
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
                        for e in r.range(key(i).into_bytes()..).take(len as usize) {
                            std::hint::black_box(e.value().len());
                        }
                    }
                    _ => unreachable!("read-only"),
                }
            }
            return Ok(Outcome::Committed);
        }
        let err = |e: &dyn std::fmt::Display| format!("skipdb: {e}");
        let mut tx = self.0.write();
        for op in ops {
            match *op {
                Op::Read(i) => {
                    let k = key(i).into_bytes();
                    std::hint::black_box(tx.get(&k).map_err(|e| err(&e))?.map(|e| e.value().len()));
                }
                Op::Update(i) | Op::Insert(i) => tx.insert(key(i).into_bytes(), value.to_vec()).map_err(|e| err(&e))?,
                Op::Scan(i, len) => {
                    for e in tx.range(key(i).into_bytes()..).map_err(|e| err(&e))?.take(len as usize) {
                        std::hint::black_box(e.value().len());
                    }
                }
                Op::Rmw(i) => {
                    let k = key(i).into_bytes();
                    let v = match tx.get(&k).map_err(|e| err(&e))? {
                        Some(e) => rmw_value(Some(&e.value()), value),
                        None => rmw_value(None, value),
                    };
                    tx.insert(k, v).map_err(|e| err(&e))?;
                }
                Op::Transfer(a, b, amount) => {
                    let (ka, kb) = (key(a).into_bytes(), key(b).into_bytes());
                    let fa = tx.get(&ka).map_err(|e| err(&e))?.map_or(0, |e| balance_of(&e.value()));
                    let fb = tx.get(&kb).map_err(|e| err(&e))?.map_or(0, |e| balance_of(&e.value()));
                    let amount = amount.min(fa);
                    tx.insert(ka, (fa - amount).to_le_bytes().to_vec())
                        .map_err(|e| err(&e))?;
                    tx.insert(kb, (fb + amount).to_le_bytes().to_vec())
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
        Ok(r.range(key(0).into_bytes()..=key(n - 1).into_bytes())
            .map(|e| balance_of(&e.value()))
            .sum())
    }
}

/// An empty skipdb database.
pub fn open() -> Box<dyn Engine> {
    Box::new(Skip(OptimisticDb::new()))
}
