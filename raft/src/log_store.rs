//! [`LogStore`]: openraft's `RaftLogStorage` on a bwtx `Db`.
//!
//! The vote, the last purged log id and the entries live under the `raft/`
//! keys of the replica's `Db` ([`crate::keys`]). Every write is one bwtx
//! commit; the `Db` runs with [`bwtx::Durability::Sync`], so a commit
//! returns after the group commit's fsync, which it shares with concurrent
//! commits (the state machine's applies among them). `append` fires
//! openraft's `LogFlushed` callback only after that commit returned: the
//! entries are durable by then, and no extra fsync is made.
//!
//! Commits block on the fsync, so they run on tokio's blocking pool
//! (`blocking`); reads come from a bwtx snapshot and never block.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote};

use crate::error::Error;
use crate::keys::{self, LOG_PREFIX, PURGED, VOTE};
use crate::types::{NodeId, TypeConfig};

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// The raft log of one replica, in its bwtx `Db`. Cloning it is cheap (a
/// `Db` handle); the clone is the log reader openraft's replication tasks
/// use.
#[derive(Clone)]
pub struct LogStore {
    db: bwtx::Db,
}

impl LogStore {
    /// The log store of `db` (which the state machine shares).
    pub fn new(db: bwtx::Db) -> LogStore {
        LogStore { db }
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, key: &[u8], what: &str) -> Result<Option<T>, Error> {
        match self.db.snapshot().get(key)? {
            Some(raw) => Ok(Some(keys::from_json(&raw, what)?)),
            None => Ok(None),
        }
    }

    fn last_entry_id(&self) -> Result<Option<LogId<NodeId>>, Error> {
        match self.db.snapshot().prefix(LOG_PREFIX).next_back() {
            Some(kv) => {
                let (_, raw) = kv?;
                let entry: Entry<TypeConfig> = keys::from_json(&raw, "log entry")?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }

    fn read_range(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry<TypeConfig>>, Error> {
        let snap = self.db.snapshot();
        let mut out = Vec::new();
        for kv in snap.range(keys::log_key(start)..) {
            let (key, raw) = kv?;
            if !key.starts_with(LOG_PREFIX) {
                break;
            }
            let entry: Entry<TypeConfig> = keys::from_json(&raw, "log entry")?;
            if end.is_some_and(|e| entry.log_id.index >= e) {
                break;
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// Delete the entries with index in `[from, to)` and write `extra`, in
    /// one commit.
    async fn delete_range(&self, from: u64, to: Option<u64>, extra: Option<(&[u8], Vec<u8>)>) -> Result<(), Error> {
        let doomed: Vec<u64> = self.read_range(from, to)?.iter().map(|e| e.log_id.index).collect();
        let extra = extra.map(|(k, v)| (k.to_vec(), v));
        let db = self.db.clone();
        blocking(move || {
            let mut tx = db.begin();
            for i in doomed {
                tx.delete(keys::log_key(i))?;
            }
            if let Some((k, v)) = extra {
                tx.put(k, v)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

/// Run a blocking bwtx operation (a commit waits for the log's fsync) on
/// tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Raft(format!("blocking task failed: {e}")))?
}

fn bounds(range: &impl RangeBounds<u64>) -> Option<(u64, Option<u64>)> {
    let start = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&i) => i.checked_add(1),
        Bound::Excluded(&i) => Some(i),
        Bound::Unbounded => None,
    };
    Some((start, end))
}

fn read_err(e: Error) -> StorageError<NodeId> {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err(e: Error) -> StorageError<NodeId> {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        match bounds(&range) {
            Some((start, end)) => self.read_range(start, end).map_err(read_err),
            None => Ok(Vec::new()),
        }
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.get_json(PURGED, "purged log id").map_err(read_err)?;
        let last = self.last_entry_id().map_err(read_err)?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        let db = self.db.clone();
        let raw = keys::to_json(vote);
        blocking(move || {
            let mut tx = db.begin();
            tx.put(VOTE, raw)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        self.get_json(VOTE, "vote")
            .map_err(|e| StorageIOError::read_vote(AnyError::new(&e)).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let records: Vec<(Vec<u8>, Vec<u8>)> = entries
            .into_iter()
            .map(|e| (keys::log_key(e.log_id.index), keys::to_json(&e)))
            .collect();
        let db = self.db.clone();
        let result = blocking(move || {
            let mut tx = db.begin();
            for (k, v) in records {
                tx.put(k, v)?;
            }
            // Durability::Sync: returns once the group commit's fsync covers it.
            tx.commit()?;
            Ok(())
        })
        .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.delete_range(log_id.index, None, None).await.map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let end = log_id.index.checked_add(1);
        self.delete_range(0, end, Some((PURGED, keys::to_json(&log_id))))
            .await
            .map_err(write_err)
    }
}
