//! The `Run` harness: applies operations to the database and the model
//! and checks every step.

use std::ops::Bound::{self, Unbounded};

use bwtx::{ConflictReason, Db, Error, Isolation, Savepoint, Snapshot, Transaction};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::durable::Disk;
use crate::model::{observed, prefix_range, MTxn, Model, Read, Reason};
use crate::ops::{key, value, Consume, Key, Op, Scan, Target, Val, Writes, HELD, SAVEPOINTS, SLOTS};
use crate::read::{check_iter, in_bound, map_bound, show, Reader};

pub struct Run<'db> {
    pub db: &'db Db,
    pub model: Model,
    pub txns: Vec<Option<(Transaction, MTxn)>>,
    pub held: Vec<Option<Snapshot>>,
    /// Savepoints: the savepoint, its transaction's `MTxn::id`, its serial.
    pub savepoints: Vec<Option<(Savepoint, u64, u64)>>,
    /// The last `MTxn::id` given.
    pub txn_ids: u64,
    pub serial: usize,
    /// No background sweeper: one `collect_garbage` without readers must
    /// leave exactly one version per live key.
    pub strict_gc: bool,
    /// A durable database's directory (`None`: in memory).
    pub disk: Option<&'db Disk>,
}

impl<'db> Run<'db> {
    pub fn new(db: &'db Db, strict_gc: bool) -> Self {
        Self::resume(db, Model::default(), 0, strict_gc, None)
    }

    /// Continue the model on `db` (reopened), with nothing open.
    pub fn resume(db: &'db Db, model: Model, serial: usize, strict_gc: bool, disk: Option<&'db Disk>) -> Self {
        Run {
            db,
            model,
            txns: (0..SLOTS).map(|_| None).collect(),
            held: (0..HELD).map(|_| None).collect(),
            savepoints: (0..SAVEPOINTS).map(|_| None).collect(),
            txn_ids: 0,
            serial,
            strict_gc,
            disk,
        }
    }

    /// Roll back every transaction and drop every held snapshot (the model
    /// drops their buffers); keep the committed history.
    pub fn close(mut self) -> (Model, usize) {
        self.txns.iter_mut().for_each(|t| *t = None);
        self.held.iter_mut().for_each(|s| *s = None);
        (self.model, self.serial)
    }

    pub fn begin(&mut self, slot: usize, serializable: bool) -> Result<(), TestCaseError> {
        let level = if serializable {
            Isolation::Serializable
        } else {
            Isolation::Snapshot
        };
        let tx = self.db.begin_with(level);
        prop_assert_eq!(tx.snapshot_ts(), self.model.last, "snapshot_ts of a begin");
        prop_assert_eq!(tx.isolation(), level);
        self.txn_ids += 1;
        let m = MTxn {
            snap: self.model.last,
            id: self.txn_ids,
            serializable,
            ..MTxn::default()
        };
        self.txns[slot] = Some((tx, m));
        Ok(())
    }

    pub fn ensure_txn(&mut self, slot: usize) -> Result<(), TestCaseError> {
        if self.txns[slot].is_none() {
            self.begin(slot, slot >= 2)?;
        }
        Ok(())
    }

    pub fn ensure_held(&mut self, slot: usize) -> Result<(), TestCaseError> {
        if self.held[slot].is_none() {
            let s = self.db.snapshot();
            prop_assert_eq!(s.ts(), self.model.last, "ts of a held snapshot");
            self.held[slot] = Some(s);
        }
        Ok(())
    }

    pub fn write(&mut self, slot: usize, k: Key, v: Option<Val>) -> Result<(), TestCaseError> {
        self.ensure_txn(slot)?;
        let (tx, m) = self.txns[slot].as_mut().unwrap();
        match &v {
            Some(v) => tx.put(&k, v),
            None => tx.delete(&k),
        }
        .map_err(|e| TestCaseError::fail(format!("write failed: {e}")))?;
        m.writes.insert(k, v);
        prop_assert_eq!(tx.write_count(), m.writes.len());
        Ok(())
    }

