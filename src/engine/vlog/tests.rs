//! Unit tests of the value log's image references (`refs`): which images
//! need an entry, and what collection counts as unknown.

use crate::engine::chain_parts::AddrList;
use std::path::Path;
use std::sync::Arc;

use super::ValueLog;
use crate::fs::{FaultFs, Fs};
use crate::pagestore::record::addr;

/// A value log whose run's first page segment is 5: images in segments
/// below it are an earlier run's.
fn vlog() -> ValueLog {
    let fs: Arc<dyn Fs> = Arc::new(FaultFs::new());
    ValueLog::open(fs, Path::new("/db"), 4 << 10, 1 << 10, 5).unwrap()
}

#[test]
fn images_without_references_need_no_entry() {
    let v = vlog();
    // This run's images with no reference: no entry, known, and `refs`
    // never grows to want a prune (which walks every page).
    for i in 0..10_000u64 {
        v.note_image(addr(5 + i / 100, 64 + 8 * (i % 100)), Vec::new());
    }
    assert!(crate::sync::lock(&v.refs).is_empty());
    assert!(v.knows(addr(7, 64)) && !v.wants_prune());
    let (live, unknown) = v.referenced(&AddrList::from_iter([addr(5, 64), addr(6, 72)]), false);
    assert!(live.is_empty() && !unknown);
}

#[test]
fn an_earlier_runs_image_is_unknown_until_read() {
    let v = vlog();
    let old = addr(4, 64);
    assert!(!v.knows(old));
    assert!(v.referenced(&AddrList::from_iter([old]), false).1, "unread: unknown");
    // Read, with no reference: known from now on.
    v.note_image(old, Vec::new());
    assert!(v.knows(old));
    assert!(!v.referenced(&AddrList::from_iter([old]), false).1);
    // With references: they count.
    let older = addr(3, 64);
    v.note_image(older, vec![(addr(1, 64), 80)]);
    let (live, unknown) = v.referenced(&AddrList::from_iter([old, older]), false);
    assert_eq!(
        (live.into_iter().collect::<Vec<_>>(), unknown),
        (vec![(addr(1, 64), 80)], false)
    );
}

/// A collection whose deletion of a segment fails after it deleted
/// another forgets the versions placed in the one deleted: a later flush
/// of such a version appends it again, instead of referencing a segment
/// that is gone. The segment whose removal failed stays, readable, and
/// the next collection deletes it.
#[test]
fn a_failed_collection_forgets_what_it_deleted() {
    let fs = FaultFs::new();
    let shared: Arc<dyn Fs> = Arc::new(fs.clone());
    let v = ValueLog::open(shared, Path::new("/db"), 4 << 10, 1 << 10, 5).unwrap();
    let value = [7u8; 4500];
    let mut refs = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..4u64 {
        let key = format!("k{i}");
        addrs.push(v.place(0, key.as_bytes(), 10 + i, &value, &mut refs).unwrap().unwrap());
    }
    let seqs: Vec<u64> = addrs.iter().map(|&a| crate::pagestore::record::addr_seq(a)).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "one value a segment: {seqs:?}");
    // No image references them: the first deletion succeeds, the second fails.
    fs.fail_removes(&crate::pagestore::segment::name(
        crate::pagestore::record::Kind::ValueLog,
        seqs[1],
    ));
    assert!(v.collect(&AddrList::from_iter([]), u64::MAX).is_err());
    assert!(!v.store.has(seqs[0]) && v.store.has(seqs[1]));
    // k0's segment is gone: placing k0 again appends it again.
    let again = v.place(0, b"k0", 10, &value, &mut refs).unwrap().unwrap();
    assert_ne!(again, addrs[0]);
    assert_eq!(
        &v.read_value(0, b"k0", 10, again, value.len() as u32).unwrap()[..],
        &value[..]
    );
    // k1's segment stayed: its value still reads, and its placement stands.
    assert_eq!(
        &v.read_value(0, b"k1", 11, addrs[1], value.len() as u32).unwrap()[..],
        &value[..]
    );
    assert_eq!(v.place(0, b"k1", 11, &value, &mut refs).unwrap(), Some(addrs[1]));
    fs.allow_removes();
    assert!(v.collect(&AddrList::from_iter([]), u64::MAX).unwrap() >= 1);
    assert!(!v.store.has(seqs[1]));
}

