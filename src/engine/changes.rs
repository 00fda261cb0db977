//! The change stream's engine side (`crate::Db::changes_since`): where it
//! may start, how far it may read, and the log records turned into
//! [`Change`]s. The records are the write-ahead log's own
//! (`crate::wal::changes`): the stream costs no extra write.

use bytes::Bytes;

use super::Engine;
use crate::wal::changes::ChangeCursor;
use crate::wal::record::Logged;
use crate::wal::store::Store;
use crate::{Error, Result};

/// One keyspace's writes in a change, in key order (`None`: a delete).
type Writes = Vec<(Bytes, Option<Bytes>)>;

/// The names a change stream learned from the catalog records it read, by
/// keyspace id: a keyspace's writes are named as at its creation, even
/// once it is dropped and forgotten, or after a restart.
#[derive(Default)]
pub(crate) struct KsNames(std::collections::HashMap<u32, String>);

/// One committed transaction's writes, as the change stream returns them.
///
/// A keyspace's creation and its drop are changes of their own (one
/// commit each, with no writes): [`Change::created`], [`Change::dropped`].
/// A consumer that mirrors the database applies a change's fields in
/// their order here: creations, drops, then writes. (Fields may be added:
/// the struct is `#[non_exhaustive]`.)
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// The commit timestamp (what `Transaction::commit` returned).
    pub ts: u64,
    /// The writes to the default keyspace, in key order: `None` is a delete.
    pub writes: Vec<(Bytes, Option<Bytes>)>,
    /// The writes to other keyspaces: `(name, writes in key order)`, by
    /// keyspace id (so in creation order). A keyspace is named as at its
    /// creation if the stream read that (so a dropped one keeps its name
    /// for a stream that started before its creation, across restarts
    /// too), else by the keyspace the database holds under that id now (one
    /// dropped but not yet collected keeps its name); one dropped and no longer
    /// known is named `#<id>`. Creations and drops are in `created` and
    /// `dropped`.
    pub keyspaces: Vec<(String, Writes)>,
    /// The keyspaces this commit created ([`crate::Db::keyspace`]).
    pub created: Vec<String>,
    /// The keyspaces this commit dropped ([`crate::Db::drop_keyspace`]):
    /// a keyspace of the same name created later is a new, empty one.
    pub dropped: Vec<String>,
}

impl Engine {
    /// The log, if commits are logged.
    fn change_log(&self) -> Result<&Store> {
        self.store.as_ref().filter(|s| s.logs()).ok_or(Error::InvalidArgument(
            "the change stream reads the log: it needs a database opened with a directory and a durability other than None",
        ))
    }

    /// A cursor after commit `ts`: `InvalidArgument` above the newest
    /// visible commit, `SnapshotTooOld` below what the log retains. A `ts`
    /// visible but not yet durable (a buffered commit) is synced first: a
    /// reader stores the stream's position, which must name a commit a
    /// power loss cannot take back (before 2026-12-08 it could, and the
    /// commit that took the timestamp after recovery was passed over).
    pub(crate) fn change_cursor(&self, ts: u64) -> Result<ChangeCursor> {
        let store = self.change_log()?;
        if ts > self.oracle.read_ts() {
            return Err(Error::InvalidArgument(
                "changes_since: the timestamp is above the newest visible commit",
            ));
        }
        if ts > store.durable_ts() {
            store.sync_now()?;
        }
        let oldest = store.retained_from();
        if ts < oldest {
            return Err(Error::SnapshotTooOld { requested: ts, oldest });
        }
        Ok(ChangeCursor::new(ts))
    }

    /// How far a change stream may read now: commits visible and durable.
    /// Durable, not only written, in `Buffered` mode too: a power loss
    /// cannot take back a change a reader was given, nor give its
    /// timestamp to a later commit that a reader resuming from its
    /// position would then pass over (`design/durability.md` §10).
    pub(crate) fn change_limit(&self) -> u64 {
        let durable = self.store.as_ref().map_or(0, |s| s.durable_ts());
        self.oracle.read_ts().min(durable)
    }

