//! A replica's snapshot directory (`<node dir>/snapshots`) and the handle
//! openraft passes around for one snapshot ([`SnapshotFile`], the crate's
//! `SnapshotData`).
//!
//! A complete snapshot is `<index>-<term>-<node>.snap` (its last log id,
//! the index zero-padded to 20 digits so names sort by index). A file being
//! written is a `.part` (a build, a copy, or a TCP transfer being received):
//! it is written, fsynced, renamed to its `.snap` name, and the directory
//! fsynced; only then is it complete. Once a newer snapshot is complete the
//! older `.snap` files are removed (by the last log index in their names;
//! handles already open keep reading them). At start every file in the
//! directory is removed but two: the newest complete snapshot, which the
//! state machine checks and keeps as its current one
//! (`StateMachine::open`; before 2026-12-08 every start built a fresh one,
//! a cost that grows with the state), and the parts a TCP transfer was
//! receiving (`recv-*`, with their sidecars), which the receiver resumes or
//! removes (`network::receive`). Any other `.part` is a write a crash
//! interrupted. A new part never reuses the name of a file left there
//! (parts are created with `create_new`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::types::LogId;

fn io_err(what: String, e: std::io::Error) -> Error {
    Error::Raft(format!("{what}: {e}"))
}

/// One snapshot file, open for reading from its start: what openraft hands
/// from the state machine to a transport and from a transport to the
/// state machine (`SnapshotData`). Each handle has its own open file (so its
/// own offset); the file stays readable through it even once a newer
/// snapshot replaced its name.
#[derive(Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    file: File,
    len: u64,
    /// A received `.part` this handle owns: removed when the handle drops
    /// unless the state machine took it over ([`SnapshotFile::take_part`]).
    part: bool,
}

