//! Model of the commit gate of paged leaves (`bwtree::paging`, G1;
//! `design/storage.md` §5.2): an eviction batch never swaps a leaf out
//! between a commit's validation (which faulted the leaf in) and its
//! install, so the install, which runs after the commit timestamp was
//! taken, never does I/O. One thread commits a write to a leaf while another
//! evicts every leaf; in every interleaving the commit's install faults
//! nothing in, and the write lands.
//! The leaf is resident when the two threads start (the cache is large, so
//! only `evict_all` evicts); the race needs two preemptions (into the
//! writer before the eviction CAS, and back between its prepare and its
//! install), hence the bound of 2.
//! (Seeded bugs, checked by hand: `Gate::close` without its wait for the
//! commits inside lets the eviction CAS land between prepare and install,
//! and so does the gate without its two SeqCst fences, as loom models
//! SeqCst accesses as AcqRel: this model then fails on
//! `install_fault_ins == 1`.)
#![cfg(loom)]

mod common;

use common::*;
use loom::thread;

#[test]
fn eviction_never_lands_between_prepare_and_install() {
    model_bounded("eviction_never_lands_between_prepare_and_install", 2, || {
        // Every thread on a 4 MiB stack: evictions, fault-ins and a
        // commit overflow a model thread's default one.
        spawn_big(|| {
            let db = paged_db();
            let mut tx = db.begin();
            tx.put("k", "old").unwrap();
            tx.commit().unwrap();
            let d = db.clone();
            let writer = spawn_big(move || {
                let mut tx = d.begin();
                tx.put("k", "new").unwrap();
                tx.commit().unwrap();
            });
            db.evict_all().unwrap();
            writer.join().unwrap();
            let s = db.stats();
            assert_eq!(s.install_fault_ins, 0, "{s:?}");
            assert_eq!(db.snapshot().get("k").unwrap().as_deref(), Some(&b"new"[..]));
        })
        .join()
        .unwrap();
    });
}

/// Blind writes (`bwtree::paging`, P4-P6): a commit validates and installs
/// its write as a version delta over the evicted leaf's stub while a reader
/// faults the leaf in (rebuilding the chain's deltas over the image) and an
/// eviction flushes whatever is over the stub (a delta flush and a new
/// stub) or evicts the faulted-in page. In every interleaving the install
/// faults nothing in, the write lands, the other key reads its value and
/// the live-key count is exact.
/// (Seeded bug, checked by hand: a fault-in that drops the deltas over the
/// stub instead of rebuilding them over the image, `|_| false` in
/// `Tree::fault_in`'s `blind::rebuilt` call: the model fails on the final
/// read of "k", at a preemption bound of 1 as at 2.) Bounded at 1
/// preemption: three threads over a whole paged `Db` give 41,034
/// executions in 20 s at 1, and about 12 minutes of CI at 2.
#[test]
fn blind_install_races_fault_in_and_eviction() {
    model_bounded("blind_install_races_fault_in_and_eviction", 1, || {
        // Every thread on a 4 MiB stack, as above.
        spawn_big(|| {
            let db = paged_db();
            let mut tx = db.begin();
            tx.put("j", "j0").unwrap();
            tx.put("k", "old").unwrap();
            tx.commit().unwrap();
            db.evict_all().unwrap();
            let w = db.clone();
            let writer = spawn_big(move || {
                let mut tx = w.begin();
                tx.put("k", "new").unwrap();
                tx.commit().unwrap();
            });
            let r = db.clone();
            let reader = spawn_big(move || {
                assert_eq!(r.snapshot().get("j").unwrap().as_deref(), Some(&b"j0"[..]));
            });
            db.evict_all().unwrap();
            writer.join().unwrap();
            reader.join().unwrap();
            let s = db.stats();
            assert_eq!(s.install_fault_ins, 0, "{s:?}");
            assert_eq!(s.live_keys, 2, "{s:?}");
            assert_eq!(db.snapshot().get("k").unwrap().as_deref(), Some(&b"new"[..]));
            assert_eq!(db.snapshot().get("j").unwrap().as_deref(), Some(&b"j0"[..]));
        })
        .join()
        .unwrap();
    });
}

/// GC of a blind chain (`Tree::collect_blind`, B1-B3) races a blind write
/// of the same key and a reader: the sweep's CAS loses to the write (and
/// drops nothing) or wins before it (the write then installs over the
/// collected chain), and in every interleaving the write lands, the reader
/// sees a committed value, and the live-key count stays exact.
/// (Seeded bug, checked by hand: the sweep CASing its chain against the
/// head it loads again just before the CAS, instead of the one it
/// collected, loses the racing write: the final read is "k2".)
#[test]
fn blind_gc_races_blind_write() {
    model_bounded("blind_gc_races_blind_write", 1, || {
        // Blind commits and the sweep need more than a model thread's
        // default stack: every thread gets 4 MiB (the model's own thread
        // only spawns the one that runs it).
        let spawn = |f: Box<dyn FnOnce() + Send>| thread::Builder::new().stack_size(1 << 22).spawn(f).unwrap();
        spawn(Box::new(move || {
            let db = paged_db();
            let mut tx = db.begin();
            tx.put("j", "j0").unwrap();
            tx.put("k", "k0").unwrap();
            tx.commit().unwrap();
            db.evict_all().unwrap();
            for v in ["k1", "k2"] {
                let mut tx = db.begin();
                tx.put("k", v).unwrap();
                tx.commit().unwrap();
            }
            let w = db.clone();
            let writer = spawn(Box::new(move || {
                let mut tx = w.begin();
                tx.put("k", "k3").unwrap();
                tx.commit().unwrap();
            }));
            let r = db.clone();
            let reader = spawn(Box::new(move || {
                let v = r.snapshot().get("k").unwrap();
                assert!(matches!(v.as_deref(), Some(b"k2") | Some(b"k3")), "{v:?}");
            }));
            db.collect_garbage();
            writer.join().unwrap();
            reader.join().unwrap();
            let s = db.stats();
            assert_eq!((s.install_fault_ins, s.cache_misses, s.live_keys), (0, 0, 2), "{s:?}");
            assert_eq!(db.snapshot().get("k").unwrap().as_deref(), Some(&b"k3"[..]));
            // Once nothing races: k1 and k2 are gone, k3 stays over the stub.
            db.collect_garbage();
            let s = db.stats();
            assert_eq!(s.versions_stored, s.versions_installed - 2, "{s:?}");
            assert_eq!(db.snapshot().get("j").unwrap().as_deref(), Some(&b"j0"[..]));
        }))
        .join()
        .unwrap();
    });
}

