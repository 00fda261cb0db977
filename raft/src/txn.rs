//! [`Txn`]: a replicated read-write transaction, at snapshot isolation or
//! serializable.
//!
//! A transaction reads a local bwtx snapshot at applied log index `P`
//! ([`crate::ReadSnapshot::position`]) and buffers its writes; `commit`
//! proposes the write set with `P` through the node's proposer (which
//! batches concurrent proposals into one raft entry, [`crate::proposer`])
//! and returns what the state machine decided (`design/replication.md` §3):
//! the commit's log index, or [`bwtx::Error::Conflict`] whose `winner` and
//! `snapshot` are log indexes.
//!
//! A serializable transaction also records what it read from the snapshot:
//! every key it looked up (found or absent; not the keys it wrote itself
//! first, which its own write set answers) and every range it scanned,
//! narrowed to the part consumed when a scan stopped at its limit. The
//! proposal carries them, and every replica's apply aborts the transaction
//! if an entry applied after `P` wrote any of them ([`crate::validate`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::keys::{self, MAX_USER_KEY_LEN, MAX_USER_VALUE_LEN};
use crate::node::ReadSnapshot;
use crate::proposer::Proposer;
use crate::types::{Conflicted, KeyRange, Proposal, Response};

/// A replicated read-write transaction: reads one snapshot plus its own
/// writes, commits through raft with first-committer-wins (and, when
/// serializable, validation of its reads).
pub struct Txn {
    proposer: Proposer,
    read: ReadSnapshot,
    level: bwtx::Isolation,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Serializable only: what was read from the snapshot. A lock, not a
    /// `RefCell`, so reads through `&self` keep the transaction `Sync`.
    reads: Mutex<Reads>,
}

#[derive(Default)]
struct Reads {
    keys: BTreeSet<Vec<u8>>,
    ranges: Vec<KeyRange>,
}

impl Txn {
    pub(crate) fn new(proposer: Proposer, read: ReadSnapshot, level: bwtx::Isolation) -> Txn {
        Txn {
            proposer,
            read,
            level,
            writes: BTreeMap::new(),
            reads: Mutex::new(Reads::default()),
        }
    }

    /// The applied log index the transaction's snapshot reflects.
    pub fn position(&self) -> u64 {
        self.read.position()
    }

    /// The transaction's isolation level.
    pub fn isolation(&self) -> bwtx::Isolation {
        self.level
    }

    fn serializable(&self) -> bool {
        self.level == bwtx::Isolation::Serializable
    }

    fn record(&self, f: impl FnOnce(&mut Reads)) {
        if self.serializable() {
            f(&mut self.reads.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }

    /// The value of `key`: the transaction's own write, else the snapshot's
    /// (recorded as a read when serializable).
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        match self.writes.get(key) {
            Some(w) => Ok(w.as_ref().map(|v| Bytes::copy_from_slice(v))),
            None => {
                check_key(key)?;
                self.record(|r| {
                    r.keys.insert(key.to_vec());
                });
                self.read.get(key)
            }
        }
    }

    /// The live keys from `start` (included) to `end` (excluded; `None`: no
    /// bound) with their values, in key order, at most `limit` of them: the
    /// snapshot merged with the transaction's own writes. When serializable
    /// the range is recorded, narrowed to end just after the last key
    /// returned if the limit cut the scan short.
    pub fn scan(&self, start: impl AsRef<[u8]>, end: Option<&[u8]>, limit: usize) -> Result<Vec<(Bytes, Bytes)>> {
        let start = start.as_ref();
        check_key(start)?;
        if let Some(e) = end {
            check_key(e)?;
            if e <= start {
                return Ok(Vec::new());
            }
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut snap = self.read.scan_raw(start, end);
        let own_end = end.map_or(Bound::Unbounded, Bound::Excluded);
        let mut own = self.writes.range::<[u8], _>((Bound::Included(start), own_end));
        let mut s_next = snap.next().transpose()?;
        let mut o_next = own.next();
        let mut cut = None;
        loop {
            let (key, value) = match (&s_next, o_next) {
                (None, None) => break,
                (Some((sk, _)), Some((ok, ov))) if ok.as_slice() <= sk.as_ref() => {
                    if ok.as_slice() == sk.as_ref() {
                        s_next = snap.next().transpose()?;
                    }
                    o_next = own.next();
                    (Bytes::copy_from_slice(ok), ov.as_deref().map(Bytes::copy_from_slice))
                }
                (None, Some((ok, ov))) => {
                    o_next = own.next();
                    (Bytes::copy_from_slice(ok), ov.as_deref().map(Bytes::copy_from_slice))
                }
                (Some(_), _) => {
                    let Some((k, v)) = s_next.take() else { break };
                    s_next = snap.next().transpose()?;
                    (k, v)
                }
            };
            if let Some(v) = value {
                out.push((key.clone(), v));
                if out.len() == limit {
                    cut = Some(key);
                    break;
                }
            }
        }
        // A cut scan consumed `[start, last key]`: record `[start, last key
        // + 0x00)`, unless that bound would exceed the key limit.
        let end = match cut {
            Some(last) if last.len() < MAX_USER_KEY_LEN => {
                let mut e = last.to_vec();
                e.push(0);
                Some(e)
            }
            _ => end.map(<[u8]>::to_vec),
        };
        self.record(|r| {
            r.ranges.push(KeyRange {
                start: start.to_vec(),
                end,
            })
        });
        Ok(out)
    }

    /// Every live key starting with `prefix` and its value, in key order, as
    /// [`Txn::scan`] of the prefix's range without a limit.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Vec<(Bytes, Bytes)>> {
        let prefix = prefix.as_ref();
        self.scan(prefix, keys::prefix_end(prefix).as_deref(), usize::MAX)
    }

    /// Buffer a write of `value` to `key`. Keys and values over the limits
    /// ([`keys::MAX_USER_KEY_LEN`], [`keys::MAX_USER_VALUE_LEN`]) are
    /// refused here, as bwtx refuses them.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        check_key(key)?;
        if value.len() > MAX_USER_VALUE_LEN {
            return Err(bwtx::Error::ValueTooLarge {
                len: value.len(),
                max: MAX_USER_VALUE_LEN,
            }
            .into());
        }
        self.writes.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    /// Buffer a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        check_key(key.as_ref())?;
        self.writes.insert(key.as_ref().to_vec(), None);
        Ok(())
    }