impl Drop for SnapshotFile {
    fn drop(&mut self) {
        if self.part {
            // Best effort: a leftover part is removed at the next start.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl SnapshotFile {
    /// Open the snapshot file at `path`.
    pub fn open(path: &Path) -> Result<SnapshotFile> {
        let file = File::open(path).map_err(|e| io_err(format!("open snapshot {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| io_err(format!("stat snapshot {}", path.display()), e))?
            .len();
        Ok(SnapshotFile {
            path: path.to_path_buf(),
            file,
            len,
            part: false,
        })
    }

    /// Open the `.part` a transfer received at `path`, owned by the handle
    /// (removed when it drops, unless taken over).
    pub fn open_part(path: &Path) -> Result<SnapshotFile> {
        let mut f = SnapshotFile::open(path)?;
        f.part = true;
        Ok(f)
    }

    /// If this is an owned `.part`, take it over: its path, which the
    /// caller now removes or renames.
    pub fn take_part(&mut self) -> Option<PathBuf> {
        std::mem::take(&mut self.part).then(|| self.path.clone())
    }

    /// Where the file was opened (or renamed to since,
    /// [`SnapshotFile::renamed`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Record that the file was renamed to `path`.
    pub fn renamed(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty (never, for a complete snapshot).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The open file, positioned at the start.
    pub fn reader(&mut self) -> Result<&mut File> {
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| io_err(format!("seek snapshot {}", self.path.display()), e))?;
        Ok(&mut self.file)
    }

    /// Move the read position to byte `pos` (a transfer resumed there).
    pub fn seek_to(&mut self, pos: u64) -> Result<()> {
        self.file
            .seek(SeekFrom::Start(pos))
            .map_err(|e| io_err(format!("seek snapshot {}", self.path.display()), e))?;
        Ok(())
    }

    /// Read up to `buf.len()` bytes at the file's current position (0 at
    /// its end).
    pub fn read_some(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match self.file.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(format!("read snapshot {}", self.path.display()), e)),
            }
        }
    }
}

/// The snapshot directory of one replica. Cloning shares it.
#[derive(Clone, Debug)]
pub struct SnapshotDir {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    next_part: Mutex<u64>,
}

/// The name prefix of parts received over TCP: kept across restarts.
pub const RECEIVED: &str = "recv-";

impl SnapshotDir {
    /// The snapshot directory `dir`, created if missing, emptied of every
    /// file an earlier run left (see the module docs) but the newest
    /// complete snapshot ([`SnapshotDir::newest_complete`]) and received
    /// parts (`recv-*`), which the TCP receiver resumes or removes
    /// (`network::receive::Receiver::new`).
    pub fn open(dir: &Path) -> Result<SnapshotDir> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(format!("create {}", dir.display()), e))?;
        let newest = newest_snap(dir)?;
        let entries = std::fs::read_dir(dir).map_err(|e| io_err(format!("list {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err(format!("list {}", dir.display()), e))?;
            let path = entry.path();
            let received = entry.file_name().to_string_lossy().starts_with(RECEIVED);
            if path.is_file() && !received && newest.as_ref() != Some(&path) {
                std::fs::remove_file(&path).map_err(|e| io_err(format!("remove {}", path.display()), e))?;
            }
        }
        Ok(SnapshotDir {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                next_part: Mutex::new(0),
            }),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The complete snapshot (`.snap`) with the highest last log index in
    /// its name, if any: the one a start keeps. Its data was fsynced before
    /// its rename, so a name that survived a crash names a whole file; the
    /// state machine still checks it before using it (a disk may have
    /// damaged it since).
    pub fn newest_complete(&self) -> Result<Option<PathBuf>> {
        newest_snap(&self.inner.dir)
    }

    /// The name of the complete snapshot whose last log id is `last`.
    pub fn final_path(&self, last: Option<LogId>) -> PathBuf {
        let name = match last {
            Some(l) => format!("{:020}-{}-{}.snap", l.index, l.leader_id.term, l.leader_id.node_id),
            None => "empty.snap".to_string(),
        };
        self.inner.dir.join(name)
    }

    /// Every received part an earlier run left (`recv-*`), for the
    /// receiver to resume or remove.
    pub fn received(&self) -> Result<Vec<PathBuf>> {
        let dir = &self.inner.dir;
        let entries = std::fs::read_dir(dir).map_err(|e| io_err(format!("list {}", dir.display()), e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(format!("list {}", dir.display()), e))?;
            if entry.file_name().to_string_lossy().starts_with(RECEIVED) {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// A new `.part` name (`what`: build, copy, link, recv).
    fn part_path(&self, what: &str) -> PathBuf {
        let n = {
            let mut next = self.inner.next_part.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next
        };
        self.inner.dir.join(format!("{what}-{}-{n}.part", std::process::id()))
    }

    /// A new `.part` file for writing (`what`: build, copy, recv).
    pub fn create_part(&self, what: &str) -> Result<(PathBuf, File)> {
        loop {
            let path = self.part_path(what);
            // Never over a part an earlier run left (a restarted process may
            // have the same pid, and part numbers restart at 1).
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((path, file)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(format!("create {}", path.display()), e)),
            }
        }
    }

    /// Link the complete snapshot `src` (another replica's, in process)
    /// into a new `.part` here: its data is already fsynced and a complete
    /// snapshot file is never written again, so only the new directory
    /// entry is made durable (the directory fsynced). `None` when that
    /// cannot be done (another file system, `src` removed since it was
    /// opened, a link of another length): then nothing is left behind.
    fn link_in(&self, src: &SnapshotFile) -> Option<PathBuf> {
        let path = self.part_path("link");
        std::fs::hard_link(&src.path, &path).ok()?;
        let same = std::fs::metadata(&path).is_ok_and(|m| m.len() == src.len);
        if same && sync_dir(&self.inner.dir).is_ok() {
            return Some(path);
        }
        let _ = std::fs::remove_file(&path);
        None
    }

    /// Make the written `.part` at `part` (its data already fsynced, see
    /// [`sync_file`]) the complete snapshot `last`: rename, then fsync the
    /// directory. Returns its path.
    pub fn complete(&self, part: &Path, last: Option<LogId>) -> Result<PathBuf> {
        let done = self.final_path(last);
        std::fs::rename(part, &done).map_err(|e| io_err(format!("rename {}", part.display()), e))?;
        // A part linked to the very file (openraft reinstalling the current
        // snapshot at start) is left in place by the rename (two links of
        // one file): remove it. Otherwise it is gone already.
        let _ = std::fs::remove_file(part);
        sync_dir(&self.inner.dir)?;
        Ok(done)
    }

    /// Remove every complete snapshot older than `keep` (by last log
    /// index; an empty one is the oldest), after `keep` completed. A newer
    /// one (a build that completed meanwhile) stays.
    pub fn remove_older(&self, keep: &Path) -> Result<()> {
        let dir = &self.inner.dir;
        let keep_index = snapshot_index(keep);
        let entries = std::fs::read_dir(dir).map_err(|e| io_err(format!("list {}", dir.display()), e))?;
        let mut first_err = None;
        for entry in entries {
            let path = entry.map_err(|e| io_err(format!("list {}", dir.display()), e))?.path();
            let older = path.extension().is_some_and(|x| x == "snap") && snapshot_index(&path) < keep_index;
            if path != keep && older {
                // Gone already (a concurrent removal) is fine; a failure
                // does not stop the removal of the others.
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        first_err.get_or_insert(io_err(format!("remove {}", path.display()), e));
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Remove every complete snapshot whose last log index is below `index`
    /// (the empty snapshot's is below every index), then fsync the
    /// directory: an install's step before its switch (I4).
    pub fn remove_below(&self, index: Option<u64>) -> Result<()> {
        let dir = &self.inner.dir;
        let entries = std::fs::read_dir(dir).map_err(|e| io_err(format!("list {}", dir.display()), e))?;
        let mut removed = false;
        for entry in entries {
            let path = entry.map_err(|e| io_err(format!("list {}", dir.display()), e))?.path();
            if path.extension().is_some_and(|x| x == "snap") && snapshot_index(&path) < index {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed = true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(format!("remove {}", path.display()), e)),
                }
            }
        }
        if removed {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Bring the snapshot `src` into a new `.part` here: a hard link where
    /// one can be made (the same file system: no byte is copied), else a
    /// copy, fsynced, in bounded memory (a buffer at a time). Returns the
    /// part's path. The install that follows checks the file whole either
    /// way.
    pub fn copy_in(&self, src: &mut SnapshotFile) -> Result<PathBuf> {
        if let Some(path) = self.link_in(src) {
            return Ok(path);
        }
        let (path, mut out) = self.create_part("copy")?;
        let copied = (|| {
            let from = src.path.display().to_string();
            std::io::copy(src.reader()?, &mut out).map_err(|e| io_err(format!("copy snapshot {from}"), e))?;
            out.flush()
                .map_err(|e| io_err("flush a snapshot copy".to_string(), e))?;
            sync_file(&out, &path)
        })();
        match copied {
            Ok(()) => Ok(path),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }
}

/// The `.snap` in `dir` with the highest last log index in its name (the
/// empty snapshot, without an index, is the oldest).
fn newest_snap(dir: &Path) -> Result<Option<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_err(format!("list {}", dir.display()), e))?;
    let mut newest: Option<PathBuf> = None;
    for entry in entries {
        let path = entry.map_err(|e| io_err(format!("list {}", dir.display()), e))?.path();
        let snap = path.extension().is_some_and(|x| x == "snap") && path.is_file();
        if snap
            && newest
                .as_ref()
                .is_none_or(|n| snapshot_index(&path) > snapshot_index(n))
        {
            newest = Some(path);
        }
    }
    Ok(newest)
}

/// The last log index a complete snapshot's name carries (`None`: the
/// empty snapshot, or not a snapshot name).
fn snapshot_index(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.split('-').next()?.parse().ok()
}

/// fsync a written file's data.
pub fn sync_file(file: &File, path: &Path) -> Result<()> {
    file.sync_all()
        .map_err(|e| io_err(format!("fsync {}", path.display()), e))
}

/// fsync a directory (a rename in it durable).
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(format!("fsync directory {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::SnapshotDir;
    use crate::types::log_id;

    #[test]
    fn only_older_snapshots_are_removed_and_a_start_keeps_the_newest() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        let touch = |p: &std::path::Path| std::fs::write(p, b"x").unwrap();
        let (empty, old, keep, newer) = (
            dir.final_path(None),
            dir.final_path(Some(log_id(1, 1, 9))),
            dir.final_path(Some(log_id(2, 1, 10))),
            dir.final_path(Some(log_id(2, 1, 100))),
        );
        for p in [&empty, &old, &keep, &newer] {
            touch(p);
        }
        let (part, _) = dir.create_part("build").unwrap();
        let (received, _) = dir.create_part("recv").unwrap();
        dir.remove_older(&keep).unwrap();
        let exists = |p: &std::path::Path| p.exists();
        assert!(!exists(&empty) && !exists(&old), "older ones go");
        assert!(
            exists(&keep) && exists(&newer) && exists(&part),
            "newer ones and parts stay"
        );
        drop(dir);
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        left.sort();
        let mut want = vec![newer.clone(), received.clone()];
        want.sort();
        assert_eq!(
            left, want,
            "all but the newest snapshot and a received part (for the receiver to resume)"
        );
        assert_eq!(dir.received().unwrap(), [received]);
        assert_eq!(dir.newest_complete().unwrap(), Some(newer));
    }

    #[test]
    fn a_new_part_never_takes_the_name_of_one_left_there() {
        let tmp = tempfile::tempdir().unwrap();
        let left = tmp.path().join(format!("recv-{}-1.part", std::process::id()));
        std::fs::write(&left, b"parked").unwrap();
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        let (path, _) = dir.create_part("recv").unwrap();
        assert_ne!(path, left);
        assert_eq!(std::fs::read(&left).unwrap(), b"parked");
    }
}
