//! A commit that panics after taking its timestamp and before appending
//! its log record (here: the value log's fsync panics while the commit
//! places a large value at commit, `design/storage.md` §10.1) poisons the
//! log: a commit that took the next timestamp meanwhile, whose record
//! would wait behind the missing one forever, fails with
//! `Error::Poisoned` instead. A reopen keeps every commit acknowledged
//! before.
//!
//! (Before: the later commit spun forever in the log's wait, and the
//! database could not be closed.)

mod common;

use std::sync::mpsc;
use std::time::Duration;

use bwtx::fs::FaultFs;
use bwtx::{Durability, Error};
use common::{fault_opts, DIR};

#[test]
fn a_commit_that_panics_before_its_log_record_poisons_the_log() {
    let fs = FaultFs::new();
    // 4 KiB segments: a 5,000-byte value fills one, so the next value
    // placed at commit rotates the value log (and syncs the full segment).
    let opts = || {
        fault_opts(&fs)
            .durability(Durability::Buffered(Duration::from_secs(3600)))
            .cache_size(1 << 20)
            .segment_bytes(4 << 10)
    };
    let db = opts().open(DIR).unwrap();
    let big = vec![b'v'; 5_000];
    db.transaction(|tx| tx.put("big1", &big)).unwrap();
    db.transaction(|tx| tx.put("small1", "1")).unwrap();

    // Commit A takes its timestamp, then waits in the value log's sync.
    fs.hold_syncs("vlog-");
    let a = {
        let db = db.clone();
        let big = big.clone();
        std::thread::spawn(move || {
            let _ = db.transaction(|tx| tx.put("big2", &big));
        })
    };
    while fs.held_syncs() == 0 {
        std::thread::yield_now();
    }
    // Commit B takes the next timestamp and appends its record, parked
    // behind A's.
    let records = db.stats().log_records;
    let (tx, rx) = mpsc::channel();
    let b = {
        let db = db.clone();
        std::thread::spawn(move || {
            let _ = tx.send(db.transaction(|tx| tx.put("small2", "2")));
        })
    };
    while db.stats().log_records == records {
        std::thread::yield_now();
    }
    // A's sync panics: A unwinds before appending its record.
    fs.panic_next_sync("vlog-");
    fs.release_syncs();
    assert!(a.join().is_err(), "commit A did not panic");
    // A liveness bound, not a timing measurement: without the poisoning
    // B never returns.
    let got = rx.recv_timeout(Duration::from_secs(60)).expect("commit B returned");
    assert!(matches!(got, Err(Error::Poisoned)), "commit B: {got:?}");
    b.join().unwrap();
    assert!(matches!(db.transaction(|tx| tx.put("c", "3")), Err(Error::Poisoned)));

    drop(db);
    let db = opts().open(DIR).unwrap();
    let snap = db.snapshot();
    assert_eq!(snap.get("big1").unwrap().as_deref(), Some(&big[..]));
    assert_eq!(snap.get("small1").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(snap.get("big2").unwrap(), None);
    db.transaction(|tx| tx.put("again", "4")).unwrap();
}
