//! openraft's storage test suite (`openraft::testing::Suite::test_all`)
//! against the bwtx log store and state machine, each test on a fresh
//! directory with the two `Db`s a node uses (log: sync; state: buffered).

use bwtx_raft::{LogStore, NodeId, StateMachine, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{AnyError, StorageError, StorageIOError};

struct BwtxBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for BwtxBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let err = |e: bwtx_raft::Error| StorageIOError::write(AnyError::new(&e));
        let log_db = bwtx::Db::open(dir.path().join("log")).map_err(|e| err(e.into()))?;
        let sm_db = bwtx::Options::new()
            .durability(bwtx::Durability::Buffered(std::time::Duration::from_millis(100)))
            .open(dir.path().join("state"))
            .map_err(|e| err(e.into()))?;
        Ok((dir, LogStore::new(log_db).map_err(err)?, StateMachine::new(sm_db)))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(BwtxBuilder) {
        panic!("openraft's storage suite failed: {e}");
    }
}
