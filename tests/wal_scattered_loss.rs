//! Power loss that keeps a log's unsynced pages out of order.
//!
//! A disk writes a file's dirty pages back in any order, so a power loss
//! in the middle of writing the log's tail may keep a later 4 KiB page and
//! lose an earlier one, whose bytes then read as the segment's reserved
//! zeros (`FaultFs::power_loss_scattered`). Whole records then follow a
//! damaged one. Recovery must take that for a torn tail, not refuse the
//! log: the records after the lost page were never synced (the segment's
//! marks say how far it was durable, `design/durability.md` §6.4), so
//! nothing acknowledged goes with them. Before the marks, such a reopen
//! failed with `Error::Corruption`.
//!
//! Each transaction writes a marker key `m/<id>` with a 1,500-byte value,
//! so a few records span a page. After every reopen: every acknowledged
//! commit is there (sync mode), the commits present are a prefix of the
//! commit order (their number is the recovered timestamp), each holds its
//! value, and commit timestamps continue.

use std::collections::BTreeMap;
use std::time::Duration;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Error, Options};

mod common;
use common::{dump, fault_opts, markers, DIR};

/// Bytes of each transaction's value: a record spans about 3/8 of a page.
const VALUE: usize = 1500;

fn value(id: usize) -> String {
    let mut v = format!("{id}:");
    while v.len() < VALUE {
        v.push(char::from(b'a' + (v.len() % 26) as u8));
    }
    v
}

fn opts(fs: &FaultFs, mode: Durability) -> Options {
    fault_opts(fs).durability(mode).segment_bytes(1 << 20)
}

/// [`opts`] with a 1-byte page cache (every commit evicts): a buffered
/// log's commits place their 1,500-byte values in the value log, whose
/// unsynced pages a power loss scatters too.
fn paged(fs: &FaultFs, mode: Durability) -> Options {
    opts(fs, mode).cache_size(1)
}

fn commit(db: &Db, id: usize) -> Result<u64, Error> {
    let mut tx = db.begin();
    tx.put(format!("m/{id}"), value(id))?;
    tx.commit()
}

/// Reopen after the power loss and check what recovery kept (see the
/// module doc); `acked`: id -> commit timestamp. Returns the torn tails
/// the reopen found.
fn check(fs: &FaultFs, mode: Durability, acked: &BTreeMap<usize, u64>, ctx: &str) -> u64 {
    check_with(opts, fs, mode, acked, ctx)
}

/// [`check`], opening with `open_opts`.
fn check_with(
    open_opts: fn(&FaultFs, Durability) -> Options,
    fs: &FaultFs,
    mode: Durability,
    acked: &BTreeMap<usize, u64>,
    ctx: &str,
) -> u64 {
    let db = open_opts(fs, mode)
        .open(DIR)
        .unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
    let torn = db.stats().torn_tails;
    let (ts, state) = dump(&db);
    let present = markers(&state);
    if mode == Durability::Sync {
        for id in acked.keys() {
            assert!(present.contains(id), "{ctx}: acknowledged commit {id} lost");
        }
    }
    assert_eq!(present.len() as u64, ts, "{ctx}: {present:?} at ts {ts}: not a prefix");
    for id in &present {
        assert_eq!(state[&format!("m/{id}")], value(*id), "{ctx}: commit {id}'s value");
    }
    let mut tx = db.begin();
    tx.put("z/after", "crash").unwrap();
    assert_eq!(tx.commit().unwrap(), ts + 1, "{ctx}: commit timestamps continue");
    drop(db);
    let db = open_opts(fs, mode).open(DIR).unwrap();
    assert_eq!(dump(&db).0, ts + 1, "{ctx}: second reopen");
    torn
}

/// Buffered, with a timer that never fires during the test: after one
/// `Db::sync`, 40 more commits (about 15 pages) are written, never
/// synced. Power then goes with a random half of those pages on disk.
#[test]
fn a_buffered_tail_losing_pages_out_of_order_is_torn() {
    buffered_scattered(opts);
}

/// The same, paged: the values are in the value log, whose unsynced pages
/// are scattered too; a log record whose value did not survive is cut as
/// the torn tail (it lies past what the log's marks show durable). Before,
/// the reopen refused the value log as damaged (whole records after a
/// lost page).
#[test]
fn a_buffered_tail_losing_pages_out_of_order_is_torn_paged() {
    buffered_scattered(paged);
}

