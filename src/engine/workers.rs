//! The background threads of an [`Engine`]: the GC sweeper (`super::gc`),
//! with `Options::cache_size` the evictor (which also prunes the page
//! file's chain map, [`Engine::prune_page_maps`]) and, for a database on
//! disk, the log thread, which takes the automatic checkpoints the log asks
//! for and runs the page segments' cleaner (`super::clean`), and in
//! buffered mode the sync thread, which syncs the log at its interval and
//! does nothing else: a checkpoint or a cleaning pass takes seconds at a
//! large cache (4-10 s measured at 20M keys and a 256 MiB cache), and a
//! power loss may lose only the commits of the last interval.
//!
//! Each thread holds only a weak reference, upgraded while it works, and
//! exits once [`Engine::stop_workers`] sets `closing` (the last `Db` handle
//! calls it) or the engine is gone. Under loom there are no threads.

#[cfg(not(loom))]
use std::sync::Weak;
#[cfg(not(loom))]
use std::time::Duration;

use super::Engine;
use crate::sync::{lock, Arc, Ordering};
use crate::Result;

/// Start the background threads `engine` needs: a sweeper every
/// `gc_interval` (if any), the evictor with a cache budget, the sync thread
/// for a buffered log, and the log thread if its store asks for one.
pub(crate) fn start(engine: &Arc<Engine>, gc_interval: Option<std::time::Duration>) -> Result<()> {
    #[cfg(not(loom))]
    {
        if let Some(interval) = gc_interval {
            let t = super::gc::spawn_sweeper(Arc::downgrade(engine), interval).map_err(crate::Error::Io)?;
            lock(&engine.workers).push(t);
        }
        if let Some(budget) = engine.cache_size {
            let t = spawn_evictor(Arc::downgrade(engine), budget).map_err(crate::Error::Io)?;
            // The path that pushes the resident bytes past the budget wakes it.
            let thread = t.thread().clone();
            engine.tree.wake_past(budget, Box::new(move || thread.unpark()));
            lock(&engine.workers).push(t);
        }
        if let Some(interval) = engine.store.as_ref().and_then(|s| s.sync_interval()) {
            let t = spawn_syncer(Arc::downgrade(engine), interval).map_err(crate::Error::Io)?;
            lock(&engine.workers).push(t);
        }
        if let Some(tick) = engine.store.as_ref().and_then(|s| s.tick()) {
            let t = spawn_logger(Arc::downgrade(engine), tick).map_err(crate::Error::Io)?;
            lock(&engine.workers).push(t);
        }
    }
    #[cfg(loom)]
    let _ = (engine, gc_interval);
    Ok(())
}

impl Engine {
    /// Whether the database is closing (background threads exit).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Stop the background threads and wait for them: they hold the engine
    /// only while working, so once they are gone the handles are its only
    /// owners, and dropping the last one closes the database (syncs the log,
    /// releases the directory lock) at once.
    pub(crate) fn stop_workers(&self) {
        self.closing.store(true, Ordering::Release);
        let workers = std::mem::take(&mut *lock(&self.workers));
        for w in &workers {
            w.thread().unpark();
        }
        for w in workers {
            let _ = w.join();
        }
        // No sync thread any more, but transactions still open may commit,
        // and a change reader may wait for them to be synced: buffered
        // commits sync themselves from now on, and what was written is
        // synced now (before 2026-12-08 both waited for the engine to
        // close, which such a reader put off forever). A failure poisons
        // the log, as the sync thread's would.
        if let Some(store) = self.store.as_ref().filter(|s| s.sync_interval().is_some()) {
            let _ = store.sync_commits_from_now();
        }
    }
}

impl Engine {
    /// Prune the page file's chain and record-length maps if they have
    /// grown by a quarter since the last prune (`PageFile::prune_chains`): with
    /// evictions held off and no checkpoint running (else nothing now),
    /// keep the heads the mapping tables name. Each page write adds an
    /// entry; without this the maps grew by about 100 bytes per write until
    /// the next checkpoint (12 MB in a 30 s YCSB A run at 2M keys).
    /// The evictor thread calls it after each round.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn prune_page_maps(&self) {
        let Some(pages) = &self.pages else { return };
        if !pages.chains_want_prune() {
            return;
        }
        let Some(_cycle) = pages.vlog.try_checkpoint_cycle() else {
            return;
        };
        self.prune_page_maps_held();
    }

    /// The prune of [`Engine::prune_page_maps`] for a caller that holds the
    /// value log's checkpoint cycle (so no cleaner or other checkpoint
    /// runs), whatever the map's growth. A checkpoint calls it before its
    /// flushes, and between the batches of its phase 1 flushes whenever the
    /// map grew by a quarter (no flush of its own in flight, no leaf listed
    /// yet: `Engine::checkpoint`). Without those prunes a checkpoint's
    /// flushes, an entry per dirty page, came on top of the map's entries,
    /// and its table doubled at each checkpoint (to 63 MB at 5M keys).
    pub(crate) fn prune_page_maps_held(&self) {
        let Some(pages) = &self.pages else { return };
        // No tree joins the map until the pause ends: it would escape it.
        let _publication = self.ks.hold_publication();
        let others = self.other_trees();
        let _paused: Vec<_> = self.each_tree(&others).map(|(_, t)| t.pause_evictions()).collect();
        let current: super::chain_parts::AddrSet = self.each_tree(&others).flat_map(|(_, t)| t.disk_addrs()).collect();
        pages.prune_chains(&current);
    }
}

