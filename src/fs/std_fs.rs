//! [`Fs`] on the operating system's file system. Positional reads use
//! `pread` (`FileExt::read_exact_at`) on Unix; elsewhere a seek and a read
//! under a mutex.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Fs, FsFile, FsRead, FsSync};

/// An I/O error with the operation and the path it failed on, so that
/// `Error::Io`'s message names the file (before 2026-12-08 it said only,
/// say, "Input/output error"). Wrapped in an `io::Error` of the same kind,
/// which callers match on; the original error is its source.
#[derive(Debug)]
struct OnPath {
    op: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl std::fmt::Display for OnPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path.display(), self.source)
    }
}

impl std::error::Error for OnPath {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `r`'s error, naming `op` and `path`.
fn on<T>(r: io::Result<T>, op: &'static str, path: &Path) -> io::Result<T> {
    r.map_err(|source| {
        io::Error::new(
            source.kind(),
            OnPath {
                op,
                path: path.to_path_buf(),
                source,
            },
        )
    })
}

/// The real file system (`std::fs`), with `fdatasync` for syncs and an
/// advisory `flock` on a `LOCK` file for the directory lock.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

/// An open file; `append`: opened with `O_APPEND` (never preallocated);
/// `no_fallocate`: its file system refused `fallocate` as unsupported.
struct StdFile {
    file: File,
    path: Arc<PathBuf>,
    append: bool,
    no_fallocate: bool,
}

/// Whether `fallocate` failed because the file system has no such call
/// (not because space or the device failed: those are errors).
#[cfg(target_os = "linux")]
fn unsupported(e: rustix::io::Errno) -> bool {
    e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS
}

impl FsFile for StdFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        on(self.file.write_all(buf), "write", &self.path)
    }
    fn sync(&mut self) -> io::Result<()> {
        on(self.file.sync_data(), "fdatasync", &self.path)
    }
    /// `fallocate` (mode 0: allocated, zero, the size raised) on Linux;
    /// nothing elsewhere, nor on a file system without it (NFS before
    /// version 4.2, some FUSE file systems: `EOPNOTSUPP`), where it is only
    /// an optimisation lost: the log's syncs then write the inode too.
    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        if self.append || self.no_fallocate {
            return Ok(());
        }
        // An interrupted call is made again (it allocated nothing, or part
        // of what it is asked again: nothing is written); before
        // 2026-12-08 `EINTR` poisoned the log.
        #[cfg(target_os = "linux")]
        loop {
            match rustix::fs::fallocate(&self.file, rustix::fs::FallocateFlags::empty(), 0, len) {
                Err(e) if e == rustix::io::Errno::INTR => continue,
                Err(e) if unsupported(e) => self.no_fallocate = true,
                r => on(r.map_err(io::Error::from), "fallocate", &self.path)?,
            }
            break;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = len;
        Ok(())
    }
    /// Zeros written from the file's length up to `len` by positional
    /// writes (the next write still goes where it would have), on Linux;
    /// elsewhere [`FsFile::preallocate`], which does nothing there (the
    /// reasoning is ext4's, and on a copy-on-write file system overwriting
    /// zeros gains nothing).
    fn zero_fill(&mut self, len: u64) -> io::Result<()> {
        if self.append {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::FileExt;
            static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
            let mut at = on(self.file.metadata(), "stat", &self.path)?.len();
            while at < len {
                let n = (len - at).min(ZEROS.len() as u64);
                // `n` is at most `ZEROS.len()`.
                on(
                    self.file.write_all_at(&ZEROS[..n as usize], at),
                    "zero-fill",
                    &self.path,
                )?;
                at += n;
            }
            Ok(())
        }
        #[cfg(not(target_os = "linux"))]
        self.preallocate(len)
    }
    /// A duplicate of the file descriptor: an `fdatasync` through either
    /// syncs the file's data.
    fn syncer(&self) -> io::Result<Option<Box<dyn FsSync>>> {
        let file = on(self.file.try_clone(), "dup", &self.path)?;
        Ok(Some(Box::new(StdSync(file, self.path.clone()))))
    }
}

/// A file's second handle, for syncs ([`FsFile::syncer`]).
struct StdSync(File, Arc<PathBuf>);

impl FsSync for StdSync {
    fn sync(&self) -> io::Result<()> {
        on(self.0.sync_data(), "fdatasync", &self.1)
    }
}

/// A range no file can hold (past the largest file offset, `i64::MAX`) is
/// past the end of the file, as the [`FsRead`] contract says, rather than
/// the operating system's `InvalidInput`.
fn check_range(offset: u64, len: usize) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= i64::MAX as u64 => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "read past the end of the file",
        )),
    }
}

