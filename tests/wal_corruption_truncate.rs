//! Damaged logs, cut short: the last segment truncated at every byte offset
//! (a torn tail, counted) and earlier segments cut inside a frame or at a
//! record boundary (corruption).
//!
//! Rules (design/durability.md, "Recovery"): a torn last record of the last
//! segment is truncated and counted; any other damage is `Error::Corruption`
//! naming the file and the offset of the bad frame; recovery never panics and
//! never keeps a value nobody wrote. Shared set-ups: `tests/common/corrupt.rs`.

use bwtx::Error;

mod common;
use common::corrupt::{
    assert_corruption, build, commit_and_reopen, expected, fs_with, multi_segment_log, path, records, segments,
    SEG_HEADER,
};
use common::{dump, fault_opts, DIR};

/// (a) The only segment cut at every byte offset: recovery keeps exactly the
/// whole records before the cut, counting a torn tail iff the cut falls
/// inside a record (or inside the segment header).
#[test]
fn truncated_last_segment_keeps_whole_records() {
    let files = build(1 << 20, 20, None);
    let names = segments(&files);
    assert_eq!(names.len(), 1, "{names:?}");
    let seg = &files[&names[0]];
    let recs = records(seg);
    assert_eq!(recs.iter().filter(|r| r.ts > 0).count(), 20);
    for cut in 0..=seg.len() {
        let ctx = format!("cut at {cut} of {}", seg.len());
        let mut f = files.clone();
        f.insert(names[0].clone(), seg[..cut].to_vec());
        let fs = fs_with(&f);
        let db = fault_opts(&fs).open(DIR).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let whole: Vec<u64> = recs.iter().filter(|r| r.end <= cut && r.ts > 0).map(|r| r.ts).collect();
        let torn = cut < SEG_HEADER || (cut > SEG_HEADER && !recs.iter().any(|r| r.end == cut));
        assert_eq!(dump(&db), (whole.len() as u64, expected(whole.clone())), "{ctx}");
        let stats = db.stats();
        assert_eq!(stats.torn_tails, torn as u64, "{ctx}");
        assert_eq!(stats.replayed, whole.len() as u64, "{ctx}");
        commit_and_reopen(&fs, db, &ctx);
    }
}

/// (b) A non-last segment cut inside its header or inside a record:
/// corruption in that file, at the offset of the incomplete frame.
#[test]
fn truncated_earlier_segment_is_corruption() {
    let files = multi_segment_log();
    let segs = segments(&files);
    let mut cases = 0;
    for name in &segs[..segs.len() - 1] {
        let seg = &files[name];
        let recs = records(seg);
        for cut in 0..seg.len() {
            let offset = if cut < SEG_HEADER {
                0
            } else if let Some(r) = recs.iter().find(|r| r.start < cut && cut < r.end) {
                r.start as u64
            } else {
                continue; // A cut at a record boundary: see the next test.
            };
            let mut f = files.clone();
            f.insert(name.clone(), seg[..cut].to_vec());
            let ctx = format!("{name} cut at {cut}");
            assert_corruption(fault_opts(&fs_with(&f)).open(DIR), name, Some(offset), &ctx);
            cases += 1;
        }
    }
    assert!(cases > 500, "{cases}");
}

/// A non-last segment cut exactly at a record boundary (or emptied to its
/// header) loses whole records that later segments build on: recovery must
/// not return a state that skips them while keeping later commits (the
/// result would not be a prefix of the commit order, and acknowledged
/// commits would vanish without an error).
#[test]
fn earlier_segment_cut_at_a_record_boundary_is_not_silently_skipped() {
    let files = multi_segment_log();
    let segs = segments(&files);
    for name in &segs[..segs.len() - 1] {
        let seg = &files[name];
        let recs = records(seg);
        for cut in std::iter::once(SEG_HEADER).chain(recs.iter().map(|r| r.end).filter(|&e| e < seg.len())) {
            let mut f = files.clone();
            f.insert(name.clone(), seg[..cut].to_vec());
            let ctx = format!("{name} cut at record boundary {cut}");
            match fault_opts(&fs_with(&f)).open(DIR) {
                Err(Error::Corruption { file, .. }) => assert_eq!(file, path(name), "{ctx}"),
                Err(e) => panic!("{ctx}: {e}"),
                Ok(db) => {
                    let (ts, state) = dump(&db);
                    assert_eq!(
                        state,
                        expected(1..=ts),
                        "{ctx}: recovery silently dropped records of a closed segment and kept later ones"
                    );
                }
            }
        }
    }
}
