//! State-machine snapshots: built from a bwtx `Snapshot`, installed in one
//! bwtx transaction.
//!
//! **Build.** A bwtx `Snapshot` is a consistent, read-only view taken
//! without stopping commits: the applied state (`sm/applied`) and the data
//! (`sm/data/...`) read from it belong together, because apply writes both
//! in one commit. The view is serialized ([`SnapshotFile`], JSON) while the
//! state machine keeps applying; openraft then streams the bytes to a
//! follower whole (`RaftNetworkV2::full_snapshot`: in process a direct call, on TCP one frame;
//! `crate::network`).
//!
//! **Install.** One bwtx transaction deletes the state machine's keys that
//! are not in the snapshot, writes the snapshot's keys and the new applied
//! state, and commits: after a crash the replica holds either the old state
//! or the new one, each with its own applied log id, never a mix
//! (`design/replication.md` §5 argues this against a directory swap).
//!
//! The snapshot's values keep their last-written log indexes, so a follower
//! that installed one validates later transactions exactly as the leader.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::{self, AppliedState, APPLIED, DATA_PREFIX};
use crate::types::SnapshotMeta;

/// The serialized form of a snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// The applied state the data reflects.
    pub applied: AppliedState,
    /// User key (without the data prefix) and stored value (log index and
    /// value or tombstone, [`keys::encode_value`]), in key order.
    pub pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A built or installed snapshot, as the state machine keeps it to serve
/// `get_current_snapshot`.
#[derive(Clone, Debug)]
pub struct StoredSnapshot {
    /// openraft's description of it.
    pub meta: SnapshotMeta,
    /// The serialized [`SnapshotFile`].
    pub data: Arc<Vec<u8>>,
}

/// Build a snapshot of `db`'s state machine from one bwtx snapshot, then
/// checkpoint `db`, so that the state the snapshot holds is durable before
/// openraft purges the log it covers (applies are not synced, §2 of
/// `design/replication.md`). Runs beside commits.
pub fn build(db: &bwtx::Db) -> Result<StoredSnapshot> {
    let built = read(db)?;
    db.checkpoint()?;
    Ok(built)
}

fn read(db: &bwtx::Db) -> Result<StoredSnapshot> {
    let snap = db.snapshot();
    let applied: AppliedState = match snap.get(APPLIED)? {
        Some(raw) => keys::from_json(&raw, "applied state")?,
        None => AppliedState::default(),
    };
    let mut pairs = Vec::new();
    for kv in snap.prefix(DATA_PREFIX) {
        let (k, v) = kv?;
        pairs.push((k[DATA_PREFIX.len()..].to_vec(), v.to_vec()));
    }
    let meta = SnapshotMeta {
        last_log_id: applied.last_applied,
        last_membership: applied.membership.clone(),
    };
    let data = keys::to_json(&SnapshotFile { applied, pairs });
    Ok(StoredSnapshot {
        meta,
        data: Arc::new(data),
    })
}

/// Install snapshot `data` described by `meta` into `db`'s state machine:
/// one bwtx commit replaces every state-machine key and the applied state.
/// Then a checkpoint makes it durable. A snapshot that does not decode or
/// does not match `meta` is [`Error::Corrupt`] and changes nothing.
pub fn install(db: &bwtx::Db, meta: &SnapshotMeta, data: &[u8]) -> Result<()> {
    let file: SnapshotFile = keys::from_json(data, "snapshot")?;
    if file.applied.last_applied != meta.last_log_id || file.applied.membership != meta.last_membership {
        return Err(Error::Corrupt(format!(
            "a snapshot holds state at {:?}, its meta says {:?}",
            file.applied.last_applied, meta.last_log_id
        )));
    }
    let mut tx = db.begin();
    let incoming: HashSet<&[u8]> = file.pairs.iter().map(|(k, _)| k.as_slice()).collect();
    let mut stale = Vec::new();
    for kv in tx.prefix(DATA_PREFIX) {
        let (k, _) = kv?;
        if !incoming.contains(&k[DATA_PREFIX.len()..]) {
            stale.push(k);
        }
    }
    for k in stale {
        tx.delete(k)?;
    }
    for (k, v) in &file.pairs {
        // Values come from another replica: check them as apply would.
        keys::decode_value(&bytes::Bytes::copy_from_slice(v))?;
        tx.put(keys::data_key(k), v)?;
    }
    tx.put(APPLIED, keys::to_json(&file.applied))?;
    tx.commit()?;
    // Durable before openraft purges the log the snapshot covers.
    db.checkpoint()?;
    Ok(())
}
