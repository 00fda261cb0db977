//! Damage to a page's delta chain (`design/storage.md` §2.3, §4): one leaf
//! whose on-disk chain is a base image and two delta flushes. Every bit of
//! each delta flush record flipped, and every 251st bit of the base image:
//! each flip is `Error::Corruption` naming the segment when the page is
//! read, never a wrong value; a torn delta flush (the segment cut inside
//! it) is too. Both when a read faults the leaf in and when it reads the
//! chain in place (read-through).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use bwtx::fs::{FaultFs, Fs};
use bwtx::{Durability, Error, Options};
use common::{fault_opts, DIR};

fn opts(fs: &FaultFs) -> Options {
    fault_opts(fs)
        .tree_config(bwtx::tree::Config::default())
        .durability(Durability::Sync)
        .segment_bytes(1 << 20)
        .cache_size(1 << 30)
}

fn value(i: usize, round: usize) -> String {
    let mut v = format!("value-{round}-{i}-");
    v.extend(std::iter::repeat_n('x', 100 - v.len()));
    v
}

/// `(offset, length, rkind)` of each record of a page segment.
fn records(seg: &[u8]) -> Vec<(usize, usize, u8)> {
    let mut out = Vec::new();
    let mut at = 32;
    while at + 40 <= seg.len() {
        let len = u32::from_le_bytes(seg[at..at + 4].try_into().unwrap()) as usize;
        let total = (40 + len).div_ceil(8) * 8;
        // The default keyspace's records (tree 0); the catalog's tree
        // writes its own leaf too (`design/keyspaces.md` §8).
        if u16::from_le_bytes([seg[at + 10], seg[at + 11]]) == 0 {
            out.push((at, total, seg[at + 8]));
        }
        at += total;
    }
    out
}

/// Read every key of `model`: each read is the right value or corruption
/// naming `seg`. Returns how many were corruption.
fn read_all(fs: &FaultFs, model: &BTreeMap<String, String>, seg: &str) -> usize {
    let db = match opts(fs).open(DIR) {
        Ok(db) => db,
        Err(Error::Corruption { file, .. }) => {
            assert!(file.ends_with(seg), "{file:?}");
            return model.len();
        }
        Err(e) => panic!("{e}"),
    };
    // Every other call reads the chain in place (read-through, up to three
    // reads of the leaf, `design/storage.md` §5.4), the others fault the
    // leaf in: both must report the damage.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    db.force_read_through(Some(CALLS.fetch_add(1, Ordering::Relaxed) % 2 == 1));
    let snap = db.snapshot();
    model
        .iter()
        .filter(|(k, v)| match snap.get(k) {
            Ok(got) => {
                assert_eq!(got.as_deref(), Some(v.as_bytes()), "never a wrong value");
                false
            }
            Err(Error::Corruption { file, .. }) => {
                assert!(file.ends_with(seg), "{file:?}");
                true
            }
            Err(e) => panic!("{e}"),
        })
        .count()
}

#[test]
fn every_bit_flip_in_a_delta_chain_is_corruption() {
    let fs = FaultFs::new();
    let mut model = BTreeMap::new();
    let db = opts(&fs).open(DIR).unwrap();
    // 40 keys: one leaf. A base image, then two small delta flushes.
    for round in 0..3 {
        let mut tx = db.begin();
        for i in (0..40).filter(|i| round == 0 || *i == 10 * round) {
            let k = format!("key{i:03}");
            let v = if round == 0 {
                value(i, round)
            } else {
                format!("v{round}")
            };
            tx.put(k.clone(), v.clone()).unwrap();
            model.insert(k, v);
        }
        if round == 2 {
            tx.delete("key005").unwrap();
            model.remove("key005");
        }
        tx.commit().unwrap();
        db.checkpoint().unwrap();
    }
    assert_eq!(db.stats().delta_flushes, 2, "{:?}", db.stats());
    drop(db);
    let seg = fs
        .list(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("pages-"))
        .max()
        .unwrap();
    let path = Path::new(DIR).join(&seg);
    let clean = fs.contents(&path).unwrap();
    let recs = records(&clean);
    assert_eq!(
        recs.iter().map(|r| r.2).collect::<Vec<_>>(),
        vec![1, 2, 2],
        "a base image and two delta flushes"
    );
    assert_eq!(read_all(&fs, &model, &seg), 0);
    assert_eq!(read_all(&fs, &model, &seg), 0);
    for &(at, len, rkind) in &recs {
        let step = if rkind == 2 { 1 } else { 251 };
        for bit in (0..len * 8).step_by(step) {
            let mut b = clean.clone();
            b[at + bit / 8] ^= 1 << (bit % 8);
            fs.set_contents(&path, b);
            let bad = read_all(&fs, &model, &seg);
            assert!(
                bad > 0,
                "a flip of bit {bit} of the record at {at} (kind {rkind}) went unnoticed"
            );
        }
    }
    // Torn: the segment cut inside the last delta flush.
    let (at, len, _) = recs[2];
    let mut b = clean.clone();
    b.truncate(at + len / 2);
    fs.set_contents(&path, b);
    assert!(read_all(&fs, &model, &seg) > 0, "a torn delta flush is corruption");
}