    /// Propose the writes (and, serializable, the reads) through raft and
    /// wait for the outcome: the commit's log index (the snapshot's
    /// position if nothing was written: a read-only transaction reads one
    /// consistent prefix of the log, so it needs no validation), or
    /// [`bwtx::Error::Conflict`] (see [`Error::is_conflict`]) if an entry
    /// applied after the snapshot wrote one of the keys written
    /// ([`bwtx::ConflictReason::Write`]), read ([`bwtx::ConflictReason::Read`])
    /// or inside a scanned range ([`bwtx::ConflictReason::Range`]). On a
    /// node that is not (or no longer) the leader, the proposal is
    /// forwarded to the leader it knows of ([`crate::proposer`]); if it
    /// knows none, or cannot reach it: [`Error::NotLeader`], and nothing was
    /// proposed. [`Error::Raft`] means the outcome is unknown (the node
    /// stopped after proposing). [`bwtx::Error::SnapshotTooOld`]: the
    /// snapshot fell more than the tombstone horizon behind the log
    /// ([`crate::Node::set_tombstone_horizon`]); nothing was written, and
    /// running it again on a fresh snapshot may succeed.
    /// [`bwtx::Error::InvalidArgument`]: its keys, values, reads and scanned
    /// ranges' bounds, with what their encoding adds to each
    /// ([`Proposal::bytes`]), come to more than
    /// [`crate::types::MAX_PROPOSAL_BYTES`]; nothing was proposed.
    ///
    /// Dropping the returned future (a timeout around it) leaves the
    /// outcome unknown: a proposal still queued on this node is dropped
    /// unsent, one already sent may still commit. The scanned ranges are
    /// proposed joined where they overlap or touch ([`KeyRange::merged`]).
    pub async fn commit(self) -> Result<u64> {
        if self.writes.is_empty() {
            return Ok(self.read.position());
        }
        let snapshot = self.read.position();
        drop(self.read);
        let reads = self.reads.into_inner().unwrap_or_else(PoisonError::into_inner);
        let proposal = Proposal {
            snapshot,
            writes: self.writes.into_iter().collect(),
            reads: reads.keys.into_iter().collect(),
            ranges: KeyRange::merged(reads.ranges),
        };
        if proposal.bytes() > crate::types::MAX_PROPOSAL_BYTES {
            return Err(bwtx::Error::InvalidArgument(
                "a replicated transaction's keys, values, reads and range bounds exceed 32 MiB (MAX_PROPOSAL_BYTES, counting 11 bytes of encoding a write or a range and 5 a read)",
            )
            .into());
        }
        outcome(self.proposer.propose(proposal).await?)
    }
}

/// A replicated transaction's outcome: the commit's log index, or the
/// error bwtx would return locally ([`bwtx::Error::Conflict`],
/// [`bwtx::Error::SnapshotTooOld`]), or [`Error::Rejected`].
pub(crate) fn outcome(resp: Response) -> Result<u64> {
    match resp {
        Response::Committed { index } => Ok(index),
        Response::Conflict {
            key,
            winner,
            snapshot,
            reason,
        } => Err(bwtx::Error::Conflict {
            key: Bytes::from(key),
            winner,
            snapshot,
            reason: Box::new(conflict_reason(reason)),
        }
        .into()),
        Response::TooOld { snapshot, oldest } => Err(bwtx::Error::SnapshotTooOld {
            requested: snapshot,
            oldest,
        }
        .into()),
        Response::Rejected { reason } => Err(Error::Rejected(reason)),
        other => Err(Error::Raft(format!("a transaction's entry applied as {other:?}"))),
    }
}

/// bwtx's reason for a replicated conflict.
fn conflict_reason(c: Conflicted) -> bwtx::ConflictReason {
    match c {
        Conflicted::Write => bwtx::ConflictReason::Write,
        Conflicted::Read => bwtx::ConflictReason::Read,
        Conflicted::Range(r) => bwtx::ConflictReason::Range {
            start: Bound::Included(Bytes::from(r.start)),
            end: r.end.map_or(Bound::Unbounded, |e| Bound::Excluded(Bytes::from(e))),
        },
    }
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_USER_KEY_LEN {
        return Err(bwtx::Error::KeyTooLarge {
            len: key.len(),
            max: MAX_USER_KEY_LEN,
        }
        .into());
    }
    Ok(())
}
