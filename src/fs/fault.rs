//! [`FaultFs`]: an in-memory file system that tells synced bytes from
//! unsynced ones, for fault-injection tests (feature `fault-injection`).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::{Fs, FsFile, FsRead};
use handles::{FaultFile, FaultRead};

#[derive(Default, Clone)]
struct Inode {
    /// Everything written.
    data: Vec<u8>,
    /// What survives a power loss.
    durable: Vec<u8>,
    /// The length [`FsFile::preallocate`] reserved: past `data`, the file
    /// reads as zeros up to it (kept as a length, not as bytes, so a sync
    /// copies only what was written).
    alloc: usize,
    /// `alloc` as of the last sync.
    durable_alloc: usize,
    /// Pages (by index, [`PAGE`] bytes) whose unsynced bytes a failed sync
    /// lost: the cache still serves them, but the device keeps what was
    /// durable there, later syncs do not write them (Linux marks them
    /// clean) unless a write dirties them again, and
    /// [`Fs::drop_cache`] forgets them.
    lost: std::collections::BTreeSet<usize>,
}

impl Inode {
    /// The file's length: what was written, or the reservation.
    fn len(&self) -> usize {
        self.data.len().max(self.alloc)
    }

    /// The file's bytes as a reader sees them.
    fn view(&self) -> Vec<u8> {
        let mut v = self.data.clone();
        v.resize(self.len(), 0);
        v
    }

    /// A sync that began when `began` bytes were written failed: every
    /// page holding bytes it was to make durable is lost, but for a page
    /// that bytes written since dirtied again.
    fn sync_failed(&mut self, began: usize) {
        let end = if self.data.len() > began {
            began / PAGE
        } else {
            began.div_ceil(PAGE)
        };
        self.lost.extend(self.durable.len() / PAGE..end);
    }

    /// A write at the end of `data`: the page it starts in (and any after)
    /// is dirty again, so a later sync writes it whole.
    fn dirtied(&mut self) {
        let _ = self.lost.split_off(&(self.data.len() / PAGE));
    }

    /// `bytes` (the file's first bytes as cached) with each lost page as
    /// the device holds it: what was durable there, zeros past it.
    fn as_on_device(&self, bytes: &mut [u8]) {
        for &p in &self.lost {
            let from = (p * PAGE).min(bytes.len());
            let to = ((p + 1) * PAGE).min(bytes.len());
            for (i, b) in bytes[from..to].iter_mut().enumerate() {
                *b = self.durable.get(from + i).copied().unwrap_or(0);
            }
        }
    }
}

/// The page size of [`Inode::lost`] and of [`FaultFs::power_loss_scattered`].
const PAGE: usize = 4096;

#[derive(Default)]
struct State {
    inodes: Vec<Inode>,
    /// Directory entries now, and as last synced.
    names: HashMap<PathBuf, usize>,
    durable_names: HashMap<PathBuf, usize>,
    locks: Vec<PathBuf>,
    writes: u64,
    syncs: u64,
    reads: u64,
    fail_read_at: Option<u64>,
    fail_write_at: Option<u64>,
    short_write_at: Option<u64>,
    fail_sync_at: Option<u64>,
    crash_at_sync: Option<u64>,
    /// [`FaultFs::panic_next_sync`].
    panic_sync_of: Option<String>,
    /// [`FaultFs::fail_next_sync`].
    fail_sync_of: Option<String>,
    /// [`FaultFs::fail_removes`].
    fail_removes_of: Option<String>,
    /// [`FaultFs::fail_next_write`].
    fail_write_of: Option<String>,
    /// [`FaultFs::panic_next_write`].
    panic_write_of: Option<String>,
    crashed: bool,
    /// [`FaultFs::without_sync_handles`].
    no_sync_handles: bool,
    /// Power losses and restarts after a kill so far: a file handle
    /// opened before the last one belongs to a process that died, and
    /// fails.
    generation: u64,
}

impl State {
    /// Disarm every fault ([`FaultFs::power_loss`], [`FaultFs::restart`]).
    fn clear_faults(&mut self) {
        self.fail_write_at = None;
        self.short_write_at = None;
        self.fail_sync_at = None;
        self.crash_at_sync = None;
        self.panic_sync_of = None;
        self.fail_sync_of = None;
        self.fail_removes_of = None;
        self.fail_write_of = None;
        self.panic_write_of = None;
        self.fail_read_at = None;
    }
}

