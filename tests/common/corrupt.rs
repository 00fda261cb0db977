//! Set-ups shared by the `wal_corruption_*` tests: a database built on
//! `FaultFs` with known transactions, its files as a map to damage, the
//! records of a segment, and the checks every recovery must pass.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bwtx::fs::{FaultFs, Fs};
use bwtx::{Db, Error};

use super::{dump, fault_opts, DIR};

pub(crate) const SEG_HEADER: usize = 16;

/// A database directory's files, by name.
pub(crate) type Files = BTreeMap<String, Vec<u8>>;

/// Transaction `i`: its marker, a fresh key, sometimes an overwrite or a
/// delete of an older key. Values are unique per (key, transaction).
pub(crate) fn writes(i: usize) -> Vec<(String, Option<String>)> {
    let v = |k: &str| Some(format!("{k}@{i}{}", "~".repeat(i * 11 % 29)));
    let mut w = vec![(format!("m/{i:03}"), Some(i.to_string()))];
    let fresh = format!("k/{i:03}");
    w.push((fresh.clone(), v(&fresh)));
    if i % 3 == 2 {
        let old = format!("k/{:03}", i / 2);
        w.push((old.clone(), v(&old)));
    }
    if i % 4 == 3 {
        w.push((format!("k/{:03}", i - 2), None));
    }
    w
}

pub(crate) fn commit(db: &Db, i: usize) -> u64 {
    let mut tx = db.begin();
    for (k, v) in writes(i) {
        match v {
            Some(v) => tx.put(k, v).unwrap(),
            None => tx.delete(k).unwrap(),
        }
    }
    tx.commit().unwrap()
}

/// The state after the transactions whose commit timestamps (`i + 1`) are in `ts`.
pub(crate) fn expected(ts: impl IntoIterator<Item = u64>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for t in ts {
        for (k, v) in writes(t as usize - 1) {
            match v {
                Some(v) => m.insert(k, v),
                None => m.remove(&k),
            };
        }
    }
    m
}

/// Every value the workload of `n` transactions ever wrote, by key.
pub(crate) fn written(n: usize) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for i in 0..n {
        for (k, v) in writes(i) {
            if let Some(v) = v {
                m.entry(k).or_default().insert(v);
            }
        }
    }
    m
}

pub(crate) fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

pub(crate) fn seg_name(seq: u64) -> String {
    format!("wal-{seq:010}.log")
}

/// Run `txns` transactions (a checkpoint after the first `ckpt_after`, if
/// given), close cleanly, and return the files.
pub(crate) fn build(segment_bytes: u64, txns: usize, ckpt_after: Option<usize>) -> Files {
    let fs = FaultFs::new();
    let db = fault_opts(&fs).segment_bytes(segment_bytes).open(DIR).unwrap();
    for i in 0..txns {
        if Some(i) == ckpt_after {
            assert_eq!(db.checkpoint().unwrap(), i as u64);
        }
        assert_eq!(commit(&db, i), i as u64 + 1);
    }
    drop(db);
    files_of(&fs)
}

pub(crate) fn files_of(fs: &FaultFs) -> Files {
    let mut names = fs.list(Path::new(DIR)).unwrap();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let mut data = fs.contents(&path(&n)).unwrap();
            if n.starts_with("wal-") {
                // A segment's reserved space (zeros past its records): left
                // out, so the damage goes to records and the files replayed
                // are the records alone. This workload's records end in a
                // nonzero byte (ASCII keys and values).
                while data.last() == Some(&0) {
                    data.pop();
                }
            }
            (n, data)
        })
        .collect()
}

/// A fresh file system holding `files`, all durable.
pub(crate) fn fs_with(files: &Files) -> FaultFs {
    let fs = FaultFs::new();
    for (name, data) in files {
        let mut f = fs.create(&path(name)).unwrap();
        f.write_all(data).unwrap();
        f.sync().unwrap();
    }
    fs.sync_dir(Path::new(DIR)).unwrap();
    fs
}

/// A frame of a segment: its byte range and commit timestamp (0 for a
/// mark, the writer's durable frontier: `design/durability.md` §1.1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rec {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) ts: u64,
}

/// The frames of an intact segment, marks included.
pub(crate) fn records(seg: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut at = SEG_HEADER;
    while at < seg.len() {
        let len = u32::from_le_bytes(seg[at..at + 4].try_into().unwrap()) as usize;
        let ts = varint(&seg[at + 8..]);
        out.push(Rec {
            start: at,
            end: at + 8 + len,
            ts,
        });
        at += 8 + len;
    }
    assert_eq!(at, seg.len());
    out
}

/// The unsigned LEB128 varint at the start of `b` (a version-7 record's
/// commit timestamp, `design/durability.md` §1.1).
fn varint(b: &[u8]) -> u64 {
    let mut v = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return v;
        }
    }
    panic!("a varint past 10 bytes or the record")
}

pub(crate) fn segments(files: &Files) -> Vec<String> {
    files.keys().filter(|n| n.starts_with("wal-")).cloned().collect()
}

/// Assert `r` is `Error::Corruption` in `file` (at `offset`, if given).
pub(crate) fn assert_corruption(r: Result<Db, Error>, file: &str, offset: Option<u64>, ctx: &str) {
    match r {
        Err(Error::Corruption {
            file: f,
            offset: o,
            reason,
        }) => {
            assert_eq!(f, path(file), "{ctx}: corruption reported in the wrong file ({reason})");
            if let Some(want) = offset {
                assert_eq!(o, want, "{ctx}: corruption reported at the wrong offset ({reason})");
            }
        }
        Err(e) => panic!("{ctx}: expected corruption in {file}, got {e}"),
        Ok(db) => panic!("{ctx}: expected corruption in {file}, opened with {:?}", dump(&db)),
    }
}

/// After a successful recovery: commit once more and reopen; the state must
/// carry over exactly and timestamps continue.
pub(crate) fn commit_and_reopen(fs: &FaultFs, db: Db, ctx: &str) {
    let (ts, mut state) = dump(&db);
    let mut tx = db.begin();
    tx.put("zz", "after").unwrap();
    assert_eq!(tx.commit().unwrap(), ts + 1, "{ctx}: timestamps continue");
    drop(db);
    let db = fault_opts(fs)
        .open(DIR)
        .unwrap_or_else(|e| panic!("{ctx}: reopening the recovered database failed: {e}"));
    state.insert("zz".into(), "after".into());
    assert_eq!(dump(&db), (ts + 1, state), "{ctx}: second reopen");
    assert_eq!(db.stats().torn_tails, 0, "{ctx}: second reopen");
}

/// A log of 20 records over several segments.
pub(crate) fn multi_segment_log() -> Files {
    let files = build(200, 20, None);
    let segs = segments(&files);
    assert!(segs.len() >= 5, "{segs:?}");
    files
}
