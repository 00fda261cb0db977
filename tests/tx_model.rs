//! Model-based test of transactions: up to four interleaved read-write
//! transactions, held and fresh snapshots, and explicit garbage collection,
//! run against both the default configuration and tiny pages (splits and
//! merges under the transactions), and checked after every step against a
//! model of snapshot isolation with first-committer-wins:
//!
//! - the committed history, per key a list of `(commit_ts, Option<value>)`,
//!   so that a read at any snapshot timestamp can be predicted;
//! - per open transaction its snapshot timestamp and its write buffer.
//!
//! The model predicts every read (own writes first, buffered deletes hide
//! keys), every range in every consumption order, which commits fail with a
//! conflict (and the reported key, winner and snapshot), every commit
//! timestamp (consecutive from 1; a commit without writes returns its
//! snapshot timestamp), every snapshot timestamp, and the counters.
//!
//! The same properties run on durable databases ([`Durability::Sync`]) with
//! two more operations: `Checkpoint`, and `Restart`, which rolls back every
//! transaction and drops every held snapshot (the model drops their
//! buffers), closes the database (cleanly, or after a power loss that drops
//! every unsynced byte), and reopens it. Across restarts the model predicts
//! the same committed state, consecutive commit timestamps, snapshot
//! timestamps, counters restarting from zero, the commits replayed (those
//! after the newest checkpoint), no torn tails, the log records and syncs,
//! and the files in the directory (log segments, exactly one checkpoint).
//! They run on [`FaultFs`] (default pages; tiny pages with small log
//! segments) and, with few cases, on a real temporary directory.
//!
//! `PROPTEST_CASES=N` runs N cases per property (default 128; the real
//! directory runs N / 16).

use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bwtx::fs::{FaultFs, Fs, StdFs};
use bwtx::{Db, Durability, Error, Iter, Options, Snapshot, Transaction};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Transaction slots.
const SLOTS: usize = 4;
/// Held-snapshot slots.
const HELD: usize = 2;

type Key = Vec<u8>;
type Val = Vec<u8>;
type Writes = BTreeMap<Key, Option<Val>>;

/// Key `i`: keys sharing prefixes (`k000`, `k000\0`, `k000/2`), keys made of
/// `0xff` bytes (whose prefix has no upper bound), big-endian integers
/// starting with `0x00`, short `p..` keys, and the empty key.
fn key(i: usize) -> Key {
    match i % 6 {
        0 => format!("k{i:03}").into_bytes(),
        1 => format!("k{:03}\0", i - 1).into_bytes(),
        2 => format!("k{:03}/{i}", i - 2).into_bytes(),
        3 if i == 3 => Vec::new(),
        3 => vec![0xff, 0xff, (i / 6) as u8],
        4 => (i as u16).to_be_bytes().to_vec(),
        _ => format!("p{i}").into_bytes(),
    }
}

