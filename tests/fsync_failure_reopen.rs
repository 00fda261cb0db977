//! A reopen in the same boot after a failed fsync (`design/durability.md`,
//! D5): it serves what the device holds, not what the cache kept.
//!
//! After a failed `fsync`, Linux marks the pages it could not write clean
//! and keeps them in the page cache: a reopen would read the failed commit
//! back, serve it, and log later commits after it, though it is not on the
//! disk; a power loss then leaves those synced commits behind a hole, which
//! recovery must refuse as damage. [`FaultFs`] models that: the pages of a
//! failed sync stay readable but are never written by later syncs (unless
//! written again), and `Fs::drop_cache` forgets them, as
//! `posix_fadvise(DONTNEED)` does. Recovery drops the cache of each
//! store's newest segment before reading it.

mod common;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Error, Options};
use common::{dump, fault_opts, DIR};

/// A value spanning several 4 KiB pages: the failed commit's pages are not
/// the ones a later commit writes.
fn big(tag: &str) -> String {
    let mut v = format!("{tag}:");
    v.extend(std::iter::repeat_n('b', 10_000));
    v
}

/// Commit `k = v` and make it durable (a buffered log syncs with
/// `Db::sync`).
fn put(db: &Db, k: &str, v: &str) -> bwtx::Result<()> {
    let mut tx = db.begin();
    tx.put(k, v)?;
    tx.commit()?;
    db.sync()
}

/// A commit whose log sync fails, a reopen without a power loss, a commit,
/// then a power loss: every acknowledged commit is there, the failed one is
/// not (in either open), and the log reads whole.
fn failed_sync_then_reopen(opts: impl Fn(&FaultFs) -> Options, failing: &str, ctx: &str) {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    put(&db, "a", "first").unwrap();
    fs.fail_next_sync(failing);
    let e = put(&db, "b", &big("lost")).unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{ctx}: the failing commit returned {e}");
    drop(db);
    // The cache still serves the failed commit's value (what the reopen
    // must not read).
    let cached = common::files_with_prefix(&fs, failing).into_iter().any(|n| {
        let bytes = fs.contents(&std::path::Path::new(DIR).join(n)).unwrap_or_default();
        bytes.windows(5).any(|w| w == b"lost:")
    });
    assert!(cached, "{ctx}: the failed sync's bytes are not in the cache");

    // Same boot: the cache still holds the failed commit's bytes.
    let db = opts(&fs)
        .open(DIR)
        .unwrap_or_else(|e| panic!("{ctx}: reopen after the failed sync: {e}"));
    let (_, state) = dump(&db);
    assert_eq!(state.get("a").map(String::as_str), Some("first"), "{ctx}");
    assert_eq!(
        state.get("b"),
        None,
        "{ctx}: the failed commit, which the disk does not hold, was served"
    );
    put(&db, "c", &big("kept")).unwrap();
    drop(db);

    fs.power_loss();
    let db = opts(&fs)
        .open(DIR)
        .unwrap_or_else(|e| panic!("{ctx}: reopen after the power loss: {e}"));
    let (_, state) = dump(&db);
    assert_eq!(state.get("a").map(String::as_str), Some("first"), "{ctx}");
    assert_eq!(state.get("b"), None, "{ctx}");
    assert_eq!(
        state.get("c"),
        Some(&big("kept")),
        "{ctx}: an acknowledged commit was lost"
    );
    put(&db, "d", "after").unwrap();
}

#[test]
fn a_failed_log_sync_is_not_served_after_a_reopen() {
    failed_sync_then_reopen(|fs| fault_opts(fs).durability(Durability::Sync), "wal-", "log");
}

#[test]
fn a_failed_value_log_sync_is_not_served_after_a_reopen() {
    // Paged with a buffered log, which places large values in the value
    // log at commit: `Db::sync` syncs the value log first (V5), and that
    // is the sync that fails.
    failed_sync_then_reopen(
        |fs| {
            fault_opts(fs)
                .durability(Durability::Buffered(std::time::Duration::from_secs(3600)))
                .cache_size(1 << 30)
                .segment_bytes(1 << 20)
                .value_log_threshold(1 << 10)
        },
        "vlog-",
        "value log",
    );
}

/// The model itself: a failed sync's pages are served until the cache is
/// dropped, and later syncs do not write them unless written again.
#[test]
fn fault_fs_keeps_a_failed_syncs_pages_off_the_device() {
    use bwtx::fs::Fs;
    use std::path::Path;
    let fs = FaultFs::new();
    let p = Path::new("/f");
    let mut f = fs.create(p).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    f.write_all(&[1; 100]).unwrap();
    f.sync().unwrap();
    f.write_all(&[2; 9000]).unwrap();
    fs.fail_sync_at(fs.syncs());
    assert!(f.sync().is_err());
    let cached = fs.read(p).unwrap();
    assert_eq!(cached.len(), 9100);
    assert!(cached[100..].iter().all(|&b| b == 2), "the cache serves the lost bytes");
    // A write into the last lost page dirties it again: it is written.
    f.write_all(&[3; 10]).unwrap();
    f.sync().unwrap();
    fs.power_loss();
    let on_disk = fs.read(p).unwrap();
    assert_eq!(&on_disk[..100], &[1; 100][..]);
    assert!(
        on_disk[100..8192].iter().all(|&b| b == 0),
        "pages 0 and 1 were not written again"
    );
    assert!(
        on_disk[8192..9100].iter().all(|&b| b == 2),
        "page 2 was dirtied again and written"
    );
    assert_eq!(&on_disk[9100..], &[3; 10][..]);

    // drop_cache: the lost bytes read as the device holds them.
    let p = Path::new("/g");
    let mut f = fs.create(p).unwrap();
    f.write_all(&[1; 100]).unwrap();
    f.sync().unwrap();
    f.write_all(&[2; 100]).unwrap();
    fs.fail_sync_at(fs.syncs());
    assert!(f.sync().is_err());
    fs.drop_cache(p).unwrap();
    let now = fs.read(p).unwrap();
    assert_eq!(&now[..100], &[1; 100][..]);
    assert!(now[100..].iter().all(|&b| b == 0));
}
