//! [`StateMachine`]: openraft's `RaftStateMachine` on a bwtx `Db`, with
//! first-committer-wins validation of replicated transactions.
//!
//! **Apply.** A batch of entries is applied in one bwtx commit (more when
//! its proposals pass `APPLY_BUDGET` bytes, or tombstone collection deletes
//! much; each commit ends after an entry) that also
//! writes the applied log id and the membership (`sm/applied`), so "applied
//! up to" and the data never disagree after a crash. Each [`Command::Txn`]
//! is validated in log order, against the state the earlier entries left
//! (the batch's own writes included, read through the bwtx transaction):
//! if any key it writes was last written by an entry after the proposal's
//! snapshot position (serializable: or any key it read, or any key in a
//! range it scanned; [`crate::validate`]), it aborts with
//! [`Response::Conflict`] and writes nothing; otherwise every write stores the entry's index beside the value
//! ([`keys::encode_value`]). A [`Command::Batch`] decides its proposals in
//! order, each as a `Txn` at the entry's index would be, so a later one
//! conflicts with an earlier one of the same batch that wrote its key. The
//! decision depends only on the log prefix, so every replica makes the same
//! one (`design/replication.md` §3). A batch of at most [`INLINE_APPLY`]
//! transactions is applied on openraft's state-machine task itself (a
//! buffered commit is shorter than the hop to tokio's blocking pool);
//! larger ones on the blocking pool.
//!
//! **Tombstones.** A delete stores a tombstone (keeping `L(k)`) and a
//! tombstone index key. After each entry the tombstone floor rises to the
//! entry's index less the horizon ([`AppliedState::floor`]); a proposal
//! whose snapshot is below the floor as the entries before it left it is
//! [`Response::TooOld`], and after each entry the oldest tombstones at or
//! below the floor are deleted, a bounded number per entry (the rest after
//! the next entries): none of them could decide anything
//! (`design/replication.md` §3, "Tombstone collection").
//!
//! **Durability.** The node opens the state machine's `Db` with
//! [`bwtx::Durability::Buffered`]: an apply waits for no fsync. A process
//! kill loses nothing; a power loss may lose the last applies, whole and in
//! order, so the state stays consistent with its applied id, and raft
//! applies the lost entries again from the log (with the same decisions).
//! The log keeps them: it is purged only up to a snapshot, and building or
//! installing one checkpoints this `Db` first ([`crate::snapshot`]).
//!
//! **Snapshots** are files in the replica's snapshot directory
//! ([`crate::snapshot`]); the data keys live in the active generation
//! ([`crate::generation`]), which an install replaces.
//!
//! Only this state machine writes `sm/` keys, one apply or install at a
//! time, so its bwtx commits never conflict locally.

use std::ops::Bound;

use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::RaftSnapshotBuilder;

use crate::error::{Error, Result};
use crate::generation::Generations;
use crate::keys::{self, AppliedState, APPLIED};
use crate::snapshot::{self, Limits, SnapshotDir, SnapshotFile, SnapshotStats};
use crate::types::{
    Command, Entry, EntryPayload, LogId, Proposal, Response, Snapshot, SnapshotData, SnapshotMeta, StoredMembership,
    TypeConfig,
};
use crate::validate;

/// Apply a batch on openraft's state-machine task itself, not on tokio's
/// blocking pool, when it holds at most this many transactions: a
/// replica's steady state (one entry of a few proposals per round). The
/// hop to the blocking pool cost more than such an apply (a buffered bwtx
/// commit, no fsync): `cargo run --release -p bwtx-raft --example cluster
/// -- --tcp 8 2`, four alternating pairs, 8 clients: ratio to single-node
/// sync 0.47-0.53x inline against 0.37-0.48x, CPU per transfer 130-171 us
/// against 178-220. Larger batches (a replica catching up), and batches of
/// more than [`INLINE_APPLY_BYTES`], still go to the pool, so a tokio
/// worker is never held for long.
pub const INLINE_APPLY: usize = 64;

