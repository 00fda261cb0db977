//! The commit protocol (`design/mvcc.md`, "Commit"): validate the write set
//! against the snapshot (first committer wins), take a commit timestamp,
//! validate a serializable transaction's reads (section 10), install the
//! versions, log them, and publish.

use smallvec::SmallVec;

use super::keyspaces::KsTree;
use super::tree_pages::tag;
use super::Engine;
use crate::bwtree::{PrepareError, Tree};
use crate::mvcc::counts::Counts;
use crate::mvcc::latches::Latches;
use crate::mvcc::readset::Reads;
use crate::mvcc::WriteSet;
use crate::wal::record::ToLog;
use crate::{ConflictReason, Error, Result};

/// One keyspace's share of a commit: its id and tree, its counts, the
/// transaction's writes to it and (serializable) its reads of it.
pub(crate) struct Part<'a> {
    pub(crate) id: u32,
    pub(crate) tree: &'a Tree,
    pub(crate) counts: &'a Counts,
    /// The keyspace's gate (`None`: the default keyspace, never dropped).
    pub(crate) ks: Option<&'a KsTree>,
    pub(crate) writes: &'a WriteSet,
    pub(crate) reads: Option<&'a Reads>,
}

impl<'a> Part<'a> {
    /// The part of a named keyspace (or the catalog).
    pub(crate) fn of(ks: &'a KsTree, writes: &'a WriteSet, reads: Option<&'a Reads>) -> Self {
        Part {
            id: ks.id,
            tree: &ks.tree,
            counts: &ks.counts,
            ks: Some(ks),
            writes,
            reads,
        }
    }
}

impl Engine {
    /// Commit `writes` (to the default keyspace) made on the snapshot at
    /// `snapshot_ts`; see [`Engine::commit_parts`].
    pub(crate) fn commit(&self, snapshot_ts: u64, writes: &WriteSet, reads: Option<&Reads>) -> Result<u64> {
        self.commit_parts(
            snapshot_ts,
            &mut [Part {
                id: 0,
                tree: &self.tree,
                counts: &self.counts,
                ks: None,
                writes,
                reads,
            }],
        )
    }

