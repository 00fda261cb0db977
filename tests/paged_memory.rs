//! Memory under a cache budget (issue 11's memory goal, `design/storage.md`
//! §5.1): with a data set many times `Options::cache_size`, a load in large
//! commits on two threads and then a read-and-update phase keep
//! - the cache's own estimate bounded: `Stats::resident_bytes` at most
//!   1.25 x the budget (where committers and readers help the evictor) plus
//!   slack, and `Stats::retired_bytes` (retired chains the epoch has not
//!   freed) at most the budget plus 2 MiB (seen: 2.3-4.5 MB; with the
//!   collection and backpressure of `bwtree/resident.rs` and
//!   `Engine::help_evict` turned off, 7.4 MB: garbage piles up behind
//!   pinned threads; an eviction batch retires up to a few MB at once);
//! - the live heap beyond those estimates (and `Stats::stub_bytes`, the
//!   evicted leaves' stubs) bounded ([`HEAP_BEYOND`],
//!   counted by a counting allocator): the page file's per-write maps stay
//!   bounded by the leaves, not by the page writes;
//! - the process's memory bounded (Linux only, read from
//!   `/proc/self/status`): the peak RSS (`VmHWM`) at most the RSS before the
//!   database opened plus 1.2 x the budget plus [`FIXED_ALLOWANCE`] and
//!   the evicted leaves' key sets ([`KEY_SETS`]).
//!
//! Its own file, so that no other test's allocations share the process. No
//! timing: the phases are counts of operations, and every bound is on
//! bytes. On a real directory (not `FaultFs`, whose files live in the heap).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bwtx::{Db, Durability, Options};
use bwtx_kit::alloc::{Counting, COUNTING, LIVE};
use bwtx_kit::SplitMix64;

/// Counts the live heap bytes (`LIVE`), for the bound on the heap beyond
/// the cache's own estimate.
#[global_allocator]
static GLOBAL: Counting = Counting;

/// The cache budget.
const BUDGET: u64 = 4 << 20;
/// Keys loaded: about 52 MB of page memory (16-byte keys, 100-byte
/// values), 13 x the budget.
const KEYS: u64 = 400_000;
/// Keys per loading commit (as `bwtx bench` loads).
const LOAD_BATCH: u64 = 1_000;
/// Transactions of the second phase, per thread (two operations each: a
/// read and an update).
const TXNS: u64 = 20_000;
/// What the process may hold beyond 1.2 x the budget, whatever the budget
/// (measured about 14-17 MiB with a 1 MiB cache at 600,000 keys, release
/// build): the allocator's arenas and per-thread caches, the threads'
/// stacks, the log's buffers, the evicted leaves' 320-byte stubs and the
/// inner pages (not evictable: about 3.5 MiB here), and the page file's
/// maps (bounded by the evictor's prune). This test's growth was 21.0-23.5
/// MiB (bound 28.8: about 5 MiB of slack for a loaded machine); 26.5 MiB
/// before the page file's maps were pruned and compacted; 37.4 MiB before
/// the retired-byte collection and the allocator trim. With blind writes
/// (the stubs keep their keys' 8-byte fingerprints, [`KEY_SETS`] apart)
/// 27.2-29.7 MiB (three runs); with the merged flush policy (8-part delta
/// chains) 31.95 MiB once in CI beside the other test binaries, over the
/// bound of 31.7 then: the allowance is raised by 2 MiB to keep about 5 MiB
/// of slack over the quiet runs.
const FIXED_ALLOWANCE: u64 = 26 << 20;
/// RSS a closed database may leave above the RSS before it opened (the
/// process's own arenas, the test's counters, the thread stacks' pages).
const CLOSED_ALLOWANCE: u64 = 12 << 20;
/// The evicted leaves' key sets (`design/storage.md` §3: 8 bytes a key,
/// outside the budget like the stubs, so that a blind write counts live
/// keys without the image), at most every key's.
const KEY_SETS: u64 = KEYS * 8;
/// Live heap bytes beyond the resident, retired and stub estimates at the
/// end (the page file's and value log's maps, the mapping table's slots,
/// the log's buffers): seen 6.0 MB with 45,000 page writes and no checkpoint;
/// 9.2 MB before the chain map was pruned by the evictor (it gained an
/// entry, with an allocation, per page write until a checkpoint).
const HEAP_BEYOND: u64 = 15 << 19;

