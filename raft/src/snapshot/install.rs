//! Installing a snapshot file: checked whole first, then loaded into a
//! fresh generation in bounded batches, then switched to in one small
//! commit (`design/replication.md` §5.3, install steps I1-I7).

use std::fs::File;
use std::path::Path;

use super::format::Reader;
use super::store::SnapshotDir;
use crate::error::{Error, Result};
use crate::generation::Generations;
use crate::keys::{self, AppliedState};
use crate::types::SnapshotMeta;

/// The memory bounds of a replica: its snapshot transfers and installs,
/// and the page caches of its state `Db` and its log `Db`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Snapshot bytes per TCP chunk (`Request::SnapshotChunk`).
    pub chunk: usize,
    /// Records per install batch (one bwtx commit) at most.
    pub batch_keys: usize,
    /// Key and value bytes per install batch: a batch ends with the record
    /// that reaches it (so a batch holds at least one record, as with a
    /// `batch_keys` of 0).
    pub batch_bytes: usize,
    /// The state `Db`'s page cache ([`bwtx::Options::cache_size`]): with
    /// one the state may be larger than memory; `None` keeps it all in
    /// memory.
    pub state_cache_size: Option<u64>,
    /// The log `Db`'s page cache ([`bwtx::Options::cache_size`]): with one,
    /// the entries not yet purged (up to a snapshot's worth, or more while a
    /// follower lags) may be larger than memory; `None` keeps them all in
    /// memory. The newest durable entries (1,024 at most, 8 MiB of encoded
    /// entries at most) are also kept in memory outside the `Db`
    /// (`design/replication.md` §4), so replication and apply read the
    /// `Db` only for a follower that lags further behind.
    pub log_cache_size: Option<u64>,
}

impl Default for Limits {
    /// 1 MiB chunks; batches of 10,000 records or 4 MiB; the state and the
    /// log in memory (no page cache).
    fn default() -> Limits {
        Limits {
            chunk: 1 << 20,
            batch_keys: 10_000,
            batch_bytes: 4 << 20,
            state_cache_size: None,
            log_cache_size: None,
        }
    }
}

/// What a replica's snapshot builds and installs did, for tests and
/// measurements: the memory an install held is a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Snapshots built.
    pub builds: u64,
    /// Snapshots installed.
    pub installs: u64,
    /// Install batches committed (each one bwtx commit).
    pub batches: u64,
    /// Records loaded by installs.
    pub records: u64,
    /// The most records one install batch held.
    pub peak_batch_keys: u64,
    /// The most key and value bytes one install batch held.
    pub peak_batch_bytes: u64,
    /// Removals of older snapshot files that failed (each such file is
    /// left behind and tried again when the next snapshot becomes current).
    pub removal_failures: u64,
}

impl SnapshotStats {
    /// Add what `other` counted (its peaks taken as peaks).
    pub fn absorb(&mut self, other: &SnapshotStats) {
        self.builds += other.builds;
        self.installs += other.installs;
        self.batches += other.batches;
        self.records += other.records;
        self.peak_batch_keys = self.peak_batch_keys.max(other.peak_batch_keys);
        self.peak_batch_bytes = self.peak_batch_bytes.max(other.peak_batch_bytes);
        self.removal_failures += other.removal_failures;
    }
}

/// Where a test stops an install, as a crash would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Run to the end.
    Never,
    /// Fail after this many batches, before the switch, leaving the
    /// half-loaded generation as a crash would.
    AfterBatches(u64),
    /// Fail after the switch and its checkpoint, before the old
    /// generation is dropped.
    BeforeRetire,
}

/// Install the complete snapshot file at `path`, described by `meta`, into
/// the state machine of `db`. A file that does not check out (truncated,
/// corrupted, another format version, another applied state than `meta`)
/// is [`Error::Corrupt`] and changes nothing.
#[allow(clippy::too_many_arguments)]
pub fn install(
    db: &bwtx::Db,
    gens: &Generations,
    dir: &SnapshotDir,
    path: &Path,
    meta: &SnapshotMeta,
    limits: Limits,
    stats: &mut SnapshotStats,
) -> Result<()> {
    install_until(db, gens, dir, path, meta, limits, stats, Stop::Never)
}

