//! The reference model: committed history, open transactions, and the
//! state of a durable database's directory.

use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};

use crate::ops::{Consume, Key, Val, Writes};
use crate::read::in_bound;

/// What a serializable transaction read: a key (found or absent, not
/// answered by its own writes) or a range (the part its iterator yielded).
#[derive(Clone, Debug, PartialEq)]
pub enum Read {
    Key(Key),
    Range(Bound<Key>, Bound<Key>),
}

/// Why the model refuses a commit (`bwtx::ConflictReason`).
#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    Write,
    Read,
    Range(Bound<Key>, Bound<Key>),
}

/// A refused commit: the key, the winner, the snapshot and why.
pub type Refusal = (Key, u64, u64, Reason);

/// The ranges a commit validates: those read, as sets of keys, joined where
/// they overlap or touch (no key between them), lowest first. A conflict
/// names the joined range holding the lowest key changed.
fn merged(reads: &[Read]) -> Vec<(Bound<Key>, Bound<Key>)> {
    // A range's start as (key, excluded), `None` for unbounded; its end as
    // (key, included), `None` for unbounded.
    let start = |b: &Bound<Key>| match b {
        Unbounded => None,
        Included(k) => Some((k.clone(), false)),
        Excluded(k) => Some((k.clone(), true)),
    };
    let end_key = |b: &Bound<Key>| match b {
        Unbounded => None,
        Included(k) => Some((k.clone(), true)),
        Excluded(k) => Some((k.clone(), false)),
    };
    let mut ranges: Vec<(Bound<Key>, Bound<Key>)> = reads
        .iter()
        .filter_map(|r| match r {
            Read::Range(lo, hi) => Some((lo.clone(), hi.clone())),
            Read::Key(_) => None,
        })
        .collect();
    ranges.sort_by_key(|r| start(&r.0));
    let mut out: Vec<(Bound<Key>, Bound<Key>)> = Vec::new();
    for r in ranges {
        if let Some(last) = out.last_mut() {
            // No key lies between `last` and `r`: some key is in both, or
            // the first ends just where the second begins.
            let joined = match (&last.1, &r.0) {
                (Unbounded, _) | (_, Unbounded) => true,
                (Included(e), Included(s) | Excluded(s)) => s <= e,
                (Excluded(e), Included(s)) => s <= e,
                (Excluded(e), Excluded(s)) => s < e,
            };
            if joined {
                let longer = match (end_key(&last.1), end_key(&r.1)) {
                    (None, _) => false,
                    (_, None) => true,
                    (Some(a), Some(b)) => b > a,
                };
                if longer {
                    last.1 = r.1;
                }
                continue;
            }
        }
        out.push(r);
    }
    out
}

/// The committed history.
#[derive(Default)]
pub struct Model {
    /// Per key: `(commit_ts, value)`, oldest first (`None`: a delete).
    pub history: BTreeMap<Key, Vec<(u64, Option<Val>)>>,
    /// The last commit timestamp (= the read timestamp).
    pub last: u64,
    /// Counters since the database was (re)opened (`versions_installed`
    /// starts with the versions recovery installed).
    pub commits: u64,
    pub conflicts: u64,
    /// Serializable commits refused by read validation since open: each
    /// took a timestamp and logged an empty record.
    pub refused: u64,
    pub versions_installed: u64,
    /// Durable databases: the state of the directory.
    pub disk: DiskModel,
}

/// What a durable database's directory holds, and its counters since open.
#[derive(Default)]
pub struct DiskModel {
    /// The timestamp of the newest checkpoint (`None`: never checkpointed).
    pub checkpoint: Option<u64>,
    /// Checkpoints written since open.
    pub checkpoints: u64,
    /// The timestamp of the last checkpoint written since open.
    pub written: Option<u64>,
    /// Commits recovery replayed at the last open.
    pub replayed: u64,
    /// Log segment files: exact when segments never fill up, else a lower
    /// bound (a full segment rotates).
    pub segments: u64,
    /// The last commit timestamp when the current segment began: it holds
    /// a record once a commit (or a refused serializable one) is above it.
    pub current_from: u64,
}

/// An open transaction of the model.
#[derive(Default)]
pub struct MTxn {
    pub snap: u64,
    pub writes: Writes,
    /// Which transaction this is (unique in a run; 0 for `Op::Auto`'s).
    pub id: u64,
    /// Savepoints taken so far (the next one's serial).
    pub taken: u64,
    /// The live savepoints, oldest first: serial, and the writes then.
    pub live: Vec<(u64, Writes)>,
    /// Begun with `Isolation::Serializable`.
    pub serializable: bool,
    /// Serializable: what it read, in order (savepoints do not undo it).
    pub reads: Vec<Read>,
}

impl MTxn {
    /// Record a read, if this transaction is serializable.
    pub fn read(&mut self, reads: Vec<Read>) {
        if self.serializable {
            self.reads.extend(reads);
        }
    }
}

