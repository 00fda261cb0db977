//! The naive baselines: one fsync per commit, to one shared log behind a
//! mutex (`fsync-log`) or to one file per thread (`fsync-files`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use crate::engines::Engine;

// Naive fsync-per-commit logs -----------------------------------------------

/// The naive log record of one commit: an 8-byte header (count), then key
/// and value of each write.
pub(crate) fn naive_record(buf: &mut Vec<u8>, writes: &[(u64, u64)]) {
    buf.clear();
    buf.extend_from_slice(&(writes.len() as u64).to_le_bytes());
    for &(k, v) in writes {
        buf.extend_from_slice(&k.to_be_bytes());
        buf.extend_from_slice(&v.to_be_bytes());
    }
}

pub(crate) fn append_file(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("create naive log")
}

/// One shared log file; each commit writes and syncs under one mutex.
pub(crate) struct FsyncLog {
    pub(crate) file: Mutex<File>,
}

impl Engine for FsyncLog {
    fn name(&self) -> &'static str {
        "fsync-log"
    }
    fn load(&self, _keys: &[u64]) {}
    fn commit(&self, _thread: usize, writes: &[(u64, u64)]) -> u64 {
        let mut rec = Vec::with_capacity(40);
        naive_record(&mut rec, writes);
        let mut f = self.file.lock().expect("naive log lock");
        f.write_all(&rec).expect("naive log write");
        f.sync_data().expect("naive log sync");
        0
    }
    fn value(&self, _key: u64) -> Option<u64> {
        None
    }
    fn reopen(&mut self) {}
    fn stores_keys(&self) -> bool {
        false
    }
}

/// One log file per committing thread; no shared lock.
pub(crate) struct FsyncFiles {
    pub(crate) files: Vec<Mutex<File>>,
}

impl Engine for FsyncFiles {
    fn name(&self) -> &'static str {
        "fsync-files"
    }
    fn load(&self, _keys: &[u64]) {}
    fn commit(&self, thread: usize, writes: &[(u64, u64)]) -> u64 {
        let mut rec = Vec::with_capacity(40);
        naive_record(&mut rec, writes);
        // Each thread has its own file: the mutex is never contended.
        let mut f = self.files[thread].lock().expect("naive file lock");
        f.write_all(&rec).expect("naive file write");
        f.sync_data().expect("naive file sync");
        0
    }
    fn value(&self, _key: u64) -> Option<u64> {
        None
    }
    fn reopen(&mut self) {}
    fn stores_keys(&self) -> bool {
        false
    }
}