    /// Commit the writes of `parts` (one per keyspace, at least one write in
    /// all) made on the snapshot at `snapshot_ts`: one commit timestamp and
    /// one log record for all of them. Returns the commit timestamp, once
    /// every snapshot taken afterwards sees the commit. Parts' `reads`: a
    /// serializable transaction's read sets, validated after the timestamp
    /// is taken.
    ///
    /// Fails with [`Error::Conflict`] if a transaction that committed after
    /// `snapshot_ts` wrote one of the keys in the same keyspace (or, with
    /// `reads`, a key read or a key in a range scanned), with
    /// [`Error::KeyspaceNotFound`] if a keyspace written (or, with `reads`,
    /// read) was dropped, and with [`Error::SnapshotTooOld`] if the GC
    /// watermark passed the snapshot (an expired one, step 3b); then
    /// nothing is installed.
    pub(crate) fn commit_parts(&self, snapshot_ts: u64, parts: &mut [Part<'_>]) -> Result<u64> {
        debug_assert!(parts.iter().any(|p| !p.writes.is_empty()));
        parts.sort_by_key(|p| p.id);
        let log = self.store.as_ref().filter(|s| s.logs());
        self.check_writable()?;
        // One log record holds the whole transaction: refused if it would
        // not read back (keys and values of 2 GiB in all).
        if log.is_some()
            && !crate::wal::record::fits(parts.iter().flat_map(|p| {
                p.writes
                    .iter()
                    .map(|(k, v)| (k.len(), v.as_ref().map_or(0, |v| v.len())))
            }))
        {
            return Err(Error::InvalidArgument(
                "a transaction's keys and values exceed 2 GiB, the largest log record",
            ));
        }
        // 0. Named keyspaces written or (serializable) read: hold their
        //    gates shared (a drop waits), and refuse a dropped one
        //    (`super::keyspaces`). A keyspace read was visible at the
        //    snapshot, so a drop seen here committed after it and before
        //    this commit's timestamp: in timestamp order the reads came
        //    after the drop, and must fail as they would have then.
        let mut gates: SmallVec<[_; 2]> = SmallVec::new();
        for ks in parts
            .iter()
            .filter(|p| !p.writes.is_empty() || p.reads.is_some_and(|r| !r.is_empty()))
            .filter_map(|p| p.ks)
        {
            if ks.id == super::keyspaces::CATALOG {
                continue;
            }
            let gate = ks.gate.read().unwrap_or_else(|e| e.into_inner());
            if *gate {
                return Err(Error::KeyspaceNotFound {
                    name: ks.name.to_string(),
                });
            }
            gates.push(gate);
        }
        // 1. Latch the write set's stripes (ascending: no deadlock).
        let mut held = self.latches.lock(Latches::stripes_in(
            parts.iter().flat_map(|p| p.writes.keys().map(move |k| (p.id, &k[..]))),
        ));
        // 2. Validate: no write newer than our snapshot, per keyspace. A
        //    version installed by a commit still being published counts:
        //    that commit won. The leaves found are kept (by each tree, under
        //    one epoch guard) for step 4.
        let mut prepared: SmallVec<[_; 2]> = SmallVec::new();
        for p in parts.iter().filter(|p| !p.writes.is_empty()) {
            match p.tree.prepare(p.writes.iter(), snapshot_ts) {
                Ok(prep) => prepared.push((p, prep)),
                Err(PrepareError::Page(e)) => {
                    drop(prepared);
                    drop(held);
                    return Err(e);
                }
                Err(PrepareError::Conflict(conflict)) => {
                    let key = conflict.key.clone();
                    let winner = conflict.winner;
                    drop(prepared);
                    drop(held);
                    self.counters.conflicts.add(1);
                    return Err(Error::Conflict {
                        key,
                        winner,
                        snapshot: snapshot_ts,
                        reason: Box::new(ConflictReason::Write),
                    });
                }
            }
        }
        // 3. Commit timestamp: one fetch_add. It is above the read timestamp
        //    and so above every GC watermark.
        let mut commit = self.oracle.allocate();
        // From here until its record is appended, an unwinding commit
        // poisons the log (`Unlogged`).
        let mut unlogged = Unlogged(log.map(|s| (s, commit.ts)));
        // 3a. Serializable: wait until every earlier commit is installed,
        //     then validate the reads against the versions committed in
        //     (snapshot, commit). A refused commit installs nothing, logs an
        //     empty record (the log has no gaps) and publishes its
        //     timestamp like any other, then returns the conflict.
        let mut validated = Ok(());
        for p in parts.iter() {
            if let Some(reads) = p.reads {
                validated = self.validate_reads(snapshot_ts, commit.ts, p, reads);
                if validated.is_err() {
                    break;
                }
            }
        }
        // 3b. A snapshot past `Options::max_snapshot_age` that GC has
        //     passed: a version committed after it may be gone (a tombstone
        //     dropped with every version below it), so neither step 2 nor
        //     3a could see it. Checked after both, as a read is checked
        //     after it finishes (`Tree::check_readable`): the watermark only
        //     rises, so one at or below the snapshot now was so throughout.
        //     Before 3c, so that a refused commit places no value.
        //     Not the catalog: creations and drops commit it one at a time
        //     (under the DDL mutex) at a read timestamp they do not register,
        //     and nothing else writes it, so GC can have dropped nothing
        //     they would see.
        if validated.is_ok() {
            for p in parts.iter().filter(|p| p.id != super::keyspaces::CATALOG) {
                if let Err(e) = p.tree.check_readable(snapshot_ts) {
                    validated = Err(e);
                    break;
                }
            }
        }
        // 3c. Values written once (`design/storage.md` §10.1): with a page
        //     store and a buffered log, each value above the value-log
        //     threshold is appended to the value log now and the log record
        //     references it (a synced log keeps the value in its record: a
        //     second fsync per group cost more than the bytes it saves). A
        //     failed append poisons the page store and refuses the commit
        //     like a failed validation (nothing installed, an empty record
        //     logged).
        let mut refs: Vec<Option<(u64, u32)>> = Vec::new();
        if validated.is_ok() && log.is_some_and(|s| !s.syncs_commits()) {
            match self.place_values(commit.ts, parts) {
                Ok(r) => refs = r,
                Err(e) => validated = Err(e),
            }
        }
        // 4. Install every version at that timestamp, on the leaf validation
        //    found if it did not change since (else by a fresh descent), and
        //    mark the timestamp installed (one atomic instruction; what a
        //    serializable committer waits for in 3a). Consolidation of the
        //    leaves this fills up waits until after publication (step 7):
        //    later commits wait for this one.
        let mut installed: SmallVec<[_; 2]> = SmallVec::new();
        let ok = validated.is_ok();
        if ok {
            // Unlatching stamps the stripes with the commit timestamp.
            held.stamp(commit.ts);
        }
        for (p, prep) in prepared {
            // 4a. Record each keyspace's live-key delta (`mvcc::counts`; 0 if
            //     refused): before the log record, which can make it visible.
            let delta = if ok { prep.live_delta() } else { 0 };
            if ok {
                installed.push(prep.install(commit.ts));
            }
            p.counts
                .record(commit.ts, delta, || (self.oracle.read_ts(), self.count_floor()));
        }
        if parts.iter().all(|p| p.id != 0 || p.writes.is_empty()) {
            // The default keyspace's counts see every timestamp.
            self.counts
                .record(commit.ts, 0, || (self.oracle.read_ts(), self.count_floor()));
        }
        commit.mark_installed();
        // 5. Durable databases: append the log record (a memory copy into
        //    the pending buffer), unlatch, then wait for the log (group
        //    commit: one sync covers every committer waiting), holding no
        //    lock.
        let appended = log.map(|store| {
            if ok {
                let refs = &refs;
                store.log(
                    commit.ts,
                    parts
                        .iter()
                        .flat_map(|p| p.writes.iter().map(move |(k, v)| (p.id, k, v)))
                        .enumerate()
                        .map(move |(i, (id, k, v))| {
                            let to = match refs.get(i).copied().flatten() {
                                Some((addr, len)) => ToLog::Ref { addr, len },
                                None => ToLog::Inline(v),
                            };
                            (id, k, to)
                        }),
                )
            } else {
                store.log(commit.ts, std::iter::empty())
            }
        });
        unlogged.0 = None;
        drop(held);
        drop(gates);
        let logged = match (log, appended) {
            (Some(store), Some(Ok(()))) => {
                let r = store.wait(commit.ts);
                if r.is_ok() {
                    // Every commit the log holds is installed: the whole
                    // group becomes visible at once, not one by one.
                    self.oracle.advance_to(store.logged_ts());
                }
                r
            }
            (_, Some(Err(e))) => Err(e),
            _ => Ok(()),
        };
        // 6. Publish: visible once every earlier commit is. Done even if the
        //    log failed (later commits wait on it); the error is returned,
        //    the database is poisoned, and recovery keeps the commit whole
        //    or drops it whole.
        let ts = commit.publish();
        // 7. Consolidate the leaves step 4 listed, off the window in which
        //    later commits wait for this one.
        for i in installed {
            i.consolidate();
        }
        logged?;
        if let Err(e) = validated {
            if e.is_conflict() {
                self.counters.conflicts.add(1);
            }
            return Err(e);
        }
        self.counters.commits.add(1);
        let n: usize = parts.iter().map(|p| p.writes.len()).sum();
        self.counters.versions_installed.add(n as u64);
        // 8. Every 64th timestamp refreshes the GC watermark.
        self.after_commit(ts);
        // 9. With a cache size: past 1.25 x the budget, the committer helps
        //    the evictor (`Engine::help_evict`), so memory stays bounded
        //    under a write burst.
        if self.cache_size.is_some() {
            self.help_evict();
        }
        Ok(ts)
    }

    /// Step 3c of [`Engine::commit_parts`]: put each value of `parts`'
    /// writes that belongs in the value log there, at commit `ts`. Returns
    /// the references in the order the writes are logged (empty: none).
    fn place_values(&self, ts: u64, parts: &[Part<'_>]) -> Result<Vec<Option<(u64, u32)>>> {
        let Some(pages) = &self.pages else {
            return Ok(Vec::new());
        };
        let large = |v: &Option<bytes::Bytes>| v.as_ref().is_some_and(|v| pages.vlog.takes(v.len()));
        if !parts.iter().any(|p| p.writes.iter().any(|(_, v)| large(v))) {
            return Ok(Vec::new());
        }
        let mut refs = Vec::new();
        for p in parts {
            let tree = tag(p.id).ok_or(Error::InvalidArgument("a keyspace id too large for a page store"))?;
            for (k, v) in p.writes.iter() {
                refs.push(match v {
                    Some(v) if pages.vlog.takes(v.len()) => pages
                        .vlog
                        .place_at_commit(tree, k, ts, v)?
                        .map(|addr| (addr, v.len() as u32)),
                    _ => None,
                });
            }
        }
        Ok(refs)
    }
}

/// Armed from a commit's timestamp until its log record is appended: if
/// dropped armed, the commit is unwinding (a panic in validation, the value
/// log or an install), and its record will never come, so every later
/// record would be parked behind the gap and their committers would wait
/// forever. It poisons the log instead: those commits fail with
/// [`Error::Poisoned`] and the database must be reopened (recovery keeps
/// each commit whole or drops it).
struct Unlogged<'a>(Option<(&'a crate::wal::store::Store, u64)>);

impl Drop for Unlogged<'_> {
    fn drop(&mut self) {
        if let Some((store, ts)) = self.0 {
            store.poison_unlogged(ts);
        }
    }
}
