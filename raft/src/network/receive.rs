//! The receiving end of a snapshot transfer over TCP: the chunks of one
//! connection appended to a `.part` file in the node's snapshot directory,
//! in bounded memory (one chunk at a time), written and fsynced on tokio's
//! blocking pool (`server::add_chunk`).
//!
//! Chunk 0 starts a file afresh (an abandoned transfer's part is removed);
//! any other must start where the chunks so far end. After the last
//! (`done`) the file must hold the length the sender announced; it is
//! fsynced, checked whole ([`check`]: format version, every record, count,
//! CRC, and the applied state against the sender's meta) and handed over
//! as an owned part ([`SnapshotFile::open_part`]), which is removed if
//! nothing takes it over. A chunk out of order, a short or corrupt file or
//! a failed write is an error for the sender (whose openraft sends the
//! snapshot again later), never a storage error of this node, and the part
//! is removed.
//!
//! **Resuming a cut transfer** (wire version 4). A connection that closes
//! in the middle of a transfer *parks* its part in the node's [`Parked`]
//! slot (one part per node; a newer one replaces it, and its file is
//! removed), with the snapshot's id and length and the bytes written. The
//! sender's next transfer first asks where to resume
//! ([`Incoming::resume`], `Request::SnapshotResume`): for the same id and
//! length the parked part becomes the connection's and its byte count is
//! the answer, so the chunks continue from there; otherwise the parked part
//! is removed and the answer is 0. A snapshot's id is its last log id
//! ([`snapshot_id`]). A resumed file is checked whole like any other, so a
//! part that does not belong to the file sent (another file of the same
//! log id and length with other bytes) fails that check and is removed: the
//! next try starts at 0. A stopped server's parked part is removed.
//!
//! **Across a restart.** Each received part has a sidecar, `<part>.meta`
//! (the snapshot's length, a newline, its id), written when its first chunk
//! arrives and removed with the part. `SnapshotDir::open` keeps received
//! parts (`recv-*`), and [`Receiver::new`] parks the longest one an earlier
//! run left, with its file's length as the bytes written (a process killed
//! mid-transfer never ran its drop), removing the others and any part
//! without a readable sidecar. Chunks are not fsynced one by one: after a
//! power loss the part may hold fewer bytes, or bytes that were never
//! written; the whole-file check refuses the latter, and the next try starts
//! at 0.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::snapshot::format::Reader;
use crate::snapshot::store::sync_file;
use crate::snapshot::{SnapshotDir, SnapshotFile};
use crate::types::SnapshotMeta;

/// Check a received snapshot file whole, on tokio's blocking pool: it
/// reads as a snapshot (see [`Reader`]) of the state `meta` describes.
/// Returns the file (still owned), or why not (the file is then removed).
pub async fn check(mut file: SnapshotFile, meta: SnapshotMeta) -> Result<SnapshotFile, String> {
    let checked = tokio::task::spawn_blocking(move || {
        let r = (|| {
            let mut r = Reader::new(file.reader()?)?;
            let a = r.applied();
            if a.last_applied != meta.last_log_id || a.membership != meta.last_membership {
                return Err(crate::Error::Corrupt(format!(
                    "a snapshot holds state at {:?}, its meta says {:?}",
                    a.last_applied, meta.last_log_id
                )));
            }
            r.check_rest()
        })();
        r.map(|_| file)
    })
    .await;
    match checked {
        Ok(Ok(file)) => Ok(file),
        Ok(Err(e)) => Err(format!("the received snapshot: {e}")),
        Err(e) => Err(format!("checking the received snapshot: {e}")),
    }
}

/// What names a snapshot in a transfer: its last log id. Every replica's
/// snapshot at one log id holds the same state (apply is deterministic),
/// and a resumed file is checked whole anyway.
pub fn snapshot_id(meta: &SnapshotMeta) -> String {
    format!("{:?}", meta.last_log_id)
}

