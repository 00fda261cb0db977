//! [`FaultFs`]'s file handles: appending ([`FaultFile`], with its sync
//! handle) and positional reads ([`FaultRead`]), each checking the faults
//! armed on the file system and the power-loss generation it was opened in.

use std::io;

use super::{err, FaultFs, State};
use crate::fs::{FsFile, FsRead, FsSync};

pub(super) struct FaultFile {
    pub(super) fs: FaultFs,
    pub(super) inode: usize,
    /// [`FaultFs::opened_since`].
    pub(super) gen: u64,
    /// The file name it was opened by ([`FaultFs::hold_syncs`]).
    pub(super) name: String,
    /// Opened with [`crate::fs::Fs::open_append`]: writes go to the end of the file
    /// (past any reservation), and it is never preallocated.
    pub(super) append: bool,
}

/// A file's second handle, for syncs ([`FsFile::syncer`]): a sync through
/// it is a sync of the file (a sync point like any other).
struct FaultSync {
    fs: FaultFs,
    inode: usize,
    gen: u64,
    name: String,
}

impl FsSync for FaultSync {
    fn sync(&self) -> io::Result<()> {
        self.fs.sync_inode(self.inode, &self.name, self.gen)
    }
}

impl FsFile for FaultFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut s = self.fs.st();
        let short = match self.write_fault(&mut s)? {
            WriteFault::Panic => {
                drop(s);
                panic!("FaultFs: a write to {} panicked (FaultFs::panic_next_write)", self.name);
            }
            fault => fault == WriteFault::Short,
        };
        let node = &mut s.inodes[self.inode];
        if self.append {
            let end = node.len();
            node.data.resize(end, 0);
        }
        // Else the write position is the end of what was written: a write
        // there fills the reservation first.
        node.dirtied();
        if short {
            node.data.extend_from_slice(&buf[..buf.len() / 2]);
            return Err(err("short write"));
        }
        node.data.extend_from_slice(buf);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.fs.sync_inode(self.inode, &self.name, self.gen)
    }

    fn syncer(&self) -> io::Result<Option<Box<dyn FsSync>>> {
        if self.fs.st().no_sync_handles {
            return Ok(None);
        }
        Ok(Some(Box::new(FaultSync {
            fs: self.fs.clone(),
            inode: self.inode,
            gen: self.gen,
            name: self.name.clone(),
        })))
    }

    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        let mut s = self.fs.st();
        FaultFs::alive(&s)?;
        FaultFs::opened_since(&s, self.gen)?;
        if !self.append {
            let node = &mut s.inodes[self.inode];
            node.alloc = node.alloc.max(usize::try_from(len).unwrap_or(usize::MAX));
        }
        Ok(())
    }

    /// A reservation, as [`FsFile::preallocate`] makes it, that is also a
    /// write: counted as one and failing, cut short (half the reservation
    /// made) or panicking as a write does.
    fn zero_fill(&mut self, len: u64) -> io::Result<()> {
        let mut s = self.fs.st();
        let short = match self.write_fault(&mut s)? {
            WriteFault::Panic => {
                drop(s);
                panic!(
                    "FaultFs: a zero fill of {} panicked (FaultFs::panic_next_write)",
                    self.name
                );
            }
            fault => fault == WriteFault::Short,
        };
        if !self.append {
            let node = &mut s.inodes[self.inode];
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            let from = node.len();
            if short {
                node.alloc = node.alloc.max(from + len.saturating_sub(from) / 2);
                return Err(err("short write"));
            }
            node.alloc = node.alloc.max(len);
        }
        Ok(())
    }
}

/// What a write meets besides a failure ([`FaultFile::write_fault`]).
#[derive(PartialEq)]
enum WriteFault {
    None,
    /// Cut short ([`FaultFs::short_write_at`]).
    Short,
    /// To panic ([`FaultFs::panic_next_write`]), once the state is unlocked.
    Panic,
}

impl FaultFile {
    /// The faults a write to this file meets (it counts as a write): `Err`
    /// for a failed one.
    fn write_fault(&self, s: &mut State) -> io::Result<WriteFault> {
        FaultFs::alive(s)?;
        FaultFs::opened_since(s, self.gen)?;
        let n = s.writes;
        s.writes += 1;
        if s.fail_write_at == Some(n) {
            return Err(err("write failed"));
        }
        if s.fail_write_of.as_deref().is_some_and(|p| self.name.starts_with(p)) {
            s.fail_write_of = None;
            return Err(err("write failed"));
        }
        if s.panic_write_of.as_deref().is_some_and(|p| self.name.starts_with(p)) {
            s.panic_write_of = None;
            return Ok(WriteFault::Panic);
        }
        Ok(if s.short_write_at == Some(n) {
            WriteFault::Short
        } else {
            WriteFault::None
        })
    }
}

/// A positional read handle on one inode.
pub(super) struct FaultRead {
    pub(super) fs: FaultFs,
    pub(super) inode: usize,
    pub(super) gen: u64,
}

impl FsRead for FaultRead {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut s = self.fs.st();
        FaultFs::opened_since(&s, self.gen)?;
        FaultFs::read_point(&mut s)?;
        let node = &s.inodes[self.inode];
        let range = usize::try_from(offset)
            .ok()
            .and_then(|at| Some(at..at.checked_add(buf.len())?))
            .filter(|r| r.end <= node.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the file"))?;
        // Written bytes, then the reservation's zeros.
        let written = range.start.min(node.data.len())..range.end.min(node.data.len());
        let n = written.len();
        buf[..n].copy_from_slice(&node.data[written]);
        buf[n..].fill(0);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        let s = self.fs.st();
        FaultFs::alive(&s)?;
        FaultFs::opened_since(&s, self.gen)?;
        Ok(s.inodes[self.inode].len() as u64)
    }
}
