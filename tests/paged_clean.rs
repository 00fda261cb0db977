//! Segment cleaning (`design/storage.md` §9): after a churn of updates with
//! a small cache and a few checkpoints, the cleaner brings the page
//! segments' bytes to at most 1.5 x the live bytes, and every page it moved
//! reads back identical, from its new address (the old segments are gone),
//! in this run and after a reopen; evicted leaves and clean resident ones
//! alike; and relocations racing writers lose no update.

mod common;

use std::collections::BTreeMap;

use bwtx::fs::FaultFs;
use bwtx::{Db, Options};
use bwtx_kit::SplitMix64;
use common::paged::{key, value};
use common::{dump, DIR};

const KEYS: usize = 3_000;

/// This test's paged database.
fn opts(fs: &FaultFs) -> Options {
    common::paged::opts(fs, 32 << 10)
}

/// Update `n` random keys (value round `round`), 50 per commit.
fn churn(db: &Db, rng: &mut SplitMix64, n: usize, round: usize, model: &mut BTreeMap<String, String>) {
    for _ in 0..n / 50 {
        let mut tx = db.begin();
        for _ in 0..50 {
            let i = (rng.next_u64() % KEYS as u64) as usize;
            tx.put(key(i), value(i, round)).unwrap();
            model.insert(key(i), value(i, round));
        }
        tx.commit().unwrap();
    }
}

fn segment_files(fs: &FaultFs) -> Vec<String> {
    common::files_with_prefix(fs, "pages-")
}

#[test]
fn cleaning_after_a_churn_brings_disk_to_at_most_one_and_a_half_times_live() {
    let fs = FaultFs::new();
    let mut model = BTreeMap::new();
    let mut rng = SplitMix64::new(11);
    let db = opts(&fs).open(DIR).unwrap();
    common::paged::load(&db, 0..KEYS, 0, &mut model);
    db.checkpoint().unwrap();
    for round in 1..=4 {
        churn(&db, &mut rng, 1_000, round, &mut model);
        db.checkpoint().unwrap();
    }
    db.evict_all().unwrap();
    let files_before = segment_files(&fs);
    let before = db.stats();
    let moved = db.clean_now().unwrap();
    let after = db.stats();
    let amp = after.page_space_amplification().expect("live bytes counted");
    assert!(moved > 0 && after.pages_relocated == moved, "{after:?}");
    assert!(after.segments_cleaned > 0, "{after:?}");
    assert!(amp <= 1.5, "space amplification {amp:.2} after cleaning: {after:?}");
    // Cleaning did something the checkpoints alone did not: the disk shrank
    // from well above the target.
    let before_amp = before.page_disk_bytes as f64 / after.page_live_bytes as f64;
    assert!(
        before_amp > 1.5 && after.page_disk_bytes < before.page_disk_bytes,
        "before {before_amp:.2} ({} bytes), after {amp:.2} ({} bytes)",
        before.page_disk_bytes,
        after.page_disk_bytes
    );
    let files_after = segment_files(&fs);
    let gone: Vec<_> = files_before.iter().filter(|f| !files_after.contains(f)).collect();
    assert!(!gone.is_empty(), "cleaned segments are deleted by the checkpoint");

    // Every page reads back identical from its new address: the old
    // segments are gone, so a read of an old address would be corruption.
    db.evict_all().unwrap();
    // (The dump's scan faults leaves in, or reads them through: §5.4.)
    let read = |s: bwtx::Stats| s.cache_misses + s.read_throughs;
    let before_dump = read(db.stats());
    assert_eq!(dump(&db).1, model);
    assert!(
        read(db.stats()) > before_dump,
        "the dump read pages from the page store"
    );

    // And after a power loss (the last checkpoint is durable).
    // The power fails at the close's first sync: the close writes no
    // table and syncs nothing more.
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
    let db = opts(&fs).open(DIR).unwrap();
    assert_eq!(dump(&db).1, model);
    // More churn after the reopen, cleaned again: still right.
    churn(&db, &mut rng, 1_000, 9, &mut model);
    db.checkpoint().unwrap();
    db.clean_now().unwrap();
    assert!(
        db.stats().page_space_amplification().unwrap() <= 1.5,
        "{:?}",
        db.stats()
    );
    db.evict_all().unwrap();
    assert_eq!(dump(&db).1, model);
}

