//! The receiving end of a snapshot transfer over TCP: the chunks of one
//! connection appended to a `.part` file in the node's snapshot directory,
//! in bounded memory (one chunk at a time).
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

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

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

/// One connection's snapshot being received.
pub struct Incoming {
    dir: SnapshotDir,
    part: Option<Part>,
}

struct Part {
    path: PathBuf,
    file: File,
    written: u64,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.discard();
    }
}

impl Incoming {
    /// Receive into `dir`.
    pub fn new(dir: SnapshotDir) -> Incoming {
        Incoming { dir, part: None }
    }

    fn discard(&mut self) {
        if let Some(p) = self.part.take() {
            drop(p.file);
            let _ = std::fs::remove_file(&p.path);
        }
    }

    /// Write the chunk `data` at byte `offset` of a file of `len` bytes.
    /// Returns the complete file after the last chunk (`done`), `None`
    /// before it, or why the chunk does not fit (then the part so far is
    /// removed too).
    pub fn add(&mut self, len: u64, offset: u64, data: &[u8], done: bool) -> Result<Option<SnapshotFile>, String> {
        let r = self.write(len, offset, data, done);
        if r.is_err() {
            self.discard();
        }
        r
    }

    fn write(&mut self, len: u64, offset: u64, data: &[u8], done: bool) -> Result<Option<SnapshotFile>, String> {
        if offset == 0 {
            self.discard();
            let (path, file) = self.dir.create_part("recv").map_err(|e| e.to_string())?;
            self.part = Some(Part { path, file, written: 0 });
        }
        let Some(part) = self.part.as_mut() else {
            return Err(format!("a snapshot chunk at byte {offset} with no transfer begun"));
        };
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
    use super::{check, Incoming};
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
        let mut inc = Incoming::new(dir);
        assert!(inc.add(3, 0, b"ab", false).unwrap().is_none());
        // Abandoned after one chunk: a new transfer starts at 0.
        assert!(inc.add(3, 0, b"xy", false).unwrap().is_none());
        assert_eq!(files(), 1, "the abandoned part was removed");
        let mut f = inc.add(3, 2, b"z", true).unwrap().unwrap();
        let mut got = String::new();
        f.reader().unwrap().read_to_string(&mut got).unwrap();
        assert_eq!(got, "xyz");
        drop(f);
        assert_eq!(files(), 0, "an owned part not taken over is removed");
        // Out of order, past the length, short: refused, part removed.
        assert!(inc.add(4, 0, b"abc", false).unwrap().is_none());
        assert!(inc.add(4, 2, b"c", true).is_err());
        assert!(inc.add(4, 3, b"d", true).is_err(), "the refusal dropped the part");
        assert!(inc.add(2, 0, b"abc", true).is_err());
        assert!(inc.add(4, 0, b"abc", true).is_err());
        assert_eq!(files(), 0);
        drop(inc);
    }

    #[tokio::test]
    async fn a_received_file_is_checked_whole_against_its_meta() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        let applied = AppliedState {
            last_applied: Some(log_id(1, 0, 5)),
            membership: Default::default(),
        };
        let mut w = Writer::new(Vec::new(), &applied).unwrap();
        w.record(b"k", &keys::encode_value(5, Some(b"v"))).unwrap();
        let (good, _, len) = w.finish().unwrap();
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: Default::default(),
        };
        let receive = |bytes: Vec<u8>| {
            let mut inc = Incoming::new(dir.clone());
            inc.add(len, 0, &bytes, true)
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
}
