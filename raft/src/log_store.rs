//! [`LogStore`]: openraft's `RaftLogStorage` on a bwtx `Db`.
//!
//! The vote, the last purged log id and the entries live under the `raft/`
//! keys of the replica's log `Db` ([`crate::keys`]). Every write goes
//! through the store's writer thread (module `log_writer`), in call order:
//! appends are batched into one bwtx commit each round, and the `Db` runs
//! with [`bwtx::Durability::Sync`], so that commit returns after the group
//! commit's fsync. openraft's `IOFlushed` callback fires
//! only after that commit returned: the entries are durable by then, and no
//! extra fsync is made.
//!
//! `append` returns before the commit: its entries wait in a shared map of
//! pending entries, which reads consult before the `Db`, so they are
//! readable at once as openraft requires. After their commit they stay in
//! memory among the most recent entries (module `log_memory`), so the reads
//! that follow an append (replication, then apply) take them from there
//! without reading the `Db` or decoding an entry. Votes, truncations and purges
//! wait for their commit.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader};
use tokio::sync::oneshot;

use crate::error::Error;
use crate::keys::{self, LOG_PREFIX, PURGED, VOTE};
use crate::log_memory::Memory;
use crate::log_writer::{self, Op, Pending};
use crate::types::{Entry, LogId, NodeId, TypeConfig, Vote};

/// openraft 0.10's storage result: errors are plain `io::Error`s (the
/// crate's [`Error`] as their message).
type StorageResult<T> = Result<T, std::io::Error>;

/// The raft log of one replica, in its bwtx `Db`. Cloning it is cheap (it
/// shares the `Db`, the pending entries and the writer); the clone is the
/// log reader openraft's replication tasks use.
#[derive(Clone)]
pub struct LogStore {
    db: bwtx::Db,
    pending: Arc<Pending>,
    writer: Sender<Op>,
    /// The node its steps are recorded for ([`LogStore::traced`]).
    trace_node: u64,
}

impl LogStore {
    /// The log store in `db` (open it with [`bwtx::Durability::Sync`]: an
    /// appended entry is durable when its commit returns). Starts its
    /// writer thread (which stops when the last clone is dropped); failing
    /// to start it is [`bwtx::Error::Io`].
    pub fn new(db: bwtx::Db) -> Result<LogStore, Error> {
        let pending = Arc::new(Pending::default());
        let writer = log_writer::spawn(db.clone(), pending.clone())?;
        Ok(LogStore {
            db,
            pending,
            writer,
            trace_node: u64::MAX,
        })
    }

