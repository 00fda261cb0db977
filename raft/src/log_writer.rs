//! The log store's writer thread: every log write of one replica, in call
//! order, with appends batched into one bwtx commit.
//!
//! `LogStore::append` puts its entries into the shared [`Pending`] memory
//! (readable at once, as openraft requires when `append` returns) and
//! queues an [`Op::Append`]; it does not wait for the disk. The writer
//! takes every op queued so far, commits the consecutive appends among them
//! in **one** bwtx transaction (its group commit's fsync makes them
//! durable), then marks them durable in memory (they stay readable there
//! among the recent entries, module `log_memory`) and fires their
//! `IOFlushed` callbacks, in order. So appends that queue while one fsync
//! runs share the next one. (openraft 0.10's core does not wait for its
//! own appends' callbacks before it replicates the entries: a leader's
//! fsync overlaps its followers'; it counts itself in the commit quorum
//! only once the callback fired, `design/replication.md` §10.)
//!
//! Votes, truncations and purges go through the same queue, each its own
//! commit after the appends queued before it, and their callers wait for
//! it. After a failed commit every later op fails too (the store is
//! poisoned, as bwtx is; openraft stops the node on the first error). A
//! commit that panics (a bug, or a file system whose write or sync panics)
//! is such a failure: the writer catches it, so every callback still
//! fires, with the error. The entries of a failed append leave the pending
//! memory: they are not in the log, and never will be.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

use openraft::storage::IOFlushed;
use tokio::sync::oneshot;

use crate::error::Error;
use crate::keys::{self, LOG_PREFIX};
use crate::log_memory::Memory;
use crate::types::{LogId, TypeConfig};

/// The entries in memory: pending and recent ([`Memory`]).
pub(crate) type Pending = Mutex<Memory>;

/// A queued log write.
pub(crate) enum Op {
    /// Put these encoded entries; then fire `callback`.
    Append {
        records: Vec<(u64, Vec<u8>)>,
        ids: Vec<LogId>,
        callback: IOFlushed<TypeConfig>,
        /// The node whose steps [`crate::trace`] records.
        node: u64,
    },
    /// Delete the entries with index in `[from, to)` and put `extra`.
    Delete {
        from: u64,
        to: Option<u64>,
        extra: Option<(&'static [u8], Vec<u8>)>,
        done: oneshot::Sender<Result<(), Error>>,
    },
    /// Put one key (the vote).
    Put {
        key: &'static [u8],
        value: Vec<u8>,
        done: oneshot::Sender<Result<(), Error>>,
    },
}

type AppendOp = (Vec<(u64, Vec<u8>)>, Vec<LogId>, IOFlushed<TypeConfig>, u64);

/// Start the writer of `db`'s log; it stops when every sender is dropped.
pub(crate) fn spawn(db: bwtx::Db, pending: Arc<Pending>) -> Result<Sender<Op>, Error> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bwtx-raft-log".to_string())
        .spawn(move || {
            Writer {
                db,
                pending,
                failed: None,
            }
            .run(rx)
        })
        .map_err(|e| Error::Bwtx(bwtx::Error::Io(e)))?;
    Ok(tx)
}