/// A value unique to its write (`serial`), sometimes empty (which is not
/// absent), sometimes large enough not to be inlined in a delta.
fn value(v: u8, serial: usize) -> Val {
    match v % 16 {
        0 => Vec::new(),
        1 | 2 => {
            let mut out = vec![v; 300];
            out.extend_from_slice(&serial.to_be_bytes());
            out
        }
        _ => format!("v{v}-{serial}").into_bytes(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Target {
    /// The transaction in this slot (begun implicitly if the slot is empty).
    Txn(usize),
    /// The snapshot held in this slot (taken implicitly if empty).
    Held(usize),
    /// A fresh `db.snapshot()`, dropped right after the read.
    Fresh,
}

#[derive(Debug, Clone)]
enum Scan {
    Range(Bound<usize>, Bound<usize>),
    /// `prefix(key(i)[..len])`.
    Prefix(usize, usize),
}

#[derive(Debug, Clone)]
enum Consume {
    Forward,
    Reverse,
    /// `true` = `next_back`, `false` = `next`; then drain with `next`.
    Mixed(Vec<bool>),
    /// Take this many items from the front (or the back), then drop the iterator.
    Partial(usize, bool),
}

#[derive(Debug, Clone)]
enum Op {
    /// Roll back whatever the slot holds, begin a new transaction.
    Begin(usize),
    Get(Target, usize),
    Put(usize, usize, u8),
    Delete(usize, usize),
    /// Put (or delete) `len` consecutive keys from `start`.
    Fill(usize, usize, usize, u8, bool),
    Scan(Target, Scan, Consume),
    Commit(usize),
    Rollback(usize),
    /// `db.transaction` putting (or, `None`, deleting) one key.
    Auto(usize, Option<u8>),
    /// Drop a held snapshot.
    Release(usize),
    Gc,
    /// `db.checkpoint()` (durable databases only).
    Checkpoint,
    /// Close and reopen the database (durable databases only).
    Restart(Shutdown),
}

/// How [`Op::Restart`] closes the database.
#[derive(Debug, Clone, Copy)]
enum Shutdown {
    /// Drop the handle (which flushes), then reopen.
    Clean,
    /// Drop the handle, then lose power: every unsynced byte and directory
    /// entry is gone (only on [`FaultFs`]; a clean close elsewhere).
    PowerLossAfterClose,
    /// Lose power while the database is still open, then drop the handle:
    /// nothing the close would flush can help.
    PowerLossWhileOpen,
}

fn bound(n: usize) -> impl Strategy<Value = Bound<usize>> {
    prop_oneof![
        1 => Just(Unbounded),
        2 => (0..n + 2).prop_map(Included),
        2 => (0..n + 2).prop_map(Excluded),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        6 => (0..SLOTS).prop_map(Target::Txn),
        1 => (0..HELD).prop_map(Target::Held),
        1 => Just(Target::Fresh),
    ]
}

fn scan(n: usize) -> impl Strategy<Value = Scan> {
    prop_oneof![
        3 => (bound(n), bound(n)).prop_map(|(lo, hi)| Scan::Range(lo, hi)),
        1 => (0..n, 0..6usize).prop_map(|(i, len)| Scan::Prefix(i, len)),
    ]
}

fn consume() -> impl Strategy<Value = Consume> {
    prop_oneof![
        3 => Just(Consume::Forward),
        2 => Just(Consume::Reverse),
        2 => proptest::collection::vec(any::<bool>(), 0..12).prop_map(Consume::Mixed),
        1 => (0..6usize, any::<bool>()).prop_map(|(n, back)| Consume::Partial(n, back)),
    ]
}

/// Operations over `n` keys; `fill` weights the bulk writes (which grow the
/// tree to many pages quickly, and shrink it again).
fn op(n: usize, fill: u32) -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        2 => slot.clone().prop_map(Op::Begin),
        6 => (target(), 0..n).prop_map(|(t, k)| Op::Get(t, k)),
        8 => (slot.clone(), 0..n, any::<u8>()).prop_map(|(s, k, v)| Op::Put(s, k, v)),
        3 => (slot.clone(), 0..n).prop_map(|(s, k)| Op::Delete(s, k)),
        fill => (slot.clone(), 0..n, 1..40usize, any::<u8>(), any::<bool>())
            .prop_map(|(s, k, len, v, del)| Op::Fill(s, k, len, v, del)),
        4 => (target(), scan(n), consume()).prop_map(|(t, s, c)| Op::Scan(t, s, c)),
        5 => slot.clone().prop_map(Op::Commit),
        1 => slot.prop_map(Op::Rollback),
        2 => (0..n, proptest::option::weighted(0.8, any::<u8>())).prop_map(|(k, v)| Op::Auto(k, v)),
        1 => (0..HELD).prop_map(Op::Release),
        1 => Just(Op::Gc),
    ]
}

/// [`op`] plus checkpoints and restarts, each about once per 35 operations.
fn durable_op(n: usize, fill: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        33 + fill => op(n, fill),
        1 => Just(Op::Checkpoint),
        1 => prop_oneof![
            Just(Shutdown::Clean),
            Just(Shutdown::PowerLossAfterClose),
            Just(Shutdown::PowerLossWhileOpen),
        ]
        .prop_map(Op::Restart),
    ]
}

/// The committed history.
#[derive(Default)]
struct Model {
    /// Per key: `(commit_ts, value)`, oldest first (`None`: a delete).
    history: BTreeMap<Key, Vec<(u64, Option<Val>)>>,
    /// The last commit timestamp (= the read timestamp).
    last: u64,
    /// Counters since the database was (re)opened (`versions_installed`
    /// starts with the versions recovery installed).
    commits: u64,
    conflicts: u64,
    versions_installed: u64,
    /// Durable databases: the state of the directory.
    disk: DiskModel,
}

/// What a durable database's directory holds, and its counters since open.
#[derive(Default)]
struct DiskModel {
    /// The timestamp of the newest checkpoint (`None`: never checkpointed).
    checkpoint: Option<u64>,
    /// Checkpoints written since open.
    checkpoints: u64,
    /// The timestamp of the last checkpoint written since open.
    written: Option<u64>,
    /// Commits recovery replayed at the last open.
    replayed: u64,
    /// Log segment files: exact when segments never fill up, else a lower
    /// bound (a full segment rotates).
    segments: u64,
}

