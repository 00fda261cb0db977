//! Savepoint operations of the `Run` harness: the model keeps, per
//! transaction, a copy of its writes at each live savepoint, and predicts
//! which rollbacks fail (another transaction's savepoint, including one of
//! an ended transaction that used the same slot, or one invalidated by a
//! rollback to an earlier savepoint or released) and what every read sees
//! after one.

use bwtx::Error;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::ops::Target;
use crate::run::Run;

impl Run<'_> {
    /// `Op::Savepoint`: take a savepoint of the transaction in `slot`
    /// (begun if the slot is empty), keep it in savepoint slot `sp`.
    pub fn savepoint(&mut self, slot: usize, sp: usize) -> Result<(), TestCaseError> {
        self.ensure_txn(slot)?;
        let (tx, m) = self.txns[slot].as_mut().unwrap();
        let savepoint = tx.savepoint();
        let serial = m.savepoint();
        self.savepoints[sp] = Some((savepoint, m.id, serial));
        Ok(())
    }

    /// `Op::RollbackTo`: roll the transaction in `slot` (begun if the slot
    /// is empty) back to the savepoint in slot `sp`, if there is one; then
    /// check its writes and a full scan in both directions.
    pub fn rollback_to(&mut self, slot: usize, sp: usize, ctx: &str) -> Result<(), TestCaseError> {
        self.on_savepoint(slot, sp, SavepointOp::RollbackTo, ctx)
    }

    /// `Op::ReleaseSavepoint`: release the savepoint in slot `sp` (and
    /// those after it) in the transaction in `slot` (begun if the slot is
    /// empty), if there is one; the writes stay, checked by a full scan.
    pub fn release_savepoint(&mut self, slot: usize, sp: usize, ctx: &str) -> Result<(), TestCaseError> {
        self.on_savepoint(slot, sp, SavepointOp::Release, ctx)
    }

    /// `op` on the savepoint in slot `sp` of the transaction in `slot`
    /// (begun if the slot is empty), in bwtx and in the model: it succeeds
    /// exactly when the model says the savepoint is valid, and fails with
    /// `InvalidArgument` otherwise; then the writes and a full scan in
    /// both directions are checked.
    fn on_savepoint(&mut self, slot: usize, sp: usize, op: SavepointOp, ctx: &str) -> Result<(), TestCaseError> {
        let Some((savepoint, id, serial)) = self.savepoints[sp].clone() else {
            return Ok(());
        };
        self.ensure_txn(slot)?;
        let (tx, m) = self.txns[slot].as_mut().unwrap();
        let (got, valid, what) = match op {
            SavepointOp::RollbackTo => (tx.rollback_to(&savepoint), m.rollback_to(id, serial), "rollback to"),
            SavepointOp::Release => (
                tx.release_savepoint(&savepoint),
                m.release_savepoint(id, serial),
                "release of",
            ),
        };
        match got {
            Ok(()) => prop_assert!(valid, "{}: {} an invalid savepoint succeeded", ctx, what),
            Err(Error::InvalidArgument(_)) => {
                prop_assert!(!valid, "{}: {} a valid savepoint failed", ctx, what)
            }
            Err(e) => return Err(TestCaseError::fail(format!("{ctx}: {what} a savepoint: {e}"))),
        }
        prop_assert_eq!(tx.write_count(), m.writes.len(), "{}: write_count", ctx);
        self.check_all(Target::Txn(slot), ctx)
    }
}

/// What [`Run::on_savepoint`] does with a savepoint.
#[derive(Clone, Copy)]
enum SavepointOp {
    RollbackTo,
    Release,
}