struct Writer {
    db: bwtx::Db,
    pending: Arc<Pending>,
    /// The first failure; every later op fails with it.
    failed: Option<String>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Op>) {
        while let Ok(first) = rx.recv() {
            let mut appends: Vec<AppendOp> = Vec::new();
            for op in std::iter::once(first).chain(rx.try_iter()) {
                match op {
                    Op::Append {
                        records,
                        ids,
                        callback,
                        node,
                    } => appends.push((records, ids, callback, node)),
                    Op::Delete { from, to, extra, done } => {
                        self.flush(&mut appends);
                        let r = self.checked(|db| delete(db, from, to, extra));
                        let _ = done.send(r);
                    }
                    Op::Put { key, value, done } => {
                        self.flush(&mut appends);
                        let r = self.checked(|db| {
                            let mut tx = db.begin();
                            tx.put(key, value)?;
                            tx.commit()?;
                            Ok(())
                        });
                        let _ = done.send(r);
                    }
                }
            }
            self.flush(&mut appends);
        }
    }

    /// Run `f` unless poisoned; a failure, or a panic, poisons.
    fn checked(&mut self, f: impl FnOnce(&bwtx::Db) -> Result<(), Error>) -> Result<(), Error> {
        if let Some(msg) = &self.failed {
            return Err(Error::Raft(format!("log store failed earlier: {msg}")));
        }
        // Unwind safety: after a panic nothing of `f`'s is used again (the
        // writer is poisoned), and bwtx poisons its own log when a commit
        // unwinds past its timestamp's allocation.
        let db = &self.db;
        let r = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(db))) {
            Ok(r) => r,
            Err(payload) => Err(Error::Raft(format!(
                "the log writer's commit panicked: {}",
                panic_message(payload.as_ref())
            ))),
        };
        if let Err(e) = &r {
            self.failed = Some(e.to_string());
        }
        r
    }

    /// Commit the queued appends in one transaction, then drop them from
    /// `Pending` and fire their callbacks in order.
    fn flush(&mut self, appends: &mut Vec<AppendOp>) {
        if appends.is_empty() {
            return;
        }
        for (_, ids, _, node) in appends.iter() {
            crate::trace::events(*node, ids.iter().map(|id| id.index), crate::trace::Step::WriteStart);
        }
        let r = self.checked(|db| {
            let mut tx = db.begin();
            for (records, _, _, _) in appends.iter() {
                for (index, raw) in records {
                    tx.put(keys::log_key(*index), raw)?;
                }
            }
            // Durability::Sync: returns once the group commit's fsync covers it.
            tx.commit()?;
            Ok(())
        });
        {
            let mut memory = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if r.is_ok() {
                for (records, ids, _, _) in appends.iter() {
                    for ((_, raw), id) in records.iter().zip(ids) {
                        memory.durable(id, raw.len());
                    }
                }
            } else if let Some(first) = appends.iter().flat_map(|(_, ids, _, _)| ids.first()).next() {
                // Appends run in index order and every later op fails
                // too: nothing from the first failed entry on is durable.
                memory.lost(first.index);
            }
        }
        for (_, ids, callback, node) in appends.drain(..) {
            if r.is_ok() {
                crate::trace::events(node, ids.iter().map(|id| id.index), crate::trace::Step::Durable);
            }
            let result = match &r {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            callback.io_completed(result);
        }
    }
}

/// A panic's message, if it has one.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Delete the committed entries with index in `[from, to)` and put `extra`,
/// in one commit.
///
/// A purge (`to` given) names its entries' keys without reading them: a
/// raft log has no holes (appends follow the last entry, a truncation
/// removes a suffix, a purge a prefix, and the writer runs them in order),
/// so the entries in `[from, to)` are exactly the indexes from the first
/// entry at or after `from` up to `to` or the last entry. Scanning them
/// instead read every entry's value, from the value log for large entries
/// and, with a page cache (`Limits::log_cache_size`), from leaves on disk:
/// in `tests/log_cache.rs` the purge of 1,228 evicted entries read 115
/// leaves that way, 76 this way (the rest is the tree's own upkeep after
/// the deletes, which faults the emptied leaves in to collect them). A
/// truncation (`to` `None`: the uncommitted tail, a few entries) still
/// scans.
fn delete(db: &bwtx::Db, from: u64, to: Option<u64>, extra: Option<(&'static [u8], Vec<u8>)>) -> Result<(), Error> {
    let mut tx = db.begin();
    let index_of = |kv: Option<bwtx::Result<(bytes::Bytes, bytes::Bytes)>>| -> Result<Option<u64>, Error> {
        match kv.transpose()? {
            Some((key, _)) if key.starts_with(LOG_PREFIX) => Ok(Some(keys::log_index(&key)?)),
            _ => Ok(None),
        }
    };
    let doomed: Vec<Vec<u8>> = match to {
        Some(to) => {
            let first = index_of(tx.range(keys::log_key(from)..).next())?;
            let last = index_of(tx.prefix(LOG_PREFIX).next_back())?;
            match (first, last) {
                (Some(first), Some(last)) => (first..to.min(last.saturating_add(1))).map(keys::log_key).collect(),
                _ => Vec::new(),
            }
        }
        None => {
            let mut doomed = Vec::new();
            for kv in tx.range(keys::log_key(from)..) {
                let (key, _) = kv?;
                if !key.starts_with(LOG_PREFIX) {
                    break;
                }
                doomed.push(key.to_vec());
            }
            doomed
        }
    };
    for key in doomed {
        tx.delete(key)?;
    }
    if let Some((k, v)) = extra {
        tx.put(k, v)?;
    }
    tx.commit()?;
    Ok(())
}
