//! The checkpoint's flushes and the page file's chain map
//! (`design/storage.md` §6, "The chain map during a checkpoint").

use std::path::Path;
use std::time::Duration;

use crate::fs::FaultFs;
use crate::sync::{Arc, Ordering};
use crate::{Durability, Options};

/// A checkpoint that flushes every leaf adds a chain-map entry per leaf;
/// its phase 1 prunes the map as it grows, so the map never holds more
/// than the prune allows (the heads kept, a quarter more or 1,024, and a
/// batch of 256 flushes between two checks). Without the prune between
/// the batches the map grows by an entry per flushed leaf, to about twice
/// the heads, and its table doubles (63 MB at 5M keys), which this test
/// catches: it first checks that the flushes would take the map past the
/// bound.
#[test]
fn a_checkpoint_that_flushes_every_leaf_keeps_the_chain_map_pruned() {
    let fs = FaultFs::new();
    let db = Options::new()
        .durability(Durability::Buffered(Duration::from_millis(5)))
        .checkpoint_bytes(0)
        .cache_size(8 << 20)
        .file_system(Arc::new(fs.clone()))
        .open(Path::new("/db"))
        .unwrap();
    const KEYS: u64 = 120_000;
    let key = |i: u64| format!("key{i:013}").into_bytes();
    let write = |keys: &mut dyn Iterator<Item = u64>, fill: u8| {
        let keys: Vec<u64> = keys.collect();
        for batch in keys.chunks(1_000) {
            let mut tx = db.begin();
            for &i in batch {
                tx.put(key(i), vec![fill; 100]).unwrap();
            }
            tx.commit().unwrap();
        }
    };
    write(&mut (0..KEYS), 1);
    db.checkpoint().unwrap();
    // Every leaf on disk, then one key in 16 updated: a blind write over
    // nearly every leaf's stub, each a dirty page the next checkpoint
    // flushes (a delta flush, a new chain head).
    db.evict_all().unwrap();
    // From here: the map's largest size, and the page writes (counted from
    // before the updates, so that a checkpoint the background cleaner may
    // start meanwhile, which prunes the same way, counts too).
    let pages = db.engine().pages.clone().unwrap();
    pages.chains_peak.store(pages.chains_len() as u64, Ordering::Relaxed);
    let written = db.stats().pages_written;
    write(&mut (0..KEYS).step_by(16), 2);
    db.checkpoint().unwrap();
    let written = db.stats().pages_written - written;
    let kept = pages.chains_len() as u64;
    let bound = kept + (kept / 4).max(1024) + 512;
    assert!(
        kept + written > bound,
        "the checkpoint's {written} page writes on {kept} heads would pass the bound {bound} unpruned"
    );
    let peak = pages.chains_peak.load(Ordering::Relaxed);
    assert!(
        peak <= bound,
        "the chain map held {peak} entries during the checkpoint ({kept} heads after it, {written} page writes, bound {bound})"
    );
    // Every key reads back, from the checkpoint's chains.
    drop(db);
    let db = Options::new()
        .cache_size(8 << 20)
        .file_system(Arc::new(fs.clone()))
        .open(Path::new("/db"))
        .unwrap();
    let snap = db.snapshot();
    for i in 0..KEYS {
        let want = if i % 16 == 0 { 2 } else { 1 };
        assert_eq!(snap.get(key(i)).unwrap().as_deref(), Some(&[want; 100][..]), "key {i}");
    }
}