/// The most bytes of proposals a batch applied inline holds
/// ([`INLINE_APPLY`]): a few large transactions go to the blocking pool.
pub const INLINE_APPLY_BYTES: usize = 1 << 20;

/// Whether `chunk`, of `bytes` bytes of proposals ([`chunks`]), is applied
/// on the state-machine task itself: small, and with no scanned range to
/// validate (a range of a few bytes may span the whole key space, walked
/// at apply: before 2026-12-08 that ran on a tokio worker).
fn apply_inline(chunk: &[Entry], bytes: usize) -> bool {
    bytes <= INLINE_APPLY_BYTES && transactions(chunk) <= INLINE_APPLY && !scans(chunk)
}

/// Whether a proposal in `entries` carries a scanned range.
fn scans(entries: &[Entry]) -> bool {
    entries.iter().any(|e| match &e.payload {
        EntryPayload::Normal(Command::Txn { ranges, .. }) => !ranges.is_empty(),
        EntryPayload::Normal(Command::Batch { txns }) => txns.iter().any(|p| !p.ranges.is_empty()),
        _ => false,
    })
}

/// openraft 0.10's storage result: errors are plain `io::Error`s.
type StorageResult<T> = std::result::Result<T, std::io::Error>;

/// The replicated state machine of one replica, in its bwtx `Db`. Cloning
/// it shares it.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Inner>,
}

struct Inner {
    db: bwtx::Db,
    gens: Generations,
    dir: SnapshotDir,
    limits: Limits,
    /// The last snapshot built or installed (after a restart, the newest
    /// complete one an earlier run left, if it checks out; else none, and
    /// one is built on demand, see `get_current_snapshot`).
    current: Mutex<Option<Current>>,
    stats: Mutex<SnapshotStats>,
    /// The node whose steps [`crate::trace`] records ([`StateMachine::traced`]).
    trace_node: std::sync::atomic::AtomicU64,
    /// While `true`, applying waits ([`StateMachine::hold_apply`]).
    apply_held: tokio::sync::watch::Sender<bool>,
}

/// A complete snapshot file and its description.
#[derive(Clone)]
struct Current {
    meta: SnapshotMeta,
    path: PathBuf,
}

impl StateMachine {
    /// The state machine in `db`, with its snapshot files in directory
    /// `snapshots` (created; emptied of an earlier run's files but its newest
    /// complete snapshot, which becomes the current one if it checks out) and
    /// `limits` on snapshot transfers and installs. Opening drops a
    /// generation a crash left half loaded ([`Generations::open`]). Any
    /// durability will do: snapshots checkpoint `db` before openraft may
    /// purge the log they cover, and the log replays what a crash lost.
    pub fn open(db: bwtx::Db, snapshots: &Path, limits: Limits) -> Result<StateMachine> {
        let gens = Generations::open(&db, limits.batch_keys)?;
        let dir = SnapshotDir::open(snapshots)?;
        let kept = kept_snapshot(&dir)?;
        Ok(StateMachine {
            inner: Arc::new(Inner {
                db,
                gens,
                dir,
                limits,
                current: Mutex::new(kept),
                stats: Mutex::new(SnapshotStats::default()),
                trace_node: std::sync::atomic::AtomicU64::new(u64::MAX),
                apply_held: tokio::sync::watch::Sender::new(false),
            }),
        })
    }

    /// While `held`, entries wait to be applied (they are logged, voted on
    /// and committed as before): a replica that lags in applying, for
    /// tests. `false` lets them through.
    #[doc(hidden)]
    pub fn hold_apply(&self, held: bool) {
        self.inner.apply_held.send_replace(held);
    }

    /// Record this state machine's steps as node `node`'s when
    /// [`crate::trace`] is on.
    pub fn traced(&self, node: crate::types::NodeId) {
        self.inner.trace_node.store(node, std::sync::atomic::Ordering::Relaxed);
    }