    /// Run `f` with the reader `t` names and its model view (`ts`, writes).
    pub fn with_reader<R>(
        &mut self,
        t: Target,
        f: impl FnOnce(&Reader<'_>, &Model, u64, Option<&Writes>) -> Result<R, TestCaseError>,
    ) -> Result<R, TestCaseError> {
        match t {
            Target::Txn(slot) => {
                self.ensure_txn(slot)?;
                let (tx, m) = self.txns[slot].as_ref().unwrap();
                f(&Reader::Tx(tx), &self.model, m.snap, Some(&m.writes))
            }
            Target::Held(slot) => {
                self.ensure_held(slot)?;
                let s = self.held[slot].as_ref().unwrap();
                f(&Reader::Snap(s), &self.model, s.ts(), None)
            }
            Target::Fresh => {
                let s = self.db.snapshot();
                prop_assert_eq!(s.ts(), self.model.last, "ts of a fresh snapshot");
                f(&Reader::Snap(&s), &self.model, s.ts(), None)
            }
        }
    }

    pub fn targets(&self) -> Vec<Target> {
        let mut out = vec![Target::Fresh];
        out.extend((0..SLOTS).filter(|&i| self.txns[i].is_some()).map(Target::Txn));
        out.extend((0..HELD).filter(|&i| self.held[i].is_some()).map(Target::Held));
        out
    }

    /// Record `reads` for the transaction `t` names, if it is one (and
    /// serializable).
    pub fn record(&mut self, t: Target, reads: Vec<Read>) {
        if let Target::Txn(slot) = t {
            if let Some((_, m)) = self.txns[slot].as_mut() {
                m.read(reads);
            }
        }
    }

    /// A full forward and reverse scan of `t` against the model (a
    /// serializable transaction records the whole range twice).
    pub fn check_all(&mut self, t: Target, ctx: &str) -> Result<(), TestCaseError> {
        self.with_reader(t, |r, m, ts, w| {
            let want: Vec<(Key, Val)> = m.view(ts, w).into_iter().collect();
            let ctx = format!("{ctx}: full scan of {t:?} at ts {ts}");
            check_iter(r.range(Unbounded, Unbounded), &want, &Consume::Forward, &ctx)?;
            check_iter(r.range(Unbounded, Unbounded), &want, &Consume::Reverse, &ctx)
        })?;
        let all = Read::Range(Unbounded, Unbounded);
        self.record(t, vec![all.clone(), all]);
        Ok(())
    }

    pub fn check_stats(&self, ctx: &str) -> Result<(), TestCaseError> {
        let s = self.db.stats();
        let m = &self.model;
        let open = self.txns.iter().flatten().count() + self.held.iter().flatten().count();
        prop_assert_eq!(s.commits, m.commits, "{}: commits", ctx);
        prop_assert_eq!(s.conflicts, m.conflicts, "{}: conflicts", ctx);
        prop_assert_eq!(s.read_ts, m.last, "{}: read_ts", ctx);
        // After a location table, the versions in page images are not
        // counted (no page is read at open).
        if self.disk.is_none_or(|d| d.cache.is_none()) {
            prop_assert_eq!(
                s.versions_installed,
                m.versions_installed,
                "{}: versions_installed",
                ctx
            );
        }
        prop_assert_eq!(s.active_snapshots, open as u64, "{}: active_snapshots", ctx);
        prop_assert!(s.versions_stored <= s.versions_installed, "{}: {:?}", ctx, s);
        if let Some(disk) = self.disk {
            let d = &m.disk;
            // Sync mode, one committer at a time: every commit appends one
            // record and needs its own sync before it returns; so does a
            // serializable commit refused by read validation (an empty record).
            prop_assert_eq!(s.log_records, m.commits + m.refused, "{}: log_records", ctx);
            prop_assert_eq!(s.log_syncs, m.commits + m.refused, "{}: log_syncs", ctx);
            prop_assert_eq!(s.checkpoints, d.checkpoints, "{}: checkpoints", ctx);
            prop_assert_eq!(s.replayed, d.replayed, "{}: replayed", ctx);
            prop_assert_eq!(s.torn_tails, 0, "{}: torn_tails", ctx);
            if disk.segment_bytes.is_some() {
                prop_assert!(s.log_segments >= d.segments, "{}: log_segments {:?}", ctx, s);
            } else {
                prop_assert_eq!(s.log_segments, d.segments, "{}: log_segments", ctx);
            }
            let names = disk
                .list()
                .map_err(|e| TestCaseError::fail(format!("{ctx}: list: {e}")))?;
            let wal = names
                .iter()
                .filter(|n| n.starts_with("wal-") && n.ends_with(".log"))
                .count();
            prop_assert_eq!(wal as u64, s.log_segments, "{}: segment files {:?}", ctx, names);
            let mut ckpt: Vec<&String> = names.iter().filter(|n| n.starts_with("ckpt-")).collect();
            ckpt.sort();
            let want: Vec<String> = d.checkpoint.iter().map(|t| format!("ckpt-{t:020}.ckpt")).collect();
            prop_assert_eq!(ckpt, want.iter().collect::<Vec<_>>(), "{}: checkpoint files", ctx);
        }
        Ok(())
    }

    pub fn step(&mut self, i: usize, op: &Op) -> Result<(), TestCaseError> {
        let ctx = format!("op {i} {op:?}");
        match op {
            Op::Begin(slot) | Op::BeginSerializable(slot) => {
                self.txns[*slot] = None;
                self.begin(*slot, matches!(op, Op::BeginSerializable(_)))?;
            }
            Op::Get(t, k) => {
                let k = key(*k);
                let own = self.with_reader(*t, |r, m, ts, w| {
                    let got = r.get(&k).map_err(|e| TestCaseError::fail(format!("{ctx}: {e}")))?;
                    let want = m.get(&k, ts, w);
                    prop_assert_eq!(
                        got.as_deref(),
                        want.as_deref(),
                        "{}: key {} at ts {}",
                        ctx,
                        show(&k),
                        ts
                    );
                    Ok(w.is_some_and(|w| w.contains_key(&k)))
                })?;
                if !own {
                    self.record(*t, vec![Read::Key(k)]);
                }
            }
            Op::Put(slot, k, v) => {
                self.serial += 1;
                self.write(*slot, key(*k), Some(value(*v, self.serial)))?;
            }
            Op::Delete(slot, k) => self.write(*slot, key(*k), None)?,
            Op::Fill(slot, start, len, v, del) => {
                for j in *start..*start + *len {
                    self.serial += 1;
                    let val = (!*del).then(|| value(v.wrapping_add(j as u8), self.serial));
                    self.write(*slot, key(j), val)?;
                }
            }
            Op::Scan(t, scan, how) => {
                let reads = self.with_reader(*t, |r, m, ts, w| {
                    let view = m.view(ts, w);
                    let ctx = format!("{ctx} at ts {ts}");
                    match scan {
                        Scan::Range(lo, hi) => {
                            let (lo, hi) = (map_bound(lo), map_bound(hi));
                            let (lo, hi) = (lo.as_ref().map(|k| &k[..]), hi.as_ref().map(|k| &k[..]));
                            let want: Vec<(Key, Val)> = view.into_iter().filter(|(k, _)| in_bound(k, lo, hi)).collect();
                            check_iter(r.range(lo, hi), &want, how, &ctx)?;
                            Ok(observed(owned(lo), owned(hi), &want, how))
                        }
                        Scan::Prefix(i, len) => {
                            let k = key(*i);
                            let p = &k[..(*len).min(k.len())];
                            let want: Vec<(Key, Val)> = view.into_iter().filter(|(k, _)| k.starts_with(p)).collect();
                            check_iter(r.prefix(p), &want, how, &ctx)?;
                            let (lo, hi) = prefix_range(p);
                            Ok(observed(lo, hi, &want, how))
                        }
                    }
                })?;
                self.record(*t, reads);
            }
            Op::Commit(slot) => {
                if let Some((tx, m)) = self.txns[*slot].take() {
                    let snap = m.snap;
                    let got = tx.commit();
                    let want = self.model.commit(m);
                    match (got, want) {
                        (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{}: commit ts", ctx),
                        (
                            Err(Error::Conflict {
                                key,
                                winner,
                                snapshot,
                                reason,
                            }),
                            Err((k, w, s, why)),
                        ) => {
                            prop_assert_eq!(
                                (show(&key), winner, snapshot),
                                (show(&k), w, s),
                                "{}: conflict (key, winner, snapshot)",
                                ctx
                            );
                            prop_assert_eq!(reason_of(&reason), Some(why), "{}: conflict reason {:?}", ctx, reason);
                            prop_assert_eq!(s, snap);
                        }
                        (got, want) => {
                            return Err(TestCaseError::fail(format!(
                                "{ctx}: commit returned {got:?}, model expected {want:?}"
                            )))
                        }
                    }
                }
            }
            Op::Rollback(slot) => {
                if let Some((tx, _)) = self.txns[*slot].take() {
                    tx.rollback();
                }
            }
            Op::Auto(k, v) => {
                self.serial += 1;
                let (k, v) = (key(*k), v.map(|v| value(v, self.serial)));
                let mut calls = 0;
                let seen = self
                    .db
                    .transaction(|tx| {
                        calls += 1;
                        match &v {
                            Some(v) => tx.put(&k, v)?,
                            None => tx.delete(&k)?,
                        }
                        Ok(tx.snapshot_ts())
                    })
                    .map_err(|e| TestCaseError::fail(format!("{ctx}: {e}")))?;
                // Nothing runs concurrently: the first attempt commits.
                prop_assert_eq!((calls, seen), (1, self.model.last), "{}: attempts, snapshot", ctx);
                let mut writes = Writes::new();
                writes.insert(k, v);
                let snap = self.model.last;
                let m = MTxn {
                    snap,
                    writes,
                    ..MTxn::default()
                };
                prop_assert_eq!(self.model.commit(m), Ok(snap + 1));
            }
            Op::Savepoint(slot, sp) => self.savepoint(*slot, *sp)?,
            Op::RollbackTo(slot, sp) => self.rollback_to(*slot, *sp, &ctx)?,
            Op::ReleaseSavepoint(slot, sp) => self.release_savepoint(*slot, *sp, &ctx)?,
            Op::Release(slot) => self.held[*slot] = None,
            Op::Gc => {
                self.db.collect_garbage();
                // The watermark is the oldest open reader, or the read timestamp.
                let oldest = self
                    .txns
                    .iter()
                    .flatten()
                    .map(|(_, m)| m.snap)
                    .chain(self.held.iter().flatten().map(|s| s.ts()))
                    .min()
                    .unwrap_or(self.model.last);
                prop_assert_eq!(self.db.stats().gc_watermark, oldest, "{}: gc watermark", ctx);
                // GC must not change what any open reader sees.
                for t in self.targets() {
                    self.check_all(t, &ctx)?;
                }
            }
            Op::Checkpoint => {
                let got = self.db.checkpoint();
                if self.disk.is_none() {
                    prop_assert!(matches!(got, Err(Error::InvalidArgument(_))), "{}: {:?}", ctx, got);
                } else {
                    // No commit runs concurrently: the checkpoint's snapshot
                    // is the read timestamp.
                    let ts = got.map_err(|e| TestCaseError::fail(format!("{ctx}: {e}")))?;
                    prop_assert_eq!(ts, self.model.last, "{}: checkpoint ts", ctx);
                    self.model.checkpoint(ts);
                    for t in self.targets() {
                        self.check_all(t, &ctx)?;
                    }
                }
            }
            Op::Restart(_) => return Err(TestCaseError::fail(format!("{ctx}: restarts are run_durable's"))),
        }
        self.check_stats(&ctx)
    }

    pub fn finish(&mut self) -> Result<(), TestCaseError> {
        // The version count below relies on the reads after GC faulting
        // evicted leaves in (GC collects a leaf when it is faulted in and
        // consolidated); a read-through would leave their old versions on
        // disk (`design/storage.md` §5.4, limits). The run itself read
        // through whenever its cache was under pressure.
        self.db.force_read_through(Some(false));
        // Every open reader still sees its snapshot.
        for t in self.targets() {
            self.check_all(t, "end")?;
        }
        self.txns.iter_mut().for_each(|t| *t = None);
        self.held.iter_mut().for_each(|s| *s = None);
        self.check_stats("end")?;
        self.db.collect_garbage();
        self.check_all(Target::Fresh, "end, after gc")?;
        let mut s = self.db.stats();
        prop_assert_eq!(s.active_snapshots, 0);
        prop_assert_eq!(s.gc_watermark, self.model.last);
        // No reader left: exactly the newest version of each live key remains.
        // A consolidation racing the sweep with an older watermark is caught
        // by the sweep's recheck (pages remember the watermark they were
        // built with; 20,000 release cases passed with no extra call), but a
        // page frozen by a merge the background sweeper is running is passed
        // over (best effort; a sweeper paused mid-merge can make two calls in
        // a row miss it), so with a sweeper more calls are allowed, for up to 5 s.
        let live = self.model.view(self.model.last, None).len() as u64;
        if self.disk.is_some_and(|d| d.cache.is_some()) {
            // Paged: the versions in page images recovery did not read are
            // not counted (and evicted leaves are collected when next
            // faulted in).
            return Ok(());
        }
        // Let a descheduled sweeper finish its merge (a deadline for a
        // loaded CI machine, which can pause a thread for seconds).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut extra = 0;
        while !self.strict_gc && s.versions_stored != live && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
            self.db.collect_garbage();
            s = self.db.stats();
            extra += 1;
        }
        prop_assert_eq!(
            s.versions_stored,
            live,
            "versions left after {} extra gc: {:?}",
            extra,
            s
        );
        Ok(())
    }
}

/// A bound as the model keeps it.
fn owned(b: Bound<&[u8]>) -> Bound<Key> {
    b.map(|k| k.to_vec())
}

/// The model's reason for a `bwtx::ConflictReason`.
fn reason_of(r: &ConflictReason) -> Option<Reason> {
    let owned = |b: &Bound<bytes::Bytes>| b.as_ref().map(|k| k.to_vec());
    match r {
        ConflictReason::Write => Some(Reason::Write),
        ConflictReason::Read => Some(Reason::Read),
        ConflictReason::Range { start, end } => Some(Reason::Range(owned(start), owned(end))),
        _ => None,
    }
}

pub fn run_on(db: &Db, ops: &[Op], strict_gc: bool) -> Result<(), TestCaseError> {
    let mut run = Run::new(db, strict_gc);
    for (i, op) in ops.iter().enumerate() {
        run.step(i, op)?;
    }
    run.finish()
}
