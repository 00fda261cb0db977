//! Damaged checkpoints, and leftovers of an interrupted checkpoint.
//!
//! Rules (design/durability.md, "Recovery"): a torn last record of the last
//! segment is truncated and counted; any other damage is `Error::Corruption`
//! naming the file and the offset of the bad frame; recovery never panics and
//! never keeps a value nobody wrote. Shared set-ups: `tests/common/corrupt.rs`.

use bwtx_kit::env;

mod common;
use common::corrupt::{assert_corruption, build, commit_and_reopen, expected, fs_with, Files};
use common::{dump, fault_opts, DIR};

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
    let all_bits = env::parse::<u64>("BWTX_CORRUPT_ALL_BITS").unwrap_or(0) != 0;
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

/// An open that fails on damage changes no file: with a damaged checkpoint,
/// a torn tail in the newest log segment and a leftover temporary
/// checkpoint, the corruption is reported and every file is as it was
/// (the torn tail is not cut, the leftover not removed), for `bwtx check`
/// or a person to look at. Before, the tail was cut and the leftover
/// removed before the checkpoint was parsed.
#[test]
fn a_failed_open_changes_no_file() {
    let (files, name) = checkpointed_log();
    let mut f = files.clone();
    let ck = f.get_mut(&name).unwrap();
    let mid = ck.len() / 2;
    ck[mid] ^= 0x04;
    let newest = common::corrupt::segments(&f).pop().expect("a log segment");
    // A length that runs past the end: a torn record.
    f.get_mut(&newest).unwrap().extend_from_slice(&[0x40, 0, 0, 0, 9, 9]);
    f.insert(format!("ckpt-{:020}.tmp", 99), b"half a checkpoint".to_vec());
    let fs = fs_with(&f);
    assert_corruption(fault_opts(&fs).open(DIR), &name, None, "damaged checkpoint");
    assert!(common::corrupt::files_of(&fs) == f, "the failed open changed files");
}