#[test]
fn clean_resident_pages_are_relocated_in_place_and_read_back_identical() {
    // A cache large enough that nothing is evicted but by `evict_all`: after
    // the last dump every leaf is resident and clean (its `disk` names its
    // image), so every page the cleaner moves takes the resident path.
    let fs = FaultFs::new();
    let mut model = BTreeMap::new();
    let mut rng = SplitMix64::new(23);
    let db = opts(&fs).cache_size(64 << 20).open(DIR).unwrap();
    churn(&db, &mut rng, 3_000, 0, &mut model);
    for round in 1..=4 {
        db.evict_all().unwrap();
        db.checkpoint().unwrap();
        churn(&db, &mut rng, 500, round, &mut model);
    }
    db.evict_all().unwrap();
    db.checkpoint().unwrap();
    assert_eq!(dump(&db).1, model);
    let before = db.stats();
    let moved = db.clean_now().unwrap();
    let after = db.stats();
    assert!(moved > 0, "{after:?}");
    assert_eq!(
        after.evictions, before.evictions,
        "nothing was evicted: the moved pages were resident"
    );
    assert_eq!(after.cache_misses, before.cache_misses, "and none faulted in");
    assert!(after.page_space_amplification().unwrap() <= 1.5, "{after:?}");
    assert_eq!(dump(&db).1, model);
    // Their new images read back identical (the old segments are gone).
    db.evict_all().unwrap();
    assert_eq!(dump(&db).1, model);
    // The power fails at the close's first sync: the close writes no
    // table and syncs nothing more.
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
    assert_eq!(dump(&opts(&fs).open(DIR).unwrap()).1, model);
}

/// The relocation CAS against live writers (the loom models in
/// `loom_tests/tests/relocate.rs` race one write against one relocation):
/// two threads update keys (each write a value of its own), the leaves
/// resident and clean (odd rounds) or only those of the first half of the
/// key space, the rest evicted (even rounds: updates there are blind
/// writes over stubs), while the main
/// thread moves every published image again and again
/// (`Db::relocate_all`), at least five times and until the writers have
/// committed 200 updates since the first. Every acknowledged update reads
/// back, after an eviction of every leaf (from the page store) and after
/// a checkpoint, a power loss and a reopen.
#[test]
fn relocations_racing_writers_lose_no_update() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    let fs = FaultFs::new();
    let mut model = BTreeMap::new();
    let mut rng = SplitMix64::new(29);
    let db = opts(&fs).cache_size(64 << 20).open(DIR).unwrap();
    churn(&db, &mut rng, 3_000, 0, &mut model);
    let mut moved = 0;
    for round in 1..=4 {
        db.evict_all().unwrap();
        db.checkpoint().unwrap();
        db.force_read_through(Some(false));
        // Odd rounds: every leaf resident (a relocation reads and decodes
        // the copy: the longer window); even rounds: half of them.
        let half = round % 2 == 0;
        for i in 0..if half { KEYS / 2 } else { KEYS } {
            db.snapshot().get(key(i)).unwrap();
        }
        let blind_before = db.stats().blind_writes;
        let (stop, written) = (AtomicBool::new(false), AtomicU64::new(0));
        let updates = std::thread::scope(|s| {
            let writers: Vec<_> = (0..2u64)
                .map(|t| {
                    let (db, stop, written) = (&db, &stop, &written);
                    s.spawn(move || {
                        let mut rng = SplitMix64::new(round as u64 * 10 + t);
                        let mut mine = BTreeMap::new();
                        let mut n = 0u64;
                        while !stop.load(Relaxed) {
                            // Each writer its own keys (even, odd): no conflicts.
                            let i = (rng.next_u64() % (KEYS as u64 / 2)) as usize * 2 + t as usize;
                            let v = format!("{}-{t}-{n}", value(i, round));
                            let mut tx = db.begin();
                            tx.put(key(i), &v).unwrap();
                            tx.commit().unwrap();
                            mine.insert(key(i), v);
                            n += 1;
                            written.fetch_add(1, Relaxed);
                        }
                        mine
                    })
                })
                .collect();
            let mut passes = 0;
            let mut first = None;
            while passes < 5 || written.load(Relaxed) < first.unwrap_or(0) + 1_000 {
                first.get_or_insert(written.load(Relaxed));
                moved += db.relocate_all().unwrap();
                passes += 1;
            }
            stop.store(true, Relaxed);
            writers.into_iter().flat_map(|w| w.join().unwrap()).collect::<Vec<_>>()
        });
        model.extend(updates);
        if half {
            assert!(
                db.stats().blind_writes > blind_before,
                "round {round}: no update met an evicted leaf"
            );
        }
        assert_eq!(dump(&db).1, model, "round {round}");
    }
    assert!(moved > 0, "{:?}", db.stats());
    assert_eq!(db.stats().pages_relocated, moved);
    db.evict_all().unwrap();
    assert_eq!(dump(&db).1, model);
    db.checkpoint().unwrap();
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
    let db = opts(&fs).open(DIR).unwrap();
    assert_eq!(dump(&db).1, model);
    db.evict_all().unwrap();
    assert_eq!(dump(&db).1, model);
}
