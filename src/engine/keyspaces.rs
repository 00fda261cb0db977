//! Keyspaces, the engine's side (`design/keyspaces.md`): the catalog, the
//! trees of the named keyspaces, creating and dropping them, and whether a
//! keyspace is readable at a snapshot.
//!
//! The *catalog* is a tree like the others (id [`CATALOG`]): name -> id
//! (`u32 LE`), and [`NEXT_ID`] -> the next id to hand out. Its writes are
//! commits (through the oracle and the log), so a snapshot reads the catalog
//! as of its timestamp. Keyspace 0 is the default one (`Engine::tree`), never
//! in the catalog. Creations and drops take [`Keyspaces::ddl`], one at a
//! time, so their catalog commits never conflict with each other.
//!
//! A keyspace with id `i` created at `c` and dropped at `d`:
//! - is readable at `s` if `s < c` (empty: its tree holds nothing below `c`)
//!   or if the catalog maps its name to `i` at `s` (so `c <= s < d`);
//!   otherwise `Error::KeyspaceNotFound`;
//! - takes a commit only while not dropped: committers hold its
//!   [`KsTree::gate`] shared through their commit and refuse a dropped one;
//!   the drop holds it exclusive through its catalog commit, so every commit
//!   into the keyspace has a timestamp below `d` or fails;
//! - leaves [`Keyspaces::map`] once the GC watermark reaches `d` (no snapshot
//!   below `d` is left, and none at or above reads it); its memory goes
//!   with the last handle.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::commit::Part;
use super::Engine;
use crate::bwtree::{Config, Tree};
use crate::mvcc::counts::Counts;
use crate::mvcc::WriteSet;
use crate::sync::{lock, Arc, AtomicU64, Mutex, Ordering, RwLock};
use crate::{Error, Result};

/// The catalog's tree id (in log records and checkpoint images).
pub(crate) const CATALOG: u32 = u32::MAX;
/// The catalog key holding the next keyspace id (never a valid name: names
/// do not start with a NUL byte).
pub(crate) const NEXT_ID: &[u8] = b"\0next";
/// The default keyspace's name.
pub(crate) const DEFAULT_NAME: &str = "default";

/// One named keyspace (or the catalog): its tree and live-key counts.
pub(crate) struct KsTree {
    pub(crate) id: u32,
    pub(crate) name: Box<str>,
    /// The timestamp of the commit that created it (after a restart, at most
    /// the checkpoint's or the replayed creation's).
    pub(crate) created: u64,
    /// `created` is the creation's own timestamp (a keyspace created in
    /// this run), not a bound recovery chose: nothing was in it below.
    pub(crate) created_here: bool,
    pub(crate) tree: Tree,
    /// Exact live-key counts: commits into this keyspace record their delta
    /// (`mvcc::counts`; a timestamp no commit into it used counts 0).
    pub(crate) counts: Counts,
    /// Shared by committers into the keyspace, exclusive by its drop; `true`
    /// once dropped.
    pub(crate) gate: RwLock<bool>,
}

impl KsTree {
    pub(crate) fn new(id: u32, name: &str, created: u64, tree: Tree, live: u64, level: u64) -> Self {
        KsTree {
            id,
            name: name.into(),
            created,
            created_here: false,
            tree,
            counts: Counts::new(level, live),
            gate: RwLock::new(false),
        }
    }
}

