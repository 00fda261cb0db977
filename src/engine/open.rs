//! Opening a database directory (`design/storage.md` §7,
//! `design/durability.md`): lock it, read the newest checkpoint, build the
//! tree (from a location table: every leaf evicted, no page read; else
//! empty), then let the log's recovery replay into it.
//!
//! A database gets the page store ([`PageFile`]) with `Options::cache_size`,
//! or when its newest checkpoint is a location table (then with no cache
//! limit unless one is set): its checkpoints are location tables from then
//! on. A version-1 checkpoint (a key-value image) is replayed as before; the
//! next checkpoint of a paged database writes version 2.
//!
//! A location table lists every tree (`super::tree_pages`): the default
//! keyspace's first, each keyspace the catalog held at its timestamp, the
//! catalog last (a table of an older version lists the default tree alone).
//! Each is restored with its own `PageIo`; the keyspaces take their names
//! from the restored catalog at the table's timestamp, and one the catalog
//! names but the table does not list (created just before, and empty) gets
//! an empty tree. The replay after a table is idempotent in every tree.

use std::path::Path;

use bytes::Bytes;

use super::keyspaces::{Keyspaces, KsTree, CATALOG, NEXT_ID};
use super::pages::PageFile;
use super::tree_pages::{tag, TreePages, CATALOG_TAG};
use crate::bwtree::Tree;
use crate::options::Options;
use crate::pagestore::record::NO_ADDR;
use crate::pagestore::table;
use crate::sync::{Arc, AtomicU64, Ordering};
use crate::wal::recovery::{self, Replay, Start};
use crate::wal::store::Store;
use crate::{Error, Result};

/// What opening a directory assembled.
pub(crate) struct Opened {
    pub(crate) tree: Tree,
    pub(crate) store: Store,
    pub(crate) pages: Option<Arc<PageFile>>,
    /// Log versions recovery found in page images already (not installed
    /// again).
    pub(crate) replay_skipped: u64,
    /// The oldest timestamp `Db::snapshot_at` can read (`design/mvcc.md`
    /// §11, "Restart").
    pub(crate) oldest: u64,
    /// The horizon's samples of an earlier run (`crate::wal::hist`).
    pub(crate) samples: Vec<(u64, u64)>,
    /// Live keys at every timestamp from `oldest` on (`mvcc::counts`'s
    /// history).
    pub(crate) counts: Vec<(u64, u64)>,
    /// The catalog and the keyspaces recovery rebuilt.
    pub(crate) keyspaces: Keyspaces,
}

/// A named keyspace as recovery rebuilds it.
struct Rebuilt {
    name: String,
    created: u64,
    tree: Tree,
    live: i64,
}

/// Recovery's replay into the tree. After a location table it is
/// idempotent: a version whose key already holds it (or a newer one, in a
/// page image flushed after the table's timestamp) is not installed again.
///
/// It also counts live keys (`mvcc::counts`): each replayed write adds
/// whether it leaves its key live minus whether the key was live just
/// before it (`get` at `ts - 1`). That is exact on both paths: without a
/// table the tree holds exactly the commits replayed so far; after one,
/// every image it lists was built with the GC watermark at or below the
/// table's timestamp `C` (the checkpoint pins a snapshot at `C`), so the
/// tree holds every version above `C` and the newest at or below it.
///
/// The counts go into a history, `(ts, live)` wherever the count changed,
/// so that time travel after the restart counts exactly too.
///
/// Writes name their keyspace (`design/keyspaces.md`): the catalog's
/// (`CATALOG`) create a keyspace's tree (a name -> id entry) or drop it (a
/// tombstone); they come before any write to the keyspace they create.
struct Replayer<'a> {
    tree: &'a Tree,
    idempotent: bool,
    skipped: AtomicU64,
    live: std::cell::Cell<i64>,
    history: std::cell::RefCell<Vec<(u64, u64)>>,
    opts: &'a Options,
    dir: &'a Path,
    catalog: Tree,
    /// The page store every rebuilt tree pages to, if any.
    pages: Option<&'a Arc<PageFile>>,
    others: std::cell::RefCell<std::collections::BTreeMap<u32, Rebuilt>>,
    /// `(drop ts, id)` of the keyspaces the replayed log dropped.
    dropped: std::cell::RefCell<Vec<(u64, u32)>>,
    /// A page segment holds a record ([`Replay::wrote_pages`]).
    page_records: bool,
}

