//! skipdb as a `--compare` peer: its optimistic (snapshot + first-committer-wins) database.

use skipdb::optimistic::OptimisticDb;

use crate::bench::{balance_of, key, read_only, rmw_value, Engine, Op, Outcome};

/// A key as `OptimisticDb<Vec<u8>, _>` takes it.
fn k(i: u64) -> Vec<u8> {
    key(i).into_bytes()
}

/// The body of [`Engine::attempt`] for a skipdb database (optimistic or
/// serializable: the same calls on different types): `$read` opens a
/// read-only view, `$write` a write transaction, `$k` makes a key of an
/// index. A read-only batch runs on the view; the rest in one transaction
/// whose commit conflict is [`Outcome::Conflict`].
macro_rules! skip_attempt {
    ($read:expr, $write:expr, $k:expr, $ops:expr, $value:expr) => {{
        let (ops, value) = ($ops, $value);
        if read_only(ops) {
            let r = $read;
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(r.get(key(i).as_bytes()).map(|e| e.value().len()));
                    }
                    Op::Scan(i, len) => {
                        for e in r.range($k(i)..).take(len as usize) {
                            std::hint::black_box(e.value().len());
                        }
                    }
                    _ => unreachable!("read-only"),
                }
            }
            return Ok(Outcome::Committed);
        }
        let err = |e: &dyn std::fmt::Display| format!("skipdb: {e}");
        let mut tx = $write;
        for op in ops {
            match *op {
                Op::Read(i) => {
                    std::hint::black_box(tx.get(&$k(i)).map_err(|e| err(&e))?.map(|e| e.value().len()));
                }
                Op::Update(i) | Op::Insert(i) => tx.insert($k(i), value.to_vec()).map_err(|e| err(&e))?,
                Op::Scan(i, len) => {
                    for e in tx.range($k(i)..).map_err(|e| err(&e))?.take(len as usize) {
                        std::hint::black_box(e.value().len());
                    }
                }
                Op::Rmw(i) => {
                    let v = match tx.get(&$k(i)).map_err(|e| err(&e))? {
                        Some(e) => rmw_value(Some(&e.value()), value),
                        None => rmw_value(None, value),
                    };
                    tx.insert($k(i), v).map_err(|e| err(&e))?;
                }
                Op::Transfer(a, b, amount) => {
                    let fa = tx
                        .get(&$k(a))
                        .map_err(|e| err(&e))?
                        .map_or(0, |e| balance_of(&e.value()));
                    let fb = tx
                        .get(&$k(b))
                        .map_err(|e| err(&e))?
                        .map_or(0, |e| balance_of(&e.value()));
                    let amount = amount.min(fa);
                    tx.insert($k(a), (fa - amount).to_le_bytes().to_vec())
                        .map_err(|e| err(&e))?;
                    tx.insert($k(b), (fb + amount).to_le_bytes().to_vec())
                        .map_err(|e| err(&e))?;
                }
            }
        }
        match tx.commit() {
            Ok(()) => Ok(Outcome::Committed),
            Err(e) if skip_conflict(&e) => Ok(Outcome::Conflict),
            Err(e) => Err(err(&e)),
        }
    }};
}
pub(super) use skip_attempt;

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
            tx.insert(k(*i), v.clone()).map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        skip_attempt!(self.0.read(), self.0.write(), k, ops, value)
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        let r = self.0.read();
        Ok(r.range(k(0)..=k(n - 1)).map(|e| balance_of(&e.value())).sum())
    }
}

/// An empty skipdb database.
pub fn open() -> Box<dyn Engine> {
    Box::new(Skip(OptimisticDb::new()))
}
