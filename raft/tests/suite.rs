//! openraft's storage test suite (`openraft::testing::log::Suite::test_all`)
//! against the bwtx log store and state machine, each test on a fresh
//! directory with the two `Db`s a node uses (log: sync; state: buffered)
//! and its snapshot directory.

use bwtx_raft::{LogStore, StateMachine, TypeConfig};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::{ErrorSubject, ErrorVerb, StorageError};

struct BwtxBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for BwtxBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let err = |e: bwtx_raft::Error| {
            StorageError::from_io_error(
                ErrorSubject::Store,
                ErrorVerb::Write,
                std::io::Error::other(e.to_string()),
            )
        };
        let log_db = bwtx::Db::open(dir.path().join("log")).map_err(|e| err(e.into()))?;
        let sm_db = bwtx::Options::new()
            .durability(bwtx::Durability::Buffered(std::time::Duration::from_millis(100)))
            .open(dir.path().join("state"))
            .map_err(|e| err(e.into()))?;
        let sm = StateMachine::open(sm_db, &dir.path().join("snapshots"), Default::default()).map_err(err)?;
        Ok((dir, LogStore::new(log_db).map_err(err)?, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(BwtxBuilder).await {
        panic!("openraft's storage suite failed: {e}");
    }
}
