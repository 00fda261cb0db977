//! A location table whose crc is right but whose page-store or value-log
//! head is wrong (a writer's bug, or crafted bytes): the open is
//! `Error::Corruption` and deletes nothing. The open deletes the segments
//! past the heads as unpublished, so before, a head of `NO_ADDR` or one
//! before the pages the table lists made a *successful* open delete them,
//! and every later read of those pages failed.

mod common;

use std::path::Path;

use bwtx::fs::FaultFs;
use bwtx::{Durability, Error};
use common::{dump, fault_opts, files_with_prefix, DIR};

/// The footer: vlog_head u64 | pages_head u64 | crc u32 | magic (8).
const FOOTER: usize = 28;

fn reseal(mut t: Vec<u8>) -> Vec<u8> {
    let foot = t.len() - FOOTER;
    let crc = crc32c::crc32c(&t[..foot + 16]);
    t[foot + 16..foot + 20].copy_from_slice(&crc.to_le_bytes());
    t
}

#[test]
fn wrong_heads_are_corruption_and_delete_nothing() {
    let fs = FaultFs::new();
    let opts = || {
        fault_opts(&fs)
            .durability(Durability::Sync)
            .cache_size(64 << 10)
            .value_log_threshold(512)
            .segment_bytes(16 << 10)
    };
    let db = opts().open(DIR).unwrap();
    for i in 0..2000u32 {
        let v = if i % 10 == 0 { vec![b'L'; 1000] } else { vec![b's'; 50] };
        db.transaction(|tx| tx.put(format!("k{i:05}"), &v)).unwrap();
    }
    let before = dump(&db);
    drop(db); // a clean close writes a table
    let table = files_with_prefix(&fs, "ckpt-").pop().expect("a table");
    let path = Path::new(DIR).join(&table);
    let good = fs.contents(&path).unwrap();
    let foot = good.len() - FOOTER;
    let pages_head = u64::from_le_bytes(good[foot + 8..foot + 16].try_into().unwrap());
    assert!(files_with_prefix(&fs, "pages-").len() >= 2, "several page segments");
    for (what, at, head) in [
        ("pages head NO_ADDR", foot + 8, u64::MAX),
        (
            "pages head before the listed pages",
            foot + 8,
            (pages_head >> 32) << 32 | 32,
        ),
        ("pages head in an early segment", foot + 8, 1 << 32 | 32),
        ("value-log head NO_ADDR", foot, u64::MAX),
    ] {
        let mut bad = good.clone();
        bad[at..at + 8].copy_from_slice(&head.to_le_bytes());
        fs.set_contents(&path, reseal(bad));
        let files = files_with_prefix(&fs, "");
        match opts().open(DIR) {
            Err(Error::Corruption { .. }) => {}
            Err(e) => panic!("{what}: another error: {e}"),
            Ok(_) => panic!("{what}: opened"),
        }
        let after = files_with_prefix(&fs, "");
        assert!(
            files.iter().all(|f| after.contains(f)),
            "{what}: the failed open deleted files: {files:?} -> {after:?}"
        );
    }
    fs.set_contents(&path, good);
    let db = opts().open(DIR).unwrap();
    assert_eq!(dump(&db).1, before.1);
}
