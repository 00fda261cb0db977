//! The log store writes its entries in postcard (tag 1,
//! `keys::encode_entry`) and reads both encodings: postcard and the JSON
//! that builds before it wrote, so a node's directory from an earlier build opens with
//! its log intact; a record in neither encoding is a read error naming the
//! log, not a panic.

use bwtx_raft::keys::{self, decode_entry, encode_entry, to_json};
use bwtx_raft::types::{log_id, Command, Entry, EntryPayload, Proposal};
use bwtx_raft::LogStore;
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::RaftLogReader;

fn entry(index: u64) -> Entry {
    Entry {
        log_id: log_id(2, 1, index),
        payload: if index.is_multiple_of(3) {
            EntryPayload::Blank
        } else {
            EntryPayload::Normal(Command::Batch {
                txns: vec![Proposal {
                    snapshot: index - 1,
                    writes: vec![(keys::data_key(format!("k{index}").as_bytes()), Some(vec![b'v'; 40]))],
                    reads: vec![],
                    ranges: vec![],
                }],
            })
        },
    }
}

fn open(dir: &std::path::Path) -> bwtx::Db {
    bwtx::Options::default()
        .durability(bwtx::Durability::Sync)
        .open(dir)
        .unwrap()
}

/// JSON for entries 1-4 (an earlier build's), postcard for 5-8.
fn write_mixed(db: &bwtx::Db) {
    let mut tx = db.begin();
    for i in 1..=8 {
        let raw = if i <= 4 {
            to_json(&entry(i))
        } else {
            encode_entry(&entry(i))
        };
        tx.put(keys::log_key(i), raw).unwrap();
    }
    tx.commit().unwrap();
}

fn text(e: &Entry) -> Vec<u8> {
    to_json(e)
}

#[tokio::test]
async fn a_log_of_json_and_postcard_entries_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    write_mixed(&open(dir.path()));
    let mut store = LogStore::new(open(dir.path())).unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(2, 1, 8)));
    let got = store.try_get_log_entries(1..9).await.unwrap();
    assert_eq!(got.len(), 8);
    for (i, e) in (1..=8).zip(&got) {
        assert_eq!(text(e), text(&entry(i)), "entry {i}");
    }
    // The last entry in JSON alone (a directory not yet written by this
    // build) gives the log state too.
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut tx = db.begin();
    tx.put(keys::log_key(1), to_json(&entry(1))).unwrap();
    tx.commit().unwrap();
    drop(db);
    let mut store = LogStore::new(open(dir.path())).unwrap();
    assert_eq!(store.get_log_state().await.unwrap().last_log_id, Some(log_id(2, 1, 1)));
}

#[tokio::test]
async fn a_record_in_neither_encoding_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    write_mixed(&db);
    let mut tx = db.begin();
    let mut bad = encode_entry(&entry(6));
    bad[0] = 9;
    tx.put(keys::log_key(6), bad).unwrap();
    // A postcard entry cut short.
    let good = encode_entry(&entry(7));
    tx.put(keys::log_key(7), &good[..good.len() - 2]).unwrap();
    tx.commit().unwrap();
    drop(db);
    let mut store = LogStore::new(open(dir.path())).unwrap();
    let err = store.try_get_log_entries(1..9).await.unwrap_err();
    assert!(err.to_string().contains("raft log"), "{err}");
    assert!(err.to_string().contains("tag 9"), "{err}");
    let err = store.try_get_log_entries(7..8).await.unwrap_err();
    assert!(err.to_string().contains("raft log"), "{err}");
    // The entries around them still read.
    assert_eq!(store.try_get_log_entries(1..6).await.unwrap().len(), 5);
    assert_eq!(store.try_get_log_entries(8..9).await.unwrap().len(), 1);
}

#[tokio::test]
async fn appended_entries_are_stored_in_postcard() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut store = LogStore::new(db.clone()).unwrap();
    // Returns once the entries' flush callback fired: they are durable.
    store.blocking_append(vec![entry(1), entry(2), entry(3)]).await.unwrap();
    let snap = db.snapshot();
    for i in 1..=3 {
        let raw = snap.get(keys::log_key(i)).unwrap().unwrap();
        assert_eq!(raw[0], keys::ENTRY_POSTCARD, "entry {i} starts with the postcard tag");
        assert!(raw.len() < to_json(&entry(i)).len(), "entry {i}: {} bytes", raw.len());
        assert_eq!(text(&decode_entry(&raw).unwrap()), text(&entry(i)));
    }
}

/// A log missing an entry in the middle (a lost record): reading a range
/// across the hole is an error, never the entries around it as if they
/// were consecutive (openraft would apply past the missing one).
#[tokio::test]
async fn a_hole_in_the_log_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        write_mixed(&db);
        db.transaction(|tx| tx.delete(keys::log_key(6))).unwrap();
    }
    let mut store = LogStore::new(open(dir.path())).unwrap();
    assert!(store.try_get_log_entries(1..9).await.is_err());
    assert!(store.try_get_log_entries(5..).await.is_err());
    // Ranges on either side of it read.
    assert_eq!(store.try_get_log_entries(1..6).await.unwrap().len(), 5);
    assert_eq!(store.try_get_log_entries(7..9).await.unwrap().len(), 2);
}
