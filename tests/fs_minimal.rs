//! A user's `Fs` that implements only the trait's required methods (no
//! `open_append`, no `open_read`, whose defaults are `Unsupported`): a
//! database without a page store opens, commits, and reopens on it.
//! Before, recovery synced the log's newest segment through `open_append`,
//! so every reopen failed with `Error::Io` (Unsupported).

use std::io;
use std::path::Path;
use std::sync::Arc;

use bwtx::fs::{FaultFs, Fs, FsFile};
use bwtx::{Durability, Options};

/// Forwards the required methods to a `FaultFs`.
struct Minimal(FaultFs);

impl Fs for Minimal {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.0.list(dir)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.0.read(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.0.create(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.0.truncate(path, len)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.0.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.sync_dir(dir)
    }
    fn lock(&self, dir: &Path) -> io::Result<Box<dyn Send + Sync>> {
        self.0.lock(dir)
    }
}

#[test]
fn a_minimal_fs_reopens_a_database() {
    let fs = FaultFs::new();
    let open = || {
        Options::new()
            .file_system(Arc::new(Minimal(fs.clone())))
            .durability(Durability::Sync)
            .open("/db")
    };
    for round in 0..3u32 {
        let db = open().unwrap();
        db.transaction(|tx| tx.put(format!("k{round}"), "v")).unwrap();
        assert_eq!(db.snapshot().len(), u64::from(round) + 1);
        // No clean close: the power fails at the close's first sync, so the
        // next open recovers from the log (its newest segment synced by
        // `truncate`, the file system having no `open_append`).
        fs.crash_at_sync(fs.syncs());
        drop(db);
        fs.power_loss();
    }
    // Every round's commit survived: each was synced, and each reopen
    // kept what it recovered.
    assert_eq!(open().unwrap().snapshot().len(), 3);
}