/// An open transaction of the model.
struct MTxn {
    snap: u64,
    writes: Writes,
}

impl Model {
    fn get_at(&self, key: &[u8], ts: u64) -> Option<Val> {
        let h = self.history.get(key)?;
        h.iter().rev().find(|(t, _)| *t <= ts).and_then(|(_, v)| v.clone())
    }

    fn get(&self, key: &[u8], ts: u64, writes: Option<&Writes>) -> Option<Val> {
        match writes.and_then(|w| w.get(key)) {
            Some(v) => v.clone(),
            None => self.get_at(key, ts),
        }
    }

    /// Everything visible at `ts` merged with `writes`.
    fn view(&self, ts: u64, writes: Option<&Writes>) -> BTreeMap<Key, Val> {
        let mut out: BTreeMap<Key, Val> = self
            .history
            .keys()
            .filter_map(|k| self.get_at(k, ts).map(|v| (k.clone(), v)))
            .collect();
        for (k, v) in writes.into_iter().flatten() {
            match v {
                Some(v) => out.insert(k.clone(), v.clone()),
                None => out.remove(k),
            };
        }
        out
    }

    fn newest(&self, key: &[u8]) -> Option<u64> {
        self.history.get(key).and_then(|h| h.last()).map(|(t, _)| *t)
    }

    /// `Ok(ts)` or `Err((key, winner, snapshot))`; applies a successful commit.
    fn commit(&mut self, tx: MTxn) -> Result<u64, (Key, u64, u64)> {
        if tx.writes.is_empty() {
            return Ok(tx.snap);
        }
        for k in tx.writes.keys() {
            if let Some(w) = self.newest(k).filter(|&w| w > tx.snap) {
                self.conflicts += 1;
                return Err((k.clone(), w, tx.snap));
            }
        }
        self.last += 1;
        self.commits += 1;
        self.versions_installed += tx.writes.len() as u64;
        for (k, v) in tx.writes {
            self.history.entry(k).or_default().push((self.last, v));
        }
        Ok(self.last)
    }

    /// A (re)open: counters restart, recovery replays the log after the
    /// newest checkpoint, and a new log segment is started.
    fn reopen(&mut self) {
        self.commits = 0;
        self.conflicts = 0;
        let d = &mut self.disk;
        d.checkpoints = 0;
        d.written = None;
        let ckpt = d.checkpoint.unwrap_or(0);
        d.replayed = self.last - ckpt;
        let image = d.checkpoint.map_or(0, |t| self.view(t, None).len());
        let replayed: usize = self
            .history
            .values()
            .map(|h| h.iter().filter(|(t, _)| *t > ckpt).count())
            .sum();
        // Recovered versions count as installed (so that `versions_stored`
        // stays exact): the checkpoint's live keys and every replayed write.
        self.versions_installed = (image + replayed) as u64;
        self.disk.segments += 1;
    }

    /// `db.checkpoint()` returned `ts`. It closes the current segment; a
    /// checkpoint of what the last one written since open already covers
    /// writes nothing, else the new one replaces every older checkpoint and
    /// every closed segment (all of whose commits it covers).
    fn checkpoint(&mut self, ts: u64) {
        let d = &mut self.disk;
        if d.written == Some(ts) {
            d.segments += 1;
        } else {
            d.checkpoint = Some(ts);
            d.written = Some(ts);
            d.checkpoints += 1;
            d.segments = 1;
        }
    }
}

/// Where a durable database lives, and how it is opened.
struct Disk {
    name: &'static str,
    /// `None`: the real file system.
    fault: Option<FaultFs>,
    dir: PathBuf,
    tiny_pages: bool,
    /// Small log segments (`None`: the default, never filled here).
    segment_bytes: Option<u64>,
}

impl Disk {
    fn fault(name: &'static str, tiny_pages: bool, segment_bytes: Option<u64>) -> Disk {
        Disk {
            name,
            fault: Some(FaultFs::new()),
            dir: PathBuf::from("/db"),
            tiny_pages,
            segment_bytes,
        }
    }