/// An in-memory [`Fs`] with fault injection.
///
/// Each file keeps what was written and what was synced; each directory
/// entry (create, rename, remove) becomes durable only with a directory sync.
/// [`FaultFs::power_loss`] throws away everything not durable, as a power
/// failure would. Faults are armed by operation count: the `n`-th write
/// (counting from 0) fails, is short, the `n`-th read fails, or the `n`-th
/// sync fails or "loses power" (the sync fails and every later operation
/// fails until [`FaultFs::power_loss`] restarts the "machine").
///
/// Reads (whole-file and positional) see everything written, synced or not,
/// as a real file system's page cache does, and zeros past it up to what
/// [`FsFile::preallocate`] reserved (a reservation too is durable only once
/// synced). A positional read handle keeps
/// reading its file after the file is removed or renamed, as on Unix.
/// A file handle opened before a [`FaultFs::power_loss`] fails afterwards
/// (its process died with the machine); the file system's own operations
/// go on through every clone.
///
/// Cloning gives another handle to the same file system.
#[derive(Clone, Default)]
pub struct FaultFs {
    state: Arc<Mutex<State>>,
    /// [`FaultFs::hold_syncs`]: the held file-name prefix and how many
    /// syncs wait on it, apart from `state` (a held sync waits without it).
    hold: Arc<(Mutex<Hold>, Condvar)>,
}

#[derive(Default)]
struct Hold {
    prefix: Option<String>,
    waiting: usize,
}

fn lock_hold(m: &Mutex<Hold>) -> MutexGuard<'_, Hold> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A path's file name, for [`FaultFs::hold_syncs`].
fn file_name(path: &Path) -> String {
    path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned()
}

fn err(msg: &str) -> io::Error {
    io::Error::other(format!("injected fault: {msg}"))
}

