//! A model of exact counts (`mvcc::counts`, `design/mvcc.md` §12): a
//! committer deleting one key and creating two, against a reader whose
//! snapshot's `len` must equal its own scan, whether it sees the commit or
//! not. The commit records its delta before it can become visible, and
//! the reader's fold reads it in timestamp order.
#![cfg(loom)]

mod common;

use common::*;
use loom::thread;

/// (Seeded bug, checked by hand: recording the delta after publication
/// instead of before lets the reader's fold pass a visible commit whose
/// slot is not written yet; it counts 0 for it, and this model fails with
/// `len` 1 against a scan of 2.)
#[test]
fn len_matches_the_scan_under_concurrent_commits() {
    model("len_matches_the_scan_under_concurrent_commits", || {
        let db = db();
        db.transaction(|tx| tx.put("a", "0")).unwrap();
        let d = db.clone();
        let reader = thread::spawn(move || {
            let s = d.snapshot();
            let scanned = s.range::<&str, _>(..).count() as u64;
            assert_eq!(s.len(), scanned, "snapshot at {}", s.ts());
        });
        db.transaction(|tx| {
            tx.delete("a")?;
            tx.put("b", "1")?;
            tx.put("c", "2")
        })
        .unwrap();
        reader.join().unwrap();
        let s = db.snapshot();
        assert_eq!((s.len(), s.range::<&str, _>(..).count()), (2, 2));
    });
}