/// Every leaf a location table lists lies inside a page segment that is
/// there: one lost or cut short (or a newest one zeroed, removed as torn,
/// whose number this run reuses) is `Error::Corruption` at open, naming
/// it, rather than at the first fault-in of such a leaf, which would name
/// this run's file of the same number. One pass over the table's leaves
/// (no page is read).
fn check_leaf_addrs(dir: &Path, pages: &PageFile, trees: &[table::TreeTable], pages_head: u64) -> Result<()> {
    use crate::pagestore::record::{addr_offset, addr_seq, Kind, SEGMENT_HEADER_LEN};
    let ends: std::collections::HashMap<u64, u64> = pages.store.segments().iter().map(|s| (s.seq, s.bytes)).collect();
    for addr in trees.iter().flat_map(|t| t.leaves.iter().map(|l| l.addr)) {
        let (seq, offset) = (addr_seq(addr), addr_offset(addr));
        // Below the table's head too: the open deletes the segments after
        // the head's (`PageFile::delete_unpublished`), and every image a
        // table lists was appended before its head was taken.
        let inside = addr < pages_head
            && ends
                .get(&seq)
                .is_some_and(|&end| offset >= SEGMENT_HEADER_LEN as u64 && offset < end);
        if !inside {
            return Err(Error::Corruption {
                file: dir.join(crate::pagestore::segment::name(Kind::Pages, seq)),
                offset,
                reason: "the location table lists a page in a segment that is missing or shorter, or past its head",
            });
        }
    }
    Ok(())
}

/// An empty tree for keyspace `id` (or the catalog), paging to `pages`.
fn new_tree(opts: &Options, pages: Option<&Arc<PageFile>>, id: u32) -> Result<Tree> {
    let mut tree = Tree::with_config(opts.tree.clone())?;
    if let Some(pages) = pages {
        let tag = tag(id).ok_or(Error::InvalidArgument(
            "this database has a keyspace id above 65,534: open it without cache_size",
        ))?;
        tree.set_page_io(TreePages::boxed(pages, tag));
    }
    Ok(tree)
}

impl Replayer<'_> {
    fn corrupt(&self, reason: &'static str) -> Error {
        Error::Corruption {
            file: self.dir.to_path_buf(),
            offset: 0,
            reason,
        }
    }

    /// A catalog write: create or drop a keyspace, then install it.
    fn replay_catalog(&self, key: Bytes, ts: u64, value: Option<Bytes>) -> Result<()> {
        let id_of = |v: &[u8]| -> Result<u32> {
            Ok(u32::from_le_bytes(v.try_into().map_err(|_| {
                self.corrupt("a keyspace id in the catalog is not 4 bytes")
            })?))
        };
        if &key[..] != NEXT_ID {
            match &value {
                Some(v) => {
                    let id = id_of(v)?;
                    if id == 0 || id == CATALOG {
                        return Err(self.corrupt("a keyspace id in the catalog is reserved"));
                    }
                    let name =
                        String::from_utf8(key.to_vec()).map_err(|_| self.corrupt("a keyspace name is not UTF-8"))?;
                    // Replayed again over a table that holds it: the same
                    // name. Another name would share the keyspace's tree
                    // (ids are never reused, not even after a drop).
                    if self.others.borrow().get(&id).is_some_and(|r| r.name != name) {
                        return Err(self.corrupt("a keyspace id in the catalog is taken by another name"));
                    }
                    if !self.others.borrow().contains_key(&id) {
                        let tree = new_tree(self.opts, self.pages, id)?;
                        self.others.borrow_mut().insert(
                            id,
                            Rebuilt {
                                name,
                                created: ts,
                                tree,
                                live: 0,
                            },
                        );
                    }
                }
                None => {
                    if let Some(v) = self.catalog.get(&key, ts - 1)? {
                        self.dropped.borrow_mut().push((ts, id_of(&v)?));
                    }
                }
            }
        }
        if self.idempotent && self.catalog.newest_ts(&key)?.is_some_and(|newest| newest >= ts) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.catalog.install(key, ts, value)
    }

    /// Install one replayed version into `tree`, counting its effect on
    /// `live` (after a table, only if the tree does not hold it already).
    fn count_and_install(&self, tree: &Tree, live: &mut i64, key: Bytes, ts: u64, value: Option<Bytes>) -> Result<()> {
        let was = tree.get(&key, ts - 1)?.is_some();
        *live += i64::from(value.is_some()) - i64::from(was);
        if self.idempotent && tree.newest_ts(&key)?.is_some_and(|newest| newest >= ts) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        tree.install(key, ts, value)
    }
}

