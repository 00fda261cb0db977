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
/// two threads update keys, half of the leaves evicted and half resident
/// and clean, while the main thread moves every published image again and
/// again (`Db::relocate_all`). Every acknowledged update reads back, after
/// an eviction of every leaf (from the page store) and after a checkpoint,
/// a power loss and a reopen.
#[test]
fn relocations_racing_writers_lose_no_update() {
    let fs = FaultFs::new();
    let mut model = BTreeMap::new();
    let mut rng = SplitMix64::new(29);
    let db = opts(&fs).cache_size(64 << 20).open(DIR).unwrap();
    churn(&db, &mut rng, 3_000, 0, &mut model);
    let mut moved = 0;
    for round in 1..=3 {
        db.evict_all().unwrap();
        db.checkpoint().unwrap();
        // Half of the keys read: their leaves are faulted in, clean.
        for i in (0..KEYS).step_by(2) {
            db.snapshot().get(key(i)).unwrap();
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        let written = std::thread::scope(|s| {
            let writers: Vec<_> = (0..2u64)
                .map(|t| {
                    let (db, stop) = (&db, &stop);
                    s.spawn(move || {
                        let mut rng = SplitMix64::new(round as u64 * 10 + t);
                        let mut mine = BTreeMap::new();
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            let mut tx = db.begin();
                            // Each writer its own keys: no conflicts.
                            let i = (rng.next_u64() % (KEYS as u64 / 2)) as usize * 2 + t as usize;
                            tx.put(key(i), value(i, round)).unwrap();
                            tx.commit().unwrap();
                            mine.insert(key(i), value(i, round));
                        }
                        mine
                    })
                })
                .collect();
            for _ in 0..5 {
                moved += db.relocate_all().unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            writers.into_iter().flat_map(|w| w.join().unwrap()).collect::<Vec<_>>()
        });
        model.extend(written);
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
