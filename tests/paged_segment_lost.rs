//! A page segment that a location table lists leaves in, lost or cut short
//! (deleted by hand, a file system losing it): the open is
//! `Error::Corruption` naming that segment, deleting nothing, so that
//! putting the file back recovers everything.
//!
//! (Before: the open succeeded, and the first fault-in of such a leaf
//! failed, naming this run's new segment of the same number when the lost
//! one was the newest, whose number the open reuses.)

mod common;

use std::path::Path;

use bwtx::fs::FaultFs;
use bwtx::{Durability, Error, Options};
use common::{dump, fault_opts, files_with_prefix, DIR};

/// A closed paged database whose leaves are all on disk; its largest page
/// segment and what it holds.
fn closed(fs: &FaultFs) -> ((u64, std::collections::BTreeMap<String, String>), String) {
    let db = opts(fs).open(DIR).unwrap();
    for i in 0..400u32 {
        db.transaction(|tx| tx.put(format!("key{i:04}"), [b'v'; 100])).unwrap();
    }
    let before = dump(&db);
    drop(db);
    let largest = files_with_prefix(fs, "pages-")
        .into_iter()
        .max_by_key(|n| fs.contents(&Path::new(DIR).join(n)).unwrap().len())
        .expect("a page segment");
    (before, largest)
}

fn opts(fs: &FaultFs) -> Options {
    fault_opts(fs)
        .durability(Durability::Sync)
        .segment_bytes(1 << 20)
        .cache_size(16 << 10)
}

/// Open, expecting corruption naming `name`, with every file still there.
fn refused(fs: &FaultFs, name: &str) {
    let files: Vec<String> = files_with_prefix(fs, "").into_iter().filter(|f| f != name).collect();
    match opts(fs).open(DIR) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, Path::new(DIR).join(name)),
        Err(e) => panic!("another error: {e}"),
        Ok(db) => panic!("opened: {:?}", dump(&db).1.len()),
    }
    let after = files_with_prefix(fs, "");
    assert!(files.iter().all(|f| after.contains(f)), "{files:?} -> {after:?}");
}

#[test]
fn a_listed_page_segment_cut_short_is_corruption() {
    let fs = FaultFs::new();
    let (before, name) = closed(&fs);
    let path = Path::new(DIR).join(&name);
    let whole = fs.contents(&path).unwrap();
    fs.set_contents(&path, whole[..whole.len() / 2].to_vec());
    refused(&fs, &name);
    fs.set_contents(&path, whole);
    assert_eq!(dump(&opts(&fs).open(DIR).unwrap()), before);
}

#[test]
fn a_listed_page_segment_missing_is_corruption() {
    let fs = FaultFs::new();
    let (before, name) = closed(&fs);
    let dir = Path::new(DIR);
    let hidden = format!("hidden-{name}");
    bwtx::fs::Fs::rename(&fs, &dir.join(&name), &dir.join(&hidden)).unwrap();
    refused(&fs, &name);
    // The failed open may have created this run's segment of that number
    // (empty): the one put back replaces it.
    bwtx::fs::Fs::rename(&fs, &dir.join(&hidden), &dir.join(&name)).unwrap();
    assert_eq!(dump(&opts(&fs).open(DIR).unwrap()), before);
}