/// The catalog and every keyspace tree not yet collected.
pub(crate) struct Keyspaces {
    pub(crate) catalog: Arc<KsTree>,
    /// Live keyspaces, and dropped ones until the watermark passes the drop.
    pub(crate) map: RwLock<BTreeMap<u32, Arc<KsTree>>>,
    /// `(drop timestamp, id)` of dropped keyspaces still in `map`.
    dropped: Mutex<Vec<(u64, u32)>>,
    /// Versions GC dropped from keyspaces collected since (their trees'
    /// counts, which leave `map` with them): `Stats::versions_collected`
    /// never goes down.
    collected_dropped: AtomicU64,
    /// Creations and drops, one at a time.
    ddl: Mutex<()>,
    /// Held shared by each caller that pauses the evictions of every tree
    /// and then keeps or forgets disk addresses by what those trees name
    /// (a checkpoint's deletions, the chain map's and the value log's
    /// prunes); a new tree joins `map` under it exclusive. So no tree
    /// escapes such a pause: one published after its list of trees was
    /// taken could evict leaves into a segment the deletion does not know
    /// it uses.
    publication: RwLock<()>,
    config: Config,
    /// Run (once) by the next creation between its catalog commit and its
    /// tree's insertion into `map` (tests of that window).
    #[cfg(test)]
    #[allow(clippy::type_complexity)]
    pub(crate) created_hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Keyspaces {
    /// The catalog and keyspaces recovery rebuilt (`trees`; `dropped` are
    /// the `(drop ts, id)` of those among them the log dropped).
    pub(crate) fn new(config: Config, catalog: Arc<KsTree>, trees: Vec<Arc<KsTree>>, dropped: Vec<(u64, u32)>) -> Self {
        Keyspaces {
            catalog,
            map: RwLock::new(trees.into_iter().map(|t| (t.id, t)).collect()),
            dropped: Mutex::new(dropped),
            collected_dropped: AtomicU64::new(0),
            ddl: Mutex::new(()),
            publication: RwLock::new(()),
            config,
            #[cfg(test)]
            created_hook: Mutex::new(None),
        }
    }

    /// Keep new trees out of `map` while the guard lives (see
    /// `Keyspaces::publication`): taken before listing the trees whose
    /// evictions are paused, and dropped after the pause.
    pub(crate) fn hold_publication(&self) -> impl Sized + '_ {
        self.publication.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Every tree but the default one: the catalog and the keyspaces.
    pub(crate) fn trees(&self) -> Vec<Arc<KsTree>> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        std::iter::once(self.catalog.clone())
            .chain(map.values().cloned())
            .collect()
    }

    /// The keyspace with id `id`, if not collected.
    pub(crate) fn by_id(&self, id: u32) -> Option<Arc<KsTree>> {
        self.map.read().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    }

    /// Forget dropped keyspaces whose drop is at or below `wm`.
    pub(crate) fn collect(&self, wm: u64) {
        let mut dropped = lock(&self.dropped);
        if dropped.iter().all(|&(d, _)| d > wm) {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        dropped.retain(|&(d, id)| {
            if d <= wm {
                if let Some(ks) = map.remove(&id) {
                    let n = ks.tree.stats().versions_dropped;
                    self.collected_dropped.fetch_add(n, Ordering::Relaxed);
                }
            }
            d > wm
        });
    }

    /// Versions GC dropped from every keyspace but the default one: the
    /// catalog's, the live ones', and those of keyspaces collected since.
    pub(crate) fn versions_dropped(&self) -> u64 {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let live: u64 = map.values().map(|k| k.tree.stats().versions_dropped).sum();
        live + self.catalog.tree.stats().versions_dropped + self.collected_dropped.load(Ordering::Relaxed)
    }
}

/// A valid keyspace name: 1-64 bytes of `[A-Za-z0-9_.-]`, not starting with
/// `.` or `_` (kept for internal use).
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with(['.', '_'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(
            "a keyspace name is 1-64 bytes of A-Z, a-z, 0-9, '_', '.', '-', not starting with '.' or '_'",
        ))
    }
}

/// Decode a catalog id value.
fn id_of(v: &[u8]) -> Result<u32> {
    let b: [u8; 4] = v.try_into().map_err(|_| Error::Corruption {
        file: "catalog".into(),
        offset: 0,
        reason: "a keyspace id in the catalog is not 4 bytes",
    })?;
    Ok(u32::from_le_bytes(b))
}

impl Engine {
    /// The id the catalog maps `name` to at `ts`.
    fn catalog_id(&self, name: &str, ts: u64) -> Result<Option<u32>> {
        match self.ks.catalog.tree.get(name.as_bytes(), ts)? {
            Some(v) => Ok(Some(id_of(&v)?)),
            None => Ok(None),
        }
    }

    /// Whether keyspace `ks` can be read at snapshot `ts` (module doc).
    ///
    /// Fast path, no catalog read: its gate taken shared (`try_read`) says
    /// not dropped. A drop holds the gate exclusive from before its commit
    /// takes a timestamp until it marks the gate, so then the drop, if any,
    /// takes its timestamp later, above `ts` (already visible).
    pub(crate) fn ks_visible(&self, ks: &KsTree, ts: u64) -> Result<()> {
        if ts < ks.created || ks.gate.try_read().is_ok_and(|dropped| !*dropped) {
            return Ok(());
        }
        let id = self.catalog_id(&ks.name, ts)?;
        // An expired snapshot GC has passed may have lost the drop's
        // tombstone with the entry below it: too old, not "not found".
        self.ks.catalog.tree.check_readable(ts)?;
        if id == Some(ks.id) {
            Ok(())
        } else {
            Err(Error::KeyspaceNotFound {
                name: ks.name.to_string(),
            })
        }
    }

