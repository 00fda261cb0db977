//! Building a snapshot file from a bwtx `Snapshot`, in bounded memory,
//! beside commits (`design/replication.md` §5.2).

use std::io::Write;
use std::path::PathBuf;

use super::format::Writer;
use super::store::{sync_file, SnapshotDir, SnapshotFile};
use crate::error::{Error, Result};
use crate::generation::Generations;
use crate::keys::DATA_PREFIX;
use crate::state_machine::read_applied;
use crate::types::SnapshotMeta;

/// A complete snapshot file.
#[derive(Clone, Debug)]
pub struct Built {
    /// openraft's description of it.
    pub meta: SnapshotMeta,
    /// Its path (`<index>-<term>-<node>.snap`).
    pub path: PathBuf,
    /// Its record count.
    pub records: u64,
    /// Its length in bytes.
    pub bytes: u64,
}

/// Build a snapshot of the state machine in `db` into `dir`: take a bwtx
/// snapshot (commits go on), write its applied state and its data records
/// one at a time into a `.part` (a buffered file: memory stays at the
/// buffer and one record), fsync it, rename it to its `.snap` name, fsync
/// the directory; then checkpoint `db`, so that the state the snapshot
/// holds is durable before openraft purges the log it covers (applies are
/// not synced, §2 of `design/replication.md`). Returns the file open for
/// reading too (opened before the rename, so a concurrent install that
/// removes it cannot make it unreadable).
pub fn build(db: &bwtx::Db, gens: &Generations, dir: &SnapshotDir) -> Result<(Built, SnapshotFile)> {
    let (snap, ks) = gens.read();
    let applied = read_applied(&snap)?;
    let meta = SnapshotMeta {
        last_log_id: applied.last_applied,
        last_membership: applied.membership.clone(),
    };
    let (part, file) = dir.create_part("build")?;
    let written = (|| {
        let mut w = Writer::new(file, &applied)?;
        for kv in snap.prefix_in(&ks, DATA_PREFIX) {
            let (k, v) = kv?;
            w.record(&k[DATA_PREFIX.len()..], &v)?;
        }
        let (mut file, records, bytes) = w.finish()?;
        file.flush()
            .map_err(|e| Error::Raft(format!("flush {}: {e}", part.display())))?;
        sync_file(&file, &part)?;
        Ok::<_, Error>((records, bytes))
    })();
    let (records, bytes) = match written {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    drop(snap);
    let mut file = match SnapshotFile::open(&part) {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    let path = dir.complete(&part, meta.last_log_id)?;
    file.renamed(path.clone());
    db.checkpoint()?;
    let built = Built {
        meta,
        path,
        records,
        bytes,
    };
    Ok((built, file))
}
