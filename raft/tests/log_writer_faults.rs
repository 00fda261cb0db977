//! The log store's writer when its `Db` fails under it (`bwtx::fs::FaultFs`):
//! a failed or panicking commit of appended entries answers every flush
//! callback with an error, takes the entries out of the log's state (they
//! are not in the log, and never will be), and fails every later write.
//!
//! (Before: a panicking commit killed the writer thread, which dropped the
//! callbacks unanswered; a failed one left its entries readable, so the
//! store reported a last log id it did not hold.)

use std::sync::Arc;

use bwtx::fs::FaultFs;
use bwtx_raft::keys;
use bwtx_raft::types::{log_id, Command, Entry, EntryPayload, Proposal, TypeConfig};
use bwtx_raft::LogStore;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::type_config::TypeConfigExt;
use openraft::RaftLogReader;

fn entry(index: u64) -> Entry {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Normal(Command::Batch {
            txns: vec![Proposal {
                snapshot: index - 1,
                writes: vec![(keys::data_key(format!("k{index}").as_bytes()), Some(vec![b'v'; 40]))],
                reads: vec![],
                ranges: vec![],
            }],
        }),
    }
}

fn store(fs: &FaultFs) -> LogStore {
    let db = bwtx::Options::new()
        .file_system(Arc::new(fs.clone()))
        .durability(bwtx::Durability::Sync)
        .open("/log")
        .unwrap();
    LogStore::new(db).unwrap()
}

/// Append entries `from..=to` and wait for their flush callback: its
/// result, or `None` if the callback was dropped unanswered.
async fn append(store: &mut LogStore, from: u64, to: u64) -> Option<Result<(), std::io::Error>> {
    let (tx, rx) = TypeConfig::oneshot();
    store
        .append((from..=to).map(entry), IOFlushed::<TypeConfig>::signal(tx))
        .await
        .unwrap();
    rx.await.ok()
}

async fn last_index(store: &mut LogStore) -> Option<u64> {
    store.get_log_state().await.unwrap().last_log_id.map(|id| id.index)
}

#[tokio::test]
async fn a_failed_append_is_answered_and_leaves_the_log_state() {
    let fs = FaultFs::new();
    let mut s = store(&fs);
    append(&mut s, 1, 3).await.expect("answered").unwrap();
    fs.fail_next_write("wal-");
    let r = append(&mut s, 4, 5).await.expect("answered");
    assert!(r.is_err());
    assert_eq!(last_index(&mut s).await, Some(3), "entries 4 and 5 are not in the log");
    assert_eq!(s.try_get_log_entries(1..4).await.unwrap().len(), 3);
    assert_eq!(s.try_get_log_entries(1..).await.unwrap().len(), 3);
    // A bounded read reaching the lost entries is an error, not a short
    // answer (openraft would apply a short read of committed entries and
    // count them applied), and not a panic; an open-ended one ends where
    // the log does.
    assert!(s.try_get_log_entries(1..10).await.is_err());
    assert!(s.try_get_log_entries(5..6).await.is_err());
    assert!(s.try_get_log_entries(4..).await.unwrap().is_empty());
    // Poisoned: later appends fail too, and are not readable either.
    assert!(append(&mut s, 4, 4).await.expect("answered").is_err());
    assert_eq!(last_index(&mut s).await, Some(3));
}

#[tokio::test]
async fn a_panicking_append_is_answered_with_an_error() {
    let fs = FaultFs::new();
    let mut s = store(&fs);
    append(&mut s, 1, 2).await.expect("answered").unwrap();
    fs.panic_next_sync("wal-");
    let r = append(&mut s, 3, 3).await.expect("the callback fired, not dropped");
    let e = r.unwrap_err().to_string();
    assert!(e.contains("panicked"), "{e}");
    assert_eq!(last_index(&mut s).await, Some(2));
    // The writer lives on, poisoned: a vote is refused, not lost.
    let vote = bwtx_raft::types::Vote::new(2, 1);
    assert!(s.save_vote(&vote).await.is_err());
    assert!(append(&mut s, 3, 3).await.expect("answered").is_err());
}
