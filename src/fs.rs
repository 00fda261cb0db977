//! The file-system seam: every file the log and checkpoints touch goes
//! through [`Fs`]; [`StdFs`] is the real one. With the `fault-injection`
//! feature, tests can inject faults with `FaultFs`: failing writes and syncs,
//! short writes, and power loss that drops every byte not yet synced.

use std::io;
use std::path::Path;

#[cfg(feature = "fault-injection")]
mod fault;
mod std_fs;

#[cfg(feature = "fault-injection")]
pub use fault::FaultFs;
pub use std_fs::StdFs;

/// An open file the log appends to.
pub trait FsFile: Send {
    /// Append all of `buf` (a failure may have written a prefix of it).
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Make every byte written so far durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;
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