    /// A fresh directory under the system's temporary directory.
    fn real(name: &'static str, tiny_pages: bool, segment_bytes: Option<u64>) -> Disk {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("bwtx-tx-model-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Disk {
            name,
            fault: None,
            dir,
            tiny_pages,
            segment_bytes,
        }
    }

    fn open(&self) -> bwtx::Result<Db> {
        let mut o = Options::new()
            .durability(Durability::Sync)
            .gc_interval(None)
            .checkpoint_bytes(0);
        if let Some(fs) = &self.fault {
            o = o.file_system(Arc::new(fs.clone()));
        }
        if self.tiny_pages {
            o = o.tree_config(bwtx::tree::Config::tiny());
        }
        if let Some(n) = self.segment_bytes {
            o = o.segment_bytes(n);
        }
        o.open(&self.dir)
    }

    fn list(&self) -> std::io::Result<Vec<String>> {
        match &self.fault {
            Some(fs) => fs.list(&self.dir),
            None => StdFs.list(&self.dir),
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if self.fault.is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Something that reads: a transaction or a snapshot.
enum Reader<'r, 'db> {
    Tx(&'r Transaction<'db>),
    Snap(&'r Snapshot<'db>),
}

impl Reader<'_, '_> {
    fn get(&self, k: &[u8]) -> bwtx::Result<Option<bytes::Bytes>> {
        match self {
            Reader::Tx(t) => t.get(k),
            Reader::Snap(s) => s.get(k),
        }
    }

    /// Ranges through the std range types where one fits, else a bound pair.
    fn range(&self, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Iter<'_> {
        macro_rules! range_of {
            ($r:expr) => {
                match (lo, hi) {
                    (Included(a), Excluded(b)) => $r.range(a..b),
                    (Included(a), Included(b)) => $r.range(a..=b),
                    (Included(a), Unbounded) => $r.range(a..),
                    (Unbounded, Excluded(b)) => $r.range(..b),
                    (Unbounded, Included(b)) => $r.range(..=b),
                    (Unbounded, Unbounded) => $r.range::<&[u8], _>(..),
                    (lo, hi) => $r.range::<&[u8], _>((lo, hi)),
                }
            };
        }
        match self {
            Reader::Tx(t) => range_of!(t),
            Reader::Snap(s) => range_of!(s),
        }
    }

    fn prefix(&self, p: &[u8]) -> Iter<'_> {
        match self {
            Reader::Tx(t) => t.prefix(p),
            Reader::Snap(s) => s.prefix(p),
        }
    }
}

fn in_bound(k: &[u8], lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    let above = match lo {
        Included(l) => k >= l,
        Excluded(l) => k > l,
        Unbounded => true,
    };
    let below = match hi {
        Included(h) => k <= h,
        Excluded(h) => k < h,
        Unbounded => true,
    };
    above && below
}

fn map_bound(b: &Bound<usize>) -> Bound<Key> {
    match b {
        Included(i) => Included(key(*i)),
        Excluded(i) => Excluded(key(*i)),
        Unbounded => Unbounded,
    }
}

fn show(k: &[u8]) -> String {
    format!("{:?}", bytes::Bytes::copy_from_slice(k))
}

/// Consume `it` as `how` says, checking every item against `expected`, and
/// that a fully consumed iterator returns `None` from both ends.
fn check_iter(mut it: Iter<'_>, expected: &[(Key, Val)], how: &Consume, ctx: &str) -> Result<(), TestCaseError> {
    let (mut front, mut back) = (0, expected.len());
    let mut step = 0usize;
    loop {
        let from_back = match how {
            Consume::Forward => false,
            Consume::Reverse => true,
            Consume::Mixed(p) => p.get(step).copied().unwrap_or(false),
            Consume::Partial(n, b) => {
                if step == *n {
                    return Ok(());
                }
                *b
            }
        };
        step += 1;
        let got = if from_back { it.next_back() } else { it.next() };
        if front == back {
            prop_assert!(got.is_none(), "{ctx}: step {step}: expected the end, got {got:?}");
            prop_assert!(it.next().is_none(), "{ctx}: next() after the end");
            prop_assert!(it.next_back().is_none(), "{ctx}: next_back() after the end");
            return Ok(());
        }
        let want = if from_back {
            back -= 1;
            &expected[back]
        } else {
            front += 1;
            &expected[front - 1]
        };
        let (k, v) = match got {
            Some(Ok(kv)) => kv,
            Some(Err(e)) => return Err(TestCaseError::fail(format!("{ctx}: step {step}: error {e}"))),
            None => {
                return Err(TestCaseError::fail(format!(
                    "{ctx}: step {step} (back: {from_back}): ended early, expected {}",
                    show(&want.0)
                )))
            }
        };
        prop_assert_eq!(
            (show(&k), &v[..]),
            (show(&want.0), &want.1[..]),
            "{}: step {} (back: {})",
            ctx,
            step,
            from_back
        );
    }
}

struct Run<'db> {
    db: &'db Db,
    model: Model,
    txns: Vec<Option<(Transaction<'db>, MTxn)>>,
    held: Vec<Option<Snapshot<'db>>>,
    serial: usize,
    /// No background sweeper: one `collect_garbage` without readers must
    /// leave exactly one version per live key.
    strict_gc: bool,
    /// A durable database's directory (`None`: in memory).
    disk: Option<&'db Disk>,
}

impl<'db> Run<'db> {
    fn new(db: &'db Db, strict_gc: bool) -> Self {
        Self::resume(db, Model::default(), 0, strict_gc, None)
    }

    /// Continue the model on `db` (reopened), with nothing open.
    fn resume(db: &'db Db, model: Model, serial: usize, strict_gc: bool, disk: Option<&'db Disk>) -> Self {
        Run {
            db,
            model,
            txns: (0..SLOTS).map(|_| None).collect(),
            held: (0..HELD).map(|_| None).collect(),
            serial,
            strict_gc,
            disk,
        }
    }

    /// Roll back every transaction and drop every held snapshot (the model
    /// drops their buffers); keep the committed history.
    fn close(mut self) -> (Model, usize) {
        self.txns.iter_mut().for_each(|t| *t = None);
        self.held.iter_mut().for_each(|s| *s = None);
        (self.model, self.serial)
    }

    fn begin(&mut self, slot: usize) -> Result<(), TestCaseError> {
        let tx = self.db.begin();
        prop_assert_eq!(tx.snapshot_ts(), self.model.last, "snapshot_ts of a begin");
        let m = MTxn {
            snap: self.model.last,
            writes: Writes::new(),
        };
        self.txns[slot] = Some((tx, m));
        Ok(())
    }

    fn ensure_txn(&mut self, slot: usize) -> Result<(), TestCaseError> {
        if self.txns[slot].is_none() {
            self.begin(slot)?;
        }
        Ok(())
    }

    fn ensure_held(&mut self, slot: usize) -> Result<(), TestCaseError> {
        if self.held[slot].is_none() {
            let s = self.db.snapshot();
            prop_assert_eq!(s.ts(), self.model.last, "ts of a held snapshot");
            self.held[slot] = Some(s);
        }
        Ok(())
    }

    fn write(&mut self, slot: usize, k: Key, v: Option<Val>) -> Result<(), TestCaseError> {
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
    fn with_reader<R>(
        &mut self,
        t: Target,
        f: impl FnOnce(&Reader<'_, 'db>, &Model, u64, Option<&Writes>) -> Result<R, TestCaseError>,
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

    fn targets(&self) -> Vec<Target> {
        let mut out = vec![Target::Fresh];
        out.extend((0..SLOTS).filter(|&i| self.txns[i].is_some()).map(Target::Txn));
        out.extend((0..HELD).filter(|&i| self.held[i].is_some()).map(Target::Held));
        out
    }

    /// A full forward and reverse scan of `t` against the model.
    fn check_all(&mut self, t: Target, ctx: &str) -> Result<(), TestCaseError> {
        self.with_reader(t, |r, m, ts, w| {
            let want: Vec<(Key, Val)> = m.view(ts, w).into_iter().collect();
            let ctx = format!("{ctx}: full scan of {t:?} at ts {ts}");
            check_iter(r.range(Unbounded, Unbounded), &want, &Consume::Forward, &ctx)?;
            check_iter(r.range(Unbounded, Unbounded), &want, &Consume::Reverse, &ctx)
        })
    }

    fn check_stats(&self, ctx: &str) -> Result<(), TestCaseError> {
        let s = self.db.stats();
        let m = &self.model;
        let open = self.txns.iter().flatten().count() + self.held.iter().flatten().count();
        prop_assert_eq!(s.commits, m.commits, "{}: commits", ctx);
        prop_assert_eq!(s.conflicts, m.conflicts, "{}: conflicts", ctx);
        prop_assert_eq!(s.read_ts, m.last, "{}: read_ts", ctx);
        prop_assert_eq!(
            s.versions_installed,
            m.versions_installed,
            "{}: versions_installed",
            ctx
        );
        prop_assert_eq!(s.active_snapshots, open as u64, "{}: active_snapshots", ctx);
        prop_assert!(s.versions_stored <= s.versions_installed, "{}: {:?}", ctx, s);
        if let Some(disk) = self.disk {
            let d = &m.disk;
            // Sync mode, one committer at a time: every commit appends one
            // record and needs its own sync before it returns.
            prop_assert_eq!(s.log_records, m.commits, "{}: log_records", ctx);
            prop_assert_eq!(s.log_syncs, m.commits, "{}: log_syncs", ctx);
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

    fn step(&mut self, i: usize, op: &Op) -> Result<(), TestCaseError> {
        let ctx = format!("op {i} {op:?}");
        match op {
            Op::Begin(slot) => {
                self.txns[*slot] = None;
                self.begin(*slot)?;
            }
            Op::Get(t, k) => {
                let k = key(*k);
                self.with_reader(*t, |r, m, ts, w| {
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
                    Ok(())
                })?;
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
                self.with_reader(*t, |r, m, ts, w| {
                    let view = m.view(ts, w);
                    let ctx = format!("{ctx} at ts {ts}");
                    match scan {
                        Scan::Range(lo, hi) => {
                            let (lo, hi) = (map_bound(lo), map_bound(hi));
                            let (lo, hi) = (lo.as_ref().map(|k| &k[..]), hi.as_ref().map(|k| &k[..]));
                            let want: Vec<(Key, Val)> = view.into_iter().filter(|(k, _)| in_bound(k, lo, hi)).collect();
                            check_iter(r.range(lo, hi), &want, how, &ctx)
                        }
                        Scan::Prefix(i, len) => {
                            let k = key(*i);
                            let p = &k[..(*len).min(k.len())];
                            let want: Vec<(Key, Val)> = view.into_iter().filter(|(k, _)| k.starts_with(p)).collect();
                            check_iter(r.prefix(p), &want, how, &ctx)
                        }
                    }
                })?;
            }
            Op::Commit(slot) => {
                if let Some((tx, m)) = self.txns[*slot].take() {
                    let snap = m.snap;
                    let got = tx.commit();
                    let want = self.model.commit(m);
                    match (got, want) {
                        (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{}: commit ts", ctx),
                        (Err(Error::Conflict { key, winner, snapshot }), Err((k, w, s))) => {
                            prop_assert_eq!(
                                (show(&key), winner, snapshot),
                                (show(&k), w, s),
                                "{}: conflict (key, winner, snapshot)",
                                ctx
                            );
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
                prop_assert_eq!(self.model.commit(MTxn { snap, writes }), Ok(snap + 1));
            }
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

    fn finish(&mut self) -> Result<(), TestCaseError> {
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
        // a row miss it), so with a sweeper a few more calls are allowed.
        let live = self.model.view(self.model.last, None).len() as u64;
        let mut extra = 0;
        while !self.strict_gc && s.versions_stored != live && extra < 16 {
            // Let a descheduled sweeper finish its merge.
            std::thread::sleep(std::time::Duration::from_millis(extra));
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

fn run_on(db: &Db, ops: &[Op], strict_gc: bool) -> Result<(), TestCaseError> {
    let mut run = Run::new(db, strict_gc);
    for (i, op) in ops.iter().enumerate() {
        run.step(i, op)?;
    }
    run.finish()
}

/// Runs `ops` on a durable database in `disk`, opened afresh at every
/// [`Op::Restart`], and once more after the last operation (after a power
/// loss while open). After every open, everything committed (and only that)
/// is there, and the counters restart.
fn run_durable(disk: &Disk, ops: &[Op]) -> Result<Model, TestCaseError> {
    let mut state = (Model::default(), 0);
    let mut i = 0;
    let mut opens = 0;
    let mut last_open = false;
    loop {
        let ctx = format!("open {opens} (before op {i})");
        let db = disk.open().map_err(|e| TestCaseError::fail(format!("{ctx}: {e}")))?;
        opens += 1;
        let (mut model, serial) = state;
        model.reopen();
        let mut run = Run::resume(&db, model, serial, true, Some(disk));
        run.check_stats(&ctx)?;
        run.check_all(Target::Fresh, &ctx)?;
        if last_open {
            run.finish()?;
            return Ok(run.close().0);
        }
        while let Some(op) = ops.get(i).filter(|op| !matches!(op, Op::Restart(_))) {
            run.step(i, op)?;
            i += 1;
        }
        let how = match ops.get(i) {
            Some(Op::Restart(how)) => *how,
            _ => {
                // The end: check, then restart once more.
                run.finish()?;
                last_open = true;
                Shutdown::PowerLossWhileOpen
            }
        };
        // The directory is locked while the database is open.
        let second = disk.open();
        prop_assert!(
            matches!(second, Err(Error::Locked { .. })),
            "op {}: second open: {:?}",
            i,
            second
        );
        drop(second);
        i += 1;
        state = run.close();
        match (how, &disk.fault) {
            (Shutdown::PowerLossWhileOpen, Some(fs)) => {
                fs.power_loss();
                drop(db);
            }
            (Shutdown::PowerLossAfterClose, Some(fs)) => {
                drop(db);
                fs.power_loss();
            }
            _ => drop(db),
        }
    }
}

fn durable_all(ops: &[Op]) -> Result<(), TestCaseError> {
    for disk in [
        Disk::fault("FaultFs, default config", false, None),
        Disk::fault("FaultFs, tiny pages, 512-byte segments", true, Some(512)),
    ] {
        run_durable(&disk, ops).map_err(|e| TestCaseError::fail(format!("{}: {e}", disk.name)))?;
    }
    Ok(())
}

fn tiny_db() -> Db {
    bwtx::Options::new()
        .tree_config(bwtx::tree::Config::tiny())
        .gc_interval(None)
        .in_memory()
        .unwrap()
}

/// Tiny pages and a background sweeper that wakes every millisecond, so
/// sweeps (consolidations, merges) race with the reads and commits.
fn tiny_swept_db() -> Db {
    bwtx::Options::new()
        .tree_config(bwtx::tree::Config::tiny())
        .gc_interval(Some(std::time::Duration::from_millis(1)))
        .in_memory()
        .unwrap()
}

/// Runs `ops` on the default configuration, on tiny pages, and on tiny pages
/// with a busy background sweeper: the outcome must be the same everywhere.
fn run_all(ops: &[Op]) -> Result<(), TestCaseError> {
    run_on(&Db::in_memory(), ops, false).map_err(|e| TestCaseError::fail(format!("default config: {e}")))?;
    run_on(&tiny_db(), ops, true).map_err(|e| TestCaseError::fail(format!("tiny pages: {e}")))?;
    run_on(&tiny_swept_db(), ops, false).map_err(|e| TestCaseError::fail(format!("tiny pages, 1 ms sweeper: {e}")))
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// 16 keys: conflicts on nearly every pair of concurrent writers.
    #[test]
    fn transactions_match_model_small_keyspace(ops in proptest::collection::vec(op(16, 1), 1..300)) {
        run_all(&ops)?;
    }

    /// 200 keys with bulk writes: on tiny pages, many splits and merges
    /// happen under the open transactions and snapshots.
    #[test]
    fn transactions_match_model_many_keys(ops in proptest::collection::vec(op(200, 4), 1..200)) {
        run_all(&ops)?;
    }

    /// The small keyspace on durable databases, with checkpoints and restarts.
    #[test]
    fn durable_transactions_match_model_small_keyspace(ops in proptest::collection::vec(durable_op(16, 1), 1..300)) {
        durable_all(&ops)?;
    }

    /// Many keys and bulk writes on durable databases: recovery rebuilds
    /// many pages (tiny ones: splits during replay).
    #[test]
    fn durable_transactions_match_model_many_keys(ops in proptest::collection::vec(durable_op(200, 4), 1..200)) {
        durable_all(&ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases((cases() / 16).max(2)))]

    /// On a real directory (`StdFs`: fsync, rename, the `flock` lock), with
    /// small segments so that files are created and deleted often.
    #[test]
    fn durable_transactions_match_model_real_directory(ops in proptest::collection::vec(durable_op(40, 2), 1..200)) {
        let disk = Disk::real("real directory, 1 KiB segments", false, Some(1024));
        run_durable(&disk, &ops).map_err(|e| TestCaseError::fail(format!("{}: {e}", disk.name)))?;
    }
}

/// Mixed `next`/`next_back` over a transaction's own writes interleaved
/// with committed keys, on tiny pages, checked item by item.
#[test]
fn mixed_direction_ranges_over_many_pages() {
    let db = tiny_db();
    let mut run = Run::new(&db, true);
    let mut ops = vec![
        Op::Fill(0, 0, 120, 7, false),
        Op::Commit(0),
        Op::Fill(1, 30, 20, 9, true),
    ];
    for i in (0..120).step_by(7) {
        ops.push(Op::Put(1, i, i as u8));
    }
    let patterns = [
        vec![true, false],
        vec![false, false, true],
        vec![true; 40],
        [false, true].repeat(60),
        [true, true, false].repeat(40),
    ];
    for p in &patterns {
        ops.push(Op::Scan(
            Target::Txn(1),
            Scan::Range(Unbounded, Unbounded),
            Consume::Mixed(p.clone()),
        ));
        ops.push(Op::Scan(
            Target::Txn(1),
            Scan::Range(Included(10), Excluded(100)),
            Consume::Mixed(p.clone()),
        ));
        ops.push(Op::Scan(Target::Txn(1), Scan::Prefix(12, 2), Consume::Mixed(p.clone())));
        ops.push(Op::Scan(Target::Txn(0), Scan::Prefix(12, 1), Consume::Mixed(p.clone())));
        ops.push(Op::Scan(
            Target::Fresh,
            Scan::Range(Excluded(5), Included(90)),
            Consume::Mixed(p.clone()),
        ));
    }
    ops.push(Op::Gc);
    ops.push(Op::Commit(1));
    for (i, op) in ops.iter().enumerate() {
        run.step(i, op).unwrap();
    }
    run.finish().unwrap();
    assert!(db.stats().splits > 10, "{:?}", db.stats());
}

/// One key rewritten many times (values too large to inline) while readers
/// of several ages pin its old versions, on tiny pages, with collections in
/// between: every reader keeps its version, and the full collection at the
/// end leaves one version. Also passes commit timestamp 64, where the commit
/// path refreshes the GC watermark.
#[test]
fn many_versions_of_one_key_pinned_by_old_readers() {
    let db = tiny_db();
    let mut run = Run::new(&db, true);
    let mut ops = Vec::new();
    for round in 0..100usize {
        let k = if round % 10 == 9 { 6 } else { 0 };
        ops.push(Op::Put(0, k, 1 + (round % 2) as u8 * 16)); // 300-byte values
        if round % 3 == 0 {
            ops.push(Op::Put(0, 6 + round % 30, 5));
        }
        ops.push(Op::Commit(0));
        match round {
            5 => ops.push(Op::Get(Target::Held(0), 0)),
            20 => ops.push(Op::Get(Target::Txn(1), 0)),
            40 => ops.push(Op::Get(Target::Held(1), 0)),
            60 => ops.push(Op::Release(0)),
            70 => ops.push(Op::Delete(2, 0)),
            _ => {}
        }
        if round % 7 == 0 {
            ops.push(Op::Gc);
        }
        if round % 16 == 0 {
            ops.push(Op::Auto(0, None));
        }
    }
    ops.push(Op::Commit(2)); // conflicts: key 0 was rewritten after its snapshot
    ops.push(Op::Gc);
    for (i, op) in ops.iter().enumerate() {
        run.step(i, op).unwrap();
    }
    assert!(run.model.last > 64);
    assert_eq!(run.model.conflicts, 1);
    run.finish().unwrap();
}

/// Restarts of every kind with transactions and snapshots open, around
/// checkpoints (one repeating the last, which writes nothing; one repeating
/// the recovered one after a reopen, which writes it again), on both fault
/// file system configurations and a real directory.
#[test]
fn durable_restarts_around_checkpoints() {
    use Shutdown::*;
    let ops = vec![
        Op::Fill(0, 0, 30, 1, false),
        Op::Commit(0), // ts 1
        Op::Put(1, 3, 5),
        Op::Get(Target::Held(0), 0),
        Op::Auto(4, Some(2)), // ts 2
        Op::Checkpoint,       // at 2
        Op::Checkpoint,       // nothing new: skipped
        Op::Auto(5, None),    // ts 3
        Op::Put(2, 7, 9),
        Op::Commit(2), // ts 4
        Op::Put(3, 8, 1),
        Op::Restart(PowerLossWhileOpen), // replays 3 and 4; txns 1 and 3 and the held snapshot are gone
        Op::Commit(1),                   // empty slot: nothing
        Op::Commit(3),
        Op::Put(1, 3, 6),
        Op::Commit(1), // ts 5
        Op::Checkpoint,
        Op::Restart(Clean), // replays nothing
        Op::Checkpoint,     // at 5 again: written again after the reopen
        Op::Restart(PowerLossAfterClose),
        Op::Fill(3, 10, 20, 3, true),
        Op::Commit(3), // ts 6
        Op::Scan(Target::Fresh, Scan::Prefix(0, 1), Consume::Reverse),
        Op::Restart(Clean), // replays 6
        Op::Get(Target::Txn(0), 3),
        Op::Gc,
    ];
    for disk in [
        Disk::fault("FaultFs, default config", false, None),
        Disk::fault("FaultFs, tiny pages, 512-byte segments", true, Some(512)),
        Disk::real("real directory, 1 KiB segments", false, Some(1024)),
    ] {
        let m = run_durable(&disk, &ops).unwrap_or_else(|e| panic!("{}: {e}", disk.name));
        assert_eq!(m.last, 6, "{}", disk.name);
        assert_eq!(m.disk.checkpoint, Some(5), "{}", disk.name);
        // The final reopen (after the implicit last restart) replayed commit 6.
        assert_eq!(m.disk.replayed, 1, "{}", disk.name);
        // Keys 0..10 but 5 (deleted at 3); 10..30 were deleted at 6.
        assert_eq!(m.view(6, None).len(), 9, "{}", disk.name);
    }
}