    /// `Snapshot::keyspace`: the keyspace the catalog named `name` at
    /// snapshot `ts` (`None`: the default one); `KeyspaceNotFound` if none
    /// was. No creation: a snapshot writes nothing.
    pub(crate) fn keyspace_at(&self, name: &str, ts: u64) -> Result<Option<Arc<KsTree>>> {
        if name == DEFAULT_NAME {
            return Ok(None);
        }
        check_name(name)?;
        let id = self.catalog_id(name, ts)?;
        // An expired snapshot GC has passed may have lost the entry.
        self.ks.catalog.tree.check_readable(ts)?;
        // A keyspace dropped after `ts` stays in the map while a snapshot
        // at `ts` is registered (it is forgotten only once the GC
        // watermark passes its drop).
        match id {
            None => Err(Error::KeyspaceNotFound { name: name.into() }),
            Some(id) => match self.ks.by_id(id) {
                Some(ks) => Ok(Some(ks)),
                None => {
                    // Created a moment ago: `Engine::keyspace` publishes the
                    // catalog commit, then inserts the tree, under the DDL
                    // mutex. Wait for it, and look again.
                    drop(lock(&self.ks.ddl));
                    self.ks.by_id(id).map(Some).ok_or_else(|| self.unregistered(name))
                }
            },
        }
    }

    /// The error for a keyspace the catalog names but whose tree is not in
    /// the map: a creation whose catalog commit was published although its
    /// log write or sync failed (a commit is published even then, step 6 of
    /// the commit in `design/mvcc.md`), so the database is poisoned:
    /// `Poisoned`, which says
    /// what to do (reopen), not `KeyspaceNotFound` for a name
    /// `Db::keyspaces` lists.
    fn unregistered(&self, name: &str) -> Error {
        match self.check_writable() {
            Err(e) => e,
            Ok(()) => Error::KeyspaceNotFound { name: name.into() },
        }
    }