/// A file open for positional reads.
#[cfg(unix)]
struct StdRead(File, PathBuf);

#[cfg(unix)]
impl FsRead for StdRead {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len())?;
        on(
            std::os::unix::fs::FileExt::read_exact_at(&self.0, buf, offset),
            "read",
            &self.1,
        )
    }
    fn len(&self) -> io::Result<u64> {
        Ok(on(self.0.metadata(), "stat", &self.1)?.len())
    }
}

/// A file open for positional reads: without `pread`, a seek then a read,
/// under a mutex so that concurrent readers do not move each other's position.
#[cfg(not(unix))]
struct StdRead(std::sync::Mutex<File>, PathBuf);

#[cfg(not(unix))]
impl FsRead for StdRead {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        check_range(offset, buf.len())?;
        let mut f = self.0.lock().unwrap_or_else(|p| p.into_inner());
        on(
            f.seek(SeekFrom::Start(offset)).and_then(|_| f.read_exact(buf)),
            "read",
            &self.1,
        )
    }
    fn len(&self) -> io::Result<u64> {
        let f = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(on(f.metadata(), "stat", &self.1)?.len())
    }
}

impl Fs for StdFs {
    /// Creates the missing directories from the top down, syncing each new
    /// one's parent, and syncs `dir`'s parent in any case: a database
    /// directory's entry must be durable before the commits in it are
    /// (else a power loss could take the directory, with every synced file
    /// in it), also when another opener, or a run that crashed before its
    /// sync, created it. A parent this process may not read (so cannot
    /// open to sync) is left as it is.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        if dir.as_os_str().is_empty() {
            return Ok(());
        }
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
        let parent_dir = parent.unwrap_or(Path::new("."));
        if !dir.is_dir() {
            if let Some(p) = parent {
                self.create_dir_all(p)?;
            }
            match fs::create_dir(dir) {
                Ok(()) => {}
                // Created meanwhile by another opener.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                Err(e) => return on(Err(e), "create directory", dir),
            }
        }
        match self.sync_dir(parent_dir) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
            r => r,
        }
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        on(
            (|| {
                let mut names = Vec::new();
                for e in fs::read_dir(dir)? {
                    let e = e?;
                    if e.file_type()?.is_file() {
                        if let Ok(n) = e.file_name().into_string() {
                            names.push(n);
                        }
                    }
                }
                Ok(names)
            })(),
            "list",
            dir,
        )
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        on(fs::read(path), "read", path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let f = on(
            OpenOptions::new().create(true).write(true).truncate(true).open(path),
            "create",
            path,
        )?;
        Ok(Box::new(StdFile {
            file: f,
            path: Arc::new(path.to_path_buf()),
            append: false,
            no_fallocate: false,
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let f = on(OpenOptions::new().append(true).open(path), "open", path)?;
        Ok(Box::new(StdFile {
            file: f,
            path: Arc::new(path.to_path_buf()),
            append: true,
            no_fallocate: false,
        }))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsRead>> {
        let f = on(File::open(path), "open", path)?;
        #[cfg(not(unix))]
        let f = std::sync::Mutex::new(f);
        Ok(Box::new(StdRead(f, path.to_path_buf())))
    }
    fn drop_cache(&self, path: &Path) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            let f = on(File::open(path), "open", path)?;
            match rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed) {
                // A file system without the advice: the hint does nothing.
                Err(e) if unsupported(e) || e == rustix::io::Errno::INVAL => {}
                r => on(r.map_err(io::Error::from), "fadvise(DONTNEED)", path)?,
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = path;
        Ok(())
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = on(OpenOptions::new().write(true).open(path), "open", path)?;
        on(f.set_len(len), "truncate", path)?;
        on(f.sync_all(), "fsync", path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        // Named by its target (the file a checkpoint publishes), the
        // source's name being the target's with a temporary suffix.
        on(fs::rename(from, to), "rename onto", to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        on(fs::remove_file(path), "remove", path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let d = on(File::open(dir), "open directory", dir)?;
        on(d.sync_all(), "fsync directory", dir)
    }
    fn lock(&self, dir: &Path) -> io::Result<Box<dyn Send + Sync>> {
        let path = dir.join("LOCK");
        let f = on(
            OpenOptions::new().create(true).truncate(false).write(true).open(&path),
            "open",
            &path,
        )?;
        match f.try_lock() {
            Ok(()) => Ok(Box::new(f)),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the database directory is locked by another handle or process",
            )),
            Err(fs::TryLockError::Error(e)) => on(Err(e), "lock", &path),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::{unsupported, StdFs};
    use crate::fs::Fs;
    use rustix::io::Errno;

    /// An error names the operation and the file, keeps its kind (callers
    /// match on it), and has the operating system's error as its source.
    #[test]
    fn errors_name_the_file_and_keep_their_kind() {
        let missing = std::env::temp_dir()
            .join(format!("bwtx-missing-{}", std::process::id()))
            .join("wal-000042");
        let Err(e) = StdFs.open_read(&missing) else {
            panic!("opened a missing file")
        };
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        let msg = e.to_string();
        assert!(msg.starts_with("open ") && msg.contains("wal-000042"), "{msg}");
        let source = std::error::Error::source(&e).expect("the original error");
        assert!(source.to_string().contains("No such file"), "{source}");
        // Through the database's error too.
        let e = crate::Error::Io(StdFs.remove(&missing).unwrap_err());
        assert!(e.to_string().contains("wal-000042"), "{e}");
    }

    /// `create_dir_all` creates every missing level (syncing each new
    /// one's parent), and an existing directory, or a file in the way, is
    /// what `std::fs::create_dir_all` says.
    #[test]
    fn create_dir_all_creates_missing_levels() {
        let top = std::env::temp_dir().join(format!("bwtx-mkdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&top);
        let deep = top.join("a").join("b").join("c");
        StdFs.create_dir_all(&deep).unwrap();
        assert!(deep.is_dir());
        StdFs.create_dir_all(&deep).unwrap();
        std::fs::write(top.join("f"), b"x").unwrap();
        assert!(StdFs.create_dir_all(&top.join("f").join("g")).is_err());
        std::fs::remove_dir_all(&top).unwrap();
    }

    /// `zero_fill` writes zeros up to its length and leaves the next write
    /// where it was; it never shortens a file, and it leaves a file opened
    /// for appending alone (its writes go to its end).
    #[test]
    fn zero_fill_writes_zeros_ahead_of_the_next_write() {
        let dir = std::env::temp_dir().join(format!("bwtx-zero-fill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Written, not only allocated: where the file system reports a
        // `fallocate`d range as a hole (ext4, xfs: unwritten extents), the
        // zeros are data. (Checked before any later write into the range,
        // which may make the file system write the extent out.)
        let data_at = |p: &std::path::Path| {
            let f = std::fs::File::open(p).unwrap();
            rustix::fs::seek(&f, rustix::fs::SeekFrom::Data(150_000)).ok()
        };
        let reserved = |name: &str, zeros: bool| {
            let path = dir.join(name);
            let mut f = StdFs.create(&path).unwrap();
            f.write_all(b"abc").unwrap();
            if zeros {
                f.zero_fill(200_000).unwrap();
            } else {
                f.preallocate(200_000).unwrap();
            }
            f.sync().unwrap();
            (path, f)
        };
        let (allocated, _) = reserved("allocated", false);
        let (path, mut f) = reserved("f", true);
        if data_at(&allocated).is_none() {
            assert_eq!(data_at(&path), Some(150_000), "the zeros are written");
        }
        f.write_all(b"def").unwrap();
        f.zero_fill(100).unwrap();
        f.sync().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 200_000);
        assert_eq!(&bytes[..6], b"abcdef");
        assert!(bytes[6..].iter().all(|b| *b == 0));
        drop(f);
        let mut f = StdFs.open_append(&path).unwrap();
        f.zero_fill(300_000).unwrap();
        f.write_all(b"g").unwrap();
        drop(f);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((bytes.len(), bytes[200_000]), (200_001, b'g'));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Dropping the cache keeps every byte (synced and unsynced, which are
    /// dirty and stay); a missing file is an error naming it.
    #[test]
    fn drop_cache_keeps_what_the_file_holds() {
        let dir = std::env::temp_dir().join(format!("bwtx-drop-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("seg");
        let mut f = StdFs.create(&path).unwrap();
        f.write_all(&[7; 10_000]).unwrap();
        f.sync().unwrap();
        f.write_all(&[8; 5_000]).unwrap();
        StdFs.drop_cache(&path).unwrap();
        let mut want = vec![7; 10_000];
        want.extend([8; 5_000]);
        assert_eq!(StdFs.read(&path).unwrap(), want);
        let e = StdFs.drop_cache(&dir.join("missing")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(e.to_string().contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Only "no such call" makes preallocation a no-op; a full disk or a
    /// failed device stays an error (the writer poisons the log on it).
    #[test]
    fn only_a_missing_fallocate_is_skipped() {
        assert!(unsupported(Errno::OPNOTSUPP) && unsupported(Errno::NOSYS));
        for e in [Errno::NOSPC, Errno::IO, Errno::DQUOT, Errno::BADF, Errno::FBIG] {
            assert!(!unsupported(e), "{e:?}");
        }
    }
}
