//! openraft's storage test suite (`openraft::testing::Suite::test_all`)
//! against the bwtx log store and state machine, each test on a fresh
//! database directory.

use bwtx_raft::{LogStore, NodeId, StateMachine, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{AnyError, StorageError, StorageIOError};

struct BwtxBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for BwtxBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = bwtx::Db::open(dir.path()).map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        let log = LogStore::new(db.clone()).map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        Ok((dir, log, StateMachine::new(db)))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(BwtxBuilder) {
        panic!("openraft's storage suite failed: {e}");
    }
}
