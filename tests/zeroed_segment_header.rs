//! A crash while a segment file is being created may leave the file's
//! size on disk without its contents: a header-sized (or longer) run of
//! zeros (`design/durability.md` §7 allows zeros in the last region
//! written). The open takes such a newest segment, log or page store, for
//! what it is, a segment that never held a record, and opens with every
//! commit; a zeroed header anywhere else is corruption.
//!
//! (Before: only a file shorter than its header counted as torn, and the
//! open failed with `Error::Corruption`, "bad segment header".)

mod common;

use std::path::Path;

use bwtx::fs::{FaultFs, Fs};
use bwtx::{Durability, Error, Options};
use common::{dump, fault_opts, files_with_prefix, DIR};

/// Add an all-zero file `name` of `len` bytes to the directory, durably.
fn zeroed(fs: &FaultFs, name: &str, len: usize) {
    let dir = Path::new(DIR);
    let mut f = fs.create(&dir.join(name)).unwrap();
    f.write_all(&vec![0; len]).unwrap();
    f.sync().unwrap();
    fs.sync_dir(dir).unwrap();
}

/// The number in a segment file's name (`wal-0000000003.log` is 3).
fn seq(name: &str) -> u64 {
    let digits: String = name.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap()
}

fn next_name(fs: &FaultFs, prefix: &str, ext: &str) -> String {
    let last = files_with_prefix(fs, prefix).pop().expect("a segment");
    format!("{prefix}{:010}.{ext}", seq(&last) + 1)
}

fn written(opts: &dyn Fn() -> Options) -> (u64, std::collections::BTreeMap<String, String>) {
    let db = opts().open(DIR).unwrap();
    for i in 0..20u32 {
        db.transaction(|tx| tx.put(format!("key{i:02}"), [b'v'; 300])).unwrap();
    }
    dump(&db)
}

#[test]
fn a_zeroed_newest_log_segment_is_a_torn_one() {
    for len in [16, 40, 4096] {
        let fs = FaultFs::new();
        let opts = || fault_opts(&fs).durability(Durability::Sync);
        let before = written(&opts);
        let name = next_name(&fs, "wal-", "log");
        zeroed(&fs, &name, len);
        let db = opts().open(DIR).unwrap_or_else(|e| panic!("{len} zeros: {e}"));
        assert_eq!(dump(&db).1, before.1, "{len}");
        assert_eq!(db.stats().torn_tails, 1);
        db.transaction(|tx| tx.put("after", "1")).unwrap();
        drop(db);
        let db = opts().open(DIR).unwrap();
        assert_eq!(dump(&db).1.len(), before.1.len() + 1);
    }
}

#[test]
fn a_zeroed_log_segment_before_the_newest_is_corruption() {
    let fs = FaultFs::new();
    let opts = || fault_opts(&fs).durability(Durability::Sync).segment_bytes(1 << 10);
    written(&opts);
    let segs = files_with_prefix(&fs, "wal-");
    assert!(segs.len() > 2, "{segs:?}");
    let victim = Path::new(DIR).join(&segs[1]);
    let len = fs.contents(&victim).unwrap().len();
    fs.set_contents(&victim, vec![0; len]);
    match opts().open(DIR) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!((file, offset), (victim, 0));
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn a_zeroed_newest_page_or_value_log_segment_is_a_torn_one() {
    for prefix in ["pages-", "vlog-"] {
        let fs = FaultFs::new();
        let opts = || {
            fault_opts(&fs)
                .durability(Durability::Sync)
                .cache_size(64 << 10)
                .value_log_threshold(100)
        };
        let before = written(&opts);
        let name = next_name(&fs, prefix, "seg");
        zeroed(&fs, &name, 64);
        let db = opts().open(DIR).unwrap_or_else(|e| panic!("{prefix}: {e}"));
        assert_eq!(dump(&db).1, before.1, "{prefix}");
        db.transaction(|tx| tx.put("after", [b'a'; 300])).unwrap();
        db.evict_all().unwrap();
        drop(db);
        let db = opts().open(DIR).unwrap();
        assert_eq!(dump(&db).1.len(), before.1.len() + 1);
    }
}