    /// `Db::keyspace`: the keyspace `name` (`None`: the default one),
    /// created (a catalog commit) if it does not exist.
    pub(crate) fn keyspace(&self, name: &str) -> Result<Option<Arc<KsTree>>> {
        if name == DEFAULT_NAME {
            return Ok(None);
        }
        check_name(name)?;
        let _ddl = lock(&self.ks.ddl);
        let ts = self.read_ts();
        if let Some(id) = self.catalog_id(name, ts)? {
            return self.ks.by_id(id).map(Some).ok_or_else(|| self.unregistered(name));
        }
        let id = match self.ks.catalog.tree.get(NEXT_ID, ts)? {
            Some(v) => id_of(&v)?,
            None => 1,
        };
        if id == CATALOG {
            return Err(Error::InvalidArgument("every keyspace id has been used"));
        }
        // On a page store each tree's records carry its tag (`tree_pages`).
        let tag = super::tree_pages::tag(id).filter(|_| id != CATALOG);
        if self.pages.is_some() && tag.is_none() {
            return Err(Error::InvalidArgument(
                "a database with a page store takes at most 65,534 keyspace ids",
            ));
        }
        let mut w = WriteSet::new();
        w.insert(
            Bytes::copy_from_slice(name.as_bytes()),
            Some(Bytes::copy_from_slice(&id.to_le_bytes())),
        );
        w.insert(
            Bytes::from_static(NEXT_ID),
            Some(Bytes::copy_from_slice(&(id + 1).to_le_bytes())),
        );
        let c = self.commit_parts(ts, &mut [Part::of(&self.ks.catalog, &w, None)])?;
        #[cfg(test)]
        if let Some(hook) = lock(&self.ks.created_hook).take() {
            hook();
        }
        let mut tree = Tree::with_config(self.ks.config.clone())?;
        if let (Some(pages), Some(tag)) = (&self.pages, tag) {
            tree.set_page_io(super::tree_pages::TreePages::boxed(pages, tag));
        }
        // The test hook's setting, held until the tree is published
        // (`Engine::force_read_through`).
        let forced = lock(&self.read_through);
        tree.force_read_through(*forced);
        let ks = Arc::new(KsTree {
            created_here: true,
            ..KsTree::new(id, name, c, tree, 0, c)
        });
        // Not while a pause of every tree's evictions holds
        // (`Keyspaces::publication`).
        let published = self.ks.publication.write().unwrap_or_else(|e| e.into_inner());
        self.ks
            .map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, ks.clone());
        drop(published);
        drop(forced);
        Ok(Some(ks))
    }

    /// `Db::drop_keyspace`.
    pub(crate) fn drop_keyspace(&self, name: &str) -> Result<()> {
        if name == DEFAULT_NAME {
            return Err(Error::InvalidArgument("the default keyspace cannot be dropped"));
        }
        check_name(name)?;
        let _ddl = lock(&self.ks.ddl);
        let ts = self.read_ts();
        let not_found = || Error::KeyspaceNotFound { name: name.into() };
        let id = self.catalog_id(name, ts)?.ok_or_else(not_found)?;
        let ks = self.ks.by_id(id).ok_or_else(not_found)?;
        let mut gate = ks.gate.write().unwrap_or_else(|e| e.into_inner());
        let mut w = WriteSet::new();
        w.insert(Bytes::copy_from_slice(name.as_bytes()), None);
        let r = self.commit_parts(ts, &mut [Part::of(&self.ks.catalog, &w, None)]);
        // A commit whose log write or sync failed is published anyway (and
        // the database poisoned): the catalog no longer names the keyspace,
        // so the gate is marked too, or a snapshot's fast path would read a
        // keyspace `Db::keyspaces` omits (before 2026-12-08 it did). One
        // refused before it was published changed nothing.
        if r.is_err() && self.catalog_id(name, self.read_ts()).ok().flatten().is_some() {
            return r.map(drop);
        }
        *gate = true;
        lock(&self.ks.dropped).push((r?, id));
        Ok(())
    }

    /// `Db::keyspaces`: the live names (and "default"), sorted.
    pub(crate) fn keyspace_names(&self) -> Result<Vec<String>> {
        // A registered snapshot: GC must not drop a drop's tombstone (with
        // the name it hid) under the walk, which would list a set of names
        // that never existed at once. Held, so that `max_snapshot_age`
        // never expires it mid-walk (before 2026-12-08 it could).
        let pin = self.registry.pin_held(&self.oracle);
        let ts = pin.ts();
        let mut names = vec![DEFAULT_NAME.to_string()];
        for kv in self.ks.catalog.tree.range::<&[u8], _>(.., ts) {
            let (k, _) = kv?;
            if &k[..] != NEXT_ID {
                names.push(String::from_utf8_lossy(&k).into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The keyspaces the catalog lists at `ts` (a pinned snapshot), by id:
    /// what a key-value checkpoint image at `ts` holds besides the catalog
    /// and the default keyspace. A reserved id, or one id for two names, is
    /// `Corruption` here, before a checkpoint writes anything the next open
    /// would refuse (before 2026-12-08 the table was written).
    pub(crate) fn image_at(&self, ts: u64) -> Result<Vec<Arc<KsTree>>> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for kv in self.ks.catalog.tree.range::<&[u8], _>(.., ts) {
            let (k, v) = kv?;
            if &k[..] == NEXT_ID {
                continue;
            }
            let id = id_of(&v)?;
            if id == 0 || id == CATALOG || !seen.insert(id) {
                return Err(Error::Corruption {
                    file: self.store.as_ref().map(|s| s.dir().to_path_buf()).unwrap_or_default(),
                    offset: 0,
                    reason: "the catalog names a keyspace id that is reserved or taken",
                });
            }
            // A keyspace missing from the map was created a moment ago
            // (`Engine::keyspace` inserts its tree after the catalog
            // commit) and nobody has its handle yet: it is empty, and its
            // catalog entry alone restores it. (A dropped one leaves the map
            // only once the watermark passes its drop, above this pinned
            // snapshot.)
            if let Some(ks) = self.ks.by_id(id) {
                out.push(ks);
            }
        }
        out.sort_by_key(|k| k.id);
        Ok(out)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::{Part, CATALOG};
    use crate::mvcc::WriteSet;
    use crate::sync::lock;

    /// A database whose catalog maps a name to `id`, written straight into
    /// the catalog tree (no public path writes one): `x` (id 1) and then
    /// `y` -> `id`, in `Durability::Sync`. Checkpointed (`checkpoint`: the
    /// catalog is in the table, unless the checkpoint refused its ids) or
    /// not (the open replays the catalog from the log), then cut off by a
    /// power loss before the close's table.
    fn catalog_with(fs: &crate::fs::FaultFs, id: u32, checkpoint: bool) {
        let db = crate::Options::new()
            .cache_size(1 << 20)
            .file_system(std::sync::Arc::new(fs.clone()))
            .open("/db")
            .unwrap();
        let x = db.keyspace("x").unwrap();
        let mut tx = db.begin();
        tx.put_in(&x, "k", "v").unwrap();
        tx.commit().unwrap();
        let engine = db.engine();
        let mut w = WriteSet::new();
        w.insert(
            Bytes::from_static(b"y"),
            Some(Bytes::copy_from_slice(&id.to_le_bytes())),
        );
        let parts = &mut [Part::of(&engine.ks.catalog, &w, None)];
        engine.commit_parts(engine.read_ts(), parts).unwrap();
        if checkpoint {
            match db.checkpoint() {
                // A reserved or taken id: refused before a table is written.
                Err(crate::Error::Corruption { reason, .. }) => {
                    assert!(reason.contains("reserved or taken"), "{reason}")
                }
                r => assert!(r.is_ok() && id == 2, "id {id}: {r:?}"),
            }
        }
        // No close either (it would write a table): the power fails at its
        // first sync, and the open reads the table and replays the log.
        fs.crash_at_sync(fs.syncs());
        drop(db);
        fs.power_loss();
    }

    /// An id the catalog may not name (the default keyspace's, the
    /// catalog's own, or one another name has) would give a keyspace
    /// another's tree: the open refuses it as corruption, from the log
    /// and from a checkpoint's table.
    #[test]
    fn an_open_refuses_a_catalog_id_that_is_reserved_or_taken() {
        // (id, checkpointed, the refusal's reason or `None`: it opens).
        // A checkpoint refuses the bad ids (`catalog_with`), so the open
        // replays them from the log and refuses them there.
        for (id, checkpoint, refused) in [
            (0, false, Some("reserved")),
            (CATALOG, false, Some("reserved")),
            (1, false, Some("taken by another name")),
            (0, true, Some("reserved")),
            (CATALOG, true, Some("reserved")),
            (1, true, Some("taken by another name")),
            (2, false, None),
            (2, true, None),
        ] {
            let fs = crate::fs::FaultFs::new();
            catalog_with(&fs, id, checkpoint);
            let db = crate::Options::new()
                .cache_size(1 << 20)
                .file_system(std::sync::Arc::new(fs.clone()))
                .open("/db");
            let case = format!("id {id}, checkpointed {checkpoint}");
            match (db, refused) {
                (Err(crate::Error::Corruption { reason, .. }), Some(why)) => {
                    assert!(reason.contains(why), "{case}: {reason}")
                }
                (Ok(db), None) => {
                    let snapshot = db.snapshot();
                    let y = snapshot.keyspace("y").unwrap();
                    assert_eq!(snapshot.get_in(&y, "k").unwrap(), None, "{case}");
                }
                (other, _) => panic!("{case}: {:?}", other.map(|_| ())),
            }
        }
    }

    /// A snapshot that sees a keyspace's creation opens it, also in the
    /// moment between the catalog commit and the tree's insertion (before,
    /// `KeyspaceNotFound` there, for a name `Db::keyspaces` listed). The
    /// hook runs in that moment and gives a second thread 100 ms to ask;
    /// one that is not scheduled in time asks after it (no false failure).
    #[test]
    fn a_keyspace_just_created_opens_in_a_snapshot_that_sees_it() {
        let db = crate::Db::in_memory();
        let (tx, rx) = std::sync::mpsc::channel();
        let asker = {
            let db = db.clone();
            std::thread::spawn(move || {
                rx.recv().unwrap();
                let listed = db.keyspaces().unwrap().contains(&"x".to_string());
                (listed, db.snapshot().keyspace("x").map(|_| ()))
            })
        };
        *lock(&db.engine().ks.created_hook) = Some(Box::new(move || {
            tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }));
        db.keyspace("x").unwrap();
        let (listed, opened) = asker.join().unwrap();
        assert!(listed, "the catalog commit was published");
        assert!(opened.is_ok(), "{opened:?}");
    }
}