impl FaultFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    fn st(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Files opened from now on have no second handle for syncs
    /// (`FsFile::syncer` returns `None`, as the trait's default does), so
    /// callers take their fallback: syncing through the file itself.
    pub fn without_sync_handles(&self) {
        self.st().no_sync_handles = true;
    }

    /// Writes so far (each `write_all` call counts one).
    pub fn writes(&self) -> u64 {
        self.st().writes
    }

    /// Syncs so far (file and directory syncs, truncations).
    pub fn syncs(&self) -> u64 {
        self.st().syncs
    }

    /// Reads so far (each [`Fs::read`] and each positional
    /// [`FsRead::read_exact_at`] counts one).
    pub fn reads(&self) -> u64 {
        self.st().reads
    }

    /// Make read number `n` (counted from 0 since creation, as
    /// [`FaultFs::reads`] counts) fail, reading nothing.
    pub fn fail_read_at(&self, n: u64) {
        self.st().fail_read_at = Some(n);
    }

    /// Make write number `n` (counted from 0 since creation) fail, writing nothing.
    pub fn fail_write_at(&self, n: u64) {
        self.st().fail_write_at = Some(n);
    }

    /// Make write number `n` write only half its bytes, then fail.
    pub fn short_write_at(&self, n: u64) {
        self.st().short_write_at = Some(n);
    }

    /// Make sync number `n` fail. As on Linux, the bytes it did not make
    /// durable stay readable until [`Fs::drop_cache`], but later syncs do
    /// not write them (their pages were marked clean) unless they are
    /// written again: a power loss loses them.
    pub fn fail_sync_at(&self, n: u64) {
        self.st().fail_sync_at = Some(n);
    }

    /// Make the next sync of a file whose name starts with `prefix` fail,
    /// once, as [`FaultFs::fail_sync_at`] does.
    pub fn fail_next_sync(&self, prefix: &str) {
        self.st().fail_sync_of = Some(prefix.to_owned());
    }

    /// Lose power during sync number `n`: it fails, and so does everything
    /// after it until [`FaultFs::power_loss`].
    pub fn crash_at_sync(&self, n: u64) {
        self.st().crash_at_sync = Some(n);
    }

    /// Make the next sync of a file whose name starts with `prefix` (a
    /// file's name, as for [`FaultFs::hold_syncs`]) panic, once, without
    /// taking effect: a file system whose sync panics, as a user's
    /// [`Fs`] may.
    pub fn panic_next_sync(&self, prefix: &str) {
        self.st().panic_sync_of = Some(prefix.to_owned());
    }

    /// Make the next write to a file whose name starts with `prefix` (a
    /// file's name, as for [`FaultFs::hold_syncs`]) fail, once, writing
    /// nothing (counted as a write, as [`FaultFs::fail_write_at`] counts).
    pub fn fail_next_write(&self, prefix: &str) {
        self.st().fail_write_of = Some(prefix.to_owned());
    }

    /// Make the next write to a file whose name starts with `prefix` panic,
    /// once, writing nothing: a file system whose write panics, as a user's
    /// [`Fs`] may.
    pub fn panic_next_write(&self, prefix: &str) {
        self.st().panic_write_of = Some(prefix.to_owned());
    }

    /// Make every removal of a file whose name starts with `prefix` (a
    /// file's name, as for [`FaultFs::hold_syncs`]) fail, removing nothing,
    /// until [`FaultFs::allow_removes`] or [`FaultFs::power_loss`]: a file
    /// the file system refuses to delete.
    pub fn fail_removes(&self, prefix: &str) {
        self.st().fail_removes_of = Some(prefix.to_owned());
    }

    /// Removals succeed again ([`FaultFs::fail_removes`]).
    pub fn allow_removes(&self) {
        self.st().fail_removes_of = None;
    }

    /// Hold every sync of a file whose name starts with `prefix` (a file's
    /// name, not its path: `"pages-"`) until [`FaultFs::release_syncs`]: the
    /// syncing thread waits before the sync takes effect, so that a test can
    /// look at what other threads do meanwhile.
    pub fn hold_syncs(&self, prefix: &str) {
        lock_hold(&self.hold.0).prefix = Some(prefix.to_owned());
    }

    /// Let the held syncs go on ([`FaultFs::hold_syncs`]).
    pub fn release_syncs(&self) {
        lock_hold(&self.hold.0).prefix = None;
        self.hold.1.notify_all();
    }

    /// How many syncs wait on [`FaultFs::hold_syncs`] now.
    pub fn held_syncs(&self) -> usize {
        lock_hold(&self.hold.0).waiting
    }

    /// Sync file `inode` (opened as `name`): everything written to it
    /// when the sync began becomes durable, its reservation too. Bytes
    /// written while a sync is held ([`FaultFs::hold_syncs`]) may or may
    /// not be made durable by it ([`super::FsSync`]); this file system takes
    /// "not", so a caller that counted them durable loses them at the
    /// next [`FaultFs::power_loss`]. (Files are written at their end only,
    /// so what was written when the sync began is a prefix; a sync that
    /// began earlier and ends later does not shorten what a later one made
    /// durable.)
    fn sync_inode(&self, inode: usize, name: &str, gen: u64) -> io::Result<()> {
        let began = {
            let s = self.st();
            FaultFs::opened_since(&s, gen)?;
            (s.inodes[inode].data.len(), s.inodes[inode].alloc)
        };
        self.wait_if_held(name);
        let mut s = self.st();
        FaultFs::opened_since(&s, gen)?;
        if s.panic_sync_of.as_deref().is_some_and(|p| name.starts_with(p)) {
            s.panic_sync_of = None;
            drop(s);
            panic!("FaultFs: the sync of {name} panicked (FaultFs::panic_next_sync)");
        }
        let failed = if s.fail_sync_of.as_deref().is_some_and(|p| name.starts_with(p)) {
            s.fail_sync_of = None;
            FaultFs::sync_point(&mut s).and(Err(err("sync failed")))
        } else {
            FaultFs::sync_point(&mut s)
        };
        if let Err(e) = failed {
            // A failed sync loses its pages; one that fails because the
            // machine is down (or the process killed) loses nothing more.
            if !s.crashed {
                s.inodes[inode].sync_failed(began.0);
            }
            return Err(e);
        }
        let i = &mut s.inodes[inode];
        let len = began.0.min(i.data.len());
        if len > i.durable.len() {
            let mut durable = i.data[..len].to_vec();
            i.as_on_device(&mut durable);
            i.durable = durable;
            i.durable_alloc = began.1;
        } else if len == i.durable.len() {
            // Nothing more written: a sync that began later and ended first
            // may have made a larger reservation durable.
            i.durable_alloc = i.durable_alloc.max(began.1);
        }
        Ok(())
    }

    /// Wait while syncs of a file named `name` are held.
    fn wait_if_held(&self, name: &str) {
        let (m, cv) = &*self.hold;
        let mut h = lock_hold(m);
        if !h.prefix.as_deref().is_some_and(|p| name.starts_with(p)) {
            return;
        }
        h.waiting += 1;
        while h.prefix.as_deref().is_some_and(|p| name.starts_with(p)) {
            h = cv.wait(h).unwrap_or_else(|p| p.into_inner());
        }
        h.waiting -= 1;
    }

    /// The current content of `path`, if it exists (for tests that damage files).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.st();
        s.names.get(path).map(|&i| s.inodes[i].view())
    }

    /// Replace the content of `path`, durably (for tests that damage files).
    pub fn set_contents(&self, path: &Path, data: Vec<u8>) {
        let mut s = self.st();
        if let Some(&i) = s.names.get(path) {
            s.inodes[i] = Inode {
                data: data.clone(),
                durable: data,
                ..Inode::default()
            };
        }
    }

    fn sync_point(s: &mut State) -> io::Result<()> {
        if s.crashed {
            return Err(err("the machine lost power"));
        }
        let n = s.syncs;
        s.syncs += 1;
        if s.crash_at_sync == Some(n) {
            s.crashed = true;
            return Err(err("power lost during sync"));
        }
        if s.fail_sync_at == Some(n) {
            return Err(err("sync failed"));
        }
        Ok(())
    }

    /// Count a read; fail it if it is the armed one.
    fn read_point(s: &mut State) -> io::Result<()> {
        FaultFs::alive(s)?;
        let n = s.reads;
        s.reads += 1;
        if s.fail_read_at == Some(n) {
            return Err(err("read failed"));
        }
        Ok(())
    }

    /// A handle opened in `gen` fails after a later power loss or kill:
    /// the process that held it died (before 2026-12-08 it
    /// went on writing to the files a reopen reads).
    fn opened_since(s: &State, gen: u64) -> io::Result<()> {
        if s.generation == gen {
            Ok(())
        } else {
            Err(err("a file opened before the power loss or kill (its process is gone)"))
        }
    }

    fn alive(s: &State) -> io::Result<()> {
        if s.crashed {
            Err(err("the machine lost power"))
        } else {
            Ok(())
        }
    }
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", p.display()))
}

