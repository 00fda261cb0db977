//! A crash while a segment file is being created may leave the file's
//! size on disk without its contents: a header's length of zeros
//! (nothing is written or reserved before the header is synced). The open
//! takes such a newest segment, log or page store, for what it is, a
//! segment that never held a record, and opens with every commit. Zeros
//! over a longer newest segment, or over any header before the newest, are
//! damage: `Error::Corruption`, and the open deletes nothing.
//!
//! (Before stop 50: only a file shorter than its header counted as torn.
//! Stop 50 took an all-zero newest segment of any length for a torn one and
//! deleted it, with whatever synced data its zeros had replaced: a value-log
//! segment's deletion cut the log at the first record referencing it.)

mod common;

use std::path::Path;

use bwtx::fs::{FaultFs, Fs};
use bwtx::{Durability, Error, Options};
use common::{dump, fault_opts, files_with_prefix, DIR};

/// Options of a paged database that puts values over 100 bytes in the
/// value log, with durability `d`.
fn paged_opts(fs: &FaultFs, d: Durability) -> Options {
    fault_opts(fs)
        .durability(d)
        .cache_size(64 << 10)
        .value_log_threshold(100)
}

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

/// The outcome of opening with a newest segment of `len` zeros: torn (and
/// the open has every commit) or corruption naming it.
fn zeroed_newest(fs: &FaultFs, opts: &dyn Fn() -> Options, name: &str, len: usize, torn: bool) -> Option<bwtx::Db> {
    let files = files_with_prefix(fs, "");
    match opts().open(DIR) {
        Ok(db) if torn => Some(db),
        Err(Error::Corruption { file, offset, .. }) if !torn => {
            assert_eq!((file, offset), (Path::new(DIR).join(name), 0), "{len} zeros");
            let after = files_with_prefix(fs, "");
            assert!(
                files.iter().all(|f| after.contains(f)),
                "{len} zeros: the open deleted files: {files:?} -> {after:?}"
            );
            None
        }
        other => panic!("{name}, {len} zeros: {:?}", other.map(|_| ())),
    }
}

/// Zeros over more than a header are damage, never a segment to delete:
/// the newest log segment's synced commits, or a value-log segment a table
/// or the log references.
#[test]
fn a_zeroed_newest_segment_longer_than_its_header_is_corruption() {
    for len in [40, 4096] {
        let fs = FaultFs::new();
        let opts = || fault_opts(&fs).durability(Durability::Sync);
        written(&opts);
        let name = next_name(&fs, "wal-", "log");
        zeroed(&fs, &name, len);
        zeroed_newest(&fs, &opts, &name, len, false);
    }
    for prefix in ["pages-", "vlog-"] {
        let fs = FaultFs::new();
        let opts = || paged_opts(&fs, Durability::Sync);
        written(&opts);
        let name = next_name(&fs, prefix, "seg");
        zeroed(&fs, &name, 64);
        zeroed_newest(&fs, &opts, &name, 64, false);
    }
}

/// The newest value-log segment, holding synced values the log references
/// (a buffered log places them at commit), zeroed whole: corruption naming
/// it. Before, the open deleted it as torn and cut the log at the first
/// record referencing it: every commit from there on was gone.
#[test]
fn a_zeroed_value_log_segment_the_log_references_is_corruption() {
    let fs = FaultFs::new();
    let opts = || paged_opts(&fs, Durability::Buffered(std::time::Duration::from_millis(1)));
    let db = opts().open(DIR).unwrap();
    for i in 0..3u32 {
        db.transaction(|tx| tx.put(format!("key{i}"), [b'v'; 300])).unwrap();
    }
    db.sync().unwrap();
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
    let name = files_with_prefix(&fs, "vlog-").pop().expect("a value-log segment");
    let path = Path::new(DIR).join(&name);
    let len = fs.contents(&path).unwrap().len();
    assert!(len > 64, "{len}");
    fs.set_contents(&path, vec![0; len]);
    zeroed_newest(&fs, &opts, &name, len, false);
}

/// A header's length of zeros, the newest log segment: torn, removed, and
/// every commit is there.
#[test]
fn a_zeroed_newest_log_segment_is_a_torn_one() {
    let fs = FaultFs::new();
    let opts = || fault_opts(&fs).durability(Durability::Sync);
    let before = written(&opts);
    let name = next_name(&fs, "wal-", "log");
    zeroed(&fs, &name, 16);
    let db = zeroed_newest(&fs, &opts, &name, 16, true).unwrap();
    assert_eq!(dump(&db).1, before.1);
    assert_eq!(db.stats().torn_tails, 1);
    db.transaction(|tx| tx.put("after", "1")).unwrap();
    drop(db);
    let db = opts().open(DIR).unwrap();
    assert_eq!(dump(&db).1.len(), before.1.len() + 1);
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
        let opts = || paged_opts(&fs, Durability::Sync);
        let before = written(&opts);
        let name = next_name(&fs, prefix, "seg");
        zeroed(&fs, &name, 32);
        let db = opts().open(DIR).unwrap_or_else(|e| panic!("{prefix}: {e}"));
        assert_eq!(dump(&db).1, before.1, "{prefix}");
        db.transaction(|tx| tx.put("after", [b'a'; 300])).unwrap();
        db.evict_all().unwrap();
        drop(db);
        let db = opts().open(DIR).unwrap();
        assert_eq!(dump(&db).1.len(), before.1.len() + 1);
    }
}