/// Without a log, a checkpoint's table must name no image holding a commit
/// above its timestamp `C`: nothing after `C` is replayed, so such an image
/// comes back alone after a crash, a commit torn across leaves. The race:
/// the checkpoint takes `C` and waits (here on the cleaning cycle, held by
/// the test); a commit writes two leaves; an eviction raises `D` to the new
/// read timestamp and evicts one of them; the checkpoint then flushes the
/// other at `C` and lists the evicted one's image. Before `D` was held from
/// before `C` (`Store::hold_unlogged`), the reopened database had the
/// commit's write on one leaf and not on the other.
#[test]
fn without_a_log_a_checkpoint_lists_no_image_newer_than_itself() {
    let fs = FaultFs::new();
    let opts = || {
        Options::new()
            .durability(Durability::None)
            .gc_interval(None)
            .checkpoint_bytes(0)
            .cache_size(1 << 30)
            .tree_config(crate::bwtree::Config {
                leaf_max: 4,
                leaf_min: 2,
                paged_leaf_max: 4,
                ..crate::bwtree::Config::tiny()
            })
            .file_system(Arc::new(fs.clone()))
    };
    let key = |i: u32| format!("k{i}");
    let db = opts().open(Path::new("/db")).unwrap();
    for i in 0..6u32 {
        db.transaction(|tx| tx.put(key(i), "old")).unwrap();
    }
    db.checkpoint().unwrap();
    // Something to checkpoint, so that the next one writes a table.
    db.transaction(|tx| tx.put(key(2), "old2")).unwrap();
    let engine = db.engine();
    let pids = engine.tree.leaf_pids();
    assert!(pids.len() >= 2, "two leaves: {pids:?}");
    let pages = engine.pages.clone().unwrap();
    let cycle = pages.vlog.checkpoint_cycle();
    let d = db.clone();
    let checkpoint = std::thread::spawn(move || d.checkpoint().map(|_| ()));
    // The checkpoint has its timestamp (its pin) and waits on the cycle.
    while engine.registry.active() == 0 {
        std::thread::yield_now();
    }
    db.transaction(|tx| {
        tx.put(key(0), "new")?;
        tx.put(key(5), "new")
    })
    .unwrap();
    engine.before_evict();
    engine.tree.evict(&pids[..1], true).unwrap();
    drop(cycle);
    checkpoint.join().unwrap().unwrap();
    // A crash: the close writes nothing durable.
    drop(pages);
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
    let back = opts().open(Path::new("/db")).unwrap();
    // The commit after `C` is lost whole (nothing but the checkpoint is
    // durable), and its timestamps go to new commits: an image holding its
    // version shows it once the oracle passes it, on one leaf only.
    for i in 0..3 {
        back.transaction(|tx| tx.put("other", format!("{i}"))).unwrap();
    }
    let s = back.snapshot();
    let (a, b) = (s.get(key(0)).unwrap(), s.get(key(5)).unwrap());
    assert_eq!(a, b, "a torn commit: k0 {a:?}, k5 {b:?}");
    assert_eq!(a.as_deref(), Some(&b"old"[..]), "a lost commit came back");
}

/// A keyspace created while a checkpoint holds every tree's evictions
/// paused for its deletions must not escape the pause: its leaves, evicted
/// meanwhile into a page segment the deletion did not know it used, were
/// deleted with that segment, and the keyspace's data was gone (reads
/// failed, and after the next checkpoint the open refused the directory).
/// Now a tree joins the map only once no such pause holds
/// (`Keyspaces::publication`). The checkpoint is held in its deletion step
/// by the cleaners' lock, which it takes after its pause.
#[test]
fn a_keyspace_created_during_a_checkpoints_deletions_keeps_its_pages() {
    let fs = FaultFs::new();
    let opts = || {
        Options::new()
            .durability(Durability::Sync)
            .gc_interval(None)
            .checkpoint_bytes(0)
            // Room for everything: the loader's commits never help evict
            // (they would wait on the paused trees), it evicts by hand.
            .cache_size(1 << 30)
            .segment_bytes(4 << 10)
            .value_log_threshold(u64::MAX)
            .file_system(Arc::new(fs.clone()))
    };
    let db = opts().open(Path::new("/db")).unwrap();
    db.transaction(|tx| tx.put("a", "1")).unwrap();
    db.checkpoint().unwrap();
    db.transaction(|tx| tx.put("b", "2")).unwrap();
    let engine = db.engine();
    let pages = engine.pages.clone().unwrap();
    let tables = || {
        use crate::fs::Fs;
        fs.list(Path::new("/db"))
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".ckpt"))
            .collect::<Vec<_>>()
    };
    let before = tables();
    let cleaners = crate::sync::lock(&pages.clean.running);
    let d = db.clone();
    let checkpoint = std::thread::spawn(move || d.checkpoint().map(|_| ()));
    // Its table is written: it goes on to its pause and waits on the lock.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while tables() == before {
        assert!(!checkpoint.is_finished(), "the checkpoint ended before its table");
        assert!(std::time::Instant::now() < deadline, "no table within 60 s");
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(50));
    let d = db.clone();
    let (tx, done) = std::sync::mpsc::channel();
    let loader = std::thread::spawn(move || {
        let k = d.keyspace("k").unwrap();
        for i in 0..200u32 {
            d.transaction(|tx| tx.put_in(&k, i.to_be_bytes(), [7u8; 1024])).unwrap();
        }
        d.engine().before_evict();
        k.inner.as_ref().unwrap().tree.evict_all().unwrap();
        let _ = tx.send(());
        k
    });
    // Before the fix the loader finished here, its leaves in segments the
    // checkpoint would delete; now it waits for the checkpoint.
    let _ = done.recv_timeout(Duration::from_secs(2));
    drop(cleaners);
    checkpoint.join().unwrap().unwrap();
    let k = loader.join().unwrap();
    let snap = db.snapshot();
    for i in 0..200u32 {
        let v = snap
            .get_in(&k, i.to_be_bytes())
            .unwrap_or_else(|e| panic!("key {i}: {e}"));
        assert_eq!(v.as_deref(), Some(&[7u8; 1024][..]), "key {i}");
    }
    drop(snap);
    db.checkpoint().unwrap();
    drop((k, db));
    let back = opts().open(Path::new("/db")).unwrap();
    let k = back.keyspace("k").unwrap();
    assert_eq!(back.snapshot().range_in::<&[u8], _>(&k, ..).count(), 200);
}