impl Fs for FaultFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        FaultFs::alive(&self.st())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.st();
        FaultFs::alive(&s)?;
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut s = self.st();
        FaultFs::read_point(&mut s)?;
        s.names
            .get(path)
            .map(|&i| s.inodes[i].view())
            .ok_or_else(|| not_found(path))
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut s = self.st();
        FaultFs::alive(&s)?;
        let inode = s.inodes.len();
        s.inodes.push(Inode::default());
        s.names.insert(path.to_owned(), inode);
        Ok(Box::new(FaultFile {
            fs: self.clone(),
            inode,
            gen: s.generation,
            name: file_name(path),
            append: false,
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let s = self.st();
        FaultFs::alive(&s)?;
        let inode = *s.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(Box::new(FaultFile {
            fs: self.clone(),
            inode,
            gen: s.generation,
            name: file_name(path),
            append: true,
        }))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsRead>> {
        let s = self.st();
        FaultFs::alive(&s)?;
        let inode = *s.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(Box::new(FaultRead {
            fs: self.clone(),
            inode,
            gen: s.generation,
        }))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut s = self.st();
        FaultFs::sync_point(&mut s)?;
        let i = *s.names.get(path).ok_or_else(|| not_found(path))?;
        let node = &mut s.inodes[i];
        let mut data = node.view();
        data.truncate(len as usize);
        node.data = data;
        // Lost pages below the cut stay as the device has them (the model
        // does not write them; a real file system may zero and write the
        // partial block: recovery drops the cache before it truncates).
        let _ = node.lost.split_off(&node.data.len().div_ceil(PAGE));
        let mut durable = node.data.clone();
        node.as_on_device(&mut durable);
        node.durable = durable;
        node.alloc = 0;
        node.durable_alloc = 0;
        Ok(())
    }
    fn drop_cache(&self, path: &Path) -> io::Result<()> {
        let mut s = self.st();
        FaultFs::alive(&s)?;
        let i = *s.names.get(path).ok_or_else(|| not_found(path))?;
        let node = &mut s.inodes[i];
        let mut data = std::mem::take(&mut node.data);
        node.as_on_device(&mut data);
        node.data = data;
        node.lost.clear();
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.st();
        FaultFs::alive(&s)?;
        let i = s.names.remove(from).ok_or_else(|| not_found(from))?;
        s.names.insert(to.to_owned(), i);
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.st();
        FaultFs::alive(&s)?;
        if s.fail_removes_of
            .as_deref()
            .is_some_and(|p| file_name(path).starts_with(p))
        {
            return Err(err("remove"));
        }
        s.names.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.st();
        FaultFs::sync_point(&mut s)?;
        let now: Vec<(PathBuf, usize)> = s
            .names
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, &i)| (p.clone(), i))
            .collect();
        s.durable_names.retain(|p, _| p.parent() != Some(dir));
        s.durable_names.extend(now);
        Ok(())
    }
    fn lock(&self, dir: &Path) -> io::Result<Box<dyn Send + Sync>> {
        let mut s = self.st();
        FaultFs::alive(&s)?;
        if s.locks.iter().any(|l| l == dir) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the database directory is locked by another handle",
            ));
        }
        s.locks.push(dir.to_owned());
        Ok(Box::new(LockGuard {
            fs: self.clone(),
            dir: dir.to_owned(),
        }))
    }
}

struct LockGuard {
    fs: FaultFs,
    dir: PathBuf,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.fs.st().locks.retain(|l| l != &self.dir);
    }
}

mod handles;
mod power;
#[cfg(test)]
mod tests;
