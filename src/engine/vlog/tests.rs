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