/// The smallest key above every key that starts with `p`, if any.
pub fn prefix_end(p: &[u8]) -> Option<Key> {
    let mut end = p.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The range `prefix(p)` scans.
pub fn prefix_range(p: &[u8]) -> (Bound<Key>, Bound<Key>) {
    (Included(p.to_vec()), prefix_end(p).map_or(Unbounded, Excluded))
}

/// What a scan of `lo..hi` that yields `want` (in full) records when
/// consumed as `how`: the whole range if the iterator ran out (it returned
/// `None` once), else the part from the start to the last key taken from
/// the front, or from the last key taken from the back to the end; nothing
/// if it yielded nothing.
pub fn observed(lo: Bound<Key>, hi: Bound<Key>, want: &[(Key, Val)], how: &Consume) -> Vec<Read> {
    let n = want.len();
    match how {
        Consume::Partial(0, _) => Vec::new(),
        Consume::Partial(k, false) if *k <= n => vec![Read::Range(lo, Included(want[k - 1].0.clone()))],
        Consume::Partial(k, true) if *k <= n => vec![Read::Range(Included(want[n - k].0.clone()), hi)],
        _ => vec![Read::Range(lo, hi)],
    }
}

impl MTxn {
    /// Take a savepoint; returns its serial.
    pub fn savepoint(&mut self) -> u64 {
        let serial = self.taken;
        self.taken += 1;
        self.live.push((serial, self.writes.clone()));
        serial
    }

    /// Roll back to the savepoint `serial` of transaction `id`: `false`
    /// (and nothing changes) if it is another transaction's, or was
    /// invalidated by a rollback to an earlier one.
    pub fn rollback_to(&mut self, id: u64, serial: u64) -> bool {
        if id != self.id {
            return false;
        }
        let Some(pos) = self.live.iter().position(|(s, _)| *s == serial) else {
            return false;
        };
        self.writes = self.live[pos].1.clone();
        self.live.truncate(pos + 1);
        true
    }

    /// Release the savepoint `serial` of transaction `id` and those after
    /// it, keeping the writes: `false` (and nothing changes) if it is
    /// another transaction's or no longer live.
    pub fn release_savepoint(&mut self, id: u64, serial: u64) -> bool {
        if id != self.id {
            return false;
        }
        let Some(pos) = self.live.iter().position(|(s, _)| *s == serial) else {
            return false;
        };
        self.live.truncate(pos);
        true
    }
}

impl Model {
    pub fn get_at(&self, key: &[u8], ts: u64) -> Option<Val> {
        let h = self.history.get(key)?;
        h.iter().rev().find(|(t, _)| *t <= ts).and_then(|(_, v)| v.clone())
    }

    pub fn get(&self, key: &[u8], ts: u64, writes: Option<&Writes>) -> Option<Val> {
        match writes.and_then(|w| w.get(key)) {
            Some(v) => v.clone(),
            None => self.get_at(key, ts),
        }
    }

    /// Everything visible at `ts` merged with `writes`.
    pub fn view(&self, ts: u64, writes: Option<&Writes>) -> BTreeMap<Key, Val> {
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

    pub fn newest(&self, key: &[u8]) -> Option<u64> {
        self.history.get(key).and_then(|h| h.last()).map(|(t, _)| *t)
    }

    /// `Ok(ts)` or the refusal; applies a successful commit. A
    /// serializable transaction with writes is refused iff a key it read or
    /// a key in a range it scanned was written by a commit after its
    /// snapshot (all of which are before it): the commit order is then a
    /// serial order. The refusal names the first such key read (in key
    /// order), else the first range scanned (in scan order) with its
    /// smallest written key; and that key's newest commit. A refused
    /// serializable commit uses up a timestamp.
    pub fn commit(&mut self, tx: MTxn) -> Result<u64, Refusal> {
        if tx.writes.is_empty() {
            return Ok(tx.snap);
        }
        for k in tx.writes.keys() {
            if let Some(w) = self.newest(k).filter(|&w| w > tx.snap) {
                self.conflicts += 1;
                return Err((k.clone(), w, tx.snap, Reason::Write));
            }
        }
        if tx.serializable {
            if let Some((k, w, why)) = self.read_conflict(&tx) {
                self.last += 1;
                self.conflicts += 1;
                self.refused += 1;
                return Err((k, w, tx.snap, why));
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

    /// The first read of `tx` that a commit after its snapshot wrote.
    fn read_conflict(&self, tx: &MTxn) -> Option<(Key, u64, Reason)> {
        let changed = |k: &Key| self.newest(k).filter(|&w| w > tx.snap);
        let mut keys: Vec<&Key> = tx
            .reads
            .iter()
            .filter_map(|r| match r {
                Read::Key(k) if !tx.writes.contains_key(k) => Some(k),
                _ => None,
            })
            .collect();
        keys.sort();
        keys.dedup();
        if let Some((k, w)) = keys.into_iter().find_map(|k| changed(k).map(|w| (k, w))) {
            return Some((k.clone(), w, Reason::Read));
        }
        merged(&tx.reads).iter().find_map(|(lo, hi)| {
            let (l, h) = (lo.as_ref().map(|k| &k[..]), hi.as_ref().map(|k| &k[..]));
            self.history
                .keys()
                .filter(|k| in_bound(k, l, h))
                .find_map(|k| changed(k).map(|w| (k.clone(), w, Reason::Range(lo.clone(), hi.clone()))))
        })
    }

    /// A (re)open: counters restart, recovery replays the log after the
    /// newest checkpoint, and a new log segment is started.
    pub fn reopen(&mut self) {
        self.commits = 0;
        self.conflicts = 0;
        self.refused = 0;
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
        self.disk.current_from = self.last;
    }

    /// `db.checkpoint()` returned `ts`. It closes the current segment if it
    /// holds a record; a checkpoint of what the last one written since open
    /// already covers writes nothing, else the new one replaces every older
    /// checkpoint and every closed segment (all of whose commits it covers).
    pub fn checkpoint(&mut self, ts: u64) {
        let records = self.last > self.disk.current_from;
        let d = &mut self.disk;
        if records {
            d.current_from = self.last;
        }
        if d.written == Some(ts) {
            d.segments += u64::from(records);
        } else {
            d.checkpoint = Some(ts);
            d.written = Some(ts);
            d.checkpoints += 1;
            d.segments = 1;
        }
    }
}