fn open(path: &Path) -> Result<Reader<File>> {
    let f = File::open(path).map_err(|e| Error::Raft(format!("open snapshot {}: {e}", path.display())))?;
    Reader::new(f)
}

/// [`install`], stopped at `stop`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn install_until(
    db: &bwtx::Db,
    gens: &Generations,
    dir: &SnapshotDir,
    path: &Path,
    meta: &SnapshotMeta,
    limits: Limits,
    stats: &mut SnapshotStats,
    stop: Stop,
) -> Result<()> {
    // I1: check the whole file (CRC, trailer, every record) before any
    // write.
    let mut check = open(path)?;
    let applied: AppliedState = check.applied().clone();
    if applied.last_applied != meta.last_log_id || applied.membership != meta.last_membership {
        return Err(Error::Corrupt(format!(
            "a snapshot holds state at {:?}, its meta says {:?}",
            applied.last_applied, meta.last_log_id
        )));
    }
    check.check_rest()?;
    drop(check);
    // I2: a fresh generation (a commit).
    let (name, ks) = gens.create_next()?;
    // I3: the records in batches, each one commit into it.
    if let Err(e) = load(db, &ks, path, limits, stats, stop) {
        // A test's stop is a crash: nothing is cleaned up (the next open
        // drops the generation).
        if !matches!(stop, Stop::AfterBatches(_)) {
            let _ = gens.abandon(&name);
        }
        return Err(e);
    }
    // Before I4: no complete snapshot older than this one may outlive the
    // switch, durably: a start after a crash between I4 and I7 would keep
    // it as the current snapshot, older than the state (and than the log
    // openraft then purges to the state's applied id). Before 2026-12-08
    // nothing was kept across a restart, so nothing needed removing.
    dir.remove_below(meta.last_log_id.map(|l| l.index))?;
    // I4: the switch: `sm/applied` and `sm/active` in one commit.
    let old = gens.switch(&name, ks, &keys::encode_applied(&applied))?;
    // I5: durable before openraft purges the log the snapshot covers.
    db.checkpoint()?;
    stats.installs += 1;
    if stop == Stop::BeforeRetire {
        return Err(Error::Raft(
            "install stopped before the old generation's drop".to_string(),
        ));
    }
    // I6: the old generation goes.
    gens.retire(&old, limits.batch_keys)
}

fn load(
    db: &bwtx::Db,
    ks: &bwtx::Keyspace,
    path: &Path,
    limits: Limits,
    stats: &mut SnapshotStats,
    stop: Stop,
) -> Result<()> {
    let mut r = open(path)?;
    let mut done = 0u64;
    loop {
        let mut tx = db.begin();
        let (mut n, mut bytes) = (0u64, 0u64);
        let mut end = false;
        while n < limits.batch_keys.max(1) as u64 && bytes < limits.batch_bytes.max(1) as u64 {
            match r.next_record()? {
                Some((k, v)) => {
                    bytes += (k.len() + v.len()) as u64;
                    n += 1;
                    tx.put_in(ks, keys::data_key(&k), &v)?;
                    // The tombstone index is not in the file: rebuilt here.
                    if let (index, None) = keys::decode_value(&v)? {
                        if let Some(t) = keys::tomb_key(index, &k) {
                            tx.put_in(ks, t, [])?;
                        }
                    }
                }
                None => {
                    end = true;
                    break;
                }
            }
        }
        if n > 0 {
            tx.commit()?;
            stats.batches += 1;
            stats.records += n;
            stats.peak_batch_keys = stats.peak_batch_keys.max(n);
            stats.peak_batch_bytes = stats.peak_batch_bytes.max(bytes);
            done += 1;
            if stop == Stop::AfterBatches(done) {
                return Err(Error::Raft(format!("install stopped after {done} batches")));
            }
        }
        if end {
            return Ok(());
        }
    }
}
