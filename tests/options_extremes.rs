//! Every `Options` setting at its extremes (zero, one, the type's maximum)
//! opens a database that commits, reads, checkpoints and reopens: a
//! setting is never a panic (two were: `cache_size(u64::MAX)` overflowed
//! the readers' help threshold, now clamped where it is set, and
//! `history_retention(Duration::MAX)` the checkpoint's retention marks).

use std::path::PathBuf;
use std::time::Duration;

use bwtx::{Durability, Options};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bwtx-extremes-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A named way to build the options of one case.
type Case = (&'static str, fn() -> Options);

/// The settings, each on its own, and a few together.
fn cases() -> Vec<Case> {
    vec![
        ("segment-0", || Options::new().segment_bytes(0)),
        ("segment-1", || Options::new().segment_bytes(1)),
        ("segment-max", || Options::new().segment_bytes(u64::MAX)),
        ("checkpoint-1", || Options::new().checkpoint_bytes(1)),
        ("checkpoint-max", || Options::new().checkpoint_bytes(u64::MAX)),
        ("cache-0", || Options::new().cache_size(0)),
        ("cache-1", || Options::new().cache_size(1)),
        ("cache-max", || Options::new().cache_size(u64::MAX)),
        ("value-log-0", || {
            Options::new().cache_size(1 << 20).value_log_threshold(0)
        }),
        ("value-log-max", || {
            Options::new().cache_size(1 << 20).value_log_threshold(u64::MAX)
        }),
        ("retention-max", || Options::new().history_retention(Duration::MAX)),
        ("retention-max-paged", || {
            Options::new().cache_size(1 << 20).history_retention(Duration::MAX)
        }),
        ("snapshot-age-0", || Options::new().max_snapshot_age(Duration::ZERO)),
        ("snapshot-age-max", || Options::new().max_snapshot_age(Duration::MAX)),
        ("changes-max", || Options::new().change_retention(Duration::MAX)),
        ("gc-0", || Options::new().gc_interval(Some(Duration::ZERO))),
        ("gc-max", || Options::new().gc_interval(Some(Duration::MAX))),
        ("buffered-0", || {
            Options::new().durability(Durability::Buffered(Duration::ZERO))
        }),
        ("buffered-max", || {
            Options::new().durability(Durability::Buffered(Duration::MAX))
        }),
        ("no-durability-paged", || {
            Options::new().cache_size(1 << 20).durability(Durability::None)
        }),
        ("all-max", || {
            Options::new()
                .segment_bytes(u64::MAX)
                .checkpoint_bytes(u64::MAX)
                .cache_size(u64::MAX)
                .value_log_threshold(u64::MAX)
                .history_retention(Duration::MAX)
                .max_snapshot_age(Duration::MAX)
                .change_retention(Duration::MAX)
                .gc_interval(Some(Duration::MAX))
                .durability(Durability::Buffered(Duration::MAX))
        }),
    ]
}

#[test]
fn every_setting_at_its_extremes_opens_commits_checkpoints_and_reopens() {
    const N: u32 = 300;
    for (name, opts) in cases() {
        let d = dir(name);
        {
            let db = opts().open(&d).unwrap_or_else(|e| panic!("{name}: open: {e}"));
            for i in 0..N {
                let mut tx = db.begin();
                tx.put(i.to_be_bytes(), vec![i as u8; 300]).unwrap();
                tx.commit().unwrap_or_else(|e| panic!("{name}: commit {i}: {e}"));
            }
            db.checkpoint().unwrap_or_else(|e| panic!("{name}: checkpoint: {e}"));
            assert_eq!(db.snapshot().range::<&[u8], _>(..).count(), N as usize, "{name}");
        }
        let durable = !name.starts_with("no-durability");
        let db = opts().open(&d).unwrap_or_else(|e| panic!("{name}: reopen: {e}"));
        let snap = db.snapshot();
        if durable {
            assert_eq!(snap.range::<&[u8], _>(..).count(), N as usize, "{name} after reopen");
            let v = snap.get(7u32.to_be_bytes()).unwrap();
            assert_eq!(v.as_deref(), Some(&[7u8; 300][..]), "{name}");
        }
        drop((snap, db));
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// Timeouts at `Duration::MAX` are waits without a deadline, not an
/// overflow of `Instant + Duration` (`Changes::wait_next` panicked).
#[test]
fn the_longest_timeouts_are_waits_not_panics() {
    let d = dir("timeouts");
    let db = Options::new().open(&d).unwrap();
    let mut tx = db.begin();
    tx.put("k", "v").unwrap();
    let ts = tx.commit().unwrap();
    let mut changes = db.changes_since(0).unwrap();
    let first = changes.wait_next(Duration::MAX).expect("a change").unwrap();
    assert_eq!(first.ts, ts);
    assert!(db.wait_visible(ts, Duration::MAX));
    drop((changes, db));
    let _ = std::fs::remove_dir_all(&d);
}

/// Tree configurations at the type's maximum are an `InvalidConfig` or a
/// working tree, never an arithmetic overflow (`leaf_min * 2` in the
/// check, `leaf_min * paged_leaf_max` in the paged scaling and
/// `inner_max * 3 / 4` in the rebuild at open overflowed: panics in debug
/// builds, a wrapped check in release). Fan-outs past 65536 and pages past
/// 1 GiB are refused since 2026-12-07 (a leaf's `u32` offsets); the widest
/// allowed works.
#[test]
fn tree_configurations_at_their_maximum_are_errors_or_work() {
    use bwtx::tree::Config;
    use bwtx::Error;
    let refused = Config {
        leaf_min: usize::MAX,
        leaf_max: usize::MAX,
        ..Config::default()
    };
    match Options::new().tree_config(refused).in_memory() {
        Err(Error::InvalidConfig(_)) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
    let too_wide = Config {
        inner_max: usize::MAX,
        leaf_max: usize::MAX,
        leaf_min: 1 << 40,
        paged_leaf_max: 1 << 31,
        ..Config::default()
    };
    match Options::new().tree_config(too_wide).in_memory() {
        Err(Error::InvalidConfig(_)) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
    let wide = || Config {
        inner_max: 1 << 16,
        leaf_max: 1 << 16,
        leaf_min: 1 << 15,
        paged_leaf_max: 1 << 16,
        page_bytes: 1 << 30,
        ..Config::default()
    };
    let d = dir("tree-config");
    {
        let db = Options::new().tree_config(wide()).cache_size(1 << 20).open(&d).unwrap();
        for i in 0..300u32 {
            db.transaction(|tx| tx.put(i.to_be_bytes(), [1u8; 100])).unwrap();
        }
    }
    // The clean close wrote a location table: the open rebuilds the inner
    // levels from it.
    let db = Options::new().tree_config(wide()).cache_size(1 << 20).open(&d).unwrap();
    assert_eq!(db.snapshot().range::<&[u8], _>(..).count(), 300);
    drop(db);
    let _ = std::fs::remove_dir_all(&d);
}