/// A node's parked part: the one a cut connection left (see the module
/// docs). Cloning shares it.
#[derive(Clone, Default)]
pub struct Parked(Arc<Slot>);

/// The parked part, removed when the last handle on it drops (the node's
/// server stopped).
#[derive(Default)]
struct Slot(Mutex<Option<Part>>);

impl Drop for Slot {
    fn drop(&mut self) {
        let part = self.0.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(p) = part {
            p.remove();
        }
    }
}

impl Parked {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Part>> {
        self.0 .0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Park `part`, removing the one parked before.
    fn park(&self, part: Part) {
        let old = self.slot().replace(part);
        if let Some(old) = old {
            old.remove();
        }
    }

    /// The bytes the parked part holds, if any (for tests).
    pub fn held(&self) -> Option<u64> {
        self.slot().as_ref().map(|p| p.written)
    }
}

/// A node's receiving side: its snapshot directory and parked part.
/// Cloning shares them.
#[derive(Clone)]
pub struct Receiver {
    dir: SnapshotDir,
    parked: Parked,
}

impl Receiver {
    /// Receive into `dir`, with the longest part an earlier run left there
    /// parked (see the module docs); the others are removed.
    pub fn new(dir: SnapshotDir) -> Receiver {
        let parked = Parked::default();
        let mut best: Option<Part> = None;
        for path in dir.received().unwrap_or_default() {
            if path.extension().is_some_and(|e| e == "meta") {
                if !path.with_extension("").exists() {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
            match Part::restore(&path) {
                Some(p) if best.as_ref().is_none_or(|b| p.written > b.written) => {
                    if let Some(old) = best.replace(p) {
                        old.remove();
                    }
                }
                Some(p) => p.remove(),
                None => {
                    let _ = std::fs::remove_file(&path);
                    let _ = std::fs::remove_file(meta_path(&path));
                }
            }
        }
        if let Some(p) = best {
            parked.park(p);
        }
        Receiver { dir, parked }
    }

    /// A new connection's receiving end.
    pub fn incoming(&self) -> Incoming {
        Incoming::new(self.dir.clone(), self.parked.clone())
    }

    /// The bytes of the part a cut transfer left, if any.
    pub fn parked(&self) -> Option<u64> {
        self.parked.held()
    }
}

/// One connection's snapshot being received.
pub struct Incoming {
    dir: SnapshotDir,
    parked: Parked,
    part: Option<Part>,
}

/// A part file being written: which snapshot (its id and length), and how
/// many bytes it holds.
struct Part {
    id: String,
    len: u64,
    path: PathBuf,
    file: File,
    written: u64,
}

impl Part {
    fn remove(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(meta_path(&self.path));
    }

    /// The part an earlier run left at `path`, if its sidecar reads and it
    /// holds bytes, opened to append.
    fn restore(path: &Path) -> Option<Part> {
        let meta = std::fs::read_to_string(meta_path(path)).ok()?;
        let (len, id) = meta.split_once('\n')?;
        let len: u64 = len.parse().ok()?;
        let file = OpenOptions::new().append(true).open(path).ok()?;
        let written = file.metadata().ok()?.len();
        (written > 0 && written <= len).then(|| Part {
            id: id.to_string(),
            len,
            path: path.to_path_buf(),
            file,
            written,
        })
    }
}

/// The sidecar of the received part at `part`.
fn meta_path(part: &Path) -> PathBuf {
    let mut name = part.as_os_str().to_owned();
    name.push(".meta");
    PathBuf::from(name)
}

impl Drop for Incoming {
    /// A transfer cut off here is parked for a resume.
    fn drop(&mut self) {
        if let Some(p) = self.part.take() {
            if p.written > 0 {
                self.parked.park(p);
            } else {
                p.remove();
            }
        }
    }
}

impl Incoming {
    /// Receive into `dir`, parking a cut transfer in `parked`.
    pub fn new(dir: SnapshotDir, parked: Parked) -> Incoming {
        Incoming {
            dir,
            parked,
            part: None,
        }
    }

    fn discard(&mut self) {
        if let Some(p) = self.part.take() {
            p.remove();
        }
    }

    /// Where a transfer of snapshot `id`, `len` bytes long, resumes: the
    /// bytes of the parked part if it is that snapshot's (it becomes this
    /// connection's), else 0 (and the parked part, if any, is removed).
    pub fn resume(&mut self, id: &str, len: u64) -> u64 {
        self.discard();
        let parked = self.parked.slot().take();
        match parked {
            Some(p) if p.id == id && p.len == len && p.written <= len => {
                let at = p.written;
                self.part = Some(p);
                at
            }
            Some(p) => {
                p.remove();
                0
            }
            None => 0,
        }
    }

    /// Write the chunk `data` at byte `offset` of snapshot `id`'s file of
    /// `len` bytes. Returns the complete file after the last chunk
    /// (`done`), `None` before it, or why the chunk does not fit (then the
    /// part so far is removed too).
    pub fn add(
        &mut self,
        id: &str,
        len: u64,
        offset: u64,
        data: &[u8],
        done: bool,
    ) -> Result<Option<SnapshotFile>, String> {
        let r = self.write(id, len, offset, data, done);
        if r.is_err() {
            self.discard();
        }
        r
    }

    fn write(
        &mut self,
        id: &str,
        len: u64,
        offset: u64,
        data: &[u8],
        done: bool,
    ) -> Result<Option<SnapshotFile>, String> {
        if offset == 0 {
            self.discard();
            let (path, file) = self.dir.create_part("recv").map_err(|e| e.to_string())?;
            if let Err(e) = std::fs::write(meta_path(&path), format!("{len}\n{id}")) {
                let _ = std::fs::remove_file(&path);
                return Err(format!("writing {}: {e}", meta_path(&path).display()));
            }
            self.part = Some(Part {
                id: id.to_string(),
                len,
                path,
                file,
                written: 0,
            });
        }
        let Some(part) = self.part.as_mut() else {
            return Err(format!("a snapshot chunk at byte {offset} with no transfer begun"));
        };
        if part.id != id || part.len != len {
            return Err(format!(
                "a chunk of snapshot {id} ({len} bytes) in a transfer of {} ({} bytes)",
                part.id, part.len
            ));
        }
        if offset != part.written {
            return Err(format!(
                "a snapshot chunk at byte {offset}, after {} bytes",
                part.written
            ));
        }
        if part.written + data.len() as u64 > len {
            return Err(format!("snapshot chunks past the announced {len} bytes"));
        }
        part.file
            .write_all(data)
            .map_err(|e| format!("writing {}: {e}", part.path.display()))?;
        part.written += data.len() as u64;
        if !done {
            return Ok(None);
        }
        if part.written != len {
            return Err(format!("a snapshot of {} bytes, {len} announced", part.written));
        }
        let Some(mut part) = self.part.take() else {
            return Err("no snapshot transfer".to_string());
        };
        let synced = part
            .file
            .flush()
            .map_err(|e| e.to_string())
            .and_then(|()| sync_file(&part.file, &part.path).map_err(|e| e.to_string()));
        drop(part.file);
        let _ = std::fs::remove_file(meta_path(&part.path));
        // Owned from here on: removed when dropped unless installed.
        let file = synced.and_then(|()| SnapshotFile::open_part(&part.path).map_err(|e| e.to_string()));
        if file.is_err() {
            let _ = std::fs::remove_file(&part.path);
        }
        file.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::{check, Incoming, Parked};
    use crate::keys::{self, AppliedState};
    use crate::snapshot::format::Writer;
    use crate::snapshot::SnapshotDir;
    use crate::types::{log_id, SnapshotMeta};
    use std::io::Read;

    #[test]
    fn chunks_join_in_order_and_bad_ones_remove_the_part() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        let files = || std::fs::read_dir(tmp.path()).unwrap().count();
        let mut inc = Incoming::new(dir, Parked::default());
        assert!(inc.add("s", 3, 0, b"ab", false).unwrap().is_none());
        // Abandoned after one chunk: a new transfer starts at 0.
        assert!(inc.add("s", 3, 0, b"xy", false).unwrap().is_none());
        assert_eq!(
            files(),
            2,
            "the abandoned part was removed (left: the new one and its sidecar)"
        );
        let mut f = inc.add("s", 3, 2, b"z", true).unwrap().unwrap();
        let mut got = String::new();
        f.reader().unwrap().read_to_string(&mut got).unwrap();
        assert_eq!(got, "xyz");
        drop(f);
        assert_eq!(files(), 0, "an owned part not taken over is removed");
        // Out of order, past the length, short: refused, part removed.
        assert!(inc.add("s", 4, 0, b"abc", false).unwrap().is_none());
        assert!(inc.add("s", 4, 2, b"c", true).is_err());
        assert!(inc.add("s", 4, 3, b"d", true).is_err(), "the refusal dropped the part");
        assert!(inc.add("s", 2, 0, b"abc", true).is_err());
        assert!(inc.add("s", 4, 0, b"abc", true).is_err());
        // A chunk of another snapshot in the middle of a transfer.
        assert!(inc.add("s", 4, 0, b"ab", false).unwrap().is_none());
        assert!(inc.add("t", 4, 2, b"cd", true).is_err());
        assert_eq!(files(), 0);
        drop(inc);
    }

    #[test]
    fn a_cut_transfer_is_parked_and_resumed_only_for_the_same_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        let files = || std::fs::read_dir(tmp.path()).unwrap().count();
        let parked = Parked::default();
        // Nothing parked: resume at 0.
        let mut inc = Incoming::new(dir.clone(), parked.clone());
        assert_eq!(inc.resume("s", 6), 0);
        assert!(inc.add("s", 6, 0, b"ab", false).unwrap().is_none());
        assert!(inc.add("s", 6, 2, b"cd", false).unwrap().is_none());
        drop(inc); // the connection closes mid-transfer
        assert_eq!(parked.held(), Some(4));
        assert_eq!(files(), 2, "the part is kept, with its sidecar");

        // Another snapshot (or the same id with another length): 0, and
        // the parked part is gone.
        let mut inc = Incoming::new(dir.clone(), parked.clone());
        assert_eq!(inc.resume("s", 7), 0);
        assert_eq!((parked.held(), files()), (None, 0));
        assert!(inc.add("s", 6, 0, b"ab", false).unwrap().is_none());
        assert!(inc.add("s", 6, 2, b"cd", false).unwrap().is_none());
        drop(inc);

        // The same snapshot resumes where the part ends, on a new
        // connection, and completes with the bytes of both.
        let mut inc = Incoming::new(dir.clone(), parked.clone());
        assert_eq!(inc.resume("s", 6), 4);
        assert_eq!(parked.held(), None, "taken by the connection");
        assert!(inc.add("s", 6, 2, b"xx", false).is_err(), "not where the part ends");
        assert_eq!(files(), 0, "the refused part is removed");

        let mut inc = Incoming::new(dir.clone(), parked.clone());
        assert_eq!(inc.resume("s", 6), 0);
        assert!(inc.add("s", 6, 0, b"abcd", false).unwrap().is_none());
        drop(inc);
        let mut inc = Incoming::new(dir.clone(), parked.clone());
        assert_eq!(inc.resume("s", 6), 4);
        let mut f = inc.add("s", 6, 4, b"ef", true).unwrap().unwrap();
        let mut got = String::new();
        f.reader().unwrap().read_to_string(&mut got).unwrap();
        assert_eq!(got, "abcdef");
        drop((f, inc));
        assert_eq!(files(), 0);

        // A part cut before any byte is not parked; a newer part replaces
        // (removes) an older one.
        let mut inc = Incoming::new(dir.clone(), parked.clone());
        assert!(inc.add("a", 6, 0, b"", false).unwrap().is_none());
        drop(inc);
        assert_eq!((parked.held(), files()), (None, 0));
        for id in ["a", "b"] {
            let mut inc = Incoming::new(dir.clone(), parked.clone());
            assert!(inc.add(id, 6, 0, b"abc", false).unwrap().is_none());
        }
        assert_eq!((parked.held(), files()), (Some(3), 2));
        let mut inc = Incoming::new(dir, parked.clone());
        assert_eq!(inc.resume("a", 6), 0, "a's part was replaced by b's");
        assert_eq!(files(), 0);
    }

    #[tokio::test]
    async fn a_received_file_is_checked_whole_against_its_meta() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        let applied = AppliedState {
            last_applied: Some(log_id(1, 0, 5)),
            membership: Default::default(),
            ..Default::default()
        };
        let mut w = Writer::new(Vec::new(), &applied).unwrap();
        w.record(b"k", &keys::encode_value(5, Some(b"v"))).unwrap();
        let (good, _, len) = w.finish().unwrap();
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: Default::default(),
        };
        let receive = |bytes: Vec<u8>| {
            let mut inc = Incoming::new(dir.clone(), Parked::default());
            inc.add("s", len, 0, &bytes, true)
        };
        let file = receive(good.clone()).unwrap().unwrap();
        assert!(check(file, meta.clone()).await.is_ok());
        let mut bad = good.clone();
        bad[good.len() / 2] ^= 1;
        let file = receive(bad).unwrap().unwrap();
        let e = check(file, meta.clone()).await.unwrap_err();
        assert!(e.contains("corrupt"), "{e}");
        let mut other = meta.clone();
        other.last_log_id = Some(log_id(1, 0, 6));
        let file = receive(good).unwrap().unwrap();
        assert!(check(file, other).await.is_err());
        let left = std::fs::read_dir(tmp.path()).unwrap().count();
        assert_eq!(left, 0, "refused files are removed");
    }