impl Replay for Replayer<'_> {
    fn wrote_pages(&self) -> bool {
        self.page_records
    }

    fn replay(&self, t: u32, key: Bytes, ts: u64, value: Option<Bytes>) -> Result<()> {
        if t == CATALOG {
            return self.replay_catalog(key, ts, value);
        }
        if t != 0 {
            let mut others = self.others.borrow_mut();
            let Some(r) = others.get_mut(&t) else {
                return Err(self.corrupt("a logged write names a keyspace the catalog does not hold"));
            };
            return self.count_and_install(&r.tree, &mut r.live, key, ts, value);
        }
        let was = self.tree.get(&key, ts - 1)?.is_some();
        let live = self.live.get() + i64::from(value.is_some()) - i64::from(was);
        self.live.set(live);
        let live = u64::try_from(live).unwrap_or(0);
        let mut h = self.history.borrow_mut();
        match h.last_mut() {
            Some(e) if e.0 == ts => e.1 = live,
            Some(e) if e.1 == live => {}
            _ => h.push((ts, live)),
        }
        drop(h);
        if self.idempotent && self.tree.newest_ts(&key)?.is_some_and(|newest| newest >= ts) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.tree.install(key, ts, value)
    }

    fn fetch(&self, t: u32, key: &[u8], ts: u64, addr: u64, len: u32, unsynced: bool) -> Result<Option<Bytes>> {
        let Some(pages) = self.pages else {
            return Err(self.corrupt("a log record references a value log this database does not have"));
        };
        let tree = tag(t).ok_or_else(|| self.corrupt("a log record references a value of an unpaged keyspace"))?;
        pages.vlog.fetch_logged(tree, key, ts, addr, len, unsynced)
    }

    fn note_ref(&self, t: u32, key: &[u8], ts: u64, addr: u64, replayed: bool) {
        let Some(pages) = self.pages else { return };
        match tag(t).filter(|_| replayed) {
            Some(tree) => pages.vlog.note_replayed(tree, key, ts, addr),
            None => pages.vlog.note_logged(addr, ts),
        }
    }
}

