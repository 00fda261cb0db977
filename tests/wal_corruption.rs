//! Damaged logs and checkpoints: truncation at every byte offset, bit flips
//! in every header byte and in the payloads, damaged checkpoints, and a
//! property test feeding arbitrary and mutated files to recovery.
//!
//! Rules (design/durability.md, "Recovery"): a torn last record of the last
//! segment is truncated and counted; any other damage is `Error::Corruption`
//! naming the file and the offset of the bad frame; recovery never panics and
//! never keeps a value nobody wrote.
//!
//! Scale by hand: `BWTX_CORRUPT_ALL_BITS=1` flips every bit of every payload
//! byte (default: one bit per byte); `PROPTEST_CASES` (default 64).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bwtx::fs::{FaultFs, Fs};
use bwtx::{Db, Error};
use proptest::prelude::*;

mod common;
use common::{dump, env_u64, fault_opts, DIR};

const SEG_HEADER: usize = 16;

/// A database directory's files, by name.
type Files = BTreeMap<String, Vec<u8>>;

/// Transaction `i`: its marker, a fresh key, sometimes an overwrite or a
/// delete of an older key. Values are unique per (key, transaction).
fn writes(i: usize) -> Vec<(String, Option<String>)> {
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

fn commit(db: &Db, i: usize) -> u64 {
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
fn expected(ts: impl IntoIterator<Item = u64>) -> BTreeMap<String, String> {
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
fn written(n: usize) -> BTreeMap<String, BTreeSet<String>> {
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

fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

fn seg_name(seq: u64) -> String {
    format!("wal-{seq:010}.log")
}

/// Run `txns` transactions (a checkpoint after the first `ckpt_after`, if
/// given), close cleanly, and return the files.
fn build(segment_bytes: u64, txns: usize, ckpt_after: Option<usize>) -> Files {
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

fn files_of(fs: &FaultFs) -> Files {
    let mut names = fs.list(Path::new(DIR)).unwrap();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let data = fs.contents(&path(&n)).unwrap();
            (n, data)
        })
        .collect()
}

/// A fresh file system holding `files`, all durable.
fn fs_with(files: &Files) -> FaultFs {
    let fs = FaultFs::new();
    for (name, data) in files {
        let mut f = fs.create(&path(name)).unwrap();
        f.write_all(data).unwrap();
        f.sync().unwrap();
    }
    fs.sync_dir(Path::new(DIR)).unwrap();
    fs
}

/// A record of a segment: its byte range and commit timestamp.
#[derive(Clone, Copy, Debug)]
struct Rec {
    start: usize,
    end: usize,
    ts: u64,
}

/// The records of an intact segment.
fn records(seg: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut at = SEG_HEADER;
    while at < seg.len() {
        let len = u32::from_le_bytes(seg[at..at + 4].try_into().unwrap()) as usize;
        let ts = u64::from_le_bytes(seg[at + 8..at + 16].try_into().unwrap());
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

fn segments(files: &Files) -> Vec<String> {
    files.keys().filter(|n| n.starts_with("wal-")).cloned().collect()
}

/// Assert `r` is `Error::Corruption` in `file` (at `offset`, if given).
fn assert_corruption(r: Result<Db, Error>, file: &str, offset: Option<u64>, ctx: &str) {
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
fn commit_and_reopen(fs: &FaultFs, db: Db, ctx: &str) {
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

/// (a) The only segment cut at every byte offset: recovery keeps exactly the
/// whole records before the cut, counting a torn tail iff the cut falls
/// inside a record (or inside the segment header).
#[test]
fn truncated_last_segment_keeps_whole_records() {
    let files = build(1 << 20, 20, None);
    let names = segments(&files);
    assert_eq!(names.len(), 1, "{names:?}");
    let seg = &files[&names[0]];
    let recs = records(seg);
    assert_eq!(recs.len(), 20);
    for cut in 0..=seg.len() {
        let ctx = format!("cut at {cut} of {}", seg.len());
        let mut f = files.clone();
        f.insert(names[0].clone(), seg[..cut].to_vec());
        let fs = fs_with(&f);
        let db = fault_opts(&fs).open(DIR).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let whole: Vec<u64> = recs.iter().filter(|r| r.end <= cut).map(|r| r.ts).collect();
        let torn = cut < SEG_HEADER || (cut > SEG_HEADER && !recs.iter().any(|r| r.end == cut));
        assert_eq!(dump(&db), (whole.len() as u64, expected(whole.clone())), "{ctx}");
        let stats = db.stats();
        assert_eq!(stats.torn_tails, torn as u64, "{ctx}");
        assert_eq!(stats.replayed, whole.len() as u64, "{ctx}");
        commit_and_reopen(&fs, db, &ctx);
    }
}

/// A log of 20 records over several segments.
fn multi_segment_log() -> Files {
    let files = build(250, 20, None);
    let segs = segments(&files);
    assert!(segs.len() >= 5, "{segs:?}");
    files
}

/// (b) A non-last segment cut inside its header or inside a record:
/// corruption in that file, at the offset of the incomplete frame.
#[test]
fn truncated_earlier_segment_is_corruption() {
    let files = multi_segment_log();
    let segs = segments(&files);
    let mut cases = 0;
    for name in &segs[..segs.len() - 1] {
        let seg = &files[name];
        let recs = records(seg);
        for cut in 0..seg.len() {
            let offset = if cut < SEG_HEADER {
                0
            } else if let Some(r) = recs.iter().find(|r| r.start < cut && cut < r.end) {
                r.start as u64
            } else {
                continue; // A cut at a record boundary: see the next test.
            };
            let mut f = files.clone();
            f.insert(name.clone(), seg[..cut].to_vec());
            let ctx = format!("{name} cut at {cut}");
            assert_corruption(fault_opts(&fs_with(&f)).open(DIR), name, Some(offset), &ctx);
            cases += 1;
        }
    }
    assert!(cases > 500, "{cases}");
}

/// A non-last segment cut exactly at a record boundary (or emptied to its
/// header) loses whole records that later segments build on: recovery must
/// not return a state that skips them while keeping later commits (the
/// result would not be a prefix of the commit order, and acknowledged
/// commits would vanish without an error).
#[test]
fn earlier_segment_cut_at_a_record_boundary_is_not_silently_skipped() {
    let files = multi_segment_log();
    let segs = segments(&files);
    for name in &segs[..segs.len() - 1] {
        let seg = &files[name];
        let recs = records(seg);
        for cut in std::iter::once(SEG_HEADER).chain(recs.iter().map(|r| r.end).filter(|&e| e < seg.len())) {
            let mut f = files.clone();
            f.insert(name.clone(), seg[..cut].to_vec());
            let ctx = format!("{name} cut at record boundary {cut}");
            match fault_opts(&fs_with(&f)).open(DIR) {
                Err(Error::Corruption { file, .. }) => assert_eq!(file, path(name), "{ctx}"),
                Err(e) => panic!("{ctx}: {e}"),
                Ok(db) => {
                    let (ts, state) = dump(&db);
                    assert_eq!(
                        state,
                        expected(1..=ts),
                        "{ctx}: recovery silently dropped records of a closed segment and kept later ones"
                    );
                }
            }
        }
    }
}

/// Flip bits of `seg` (segment `name`, the last segment iff `last`) in every
/// header byte and payload byte, and check each recovery.
fn flip_sweep(files: &Files, name: &str, last: bool) -> usize {
    let all_bits = env_u64("BWTX_CORRUPT_ALL_BITS", 0) != 0;
    let seg = &files[name];
    let recs = records(seg);
    let mut cases = 0;
    for pos in 0..seg.len() {
        // Every bit of the segment header and of each frame (len, crc); one
        // bit per payload byte unless asked for all.
        let rec = recs.iter().position(|r| r.start <= pos && pos < r.end);
        let in_frame = rec.is_none_or(|r| pos < recs[r].start + 8);
        let bits: Vec<u8> = if in_frame || all_bits {
            (0..8).collect()
        } else {
            vec![(pos % 8) as u8]
        };
        for bit in bits {
            let ctx = format!("{name}: bit {bit} of byte {pos} flipped");
            let mut d = seg.clone();
            d[pos] ^= 1 << bit;
            let mut f = files.clone();
            f.insert(name.to_owned(), d);
            let fs = fs_with(&f);
            let r = fault_opts(&fs).open(DIR);
            cases += 1;
            match rec {
                None if pos >= 12 => {
                    // The header's reserved word (zero in version 1).
                    match r {
                        Ok(db) => {
                            let (ts, state) = dump(&db);
                            assert_eq!(state, expected(1..=ts), "{ctx}");
                            assert_eq!(ts, 20, "{ctx}: a reserved header bit lost records");
                        }
                        Err(e) => assert_corruption(Err(e), name, Some(0), &ctx),
                    }
                }
                None => assert_corruption(r, name, Some(0), &ctx),
                Some(i) if last && i + 1 == recs.len() => match r {
                    // The last record: a torn tail (dropped) or corruption,
                    // never a changed value.
                    Ok(db) => {
                        let kept: Vec<u64> = recs[..i].iter().map(|r| r.ts).collect();
                        let (ts, state) = dump(&db);
                        assert_eq!(db.stats().torn_tails, 1, "{ctx}");
                        let first = recs[0].ts;
                        let before: Vec<u64> = (1..first).collect();
                        assert_eq!(ts, recs[i].ts - 1, "{ctx}");
                        assert_eq!(state, expected(before.into_iter().chain(kept)), "{ctx}");
                    }
                    Err(e) => assert_corruption(Err(e), name, Some(recs[i].start as u64), &ctx),
                },
                Some(i) => assert_corruption(r, name, Some(recs[i].start as u64), &ctx),
            }
        }
    }
    cases
}

/// (c) Bit flips in the only segment: every header byte and the payloads of
/// every record but the last are corruption at that record's offset.
#[test]
fn bit_flips_in_the_last_segment() {
    let files = build(1 << 20, 20, None);
    let segs = segments(&files);
    assert_eq!(segs.len(), 1);
    assert!(flip_sweep(&files, &segs[0], true) > 2000);
}

/// (c) Bit flips in every segment of a multi-segment log.
#[test]
fn bit_flips_in_every_segment() {
    let files = multi_segment_log();
    let segs = segments(&files);
    let mut cases = 0;
    for (i, name) in segs.iter().enumerate() {
        cases += flip_sweep(&files, name, i + 1 == segs.len());
    }
    assert!(cases > 2000, "{cases}");
}

/// A log with a checkpoint after 12 of 18 transactions.
fn checkpointed_log() -> (Files, String) {
    let files = build(250, 18, Some(12));
    let ckpt: Vec<&String> = files.keys().filter(|n| n.ends_with(".ckpt")).collect();
    assert_eq!(ckpt.len(), 1, "{files:?}");
    let name = ckpt[0].clone();
    assert_eq!(name, format!("ckpt-{:020}.ckpt", 12));
    // Sanity: it recovers whole.
    let db = fault_opts(&fs_with(&files)).open(DIR).unwrap();
    assert_eq!(dump(&db), (18, expected(1..=18)));
    assert_eq!(db.stats().replayed, 6);
    (files, name)
}

/// (d) Any damage to the checkpoint is corruption in the checkpoint file.
#[test]
fn damaged_checkpoint_is_corruption() {
    let (files, name) = checkpointed_log();
    let ck = &files[&name];
    let all_bits = env_u64("BWTX_CORRUPT_ALL_BITS", 0) != 0;
    let foot = ck.len() - 20;
    for pos in 0..ck.len() {
        let edge = pos < 24 || pos >= foot;
        let bits: Vec<u8> = if edge || all_bits {
            (0..8).collect()
        } else {
            vec![(pos % 8) as u8]
        };
        for bit in bits {
            let mut f = files.clone();
            f.get_mut(&name).unwrap()[pos] ^= 1 << bit;
            let ctx = format!("checkpoint bit {bit} of byte {pos} flipped");
            let offset = (pos < 12).then_some(0);
            assert_corruption(fault_opts(&fs_with(&f)).open(DIR), &name, offset, &ctx);
        }
    }
    for cut in 0..ck.len() {
        let mut f = files.clone();
        f.get_mut(&name).unwrap().truncate(cut);
        assert_corruption(
            fault_opts(&fs_with(&f)).open(DIR),
            &name,
            None,
            &format!("checkpoint cut at {cut}"),
        );
    }
    for extra in [&[0u8][..], b"BWTXEND\0", &ck[24..40]] {
        let mut f = files.clone();
        f.get_mut(&name).unwrap().extend_from_slice(extra);
        assert_corruption(
            fault_opts(&fs_with(&f)).open(DIR),
            &name,
            None,
            "bytes appended to the checkpoint",
        );
    }
    // A checkpoint whose name disagrees with its timestamp.
    let mut f = files.clone();
    let data = f.remove(&name).unwrap();
    let renamed = format!("ckpt-{:020}.ckpt", 13);
    f.insert(renamed.clone(), data);
    assert_corruption(
        fault_opts(&fs_with(&f)).open(DIR),
        &renamed,
        Some(16),
        "renamed checkpoint",
    );
    // A leftover temporary checkpoint is ignored (and removed), whatever it holds.
    let mut f = files.clone();
    f.insert(format!("ckpt-{:020}.tmp", 17), b"garbage".to_vec());
    let fs = fs_with(&f);
    let db = fault_opts(&fs).open(DIR).unwrap();
    assert_eq!(dump(&db), (18, expected(1..=18)));
    commit_and_reopen(&fs, db, "leftover tmp");
}

// ---------------------------------------------------------------------------
// (e) Property test: arbitrary and mutated files.

/// The base for mutations: a checkpoint and several segments.
fn base() -> &'static (Files, BTreeMap<String, BTreeSet<String>>) {
    static BASE: OnceLock<(Files, BTreeMap<String, BTreeSet<String>>)> = OnceLock::new();
    BASE.get_or_init(|| (build(200, 20, Some(8)), written(20)))
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(prop::sample::Index, prop::sample::Index, u8),
    Truncate(prop::sample::Index, prop::sample::Index),
    Insert(prop::sample::Index, prop::sample::Index, Vec<u8>),
    Delete(prop::sample::Index, prop::sample::Index, u8),
    /// Copy a range of one file into another (can duplicate whole records).
    Splice(
        prop::sample::Index,
        prop::sample::Index,
        u16,
        prop::sample::Index,
        prop::sample::Index,
    ),
    /// Overwrite a range with zeros.
    Zero(prop::sample::Index, prop::sample::Index, u8),
    Remove(prop::sample::Index),
    /// Copy a file under a new segment number or checkpoint timestamp.
    Clone(prop::sample::Index, u8, bool),
    /// Cut the last segment (what a crash leaves, mostly).
    CutLast(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    use prop::sample::Index;
    let idx = any::<Index>;
    prop_oneof![
        4 => (idx(), idx(), 0u8..8).prop_map(|(f, p, b)| Mutation::Flip(f, p, b)),
        2 => (idx(), idx()).prop_map(|(f, p)| Mutation::Truncate(f, p)),
        2 => (idx(), idx(), prop::collection::vec(any::<u8>(), 1..24)).prop_map(|(f, p, b)| Mutation::Insert(f, p, b)),
        2 => (idx(), idx(), any::<u8>()).prop_map(|(f, p, n)| Mutation::Delete(f, p, n)),
        2 => (idx(), idx(), any::<u16>(), idx(), idx()).prop_map(|(a, b, n, c, d)| Mutation::Splice(a, b, n, c, d)),
        1 => (idx(), idx(), any::<u8>()).prop_map(|(f, p, n)| Mutation::Zero(f, p, n)),
        1 => idx().prop_map(Mutation::Remove),
        1 => (idx(), 0u8..30, any::<bool>()).prop_map(|(f, n, c)| Mutation::Clone(f, n, c)),
        4 => idx().prop_map(Mutation::CutLast),
    ]
}

fn mutate(files: &mut Files, m: &Mutation) {
    if files.is_empty() {
        return;
    }
    let names: Vec<String> = files.keys().cloned().collect();
    let pick = |i: &prop::sample::Index| names[i.index(names.len())].clone();
    // A position in `0..=len`.
    let at = |i: &prop::sample::Index, len: usize| i.index(len + 1);
    match m {
        Mutation::Flip(f, p, bit) => {
            let d = files.get_mut(&pick(f)).unwrap();
            if !d.is_empty() {
                let p = p.index(d.len());
                d[p] ^= 1 << bit;
            }
        }
        Mutation::Truncate(f, p) => {
            let d = files.get_mut(&pick(f)).unwrap();
            let p = at(p, d.len());
            d.truncate(p);
        }
        Mutation::Insert(f, p, b) => {
            let d = files.get_mut(&pick(f)).unwrap();
            let p = at(p, d.len());
            d.splice(p..p, b.iter().copied());
        }
        Mutation::Delete(f, p, n) => {
            let d = files.get_mut(&pick(f)).unwrap();
            let p = at(p, d.len());
            let e = (p + *n as usize).min(d.len());
            d.drain(p..e);
        }
        Mutation::Splice(from, start, n, to, p) => {
            let src = files[&pick(from)].clone();
            let s = at(start, src.len());
            let e = (s + *n as usize % 512).min(src.len());
            let d = files.get_mut(&pick(to)).unwrap();
            let p = at(p, d.len());
            d.splice(p..p, src[s..e].iter().copied());
        }
        Mutation::Zero(f, p, n) => {
            let d = files.get_mut(&pick(f)).unwrap();
            let p = at(p, d.len());
            let e = (p + *n as usize).min(d.len());
            d[p..e].fill(0);
        }
        Mutation::Remove(f) => {
            files.remove(&pick(f));
        }
        Mutation::CutLast(p) => {
            if let Some(d) = files
                .iter_mut()
                .rev()
                .find(|(n, _)| n.starts_with("wal-"))
                .map(|(_, d)| d)
            {
                let p = at(p, d.len());
                d.truncate(p);
            }
        }
        Mutation::Clone(f, n, as_ckpt) => {
            let data = files[&pick(f)].clone();
            let name = if *as_ckpt {
                format!("ckpt-{:020}.ckpt", n)
            } else {
                seg_name(*n as u64 % 12)
            };
            files.insert(name, data);
        }
    }
}

/// Open `files`; never a panic. If recovery succeeds, every value read back
/// is one that was written to its key (`allowed`), and closing, committing
/// and reopening gives the same state.
fn check_open(files: &Files, allowed: &BTreeMap<String, BTreeSet<String>>, commit_after: bool) {
    let fs = fs_with(files);
    let Ok(db) = fault_opts(&fs).open(DIR) else { return };
    let (ts, state) = dump(&db);
    for (k, v) in &state {
        assert!(
            allowed.get(k).is_some_and(|vs| vs.contains(v)),
            "recovered {k:?} = {v:?}, which was never written"
        );
    }
    if commit_after {
        commit_and_reopen(&fs, db, "after recovering damaged files");
    } else {
        drop(db);
        let db = fault_opts(&fs).open(DIR).expect("a recovered database reopens");
        assert_eq!(dump(&db), (ts, state));
    }
}

/// A record with a valid checksum around arbitrary content.
fn frame(ts: u64, entries: &[(Vec<u8>, Option<Vec<u8>>)], count_delta: u32) -> Vec<u8> {
    let mut p = ts.to_le_bytes().to_vec();
    p.extend_from_slice(&(entries.len() as u32).wrapping_add(count_delta).to_le_bytes());
    for (k, v) in entries {
        p.extend_from_slice(&(k.len() as u32).to_le_bytes());
        p.extend_from_slice(&v.as_ref().map_or(u32::MAX, |v| v.len() as u32).to_le_bytes());
        p.extend_from_slice(k);
        if let Some(v) = v {
            p.extend_from_slice(v);
        }
    }
    let len = (p.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &p);
    let mut out = len.to_vec();
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&p);
    out
}

fn seg_header() -> Vec<u8> {
    let mut h = b"BWTXWAL\0".to_vec();
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h
}

/// A checkpoint with a valid checksum around arbitrary entries.
fn ckpt_file(ts: u64, entries: &[(Vec<u8>, Vec<u8>)], count_delta: u64) -> Vec<u8> {
    let mut b = b"BWTXCKP\0".to_vec();
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&ts.to_le_bytes());
    for (k, v) in entries {
        b.extend_from_slice(&(k.len() as u32).to_le_bytes());
        b.extend_from_slice(&(v.len() as u32).to_le_bytes());
        b.extend_from_slice(k);
        b.extend_from_slice(v);
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&(entries.len() as u64).wrapping_add(count_delta).to_le_bytes());
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(b"BWTXEND\0");
    b
}

type Entry = (Vec<u8>, Option<Vec<u8>>);

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => (0u8..6).prop_map(|k| vec![b'a' + k]),
        1 => prop::collection::vec(any::<u8>(), 0..6),
        // Over the key size limit.
        1 => Just(vec![b'x'; bwtx::tree::MAX_KEY_LEN + 1]),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (key(), prop::option::of(prop::collection::vec(any::<u8>(), 0..8)))
}

fn framed_ts() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..12, 1 => Just(u64::MAX), 1 => any::<u64>()]
}

fn cases() -> u32 {
    env_u64("PROPTEST_CASES", 64) as u32
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Arbitrary bytes as segments and checkpoints.
    #[test]
    fn arbitrary_files_never_panic(
        files in prop::collection::vec(
            (0u8..4, 0u64..4, prop::collection::vec(any::<u8>(), 0..120)),
            0..4,
        ),
        with_header in any::<bool>(),
    ) {
        let mut f = Files::new();
        for (kind, n, mut data) in files {
            let name = match kind {
                0 | 1 => {
                    if with_header {
                        let mut h = seg_header();
                        h.append(&mut data);
                        data = h;
                    }
                    seg_name(n)
                }
                2 => format!("ckpt-{n:020}.ckpt"),
                _ => format!("ckpt-{n:020}.tmp"),
            };
            f.insert(name, data);
        }
        check_open(&f, &BTreeMap::new(), true);
    }

    /// Valid log and checkpoint files, mutated.
    #[test]
    fn mutated_files_never_panic_nor_invent_values(muts in prop::collection::vec(mutation(), 1..5)) {
        let (files, allowed) = base();
        let mut f = files.clone();
        for m in &muts {
            mutate(&mut f, m);
        }
        check_open(&f, allowed, true);
    }

    /// Well-framed records and checkpoints (valid checksums) with arbitrary
    /// content: timestamps 0, huge or repeated, duplicate and oversized keys,
    /// wrong entry counts.
    #[test]
    fn well_framed_arbitrary_content_never_panics(
        segs in prop::collection::vec(
            prop::collection::vec((framed_ts(), prop::collection::vec(entry(), 0..4), 0u32..3), 0..5),
            1..3,
        ),
        // Timestamps from 1: a checkpoint at ts 0 holding entries (which no
        // writer produces) is restored invisibly, see the report.
        ckpt in prop::option::of((1u64..6, prop::collection::vec((key(), prop::collection::vec(any::<u8>(), 0..8)), 0..5), 0u64..2)),
    ) {
        let mut f = Files::new();
        let mut allowed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut allow = |k: &[u8], v: &[u8]| {
            allowed
                .entry(String::from_utf8_lossy(k).into_owned())
                .or_default()
                .insert(String::from_utf8_lossy(v).into_owned());
        };
        let mut huge_ts = false;
        for (i, recs) in segs.iter().enumerate() {
            let mut data = seg_header();
            for (ts, entries, delta) in recs {
                huge_ts |= *ts > 1 << 40;
                data.extend_from_slice(&frame(*ts, entries, *delta));
                for (k, v) in entries {
                    if let Some(v) = v {
                        allow(k, v);
                    }
                }
            }
            f.insert(seg_name(i as u64), data);
        }
        if let Some((ts, entries, delta)) = &ckpt {
            for (k, v) in entries {
                allow(k, v);
            }
            f.insert(format!("ckpt-{ts:020}.ckpt"), ckpt_file(*ts, entries, *delta));
        }
        // With a crafted timestamp near u64::MAX there is no next commit timestamp.
        check_open(&f, &allowed, !huge_ts);
    }
}