/// The directory, deleted when the test ends (passed or not).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `/proc/self/status` field in bytes (`None` off Linux).
fn status_bytes(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn key(i: u64) -> [u8; 16] {
    let mut b = *b"user000000000000";
    let mut n = i;
    for d in b[4..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    b
}

fn value(rng: &mut SplitMix64) -> [u8; 100] {
    let mut v = [b'v'; 100];
    v[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    v
}

/// The largest resident and retired byte counts seen.
#[derive(Default)]
struct Peaks {
    resident: AtomicU64,
    retired: AtomicU64,
}

impl Peaks {
    fn sample(&self, db: &Db) {
        let s = db.stats();
        self.resident.fetch_max(s.resident_bytes, Relaxed);
        self.retired.fetch_max(s.retired_bytes, Relaxed);
    }
}

#[test]
fn memory_stays_near_the_cache_budget() {
    let dir = TempDir(std::env::temp_dir().join(format!("bwtx-paged-memory-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    COUNTING.store(true, Relaxed);
    let heap_before = LIVE.load(Relaxed);
    let rss_before = status_bytes("VmRSS:");
    let db = Options::new()
        .durability(Durability::Buffered(Duration::from_millis(10)))
        .cache_size(BUDGET)
        .open(&dir.0)
        .unwrap();
    let peaks = Peaks::default();

    // Load: two threads, 1,000 keys a commit.
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..2 {
            let (db, next, peaks) = (&db, &next, &peaks);
            s.spawn(move || {
                let mut rng = SplitMix64::new(t + 1);
                loop {
                    let lo = next.fetch_add(LOAD_BATCH, Relaxed);
                    if lo >= KEYS {
                        return;
                    }
                    let mut tx = db.begin();
                    for i in lo..(lo + LOAD_BATCH).min(KEYS) {
                        tx.put(key(i), value(&mut rng)).unwrap();
                    }
                    tx.commit().unwrap();
                    peaks.sample(db);
                }
            });
        }
    });

    // Reads and updates over every key.
    std::thread::scope(|s| {
        for t in 0..2 {
            let (db, peaks) = (&db, &peaks);
            s.spawn(move || {
                let mut rng = SplitMix64::new(100 + t);
                for n in 0..TXNS {
                    let mut tx = db.begin();
                    let k = key(rng.below(KEYS));
                    assert!(tx.get(k).unwrap().is_some(), "key {k:?} lost");
                    tx.put(key(rng.below(KEYS)), value(&mut rng)).unwrap();
                    // Two threads update random keys: a conflict is fine.
                    if let Err(e) = tx.commit() {
                        assert!(e.is_conflict(), "{e}");
                    }
                    if n % 64 == 0 {
                        peaks.sample(db);
                    }
                }
            });
        }
    });
    let stats = db.stats();
    let heap = (LIVE.load(Relaxed) - heap_before).max(0) as u64;
    let beyond = heap.saturating_sub(stats.resident_bytes + stats.retired_bytes + stats.stub_bytes);
    eprintln!(
        "live heap {heap}: beyond resident {}, retired {} and stubs {}: {beyond} ({} pages written, {} checkpoints)",
        stats.resident_bytes, stats.retired_bytes, stats.stub_bytes, stats.pages_written, stats.checkpoints
    );
    assert!(
        stats.evictions > 0 && stats.cache_misses + stats.read_throughs > 0,
        "the data set pages: {stats:?}"
    );

    let (resident, retired) = (peaks.resident.load(Relaxed), peaks.retired.load(Relaxed));
    eprintln!("budget {BUDGET}: peak resident {resident}, peak retired {retired}");
    // Inner pages (not evictable) count as resident: the slack. The
    // evicted leaves' stubs (about 2 MB here with 128-key leaves) are
    // counted apart (`Stats::stub_bytes`), outside the budget.
    let slack = 4 << 20;
    assert!(
        resident <= BUDGET + BUDGET / 4 + slack,
        "resident bytes peaked at {resident}, budget {BUDGET}"
    );
    // Seen up to 5.8 MB; uncollected, the phases retire hundreds of MB.
    // The slack is for a loaded machine, where a descheduled pinned thread
    // holds the epoch back while the bounded throttle gives up waiting.
    assert!(
        retired <= BUDGET + (4 << 20),
        "retired bytes not freed peaked at {retired}, budget {BUDGET}"
    );

    assert!(
        beyond <= HEAP_BEYOND,
        "live heap {beyond} bytes beyond the resident, retired and stub estimates (bound {HEAP_BEYOND})"
    );

    if let (Some(before), Some(peak)) = (rss_before, status_bytes("VmHWM:")) {
        let growth = peak.saturating_sub(before);
        let bound = BUDGET + BUDGET / 5 + FIXED_ALLOWANCE + KEY_SETS;
        eprintln!("RSS before {before}, peak {peak}: growth {growth}, bound {bound}");
        assert!(
            growth <= bound,
            "peak RSS grew by {growth} bytes, over 1.2 x the budget {BUDGET} + {FIXED_ALLOWANCE} + {KEY_SETS}"
        );
    }
    drop(db);

    // Closed, the database gives its memory back: glibc keeps freed
    // memory in its arenas until trimmed, and the evictor, which trims
    // while the database runs, has stopped (`Engine`'s `TrimOnClose`).
    // Seen: 7.1 MiB above the RSS before the open; 27.2 MiB without the
    // trim at close.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if let (Some(before), Some(after)) = (rss_before, status_bytes("VmRSS:")) {
        let left = after.saturating_sub(before);
        eprintln!("RSS before the open {before}, after the close {after}: {left} left");
        assert!(
            left <= CLOSED_ALLOWANCE,
            "{left} bytes of RSS left after the close (bound {CLOSED_ALLOWANCE})"
        );
    }
}
