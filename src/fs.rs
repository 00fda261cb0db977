//! The file-system seam: every file the log, checkpoints and page store
//! touch goes through [`Fs`]; [`StdFs`] is the real one. With the
//! `fault-injection` feature, tests can inject faults with `FaultFs`: failing
//! writes, syncs and reads, short writes, and power loss that drops every
//! byte not yet synced.
//!
//! Files are appended to through [`FsFile`] and read back either whole
//! ([`Fs::read`]) or by positional reads through [`FsRead`], whose `&self`
//! methods let many threads share one open handle.

use std::io;
use std::path::Path;

#[cfg(feature = "fault-injection")]
mod fault;
mod std_fs;

#[cfg(feature = "fault-injection")]
pub use fault::FaultFs;
pub use std_fs::StdFs;

/// An open file the log, checkpoints and page store append to.
pub trait FsFile: Send {
    /// Append all of `buf` (a failure may have written a prefix of it).
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Make every byte written so far durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;
    /// Reserve space: make the file at least `len` bytes long, zero past
    /// what was written, without moving where the next write goes. A
    /// write inside the reserved space then changes no file size, so its
    /// sync writes no inode. The next sync makes the reservation durable.
    /// A hint: the default does nothing, and a file opened with
    /// [`Fs::open_append`] is never extended (its writes go to its end).
    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        let _ = len;
        Ok(())
    }
    /// Reserve space as [`FsFile::preallocate`] does, but by writing the
    /// zeros: a later write into the reserved space then overwrites
    /// written blocks, and its sync changes no extent either. (On ext4 a
    /// write into `fallocate`d space converts the extent it lands in from
    /// unwritten to written, a journal commit at the next sync.) It costs
    /// a write of the reserved bytes; the log uses it when every commit
    /// waits for a sync (`design/durability.md`, "Reserved space"). The
    /// default calls [`FsFile::preallocate`].
    fn zero_fill(&mut self, len: u64) -> io::Result<()> {
        self.preallocate(len)
    }
    /// A second handle to this file that syncs it ([`FsSync::sync`]) while
    /// writes go on through this one, so that a writer need not keep others
    /// from writing for the length of an fsync (the log's writer uses it:
    /// `design/durability.md`, D9). The default is `Ok(None)`: callers then
    /// sync through [`FsFile::sync`] and hold writes off meanwhile.
    fn syncer(&self) -> io::Result<Option<Box<dyn FsSync>>> {
        Ok(None)
    }
}

/// A handle that syncs a file while other threads write to it
/// ([`FsFile::syncer`]).
pub trait FsSync: Send + Sync {
    /// Make every byte written to the file before this call durable, as
    /// [`FsFile::sync`] does (`fdatasync`). Bytes written while it runs may
    /// or may not be made durable by it.
    fn sync(&self) -> io::Result<()>;
}

/// An open file read by position: `&self`, so concurrent readers share one
/// handle.
pub trait FsRead: Send + Sync {
    /// Fill `buf` with the bytes at `offset..offset + buf.len()`. A range
    /// that runs past the end of the file is an
    /// [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) error.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// The file's current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// The file operations bwtx's durability layer uses.
pub trait Fs: Send + Sync + 'static {
    /// Create `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the files in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The whole content of `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Create `path` (truncating it if it exists) for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Open the existing file `path` for appending after its current end.
    ///
    /// The default fails with [`Unsupported`](io::ErrorKind::Unsupported):
    /// only the page store needs it (recovery, which syncs the log's newest
    /// segment through it, falls back to [`Fs::truncate`] to its length),
    /// and `Fs` implementations written before it keep compiling.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        Err(unsupported(path, "open_append"))
    }
    /// Open the existing file `path` for positional reads.
    ///
    /// The default fails with [`Unsupported`](io::ErrorKind::Unsupported), as
    /// for [`Fs::open_append`].
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsRead>> {
        Err(unsupported(path, "open_read"))
    }
    /// Forget what the operating system caches of `path`'s clean pages, so
    /// that the next reads return what the device holds.
    ///
    /// After a failed `fsync`, Linux file systems such as ext4 mark the
    /// pages they could not write clean and keep them (others, XFS among
    /// them, drop them): a reopen in the same boot would read bytes that
    /// are not on the disk, serve them, and write after them, and a reboot
    /// would then leave a hole before later, synced records. Recovery calls
    /// this on the files whose unsynced tails it reads (the log's newest
    /// segment, the value log's and page store's newest), before reading
    /// them. Dirty pages (a killed process's unsynced writes, which still
    /// reach the disk) are not dropped, nor are pages under writeback.
    /// A hint, best effort: [`StdFs`] uses `posix_fadvise(DONTNEED)` on
    /// Linux and does nothing elsewhere; the default does nothing.
    fn drop_cache(&self, path: &Path) -> io::Result<()> {
        let _ = path;
        Ok(())
    }
    /// Cut `path` to `len` bytes and make that durable.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Atomically rename `from` to `to` (durable once the directory is synced).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Delete `path` (durable once the directory is synced).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Make the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Take an exclusive lock on `dir` for this process's lifetime of the
    /// returned guard; fails with `WouldBlock` if another holder has it.
    fn lock(&self, dir: &Path) -> io::Result<Box<dyn Send + Sync>>;
}

fn unsupported(path: &Path, op: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{op} of {} is not supported by this Fs", path.display()),
    )
}