    #[test]
    fn a_part_a_killed_run_left_is_resumed_after_a_restart() {
        use super::Receiver;
        let tmp = tempfile::tempdir().unwrap();
        let files = || std::fs::read_dir(tmp.path()).unwrap().count();
        let recv = Receiver::new(SnapshotDir::open(tmp.path()).unwrap());
        // Two transfers cut by a kill: no drop runs, nothing is parked.
        let mut a = recv.incoming();
        assert!(a.add("s", 6, 0, b"abc", false).unwrap().is_none());
        let mut b = recv.incoming();
        assert!(b.add("t", 9, 0, b"x", false).unwrap().is_none());
        std::mem::forget((a, b, recv));
        assert_eq!(files(), 4, "two parts, each with its sidecar");

        // The next run parks the longer part and removes the other.
        let recv = Receiver::new(SnapshotDir::open(tmp.path()).unwrap());
        assert_eq!(recv.parked(), Some(3));
        assert_eq!(files(), 2);
        let mut inc = recv.incoming();
        assert_eq!(inc.resume("s", 6), 3);
        let mut f = inc.add("s", 6, 3, b"def", true).unwrap().unwrap();
        let mut got = String::new();
        f.reader().unwrap().read_to_string(&mut got).unwrap();
        assert_eq!(got, "abcdef");
        drop(f);
        assert_eq!(files(), 0, "the sidecar goes with the part");

        // A part left again; the next run's transfer is of another snapshot.
        let mut a = recv.incoming();
        assert!(a.add("s", 6, 0, b"ab", false).unwrap().is_none());
        std::mem::forget((a, recv));
        let recv = Receiver::new(SnapshotDir::open(tmp.path()).unwrap());
        assert_eq!(recv.incoming().resume("u", 6), 0);
        assert_eq!(files(), 0, "a part of another snapshot is removed");
        // A part with no readable sidecar is removed at the start.
        std::fs::write(tmp.path().join("recv-1-1.part"), b"zz").unwrap();
        let recv = Receiver::new(SnapshotDir::open(tmp.path()).unwrap());
        assert_eq!((recv.parked(), files()), (None, 0));
    }
}