/// How often the evictor looks at the resident bytes unwoken (a backstop:
/// the add that passes the budget wakes it, `bwtree/resident.rs`).
#[cfg(not(loom))]
const EVICT_TICK: Duration = Duration::from_millis(50);

/// The evictor of a database with `Options::cache_size`: woken when the
/// default tree's resident bytes pass the budget, or every [`EVICT_TICK`]
/// (the budget spans every tree: `super::tree_pages`), it runs the clock of
/// each tree if their resident bytes together are above the budget and
/// evicts down to 7/8 of it, each tree its share (`Engine::evict_trees`),
/// in batches, then runs the epoch collector while more than a sixteenth of
/// the budget is retired and not yet freed (`Engine::reclaim`), and at most
/// every [`TRIM_EVERY`] gives the allocator's free memory back to the system
/// (`bwtree::trim_allocator`), and every [`KEY_SET_PASS`] makes an aging
/// pass over cold leaves' key sets; it is woken at most once per round (it re-arms the
/// wake before it sleeps; no page-segment sync: a checkpoint syncs before it
/// publishes an address).
#[cfg(not(loom))]
fn spawn_evictor(engine: Weak<Engine>, budget: u64) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("bwtx-evict".into()).spawn(move || {
        let mut last_trim = std::time::Instant::now();
        let mut last_aging = last_trim;
        // The resident bytes at the last trim: unchanged, nothing to give back.
        let mut trimmed_at = 0;
        loop {
            std::thread::park_timeout(EVICT_TICK);
            let Some(engine) = engine.upgrade() else { return };
            if engine.closing() {
                return;
            }
            engine.note_pressure(budget);
            if engine.resident_all() > budget && engine.pages.as_ref().is_some_and(|p| p.check().is_ok()) {
                // A failed write or sync poisons the page store (commits report
                // it); the evictor then stops trying.
                engine.before_evict();
                let _ = engine.evict_trees(budget - budget / 8, 16);
                engine.prune_value_refs();
                engine.prune_page_maps();
            }
            // The chains just evicted, and whatever else piled up, freed
            // as their grace periods end (`bwtree/resident.rs`).
            engine.reclaim(budget);
            // The freed memory back to the system (see `trim_allocator`),
            // at most every TRIM_EVERY, and only if the pages changed since
            // the last trim (loads, evictions, consolidations free memory; an
            // idle database frees none).
            let resident = engine.resident_all();
            if last_trim.elapsed() >= TRIM_EVERY && resident != trimmed_at {
                crate::bwtree::trim_allocator();
                last_trim = std::time::Instant::now();
                trimmed_at = resident;
            }
            // Key sets of cold leaves no write used for three passes go
            // (KS1 in `bwtree::paging`).
            if last_aging.elapsed() >= KEY_SET_PASS {
                engine.age_key_sets();
                last_aging = std::time::Instant::now();
            }
            // Armed before the park: a wake from now on is not lost (an
            // unpark before the park makes the park return at once).
            engine.tree.arm_wake();
        }
    })
}

/// How often the evictor makes an aging pass over cold leaves' key sets
/// (KS1 in `bwtree::paging`): a leaf's set goes after three passes without
/// a write, 6-8 s. Under uniform updates at 5M keys each leaf is written
/// about every 2 s, so few sets are read back; a load's sets are gone a few
/// seconds after it (`design/storage.md` §5.9).
#[cfg(not(loom))]
const KEY_SET_PASS: Duration = Duration::from_secs(2);

/// How often at most the evictor, and a clean close's checkpoint while it
/// evicts (`Engine::checkpoint_closing`), give freed memory back to the
/// system.
pub(super) const TRIM_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The shortest interval a background thread sleeps between rounds: a
/// shorter one (`Durability::Buffered(Duration::ZERO)`, `gc_interval(Some(Duration::ZERO))`)
/// is taken as this.
#[cfg(not(loom))]
pub(super) const MIN_WAKE: Duration = Duration::from_millis(1);

/// The sync thread of a buffered database: syncs the log every `interval`,
/// and nothing else, so that no checkpoint or cleaning pass delays it.
#[cfg(not(loom))]
fn spawn_syncer(engine: Weak<Engine>, interval: Duration) -> std::io::Result<std::thread::JoinHandle<()>> {
    // A zero interval would spin the thread on a core.
    let interval = interval.max(MIN_WAKE);
    std::thread::Builder::new()
        .name("bwtx-sync".into())
        .spawn(move || loop {
            std::thread::park_timeout(interval);
            let Some(engine) = engine.upgrade() else { return };
            if engine.closing() {
                return;
            }
            let Some(store) = &engine.store else { return };
            // A failure poisons the log; commits report it.
            let _ = store.sync_now();
        })
}

/// The log thread of a database on disk: takes automatic checkpoints and
/// cleans the page segments.
#[cfg(not(loom))]
fn spawn_logger(engine: Weak<Engine>, tick: Duration) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("bwtx-log".into()).spawn(move || loop {
        std::thread::park_timeout(tick);
        let Some(engine) = engine.upgrade() else { return };
        if engine.closing() {
            return;
        }
        let Some(store) = &engine.store else { return };
        if store.wants_checkpoint() {
            let _ = engine.checkpoint();
        }
        // Segment cleaning (`super::clean`); a failure poisons the page
        // store or is a read error the next pass meets again.
        let _ = engine.maybe_clean();
    })
}
