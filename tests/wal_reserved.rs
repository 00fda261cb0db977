//! Reserved log space (`design/durability.md`, "Reserved space"): a log
//! segment's space is reserved ahead (in 1 MiB steps, or zero-filled at
//! least 1 MiB ahead in 64 KiB chunks), so a sync commit's
//! `fdatasync` changes no file size. The zeros past the last record are the
//! end of the log, on a real file system and through `FaultFs`: reopening
//! finds every commit and no torn tail, a segment closed with reserved space
//! reads whole, the change stream reads the current segment through it,
//! and after a power loss every synced commit is there. A sync log writes
//! its zeros; a buffered one `fallocate`s.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bwtx::fs::{FaultFs, Fs, FsFile, FsRead, FsSync, StdFs};
use bwtx::{Db, Durability, Options};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bwtx-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn segments(dir: &PathBuf) -> Vec<(String, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("wal-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

fn count(db: &Db, prefix: &str) -> usize {
    db.snapshot().prefix(prefix).count()
}

#[test]
fn reserved_space_is_the_end_of_the_log_across_reopens() {
    let dir = tmp("reserved");
    {
        let db = Db::open(&dir).unwrap();
        for i in 0..200 {
            db.transaction(|tx| tx.put(format!("a/{i:04}"), [7u8; 100])).unwrap();
        }
        // The change stream reads the current segment, reserved space and all.
        let changes: Vec<_> = db.changes_since(0).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(changes.len(), 200);
        #[cfg(target_os = "linux")]
        {
            let (_, len) = segments(&dir).pop().unwrap();
            assert!(len >= 1 << 20, "the current segment is reserved ahead: {len} bytes");
        }
    }
    // Reopened: every commit, no torn tail (the zeros are no damage); the
    // segment with reserved space is now a closed one.
    for round in 1..=2 {
        let db = Db::open(&dir).unwrap();
        assert_eq!(db.stats().torn_tails, 0, "round {round}");
        assert_eq!(count(&db, "a/"), 200);
        assert_eq!(count(&db, "b/"), (round - 1) * 50);
        for i in 0..50 {
            db.transaction(|tx| tx.put(format!("b/{round}/{i:04}"), [1u8; 10]))
                .unwrap();
        }
    }
    let db = Db::open(&dir).unwrap();
    assert_eq!((count(&db, "a/"), count(&db, "b/")), (200, 100));
    assert!(segments(&dir).len() >= 3, "{:?}", segments(&dir));
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn synced_commits_in_reserved_space_survive_a_power_loss() {
    let fs = FaultFs::new();
    let dir = PathBuf::from("/db");
    let open = || {
        Options::new()
            .file_system(Arc::new(fs.clone()))
            .durability(Durability::Sync)
            .segment_bytes(64 << 10)
            .open(&dir)
            .unwrap()
    };
    {
        let db = open();
        // Past several 64 KiB segments, each reserved ahead.
        for i in 0..2000 {
            db.transaction(|tx| tx.put(format!("k/{i:05}"), [3u8; 100])).unwrap();
        }
        std::mem::forget(db); // no close: the power goes
    }
    fs.power_loss();
    let db = open();
    assert_eq!(count(&db, "k/"), 2000, "every acknowledged commit");
    assert_eq!(db.stats().torn_tails, 0);
}

/// A reservation call on a log segment: the call, the length asked for,
/// and the bytes written to the segment before it.
type Call = (&'static str, u64, u64);

/// `StdFs`, recording how each log segment's space is reserved.
#[derive(Clone, Default)]
struct Recording {
    calls: Arc<std::sync::Mutex<Vec<Call>>>,
}

struct RecordingFile {
    file: Box<dyn FsFile>,
    written: u64,
    /// `None`: not a log segment.
    calls: Option<Arc<std::sync::Mutex<Vec<Call>>>>,
}

impl RecordingFile {
    fn note(&self, call: &'static str, len: u64) {
        if let Some(c) = &self.calls {
            c.lock().unwrap().push((call, len, self.written));
        }
    }
}

impl FsFile for RecordingFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.written += buf.len() as u64;
        self.file.write_all(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync()
    }
    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        self.note("preallocate", len);
        self.file.preallocate(len)
    }
    fn zero_fill(&mut self, len: u64) -> io::Result<()> {
        self.note("zero_fill", len);
        self.file.zero_fill(len)
    }
    fn syncer(&self) -> io::Result<Option<Box<dyn FsSync>>> {
        self.file.syncer()
    }
}

impl Fs for Recording {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdFs.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdFs.list(dir)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        StdFs.read(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let log = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("wal-"));
        Ok(Box::new(RecordingFile {
            file: StdFs.create(path)?,
            written: 0,
            calls: log.then(|| self.calls.clone()),
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        StdFs.open_append(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsRead>> {
        StdFs.open_read(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        StdFs.truncate(path, len)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        StdFs.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdFs.sync_dir(dir)
    }
    fn lock(&self, dir: &Path) -> io::Result<Box<dyn Send + Sync>> {
        StdFs.lock(dir)
    }
}

/// With `Durability::Sync` the log reserves its space by writing zeros, so
/// that a commit's `fdatasync` converts no extent either; a buffered log,
/// whose syncs no commit waits for, only `fallocate`s (no second write of
/// its bytes). Either way the segment past the records holds zeros, and a
/// reopen finds every commit.
#[test]
fn sync_logs_zero_fill_and_buffered_logs_preallocate() {
    let cases = [
        (Durability::Sync, "zero_fill"),
        (Durability::Buffered(Duration::from_millis(100)), "preallocate"),
    ];
    for (mode, expected) in cases {
        let dir = tmp(&format!("reserve-{expected}"));
        let fs = Recording::default();
        let open = |fs: Arc<dyn Fs>| Options::new().file_system(fs).durability(mode).open(&dir);
        let db = open(Arc::new(fs.clone())).unwrap();
        for i in 0..100 {
            db.transaction(|tx| tx.put(format!("k/{i:03}"), [5u8; 100])).unwrap();
        }
        db.sync().unwrap();
        let (name, len) = segments(&dir).pop().unwrap();
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let calls = fs.calls.lock().unwrap().clone();
        assert!(
            !calls.is_empty() && calls.iter().all(|c| c.0 == expected),
            "{mode:?}: {calls:?}"
        );
        #[cfg(target_os = "linux")]
        {
            assert!(len >= 1 << 20, "{mode:?}: reserved ahead, {len} bytes");
            // 100 records of about 130 bytes, then zeros to the end.
            assert!(bytes[20_000..].iter().all(|b| *b == 0), "{mode:?}");
            assert!(bytes[..20_000].iter().any(|b| *b != 0), "{mode:?}");
        }
        drop(db);
        let db = open(Arc::new(StdFs)).unwrap();
        assert_eq!(count(&db, "k/"), 100, "{mode:?}");
        assert_eq!(db.stats().torn_tails, 0, "{mode:?}");
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A sync log keeps its zeros at least 1 MiB past its records and adds them
/// 64 KiB at a time, so that no group commit writes (and syncs) a whole MiB
/// of zeros with its records; the first write of a segment reserves the
/// MiB and a chunk.
#[test]
fn sync_logs_add_zeros_a_chunk_at_a_time() {
    const MIB: u64 = 1 << 20;
    const CHUNK: u64 = 64 << 10;
    let dir = tmp("reserve-chunks");
    let fs = Recording::default();
    let db = Options::new()
        .file_system(Arc::new(fs.clone()))
        .durability(Durability::Sync)
        .open(&dir)
        .unwrap();
    // About 3 MiB of log in one segment (64 MiB by default).
    for i in 0..3_000 {
        db.transaction(|tx| tx.put(format!("k/{i:05}"), [7u8; 1_000])).unwrap();
    }
    let calls = fs.calls.lock().unwrap().clone();
    assert!(calls.len() > 40, "about one fill per 64 KiB of log: {}", calls.len());
    let (mut reserved, mut last_written) = (0, 0);
    for (i, &(call, len, written)) in calls.iter().enumerate() {
        assert_eq!(call, "zero_fill");
        assert!(
            len >= written + MIB,
            "fill {i}: {len} is not a MiB past the {written} bytes written"
        );
        // A new segment (a rotation, not expected at this size) starts over.
        let first = i == 0 || written < last_written;
        last_written = written;
        if !first {
            assert!(
                len > reserved && len - reserved <= CHUNK,
                "fill {i}: from {reserved} to {len}, more than a chunk"
            );
        }
        reserved = len;
    }
    drop(db);
    let db = Options::new().open(&dir).unwrap();
    assert_eq!(count(&db, "k/"), 3_000);
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