/// A checkpoint's own snapshot never expires: a checkpoint slower than
/// `Options::max_snapshot_age` keeps the GC watermark at or below its
/// timestamp `C`, so the images it lists hold every version a snapshot at
/// `C` sees, and the replay after a crash counts each write against them
/// right. (Before, a sweep passed over the checkpoint's pin once it was
/// older than the age: the overwritten version was dropped from the image
/// listed at `C`, the replayed overwrite counted as a new key, and
/// `snapshot_at(C)` read nothing for it after the restart.)
#[test]
fn a_checkpoint_slower_than_the_snapshot_age_keeps_its_versions() {
    let fs = FaultFs::new();
    let opts = || {
        Options::new()
            .durability(Durability::Sync)
            .gc_interval(None)
            .checkpoint_bytes(0)
            .cache_size(1 << 30)
            .max_snapshot_age(Duration::from_millis(20))
            .file_system(Arc::new(fs.clone()))
    };
    let db = opts().open(Path::new("/db")).unwrap();
    db.transaction(|tx| tx.put("k", "v1")).unwrap();
    db.checkpoint().unwrap();
    db.transaction(|tx| tx.put("other", "x")).unwrap();
    let engine = db.engine();
    let pages = engine.pages.clone().unwrap();
    let cycle = pages.vlog.checkpoint_cycle();
    let c = engine.read_ts();
    let d = db.clone();
    let checkpoint = std::thread::spawn(move || d.checkpoint().map(|_| ()));
    // The checkpoint has its timestamp (its pin) and waits on the cycle.
    while engine.registry.active() == 0 {
        std::thread::yield_now();
    }
    db.transaction(|tx| tx.put("k", "v2")).unwrap();
    // Two sweeps: the first samples the clock, the second (past the age)
    // may pass over snapshots older than the sample.
    std::thread::sleep(Duration::from_millis(30));
    db.collect_garbage();
    std::thread::sleep(Duration::from_millis(40));
    db.collect_garbage();
    // The invariant the listing relies on (`checkpoint` module doc).
    assert!(
        engine.tree.gc_watermark() <= c,
        "watermark {} past C {c}",
        engine.tree.gc_watermark()
    );
    assert_eq!(engine.tree.get(b"k", c).unwrap().as_deref(), Some(&b"v1"[..]));
    drop(cycle);
    checkpoint.join().unwrap().unwrap();
    drop(pages);
    // A crash: the close writes nothing durable.
    fs.crash_at_sync(fs.syncs());
    drop(db);
    fs.power_loss();
    let back = opts().open(Path::new("/db")).unwrap();
    let s = back.snapshot();
    assert_eq!(s.get("k").unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(s.len(), 2, "two keys, counted after the replay");
    match back.snapshot_at(c) {
        Ok(old) => assert_eq!(old.get("k").unwrap().as_deref(), Some(&b"v1"[..]), "k at {c}"),
        Err(e) => assert!(matches!(e, crate::Error::SnapshotTooOld { .. }), "{e}"),
    }
}