/// A read that finishes after a collection deleted its segment (it read
/// through a handle taken before) notes nothing: a later flush of the
/// version appends it again instead of referencing a segment that is gone.
/// Before, the late note named the deleted segment, and `place` returned
/// that address: an image referencing a value no file holds.
#[test]
fn a_late_note_of_a_deleted_segment_is_dropped() {
    let v = vlog();
    let value = [9u8; 4500];
    let mut refs = Vec::new();
    let a = v.place(0, b"k", 10, &value, &mut refs).unwrap().unwrap();
    // Another value: the first one's segment is closed.
    v.place(0, b"m", 11, &value, &mut refs).unwrap().unwrap();
    let seq = crate::pagestore::record::addr_seq(a);
    assert_eq!(
        &v.read_value(0, b"k", 10, a, value.len() as u32).unwrap()[..],
        &value[..]
    );
    // No image references it: collected.
    v.collect(&AddrList::from_iter([]), u64::MAX).unwrap();
    assert!(!v.store.has(seq));
    // The late note of the read above.
    v.note_placed(0, b"k", 10, a);
    let again = v.place(0, b"k", 10, &value, &mut refs).unwrap().unwrap();
    assert!(v.store.has(crate::pagestore::record::addr_seq(again)), "{again:#x}");
    assert_eq!(
        &v.read_value(0, b"k", 10, again, value.len() as u32).unwrap()[..],
        &value[..]
    );
}

/// A value the log references, below the `vlog_head` of the table the
/// next run opens from, damaged (zeroed): recovery's read of it is an
/// error, never the log's torn tail (which would cut the log there and
/// drop every later commit). The value was synced before the table was.
/// Before the check of the head, the read answered "torn" (`Ok(None)`).
#[test]
fn a_damaged_value_below_the_tables_head_is_not_a_torn_tail() {
    let fs = FaultFs::new();
    let shared: Arc<dyn Fs> = Arc::new(fs.clone());
    let value = [7u8; 2000];
    let (a, b, head) = {
        let v = ValueLog::open(shared.clone(), Path::new("/db"), 64 << 10, 1 << 10, 5).unwrap();
        let a = v.place_at_commit(0, b"a", 10, &value).unwrap().unwrap();
        let b = v.place_at_commit(0, b"b", 11, &value).unwrap().unwrap();
        v.sync().unwrap();
        (a, b, v.head())
    };
    assert_eq!(
        crate::pagestore::record::addr_seq(a),
        crate::pagestore::record::addr_seq(b)
    );
    // Zero `b`'s record to the end of the segment (as a medium losing it
    // would leave it): past the segment's valid records.
    let path = Path::new("/db").join(crate::pagestore::segment::name(
        crate::pagestore::record::Kind::ValueLog,
        crate::pagestore::record::addr_seq(b),
    ));
    let mut bytes = fs.contents(&path).unwrap();
    let at = crate::pagestore::record::addr_offset(b) as usize;
    bytes[at..].fill(0);
    fs.set_contents(&path, bytes);
    let v = ValueLog::open(shared, Path::new("/db"), 64 << 10, 1 << 10, 5).unwrap();
    // Without a table: the previous run's tail, torn.
    assert!(v
        .fetch_logged(0, b"b", 11, b, value.len() as u32, false)
        .unwrap()
        .is_none());
    // With a table whose head is past it: damage.
    v.set_published_head(head);
    assert!(v.fetch_logged(0, b"b", 11, b, value.len() as u32, false).is_err());
    assert_eq!(
        &v.fetch_logged(0, b"a", 10, a, value.len() as u32, false)
            .unwrap()
            .unwrap()[..],
        &value[..]
    );
}