    /// The applied state as of now.
    pub fn applied(&self) -> Result<AppliedState> {
        read_applied(&self.inner.db.snapshot())
    }

    /// A bwtx snapshot and the keyspace holding its data keys (the
    /// generation active in it).
    pub fn read(&self) -> (bwtx::Snapshot, bwtx::Keyspace) {
        self.inner.gens.read()
    }

    /// The replica's snapshot directory.
    pub fn snapshot_dir(&self) -> &SnapshotDir {
        &self.inner.dir
    }

    /// The limits on snapshot transfers and installs.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The state `Db` and its generations (the snapshot tests' crash
    /// injection).
    #[cfg(test)]
    pub(crate) fn parts(&self) -> (&bwtx::Db, &Generations) {
        (&self.inner.db, &self.inner.gens)
    }

    /// What snapshot builds and installs did so far.
    pub fn snapshot_stats(&self) -> SnapshotStats {
        *self.inner.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, SnapshotStats> {
        self.inner.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        self.inner.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make `c` the current snapshot unless a newer one is (a build that
    /// finished after an install of a later state), and remove the other
    /// files (best effort). Returns whether it became current.
    fn set_current(&self, c: Current) -> bool {
        let mut cur = self.current();
        let index = |c: &Current| c.meta.last_log_id.map(|l| l.index);
        if cur.as_ref().is_some_and(|old| index(old) > index(&c)) {
            return false;
        }
        // Best effort: an older file left behind costs only disk space, and
        // the next snapshot made current removes it; an error here would
        // stop the node after its new state was made current. Counted.
        if self.inner.dir.remove_older(&c.path).is_err() {
            self.stats().removal_failures += 1;
        }
        *cur = Some(c);
        true
    }

    /// The current snapshot, opened (under the lock, so no newer one
    /// removes it first).
    fn open_current(&self) -> Result<Option<Snapshot>> {
        let cur = self.current();
        match cur.as_ref() {
            None => Ok(None),
            Some(c) => Ok(Some(Snapshot {
                meta: c.meta.clone(),
                snapshot: SnapshotFile::open(&c.path)?,
            })),
        }
    }
}

/// The newest complete snapshot an earlier run left in `dir`, checked
/// whole (CRC, order, trailer) and against its name: the current snapshot
/// after a restart. It covers every log entry openraft purged, since a
/// purge follows the snapshot it rests on, and a newer one only replaces a
/// complete older one. Its state may be ahead of the state machine's (a
/// crash before a build's checkpoint, or an install's switch, was durable):
/// openraft then installs it at start (`restore_from_snapshot`). A file
/// that does not check out is removed: one is built on demand instead.
fn kept_snapshot(dir: &SnapshotDir) -> Result<Option<Current>> {
    let Some(path) = dir.newest_complete()? else {
        return Ok(None);
    };
    match snapshot::format::check_file(&path) {
        Ok(applied) if applied.last_applied.is_some() && dir.final_path(applied.last_applied) == path => {
            Ok(Some(Current {
                meta: SnapshotMeta {
                    last_log_id: applied.last_applied,
                    last_membership: applied.membership,
                },
                path,
            }))
        }
        Ok(_) | Err(Error::Corrupt(_)) => {
            std::fs::remove_file(&path)
                .map_err(|e| Error::Raft(format!("remove a damaged snapshot {}: {e}", path.display())))?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Read the applied state from a bwtx snapshot.
pub fn read_applied(snap: &bwtx::Snapshot) -> Result<AppliedState> {
    match snap.get(APPLIED)? {
        Some(raw) => keys::decode_applied(&raw),
        None => Ok(AppliedState::default()),
    }
}

/// [`apply_in`] on the default keyspace (the unit tests' state machines).
#[cfg(test)]
pub(crate) fn apply_batch(db: &bwtx::Db, entries: Vec<Entry>) -> Result<Vec<Response>> {
    apply_in(db, &db.keyspace("default")?, entries)
}

/// How much tombstone collection one entry and one apply commit do at most
/// ([`apply_in`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Collect {
    /// Tombstones (each with its index key) deleted after one entry, the
    /// oldest first; the rest below the floor wait for the next entries.
    pub(crate) per_entry: usize,
    /// Past this many deleted in one commit, the commit ends after the
    /// entry (with that entry's applied id) and the next entries go into
    /// another.
    pub(crate) per_commit: usize,
}

/// The collection bounds of every replica: the same for all (a replica's
/// state after each entry depends on them).
pub(crate) const COLLECT: Collect = Collect {
    per_entry: 16_384,
    per_commit: 65_536,
};

/// Apply `entries` in one bwtx commit (more if tombstone collection
/// deletes more than the collection bounds, `COLLECT`, allow in one), the
/// data keys in keyspace `ks` (the active generation); returns one response
/// per entry.
pub fn apply_in(db: &bwtx::Db, ks: &bwtx::Keyspace, entries: Vec<Entry>) -> Result<Vec<Response>> {
    apply_collecting(db, ks, entries, COLLECT)
}

/// [`apply_in`] with collection bounds `collect` (tests use small ones).
///
/// Collection runs after each entry, up to `collect.per_entry` of the
/// tombstones at or below the floor, oldest first: so which ones are left
/// after an entry is a function of the log prefix, whatever the batching
/// (a tombstone at or below the floor decides nothing: every proposal it
/// could conflict with is refused as too old). Before 2026-12-07 every
/// tombstone below the floor went in the apply's one commit: a horizon
/// lowered over millions of tombstones built a commit past bwtx's 2 GiB
/// limit on every replica at the same entry, which no replica could then
/// apply.
pub(crate) fn apply_collecting(
    db: &bwtx::Db,
    ks: &bwtx::Keyspace,
    entries: Vec<Entry>,
    collect: Collect,
) -> Result<Vec<Response>> {
    let mut tx = db.begin();
    let mut state: AppliedState = match tx.get(APPLIED)? {
        Some(raw) => keys::decode_applied(&raw)?,
        None => AppliedState::default(),
    };
    let mut out = Vec::with_capacity(entries.len());
    let mut deleted = 0;
    // The last tombstone index key this commit deleted: the next
    // collection starts after it instead of stepping again over every key
    // this commit deleted (hidden by its write set, not gone from the
    // snapshot; before, each entry's scan did, quadratic in the commit's
    // entries). Sound since collection goes in key order and a tombstone
    // written since has its entry's index, above every floor so far.
    let mut after: Option<Bytes> = None;
    // The floor up to which the index is known empty (a scan came up short
    // there): while the floor stays there, no entry scans again (nothing
    // written since can sort below it).
    let mut emptied_to = 0;
    let last = entries.len();
    for (n, e) in entries.into_iter().enumerate() {
        state.last_applied = Some(e.log_id);
        // The floor as the entries before this one left it.
        let floor = state.floor();
        out.push(match e.payload {
            EntryPayload::Blank => Response::Empty,
            EntryPayload::Normal(Command::Txn {
                snapshot,
                writes,
                reads,
                ranges,
            }) => {
                let p = Proposal {
                    snapshot,
                    writes,
                    reads,
                    ranges,
                };
                apply_txn(&mut tx, ks, e.log_id.index, floor, &p)?
            }
            EntryPayload::Normal(Command::Batch { txns }) => {
                let mut outcomes = Vec::with_capacity(txns.len());
                for p in &txns {
                    outcomes.push(apply_txn(&mut tx, ks, e.log_id.index, floor, p)?);
                }
                Response::Batch { outcomes }
            }
            EntryPayload::Normal(Command::SetTombstoneHorizon { entries: 0 }) => Response::Rejected {
                reason: "a tombstone horizon of 0 entries".to_string(),
            },
            EntryPayload::Normal(Command::SetTombstoneHorizon { entries }) => {
                state.tombstone_horizon = Some(entries);
                Response::Committed { index: e.log_id.index }
            }
            EntryPayload::Membership(m) => {
                state.membership = StoredMembership::new(Some(e.log_id), m);
                Response::Empty
            }
        });
        state.advance_floor(e.log_id.index);
        if state.floor() > emptied_to {
            let n = collect_tombstones(&mut tx, ks, state.floor(), collect.per_entry, &mut after)?;
            if n < collect.per_entry {
                emptied_to = state.floor();
            }
            deleted += n;
        }
        if deleted >= collect.per_commit && n + 1 < last {
            tx.put(APPLIED, keys::encode_applied(&state))?;
            tx.commit()?;
            tx = db.begin();
            deleted = 0;
            after = None;
        }
    }
    tx.put(APPLIED, keys::encode_applied(&state))?;
    tx.commit()?;
    Ok(out)
}

/// Validate and apply one transaction at log index `index` inside `tx`
/// ([`validate`]), with the tombstone floor at `floor`: a proposal whose
/// snapshot is below it is [`Response::TooOld`].
fn apply_txn(
    tx: &mut bwtx::Transaction,
    ks: &bwtx::Keyspace,
    index: u64,
    floor: u64,
    p: &Proposal,
) -> Result<Response> {
    if let Some(reason) = validate::malformed(index, p) {
        return Ok(Response::Rejected { reason });
    }
    if p.snapshot < floor {
        return Ok(Response::TooOld {
            snapshot: p.snapshot,
            oldest: floor,
        });
    }
    let mut tombs = Vec::with_capacity(p.writes.len());
    if let Some(conflict) = validate::conflict(tx, ks, p, &mut tombs)? {
        return Ok(conflict);
    }
    for ((k, v), tomb) in p.writes.iter().zip(tombs) {
        tx.put_in(ks, keys::data_key(k), keys::encode_value(index, v.as_deref()))?;
        // Keys too long to index have no index key (their tombstones stay).
        if let Some(old) = tomb.and_then(|old| keys::tomb_key(old, k)) {
            tx.delete_in(ks, old)?;
        }
        if let Some(new) = v.is_none().then(|| keys::tomb_key(index, k)).flatten() {
            tx.put_in(ks, new, [])?;
        }
    }
    Ok(Response::Committed { index })
}

/// Delete the oldest tombstones written at an index at or below `floor`,
/// at most `most`, each with its index key, inside `tx`; how many. The
/// index is read after `after` (the last index key `tx` deleted, which
/// this moves on). A tombstone index key whose data key does not hold that
/// tombstone is [`Error::Corrupt`].
fn collect_tombstones(
    tx: &mut bwtx::Transaction,
    ks: &bwtx::Keyspace,
    floor: u64,
    most: usize,
    after: &mut Option<Bytes>,
) -> Result<usize> {
    let end = match keys::tomb_end(floor) {
        Some(end) => Bound::Excluded(end),
        None => keys::prefix_end(keys::TOMB_PREFIX).map_or(Bound::Unbounded, Bound::Excluded),
    };
    let start = match after.as_ref() {
        Some(last) => Bound::Excluded(last.to_vec()),
        None => Bound::Included(keys::TOMB_PREFIX.to_vec()),
    };
    let mut doomed = Vec::new();
    for kv in tx.range_in(ks, (start, end)).take(most) {
        let (raw, _) = kv?;
        doomed.push(raw);
    }
    if let Some(last) = doomed.last() {
        *after = Some(last.clone());
    }
    let n = doomed.len();
    for raw in doomed {
        let (index, key) = keys::tomb_parse(&raw)?;
        let data = keys::data_key(key);
        match tx.get_in(ks, &data)? {
            Some(v) if keys::decode_value(&v)? == (index, None) => {}
            other => {
                return Err(Error::Corrupt(format!(
                    "tombstone index names {key:?} at {index}, the key holds {other:?}"
                )))
            }
        }
        tx.delete_in(ks, data)?;
        tx.delete_in(ks, &raw)?;
    }
    Ok(n)
}

/// The most bytes of writes (and reads) one apply commit takes: the
/// entries of an `apply` beyond it go into further commits, each with the
/// applied id of its last entry, so that a replica catching up over many
/// large entries never builds a commit bwtx refuses (2 GiB).
pub const APPLY_BUDGET: usize = 256 << 20;

/// `entries` in order, cut into runs of at most `budget` bytes of
/// proposals (a run of one entry may hold more), each with its bytes.
fn chunks(entries: Vec<Entry>, budget: usize) -> Vec<(Vec<Entry>, usize)> {
    let mut out: Vec<(Vec<Entry>, usize)> = Vec::new();
    for e in entries {
        let b = entry_bytes(&e);
        match out.last_mut() {
            Some((run, bytes)) if bytes.saturating_add(b) <= budget => {
                *bytes += b;
                run.push(e);
            }
            _ => out.push((vec![e], b)),
        }
    }
    out
}

/// Bytes of the proposals an entry carries ([`crate::types::Proposal::bytes`]).
fn entry_bytes(e: &Entry) -> usize {
    match &e.payload {
        EntryPayload::Normal(Command::Txn {
            writes, reads, ranges, ..
        }) => crate::types::proposal_bytes(writes, reads, ranges),
        EntryPayload::Normal(Command::Batch { txns }) => txns.iter().map(Proposal::bytes).sum(),
        _ => 0,
    }
}

/// How many transactions `entries` carry (a batch counts each of its own).
fn transactions(entries: &[Entry]) -> usize {
    entries
        .iter()
        .map(|e| match &e.payload {
            EntryPayload::Normal(Command::Batch { txns }) => txns.len(),
            _ => 1,
        })
        .sum()
}

/// Run a blocking bwtx operation (a commit, a checkpoint) on
/// tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Raft(format!("blocking task failed: {e}")))?
}

fn sm_read_err(e: Error) -> std::io::Error {
    std::io::Error::other(format!("reading the state machine: {e}"))
}

fn sm_write_err(e: Error) -> std::io::Error {
    std::io::Error::other(format!("writing the state machine: {e}"))
}

/// Builds snapshots for openraft (a handle on the same state machine).
pub struct SnapshotBuilder {
    sm: StateMachine,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    /// Build a snapshot file ([`snapshot::build()`]) on tokio's blocking
    /// pool, make it current, and hand openraft the open file.
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot> {
        let sm = self.sm.clone();
        let built = blocking(move || {
            let (b, file) = snapshot::build(&sm.inner.db, &sm.inner.gens, &sm.inner.dir)?;
            sm.stats().builds += 1;
            let current = Current {
                meta: b.meta.clone(),
                path: b.path.clone(),
            };
            if !sm.set_current(current) {
                // A newer snapshot is current: this one is only sent from
                // its open file.
                let _ = std::fs::remove_file(&b.path);
            }
            Ok(Snapshot {
                meta: b.meta,
                snapshot: file,
            })
        })
        .await;
        built.map_err(|e| std::io::Error::other(format!("building a snapshot: {e}")))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> StorageResult<(Option<LogId>, StoredMembership)> {
        let s = self.applied().map_err(sm_read_err)?;
        Ok((s.last_applied, s.membership))
    }

    /// Apply every entry the stream yields, in chunks of at most
    /// `APPLY_BUDGET` bytes of proposals, each one bwtx commit or a few
    /// ([`apply_in`], into the active generation), then answer each
    /// entry's responder (openraft 0.10 hands the responders to the state
    /// machine with the entries).
    async fn apply<Strm>(&mut self, entries: Strm) -> StorageResult<()>
    where
        Strm: Stream<Item = StorageResult<EntryResponder<TypeConfig>>> + Unpin + Send,
    {
        let (entries, responders): (Vec<_>, Vec<_>) = entries.try_collect::<Vec<_>>().await?.into_iter().unzip();
        if entries.is_empty() {
            return Ok(());
        }
        // Only a test holds applies: a read of the flag, without a
        // subscription, when none is held. The sender lives as long as
        // `self`, so the wait ends only when the hold is lifted.
        if *self.inner.apply_held.borrow() {
            let _ = self.inner.apply_held.subscribe().wait_for(|held| !held).await;
        }
        // The entries' indexes are consecutive (openraft applies the log
        // in order).
        let node = self.inner.trace_node.load(std::sync::atomic::Ordering::Relaxed);
        let indexes = entries[0].log_id.index..=entries[entries.len() - 1].log_id.index;
        crate::trace::events(node, indexes.clone(), crate::trace::Step::ApplyStart);
        let mut responses = Vec::with_capacity(entries.len());
        for (chunk, bytes) in chunks(entries, APPLY_BUDGET) {
            let sm = self.clone();
            let r = if apply_inline(&chunk, bytes) {
                apply_in(&sm.inner.db, &sm.inner.gens.active(), chunk)
            } else {
                blocking(move || apply_in(&sm.inner.db, &sm.inner.gens.active(), chunk)).await
            };
            responses.extend(r.map_err(sm_write_err)?);
        }
        crate::trace::events(node, indexes, crate::trace::Step::Applied);
        for (responder, response) in responders.into_iter().zip(responses) {
            if let Some(r) = responder {
                r.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { sm: self.clone() }
    }

    /// Install the snapshot in the file openraft hands over (from a
    /// transport): a `.part` a TCP transfer wrote into this replica's
    /// snapshot directory ([`SnapshotFile::open_part`]) is used in place,
    /// any other file (the leader's, in process) is copied in first; then [`snapshot::install()`] checks
    /// and loads it, and it becomes the current snapshot. A file that does
    /// not check out changes nothing.
    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> StorageResult<()> {
        let (sm, m) = (self.clone(), meta.clone());
        blocking(move || sm.install_file(&m, snapshot))
            .await
            .map_err(|e| std::io::Error::other(format!("installing the snapshot at {:?}: {e}", meta.last_log_id)))
    }

    /// The last snapshot built or installed (or kept from an earlier run,
    /// `kept_snapshot`, checked at open); without one, a fresh one of the applied state,
    /// which covers every purged entry since purging follows snapshots and
    /// the state is durable.
    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot>> {
        if let Some(s) = self.open_current().map_err(sm_read_err)? {
            return Ok(Some(s));
        }
        if self.applied().map_err(sm_read_err)?.last_applied.is_none() {
            return Ok(None);
        }
        let mut builder = self.get_snapshot_builder().await;
        Ok(Some(builder.build_snapshot().await?))
    }
}

impl StateMachine {
    /// The blocking part of `install_snapshot`.
    fn install_file(&self, meta: &SnapshotMeta, mut file: SnapshotFile) -> Result<()> {
        let dir = &self.inner.dir;
        let part = match file.take_part() {
            Some(part) => part,
            None => dir.copy_in(&mut file)?,
        };
        drop(file);
        let mut stats = SnapshotStats::default();
        // The current snapshot, if older, is removed before the switch
        // (`install_until`): forget it first, so that nothing hands out a
        // removed file (one is built on demand if this install fails).
        {
            let mut cur = self.current();
            let index = |m: &SnapshotMeta| m.last_log_id.map(|l| l.index);
            if cur.as_ref().is_some_and(|c| index(&c.meta) < index(meta)) {
                *cur = None;
            }
        }
        let r = snapshot::install(
            &self.inner.db,
            &self.inner.gens,
            &self.inner.dir,
            &part,
            meta,
            self.inner.limits,
            &mut stats,
        );
        self.stats().absorb(&stats);
        if let Err(e) = r {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        let path = dir.complete(&part, meta.last_log_id)?;
        let current = Current {
            meta: meta.clone(),
            path: path.clone(),
        };
        if !self.set_current(current) {
            // A newer snapshot (a build) is current already.
            let _ = std::fs::remove_file(&path);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tombstone_tests;
