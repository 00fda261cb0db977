//! Paged leaves with `Options::cache_size`: every leaf is evicted by the
//! test hook `Db::evict_all`, so every later access faults it in; a leaf
//! faulted in and not changed is evicted again without a write; fault-in
//! errors, corruption and poisoning on `FaultFs`.

mod common;

use std::collections::BTreeMap;

use bwtx::fs::FaultFs;
use bwtx::{Db, Error, Options};
use common::{fault_opts, DIR};

fn key(i: usize) -> String {
    format!("key{i:05}")
}

fn open(fs: &FaultFs) -> Db {
    fault_opts(fs).cache_size(64 << 10).open(DIR).unwrap()
}

/// Write `n` keys (value `v<round>-<i>`) in batches of 10.
fn load(db: &Db, n: usize, round: usize, model: &mut BTreeMap<String, String>) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let mut tx = db.begin();
        for &i in chunk {
            let v = format!("v{round}-{i}");
            tx.put(key(i), &v).unwrap();
            model.insert(key(i), v);
        }
        tx.commit().unwrap();
    }
}

/// Overwrite key `i` alone (value `w-<i>`).
fn load_one(db: &Db, i: usize, model: &mut BTreeMap<String, String>) {
    let mut tx = db.begin();
    let v = format!("w-{i}");
    tx.put(key(i), &v).unwrap();
    tx.commit().unwrap();
    model.insert(key(i), v);
}

