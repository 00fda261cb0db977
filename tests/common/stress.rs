//! The cleaners' stress run (`paged_clean_stress.rs`, `paged_vlog_clean_stress.rs`):
//! writers updating their own keys (each read of its keys checked against
//! its model), a thread evicting every leaf, and a cleaner thread, until
//! the writers are done; then the final state is checked in this run,
//! after a last clean and eviction, and after a power loss.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bwtx::fs::FaultFs;
use bwtx::{Db, Options};
use bwtx_kit::SplitMix64;

use super::paged::key;
use super::{dump, DIR};

/// Sets the flag when dropped by a panic (a failing thread stops the others).
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// The run: `keys` keys of `value(i, 0)` in one commit, then `writers`
/// threads doing `ops` single-key updates each (key `i` belongs to writer
/// `i % writers`), beside the evicting thread and a thread calling `clean`
/// (whose results it sums). The writers go on past `ops` (up to 20 times
/// as many) until `progressed(db, cleaned)` says the cleaner did its work
/// while they wrote, however the threads were scheduled; the run then
/// asserts it, and compares the final state.
pub fn cleaning_beside_commits_and_evictions(
    opts: impl Fn(&FaultFs) -> Options,
    keys: u64,
    writers: u64,
    ops: u64,
    value: fn(u64, u64) -> String,
    clean: impl Fn(&Db) -> u64 + Sync,
    progressed: impl Fn(&Db, u64) -> bool + Sync,
) {
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let mut tx = db.begin();
    for i in 0..keys {
        tx.put(key(i), value(i, 0)).unwrap();
    }
    tx.commit().unwrap();
    let done = AtomicBool::new(false);
    let cleaned_so_far = AtomicU64::new(0);
    let (models, cleaned) = std::thread::scope(|s| {
        let threads: Vec<_> = (0..writers)
            .map(|w| {
                let (db, done, cleaned_so_far, progressed) = (&db, &done, &cleaned_so_far, &progressed);
                s.spawn(move || {
                    let _stop = Stop(done);
                    let mut rng = SplitMix64::new(w + 1);
                    let mut model: BTreeMap<String, String> = (0..keys)
                        .filter(|i| i % writers == w)
                        .map(|i| (key(i), value(i, 0)))
                        .collect();
                    let enough = |n| n > 20 * ops || progressed(db, cleaned_so_far.load(Ordering::Acquire));
                    for n in (1..).take_while(|&n| n <= ops || !enough(n)) {
                        let i = (rng.next_u64() % (keys / writers)) * writers + w;
                        let got = db.snapshot().get(key(i)).unwrap();
                        assert_eq!(got.as_deref(), Some(model[&key(i)].as_bytes()), "key {i}");
                        let mut tx = db.begin();
                        tx.put(key(i), value(i, n)).unwrap();
                        tx.commit().unwrap();
                        model.insert(key(i), value(i, n));
                    }
                    model
                })
            })
            .collect();
        let evictor = s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                db.evict_all().unwrap();
            }
        });
        let cleaner = s.spawn(|| {
            let mut cleaned = 0;
            while !done.load(Ordering::Acquire) {
                cleaned += clean(&db);
                cleaned_so_far.store(cleaned, Ordering::Release);
            }
            cleaned
        });
        let models: Vec<_> = threads.into_iter().map(|w| w.join().unwrap()).collect();
        done.store(true, Ordering::Release);
        evictor.join().unwrap();
        (models, cleaner.join().unwrap())
    });
    let model: BTreeMap<String, String> = models.into_iter().flatten().collect();
    assert!(
        progressed(&db, cleaned),
        "the cleaner made progress while the writers wrote: {cleaned} cleaned, {:?}",
        db.stats()
    );
    assert_eq!(dump(&db).1, model);
    db.clean_now().unwrap();
    db.evict_all().unwrap();
    assert_eq!(dump(&db).1, model);
    // The power fails at the close's first sync: the close writes no
    // table and syncs nothing more.
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
    let db = opts(&fs).open(DIR).unwrap();
    assert_eq!(dump(&db).1, model);
}
