//! The value log's cleaner under load (`design/storage.md` §10,
//! "Cleaning"): a cleaner thread (rewriting pages off mostly-dead value-log
//! segments and checkpointing) runs beside two writers of large values, a
//! thread evicting every leaf, and the evictor; every read a writer makes
//! of its own keys returns what it last wrote, and the final state equals
//! the writers' models in this run and after a power loss.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use bwtx::fs::FaultFs;
use bwtx::Options;
use bwtx_kit::SplitMix64;
use common::paged::key;
use common::{dump, DIR};

const KEYS: u64 = 200;
const WRITERS: u64 = 2;

/// 16 KiB segments and cache; values of 1,500 bytes go to the value log.
fn opts(fs: &FaultFs) -> Options {
    common::paged::opts(fs, 16 << 10).value_log_threshold(1 << 10)
}

/// A 1,500-byte value that names key `i` and `round`.
fn value(i: u64, round: u64) -> String {
    let mut v = format!("value-{round}-{i}-");
    v.extend(std::iter::repeat_n('v', 1_500 - v.len()));
    v
}

/// Sets the flag when dropped by a panic.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

#[test]
fn value_log_cleaning_beside_commits_and_evictions_keeps_every_value() {
    let ops: u64 = bwtx_kit::env::parse("BWTX_STRESS_OPS").unwrap_or(1_500);
    let fs = FaultFs::new();
    let db = opts(&fs).open(DIR).unwrap();
    let mut tx = db.begin();
    for i in 0..KEYS {
        tx.put(key(i), value(i, 0)).unwrap();
    }
    tx.commit().unwrap();
    let done = AtomicBool::new(false);
    let models = std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (db, done) = (&db, &done);
                s.spawn(move || {
                    let _stop = Stop(done);
                    let mut rng = SplitMix64::new(w + 1);
                    let mut model: BTreeMap<String, String> = (0..KEYS)
                        .filter(|i| i % WRITERS == w)
                        .map(|i| (key(i), value(i, 0)))
                        .collect();
                    for n in 1..=ops {
                        let i = (rng.next_u64() % (KEYS / WRITERS)) * WRITERS + w;
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
            while !done.load(Ordering::Acquire) {
                db.collect_garbage();
                db.clean_now().unwrap();
            }
        });
        let models: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        done.store(true, Ordering::Release);
        evictor.join().unwrap();
        cleaner.join().unwrap();
        models
    });
    let model: BTreeMap<String, String> = models.into_iter().flatten().collect();
    let s = db.stats();
    assert!(
        s.value_log_pages_rewritten > 0 && s.value_log_segments_cleaned > 0,
        "the cleaner rewrote pages during the run: {s:?}"
    );
    assert_eq!(dump(&db).1, model);
    db.clean_now().unwrap();
    db.evict_all().unwrap();
    assert_eq!(dump(&db).1, model);
    drop(db);
    fs.power_loss();
    let db = opts(&fs).open(DIR).unwrap();
    assert_eq!(dump(&db).1, model);
}