/// Open (lock, load, recover) the database in `dir`.
pub(crate) fn open_dir(opts: &Options, dir: &Path) -> Result<Opened> {
    let fs = opts.fs.clone();
    let lock = Store::lock(&*fs, dir)?;
    let newest = recovery::newest(&*fs, dir)?;
    let is_table = newest.as_ref().is_some_and(|n| n.version() == Some(table::VERSION));
    let durable = Arc::new(AtomicU64::new(0));
    // A page store's directory without a table yet (a crash before its
    // first checkpoint) may have a log referencing its value log.
    let has_vlog = fs
        .list(dir)
        .map_err(Error::Io)?
        .iter()
        .any(|n| n.starts_with("vlog-") && n.ends_with(".seg"));
    let pages = if opts.cache_size.is_some() || is_table || has_vlog {
        Some(Arc::new(PageFile::open(
            fs.clone(),
            dir,
            opts.segment_bytes,
            durable.clone(),
            opts.value_log_threshold,
        )?))
    } else {
        None
    };
    // With a retention window, history files say how far back a location
    // table serves, and how time went in earlier runs.
    let table_ts = newest.as_ref().filter(|_| is_table).map(|n| n.ts);
    let (samples, hist) = Store::read_hist(&*fs, dir, table_ts)?;
    let hist = hist.filter(|h| !opts.history_retention.is_zero() && !h.counts.is_empty());
    // The value log's and page store's heads of the table opened from
    // (none: no table).
    let mut heads = (NO_ADDR, NO_ADDR);
    let (tree, start, live, mut listed) = match (newest, &pages) {
        (Some(n), Some(pages)) if is_table => {
            let corrupt = |(offset, reason)| Error::Corruption {
                file: dir.join(&n.name),
                offset,
                reason,
            };
            // The fences the tree keeps are slices of this buffer (no copy
            // per leaf); it lives as long as any of them does.
            let bytes = Bytes::from(n.bytes);
            let t = table::decode(&bytes).map_err(corrupt)?;
            if t.ts != n.ts {
                return Err(corrupt((16, "location table timestamp differs from its name")));
            }
            if t.ts > crate::wal::record::MAX_TS {
                return Err(corrupt((16, "location table timestamp out of range")));
            }
            let table::Table {
                ts,
                trees,
                vlog_head,
                pages_head,
            } = t;
            if trees.first().is_none_or(|t0| t0.tree != 0) {
                return Err(corrupt((
                    20,
                    "location table does not list the default keyspace's tree",
                )));
            }
            check_leaf_addrs(dir, pages, &trees, pages_head)?;
            // The heads are the stores' ends when the table was written
            // (never `NO_ADDR`); the open deletes what lies past them, so a
            // wrong one in a table that passed its crc would delete what
            // the table lists.
            if vlog_head == NO_ADDR || pages_head == NO_ADDR {
                return Err(corrupt((0, "location table's head is not an address")));
            }
            pages.vlog.set_published_head(vlog_head);
            heads = (vlog_head, pages_head);
            pages
                .clean
                .set_table(trees.iter().flat_map(|tt| tt.leaves.iter().map(|l| l.addr)).collect());
            // Leaves moved out of the table, not cloned.
            let mut restored = trees.into_iter().map(|tt| {
                let leaves: Vec<_> = tt.leaves.into_iter().map(|l| (l.pid, l.addr, l.low)).collect();
                Tree::restore(
                    opts.tree.clone(),
                    TreePages::boxed(pages, tt.tree),
                    &leaves,
                    tt.pid_high,
                )
                .map(|tree| (tt.tree, tree, tt.live))
                .map_err(|reason| corrupt((24, reason)))
            });
            let (_, tree, live0) = restored.next().expect("checked: the table lists tree 0")?;
            let mut listed = std::collections::BTreeMap::new();
            for r in restored {
                let (id, tree, live) = r?;
                listed.insert(id, (tree, live));
            }
            (tree, Start::Table(ts), live0, listed)
        }
        (newest, _) => {
            let mut tree = Tree::with_config(opts.tree.clone())?;
            if let Some(pages) = &pages {
                tree.set_page_io(TreePages::boxed(pages, 0));
            }
            (tree, newest.map_or(Start::Empty, Start::Image), 0, Default::default())
        }
    };
    let catalog = match listed.remove(&CATALOG_TAG) {
        Some((t, _)) => t,
        None => new_tree(opts, pages.as_ref(), CATALOG)?,
    };
    // The keyspaces the catalog held at the table's timestamp: restored
    // from the table, or empty if it does not list them.
    let mut others = std::collections::BTreeMap::new();
    if let (Start::Table(c), Some(pages)) = (&start, &pages) {
        for kv in catalog.range::<&[u8], _>(.., *c) {
            let (k, v) = kv?;
            if &k[..] == NEXT_ID {
                continue;
            }
            let bad = |reason| Error::Corruption {
                file: dir.to_path_buf(),
                offset: 0,
                reason,
            };
            let id = u32::from_le_bytes(
                v[..]
                    .try_into()
                    .map_err(|_| bad("a keyspace id in the catalog is not 4 bytes"))?,
            );
            let name = String::from_utf8(k.to_vec()).map_err(|_| bad("a keyspace name is not UTF-8"))?;
            // As the catalog's replay checks them: the default keyspace's
            // id, the catalog's own, or one id for two names would give a
            // keyspace another's tree (or an empty one in its place).
            if id == 0 || id == CATALOG || others.contains_key(&id) {
                return Err(bad("the catalog names a keyspace id that is reserved or taken"));
            }
            let (tree, live) = match tag(id).and_then(|t| listed.remove(&t)) {
                Some(r) => r,
                None => (new_tree(opts, Some(pages), id)?, 0),
            };
            let live = i64::try_from(live).unwrap_or(i64::MAX);
            others.insert(
                id,
                Rebuilt {
                    name,
                    created: *c,
                    tree,
                    live,
                },
            );
        }
    }
    if !listed.is_empty() {
        return Err(Error::Corruption {
            file: dir.to_path_buf(),
            offset: 0,
            reason: "the location table lists a tree its catalog does not name",
        });
    }
    // Counts from the table's history file (from its oldest timestamp to
    // its own), else from the checkpoint recovered from.
    let (mut oldest, counts) = match (&start, hist) {
        (Start::Table(c), Some(h)) if h.ts == *c => (h.oldest, h.counts),
        (Start::Table(c), _) => (*c, vec![(*c, live)]),
        _ => (0, Vec::new()),
    };
    let replayer = Replayer {
        tree: &tree,
        idempotent: matches!(start, Start::Table(_)),
        skipped: AtomicU64::new(0),
        live: std::cell::Cell::new(live as i64),
        history: std::cell::RefCell::new(counts),
        opts,
        dir,
        catalog,
        pages: pages.as_ref(),
        others: std::cell::RefCell::new(others),
        dropped: Default::default(),
        // Page images are written only after the run's log segment is
        // created (`design/durability.md` §7, "Missing files").
        page_records: pages.as_ref().is_some_and(|p| {
            p.store
                .segments()
                .iter()
                .any(|s| s.bytes > crate::pagestore::record::SEGMENT_HEADER_LEN as u64)
        }),
    };
    let store = Store::open(
        fs,
        dir,
        lock,
        opts.durability,
        opts.segment_bytes,
        opts.checkpoint_bytes,
        &replayer,
        start,
        !opts.history_retention.is_zero(),
        durable,
        pages.as_ref().map(|p| {
            // Values placed at commit are synced before the log records
            // that reference them (`design/storage.md` §10.1).
            let p = p.clone();
            Box::new(move || p.vlog.sync_logged()) as crate::wal::writer::BeforeSync
        }),
    )?;
    if let Some(pages) = &pages {
        // Recovery succeeded from the table (or from no table: then no
        // image is published, nor any value): the segments runs that
        // crashed after it wrote are unreferenced (`design/storage.md` §7).
        // Not before: a damaged newest checkpoint must fail the open with
        // every segment still there.
        pages.delete_unpublished(heads.0, heads.1)?;
    }
    let replay_skipped = replayer.skipped.load(Ordering::Relaxed);
    let mut counts = replayer.history.into_inner();
    if !is_table {
        // No history below the checkpoint recovered from (the image holds
        // only the newest versions): its count is the last one at or below it.
        oldest = store.recovered().checkpoint_ts;
        let below = counts.partition_point(|e| e.0 <= oldest);
        let at = below.checked_sub(1).map_or(0, |i| counts[i].1);
        counts.splice(..below, [(oldest, at)]);
    }
    let last = store.recovered().last_ts;
    let dropped = replayer.dropped.into_inner();
    let trees: Vec<Arc<KsTree>> = replayer
        .others
        .into_inner()
        .into_iter()
        .map(|(id, r)| {
            let live = u64::try_from(r.live).unwrap_or(0);
            let ks = KsTree::new(id, &r.name, r.created, r.tree, live, last);
            if dropped.iter().any(|d| d.1 == id) {
                *ks.gate.write().unwrap_or_else(|e| e.into_inner()) = true;
            }
            Arc::new(ks)
        })
        .collect();
    let catalog = Arc::new(KsTree::new(CATALOG, "catalog", 0, replayer.catalog, 0, last));
    Ok(Opened {
        tree,
        store,
        pages,
        replay_skipped,
        oldest,
        samples,
        counts,
        keyspaces: Keyspaces::new(opts.tree.clone(), catalog, trees, dropped),
    })
}