fn check(db: &Db, model: &BTreeMap<String, String>) {
    let snap = db.snapshot();
    for (k, v) in model {
        assert_eq!(snap.get(k).unwrap().as_deref(), Some(v.as_bytes()), "{k}");
    }
    let scanned: BTreeMap<String, String> = snap
        .range::<&[u8], _>(..)
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (
                String::from_utf8(k.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(&scanned, model);
    let back: Vec<_> = snap.range::<&[u8], _>(..).rev().map(|kv| kv.unwrap().0).collect();
    assert_eq!(back.len(), model.len());
}

#[test]
fn evicted_leaves_fault_back_in() {
    let fs = FaultFs::new();
    let db = open(&fs);
    // Reads fault leaves in (under the cache's pressure a leaf's point reads
    // would read it through until it earned its place,
    // `design/storage.md` §5.4; `tests/paged_read_through.rs` covers that).
    db.force_read_through(Some(false));
    let mut model = BTreeMap::new();
    load(&db, 600, 0, &mut model);
    for round in 1..4 {
        // The evictor (a 64 KiB budget) may have evicted most leaves already.
        db.evict_all().unwrap();
        // Under load a leaf or two were found resident again right after
        // `evict_all` (as `tests/ks_paged.rs` saw about once in 10 runs;
        // the cause is not pinned down, a merge finishing beside the pass
        // is one candidate): a bounded number of passes.
        assert!((0..20).any(|_| db.evict_all().unwrap() == 0), "every leaf is evicted");
        check(&db, &model);
        db.evict_all().unwrap();
        // Writes (and their validation) fault pages in; deletes too.
        load(&db, 600, round, &mut model);
        db.evict_all().unwrap();
        let mut tx = db.begin();
        for i in (round..600).step_by(7) {
            tx.delete(key(i)).unwrap();
            model.remove(&key(i));
        }
        tx.commit().unwrap();
        db.evict_all().unwrap();
        db.collect_garbage();
        check(&db, &model);
    }
    let s = db.stats();
    assert!(s.cache_misses > 0 && s.evictions > 0);
    // The leaves `check` faulted in were evicted again clean (no write).
    assert!(s.clean_evictions > 0, "{s:?}");
    assert!(s.pages_written + s.clean_evictions >= s.evictions, "{s:?}");
    assert!(s.page_bytes_written > 0);
    // Reopen: the clean close wrote a location table; nothing is replayed
    // and no page is read until the first access.
    drop(db);
    let db = open(&fs);
    let s = db.stats();
    assert_eq!((s.replayed, s.cache_misses), (0, 0), "{s:?}");
    check(&db, &model);
}

#[test]
fn in_memory_with_cache_size_is_refused() {
    let r = Options::new().cache_size(1 << 20).in_memory();
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
}

#[test]
fn read_fault_on_fault_in_is_an_error_then_recovers() {
    let fs = FaultFs::new();
    let db = open(&fs);
    let mut model = BTreeMap::new();
    load(&db, 200, 0, &mut model);
    db.evict_all().unwrap();
    fs.fail_read_at(fs.reads());
    assert!(matches!(db.snapshot().get(key(5)), Err(Error::Io(_))));
    // The fault cleared: the same page faults in now.
    check(&db, &model);
    // A commit whose validation cannot fault in fails before its timestamp:
    // its snapshot is older than the page's newest version (another
    // commit's of the same key), so it cannot validate blind over the
    // evicted leaf.
    let mut tx = db.begin();
    load_one(&db, 5, &mut model);
    db.evict_all().unwrap();
    fs.fail_read_at(fs.reads());
    let blind = db.stats().blind_writes;
    tx.put(key(5), "x").unwrap();
    let r = tx.commit();
    assert!(matches!(r, Err(Error::Io(_))), "{r:?} {:?}", db.stats());
    assert_eq!(db.stats().blind_writes, blind);
    check(&db, &model);
    // With a snapshot at or above the page's newest version, the write goes
    // over the evicted leaf blind: no read, so the failing read is not hit.
    // (The leaf is written first: a leaf evicted dirty keeps its key set in
    // its stub, P7 in `bwtree::paging`.)
    load_one(&db, 6, &mut model);
    db.evict_all().unwrap();
    fs.fail_read_at(fs.reads());
    load_one(&db, 6, &mut model);
    assert_eq!(db.stats().blind_writes, blind + 1);
    fs.fail_read_at(u64::MAX);
    check(&db, &model);
    // A leaf evicted clean (key 150's: only read since `check` faulted it
    // in) keeps no key set: its first blind write reads it from the page
    // store, and a
    // failing read fails the commit before its timestamp, writing nothing.
    db.evict_all().unwrap();
    let (blind, key_sets) = (db.stats().blind_writes, db.stats().key_set_reads);
    fs.fail_read_at(fs.reads());
    let mut tx = db.begin();
    tx.put(key(150), "y").unwrap();
    let r = tx.commit();
    assert!(matches!(r, Err(Error::Io(_))), "{r:?} {:?}", db.stats());
    assert_eq!(db.stats().blind_writes, blind);
    check(&db, &model);
    db.evict_all().unwrap();
    load_one(&db, 150, &mut model);
    let s = db.stats();
    assert_eq!((s.blind_writes, s.key_set_reads), (blind + 1, key_sets + 1), "{s:?}");
    check(&db, &model);
    // A scan yields the error and ends (`Iter` is fused: before
    // 2026-12-08 it tried again at each call, so `count()` over a fault
    // that stays never returned); a new one reads once the fault cleared.
    db.evict_all().unwrap();
    let snap = db.snapshot();
    let mut it = snap.range::<&[u8], _>(..);
    fs.fail_read_at(fs.reads());
    assert!(matches!(it.next(), Some(Err(Error::Io(_)))));
    assert!(it.next().is_none());
    let mut again = snap.range::<&[u8], _>(..);
    assert_eq!(again.next().unwrap().unwrap().0.as_ref(), key(0).as_bytes());
}

#[test]
fn failed_page_write_or_sync_poisons() {
    for sync in [false, true] {
        let fs = FaultFs::new();
        let db = open(&fs);
        let mut model = BTreeMap::new();
        load(&db, 100, 0, &mut model);
        if sync {
            fs.fail_sync_at(fs.syncs());
        } else {
            fs.fail_write_at(fs.writes());
        }
        assert!(db.evict_all().is_err());
        let mut tx = db.begin();
        tx.put("k", "v").unwrap();
        assert!(matches!(tx.commit(), Err(Error::Poisoned)), "sync {sync}");
    }
}

#[test]
fn flipped_bit_in_a_page_segment_is_corruption() {
    let fs = FaultFs::new();
    let db = open(&fs);
    let mut model = BTreeMap::new();
    load(&db, 300, 0, &mut model);
    db.evict_all().unwrap();
    let path = std::path::Path::new(DIR).join("pages-0000000001.seg");
    let mut data = fs.contents(&path).expect("a page segment");
    let len = data.len();
    let mut corrupt = 0;
    // Flip bits all over the segment (past its header); every read either
    // returns the right value or Error::Corruption naming the file.
    for off in (40..len).step_by(97) {
        data[off] ^= 0x10;
    }
    fs.set_contents(&path, data);
    for (k, v) in &model {
        match db.snapshot().get(k) {
            Ok(got) => assert_eq!(got.as_deref(), Some(v.as_bytes()), "{k}"),
            Err(Error::Corruption { file, .. }) => {
                assert!(file.ends_with("pages-0000000001.seg"));
                corrupt += 1;
            }
            Err(e) => panic!("{k}: {e}"),
        }
    }
    assert!(corrupt > 0);
}