    /// Record this store's steps as node `node`'s when [`crate::trace`] is
    /// on.
    pub fn traced(mut self, node: NodeId) -> LogStore {
        self.trace_node = node;
        self
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, key: &[u8], what: &str) -> Result<Option<T>, Error> {
        match self.db.snapshot().get(key)? {
            Some(raw) => Ok(Some(keys::from_json(&raw, what)?)),
            None => Ok(None),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, Error> {
        let lost = {
            let memory = self.pending();
            if let Some(id) = memory.last_id() {
                return Ok(Some(id));
            }
            memory.lost_from()
        };
        let snap = self.db.snapshot();
        // Below a failed append's entries, which the `Db` may show
        // (`log_memory` M3).
        let last = match lost {
            Some(l) => snap.range(..keys::log_key(l)).next_back(),
            None => snap.prefix(LOG_PREFIX).next_back(),
        };
        match last.transpose()? {
            Some((key, raw)) if key.starts_with(LOG_PREFIX) => {
                let entry: Entry = keys::decode_entry(&raw)?;
                Ok(Some(entry.log_id))
            }
            _ => Ok(None),
        }
    }

    /// The entries with index in `[start, end)`: those in memory (read
    /// first: the writer commits an entry before it leaves the pending
    /// map), and, unless they hold every index of a bounded range, the
    /// committed ones from the `Db`.
    fn read_range(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry>, Error> {
        let (mut out, end) = {
            let memory = self.pending();
            // Not from a failed append on (`log_memory` M3). A bounded read
            // that reaches past it asks for entries openraft submitted and
            // this store lost: an error, never a short answer (openraft
            // would apply a short read of committed entries as if it held
            // them all, and count them applied). An open-ended read ends
            // where the log does.
            let lost = memory.lost_from();
            if let (Some(e), Some(l)) = (end, lost) {
                if e > l {
                    return Err(Error::Raft(format!(
                        "the log store failed at entry {l}: entries {start}..{e} cannot all be read"
                    )));
                }
            }
            let end = end.or(lost);
            if end.is_some_and(|e| start >= e) {
                return Ok(Vec::new());
            }
            (memory.range(start, end), end)
        };
        if end.is_some_and(|e| out.len() as u64 >= e.saturating_sub(start)) {
            return Ok(out.into_values().collect());
        }
        let snap = self.db.snapshot();
        for kv in snap.range(keys::log_key(start)..) {
            let (key, raw) = kv?;
            if !key.starts_with(LOG_PREFIX) {
                break;
            }
            let index = keys::log_index(&key)?;
            if end.is_some_and(|e| index >= e) {
                break;
            }
            if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(index) {
                slot.insert(keys::decode_entry(&raw)?);
            }
        }
        // openraft requires the entries it reads to be consecutive: a
        // missing one (a lost record) would be applied past as if it were
        // not there, and the replicas would diverge.
        let mut indexes = out.keys();
        if let Some(&first) = indexes.next() {
            if let Some((i, _)) = indexes.zip(first + 1..).find(|(i, want)| **i != *want) {
                return Err(Error::Corrupt(format!(
                    "the log has a hole before entry {i}: read from {start}, the last one before it is missing"
                )));
            }
        }
        Ok(out.into_values().collect())
    }

    /// Queue `op` (built around a reply channel) and wait for the writer.
    async fn call(&self, op: impl FnOnce(oneshot::Sender<Result<(), Error>>) -> Op) -> Result<(), Error> {
        let (done, wait) = oneshot::channel();
        self.writer.send(op(done)).map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Raft("the log writer stopped".to_string())
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

fn read_err(e: Error) -> std::io::Error {
    std::io::Error::other(format!("reading the raft log: {e}"))
}

fn write_err(e: Error) -> std::io::Error {
    std::io::Error::other(format!("writing the raft log: {e}"))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry>> {
        match bounds(&range) {
            Some((start, end)) => self.read_range(start, end).map_err(read_err),
            None => Ok(Vec::new()),
        }
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote>> {
        self.get_json(VOTE, "vote")
            .map_err(|e| std::io::Error::other(format!("reading the vote: {e}")))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId> = self.get_json(PURGED, "purged log id").map_err(read_err)?;
        let last = self.last_entry_id().map_err(read_err)?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> StorageResult<()> {
        let value = keys::to_json(vote);
        self.call(|done| Op::Put { key: VOTE, value, done })
            .await
            .map_err(|e| std::io::Error::other(format!("saving the vote: {e}")))
    }

    /// Make the entries readable (pending) and queue their commit; the
    /// writer fires `callback` once the commit, and so the fsync, is done.
    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let records = entries
            .iter()
            .map(|e| (e.log_id.index, keys::encode_entry(e)))
            .collect();
        let ids: Vec<LogId> = entries.iter().map(|e| e.log_id).collect();
        crate::trace::events(
            self.trace_node,
            ids.iter().map(|id| id.index),
            crate::trace::Step::Append,
        );
        {
            let mut memory = self.pending();
            for e in entries {
                memory.append(e);
            }
        }
        self.writer
            .send(Op::Append {
                records,
                ids,
                callback,
                node: self.trace_node,
            })
            .map_err(|_| write_err(stopped()))
    }

    /// Delete every entry after `last` (all of them for `None`).
    async fn truncate_after(&mut self, last: Option<LogId>) -> StorageResult<()> {
        let from = last.map_or(0, |l| l.index + 1);
        self.call(|done| Op::Delete {
            from,
            to: None,
            extra: None,
            done,
        })
        .await
        .map_err(write_err)?;
        // Appends queued before the truncation are committed (and deleted)
        // by now; none after it, since openraft waits for this call.
        self.pending().truncate(from);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> StorageResult<()> {
        let extra = Some((PURGED, keys::to_json(&log_id)));
        let to = log_id.index.checked_add(1);
        self.call(|done| Op::Delete {
            from: 0,
            to,
            extra,
            done,
        })
        .await
        .map_err(write_err)?;
        self.pending().purge(log_id.index);
        Ok(())
    }
}