/// Cold stubs (`bwtree::cold`, T6-T8 in `bwtree::mapping_table`): packing
/// an evicted leaf's plain stub (a CAS of the stub for its cold form)
/// races a blind write, whose install CASes a delta over the stub (or, if
/// the packing won, whose fresh descent unpacks the slot first). In every interleaving
/// the write lands, with no fault-in at install (G1), and the live-key
/// count stays exact.
/// (Seeded bug, checked by hand: `MappingTable::pack` storing its cold
/// stub instead of a CAS from the stub overwrites a delta installed
/// meanwhile: the model fails on the value, `old` for `new`.)
#[test]
fn packing_never_loses_a_blind_write() {
    model_bounded("packing_never_loses_a_blind_write", 2, || {
        spawn_big(|| {
            let db = paged_db();
            let mut tx = db.begin();
            tx.put("k", "old").unwrap();
            tx.commit().unwrap();
            db.evict_all().unwrap();
            // A plain stub, as a descent that unpacked it leaves it.
            assert!(db.unpack_stubs() >= 1);
            let d = db.clone();
            let writer = spawn_big(move || {
                let mut tx = d.begin();
                tx.put("k", "new").unwrap();
                tx.commit().unwrap();
            });
            db.pack_stubs();
            writer.join().unwrap();
            assert_eq!(db.snapshot().get("k").unwrap().as_deref(), Some(&b"new"[..]));
            let s = db.stats();
            assert_eq!((s.live_keys, s.install_fault_ins), (1, 0), "{s:?}");
        })
        .join()
        .unwrap();
    });
}

/// Two blind writes to one cold leaf unpack it at once: one unpacking's
/// CAS wins, the other takes the winner's stub, and the cold stub is
/// retired once. Both writes land.
/// (Seeded bug, checked by hand: `MappingTable::unpack` storing its stub
/// instead of a CAS from the cold one overwrites the other's stub and
/// retires the cold stub twice: the model crashes, SIGSEGV.)
#[test]
fn a_cold_leaf_unpacks_once() {
    model_bounded("a_cold_leaf_unpacks_once", 2, || {
        spawn_big(|| {
            let db = paged_db();
            let mut tx = db.begin();
            tx.put("a", "0").unwrap();
            tx.put("b", "0").unwrap();
            tx.commit().unwrap();
            // The eviction leaves a cold stub.
            db.evict_all().unwrap();
            assert_eq!(db.stats().cold_stubs_packed, 1);
            let d = db.clone();
            let writer = spawn_big(move || {
                let mut tx = d.begin();
                tx.put("a", "1").unwrap();
                tx.commit().unwrap();
            });
            let mut tx = db.begin();
            tx.put("b", "1").unwrap();
            tx.commit().unwrap();
            writer.join().unwrap();
            let snap = db.snapshot();
            assert_eq!(snap.get("a").unwrap().as_deref(), Some(&b"1"[..]));
            assert_eq!(snap.get("b").unwrap().as_deref(), Some(&b"1"[..]));
            assert_eq!(db.stats().live_keys, 2);
        })
        .join()
        .unwrap();
    });
}

/// Aging key sets (KS1 in `bwtree::paging`): an aging pass drops a cold
/// leaf's key set by a CAS of its cold stub for one without the set (C2),
/// racing a blind write whose descent unpacks the cold stub and whose
/// install CASes a delta over it. In every interleaving both writes land
/// and the live-key count stays exact: the write of an existing key reads
/// it live from the set kept or from the one read back (P7), and the new
/// key counts once.
/// (Seeded bug, checked by hand: `MappingTable::replace_cold` storing its
/// new cold stub instead of a CAS from the old one overwrites the stub the
/// write unpacked and its delta: the model fails on the value, `old` for
/// `new`.)
#[test]
fn dropping_a_key_set_never_loses_a_blind_write() {
    model_bounded("dropping_a_key_set_never_loses_a_blind_write", 2, || {
        spawn_big(|| {
            let db = paged_db();
            let mut tx = db.begin();
            tx.put("k", "old").unwrap();
            tx.commit().unwrap();
            // Evicted dirty: a cold stub with a key set.
            db.evict_all().unwrap();
            let d = db.clone();
            let writer = spawn_big(move || {
                let mut tx = d.begin();
                tx.put("k", "new").unwrap();
                tx.put("j", "x").unwrap();
                tx.commit().unwrap();
            });
            db.drop_key_sets();
            writer.join().unwrap();
            let snap = db.snapshot();
            assert_eq!(snap.get("k").unwrap().as_deref(), Some(&b"new"[..]));
            assert_eq!(snap.get("j").unwrap().as_deref(), Some(&b"x"[..]));
            let s = db.stats();
            assert_eq!((s.live_keys, s.install_fault_ins), (2, 0), "{s:?}");
        })
        .join()
        .unwrap();
    });
}