fn buffered_scattered(open_opts: fn(&FaultFs, Durability) -> Options) {
    let mode = Durability::Buffered(Duration::from_secs(3600));
    let mut rng = bwtx_kit::SplitMix64::new(3);
    let mut torn = 0;
    for round in 0..24 {
        let fs = FaultFs::new();
        let db = open_opts(&fs, mode).open(DIR).unwrap();
        for id in 0..5 {
            commit(&db, id).unwrap();
        }
        db.sync().unwrap();
        for id in 5..45 {
            commit(&db, id).unwrap();
        }
        // The machine dies before the close's sync.
        fs.crash_at_sync(fs.syncs());
        drop(db);
        fs.power_loss_scattered(|_, _| rng.next_u64().is_multiple_of(2));
        let acked = (0..5).map(|id| (id, id as u64 + 1)).collect();
        torn += check_with(open_opts, &fs, mode, &acked, &format!("round {round}"));
        // The synced commits are there whatever the pages kept.
        let db = open_opts(&fs, mode).open(DIR).unwrap();
        let present = markers(&dump(&db).1);
        assert!((0..5).all(|id| present.contains(&id)), "round {round}: {present:?}");
        drop(db);
        // `bwtx check`'s scan of the page store's segments takes the value
        // log's scattered tail for a torn one too, not for damage.
        for name in common::files_with_prefix(&fs, "") {
            let path = std::path::Path::new(DIR).join(&name);
            let bytes = fs.contents(&path).unwrap();
            if let Some(r) = bwtx::check::verify_segment(&path, &bytes) {
                r.unwrap_or_else(|e| panic!("round {round}: {name}: {e}"));
            }
        }
    }
    assert!(torn > 0, "no reopen found a torn tail");
}

/// Sync mode, the reviewer's case: a group commit's write of several
/// records (six commits that piled up while the sync before them was held,
/// about 9 KB) is an overwrite of the segment's zero-filled reservation;
/// power goes during its sync, and the disk kept every page of it but the
/// first. The reopen finds whole records after zeros, takes them for a
/// torn tail (the group's mark says the segment was durable only up to the
/// group), and keeps every acknowledged commit.
#[test]
fn a_sync_group_losing_its_first_page_is_torn() {
    let mode = Durability::Sync;
    let fs = FaultFs::new();
    let db = opts(&fs, mode).open(DIR).unwrap();
    for id in 0..3 {
        commit(&db, id).unwrap();
    }
    let acked: BTreeMap<usize, u64> = std::thread::scope(|s| {
        let db = &db;
        fs.hold_syncs("wal-");
        let leader = s.spawn(move || commit(db, 3));
        while fs.held_syncs() == 0 {
            std::thread::yield_now();
        }
        let records = db.stats().log_records;
        let group: Vec<_> = (10..16).map(|id| s.spawn(move || (id, commit(db, id)))).collect();
        while db.stats().log_records < records + 6 {
            std::thread::yield_now();
        }
        // The held sync is the next one counted; the group's, after it,
        // loses power.
        fs.crash_at_sync(fs.syncs() + 1);
        fs.release_syncs();
        let ts = leader.join().unwrap().expect("the held commit is acknowledged");
        let mut acked: BTreeMap<usize, u64> = (0..3).map(|id| (id, id as u64 + 1)).collect();
        acked.insert(3, ts);
        for h in group {
            let (id, r) = h.join().unwrap();
            assert!(r.is_err(), "commit {id} acknowledged although its sync lost power");
        }
        acked
    });
    drop(db);
    let mut first = true;
    fs.power_loss_scattered(|name, _| {
        let lost = name.starts_with("wal-") && first;
        first &= !name.starts_with("wal-");
        !lost
    });
    let torn = check(&fs, mode, &acked, "the group's first page lost");
    assert_eq!(torn, 1);
}

/// The other side: a lost sector in bytes that were synced is damage
/// (the later writes' marks show the sector was durable), never a torn
/// tail that would drop acknowledged commits. Sync mode, one commit at a
/// time: each write after the first starts with a mark, and a clean close
/// writes one past the last write (`Wal::seal`), so a sector lost from
/// the very last commit is damage too (before the seal it read as a torn
/// tail and the commit was cut).
#[test]
fn a_lost_sector_of_synced_bytes_is_damage() {
    let fs = FaultFs::new();
    let db = opts(&fs, Durability::Sync).open(DIR).unwrap();
    for id in 0..12 {
        commit(&db, id).unwrap();
    }
    drop(db);
    let seg = common::files_with_prefix(&fs, "wal-").pop().expect("a log segment");
    let path = std::path::Path::new(DIR).join(&seg);
    let clean = fs.contents(&path).unwrap();
    // Where the records end (the reservation's zeros follow).
    let end = clean.iter().rposition(|&x| x != 0).unwrap() + 1;
    // A sector of commit 4's value (about 1.5 KB a record), and one of
    // the last commit's.
    for at in [(4 * 1_540 / 512 + 1) * 512, (end - 720) / 512 * 512] {
        let mut b = clean.clone();
        assert!(b[at..at + 512].iter().any(|&x| x != 0), "a sector of records");
        b[at..at + 512].fill(0);
        fs.set_contents(&path, b);
        match opts(&fs, Durability::Sync).open(DIR) {
            Err(Error::Corruption { offset, .. }) => assert!(offset <= at as u64, "at {offset}"),
            Err(e) => panic!("sector {at}: expected Corruption, got {e}"),
            Ok(db) => panic!("sector {at}: opened, with {} commits", dump(&db).0),
        }
    }
}