    /// Wait up to `timeout` for commit `ts` to be durable (a change stream
    /// whose next change is visible and not yet synced): whether it is.
    pub(crate) fn wait_durable(&self, ts: u64, timeout: std::time::Duration) -> bool {
        self.store.as_ref().is_some_and(|s| s.wait_durable(ts, timeout))
    }

    /// The next change after `cursor`, at most `upto`.
    pub(crate) fn next_change(
        &self,
        cursor: &mut ChangeCursor,
        names: &mut KsNames,
        upto: u64,
    ) -> Result<Option<Change>> {
        let store = self.change_log()?;
        let Some(c) = store.next_change(cursor, upto)? else {
            return Ok(None);
        };
        let mut resolved = Vec::with_capacity(c.writes.len());
        for (t, k, v) in c.writes {
            let v = match v {
                Logged::Put(v) => Some(v),
                Logged::Delete => None,
                Logged::Ref { addr, len } => match self.logged_value(t, &k, c.ts, addr, len) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        // Not returned: the next read finds it again.
                        cursor.back_before(c.ts);
                        // A checkpoint deleted this record's log segment
                        // (the cursor read on through its open file) and
                        // collected the values it referenced: gone, not
                        // damaged.
                        if c.ts <= store.retained_from() {
                            return Err(Error::SnapshotTooOld {
                                requested: c.ts - 1,
                                oldest: store.retained_from(),
                            });
                        }
                        return Err(e);
                    }
                },
            };
            resolved.push((t, k, v));
        }
        Ok(Some({
            let mut writes = Vec::new();
            let mut keyspaces: Vec<(u32, String, Writes)> = Vec::new();
            let (mut created, mut dropped) = (Vec::new(), Vec::new());
            for (t, k, v) in resolved {
                match t {
                    0 => writes.push((k, v)),
                    // The catalog: `name -> id` (a creation) or a delete of
                    // `name` (a drop), and the next id to hand out.
                    super::keyspaces::CATALOG if &k[..] != super::keyspaces::NEXT_ID => {
                        let name = String::from_utf8_lossy(&k).into_owned();
                        match v {
                            Some(id) => {
                                if let Ok(id) = <[u8; 4]>::try_from(&id[..]) {
                                    names.0.insert(u32::from_le_bytes(id), name.clone());
                                }
                                created.push(name)
                            }
                            None => dropped.push(name),
                        }
                    }
                    super::keyspaces::CATALOG => {}
                    t => {
                        if keyspaces.last().is_none_or(|l| l.0 != t) {
                            let name = match names.0.get(&t) {
                                Some(n) => n.clone(),
                                None => self
                                    .ks
                                    .by_id(t)
                                    .map_or_else(|| format!("#{t}"), |ks| ks.name.to_string()),
                            };
                            keyspaces.push((t, name, Vec::new()));
                        }
                        if let Some(l) = keyspaces.last_mut() {
                            l.2.push((k, v));
                        }
                    }
                }
            }
            Change {
                ts: c.ts,
                writes,
                keyspaces: keyspaces.into_iter().map(|(_, n, w)| (n, w)).collect(),
                created,
                dropped,
            }
        }))
    }

    /// The value a log record references (placed in the value log at
    /// commit, `design/storage.md` §10.1), checked against its version.
    fn logged_value(&self, t: u32, key: &[u8], ts: u64, addr: u64, len: u32) -> Result<Bytes> {
        let corrupt = |reason| Error::Corruption {
            file: std::path::PathBuf::new(),
            offset: 0,
            reason,
        };
        let pages = self
            .pages
            .as_ref()
            .ok_or_else(|| corrupt("a log record references a value log this database does not have"))?;
        let tree = super::tree_pages::tag(t)
            .ok_or_else(|| corrupt("a log record references a value of an unpaged keyspace"))?;
        pages.vlog.read_value(tree, key, ts, addr, len)
    }
}
