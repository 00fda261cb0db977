//! Damaged logs, bit flips: in every header byte and in the payloads of the
//! last segment and of every segment.
//!
//! Rules (design/durability.md, "Recovery"): a torn last record of the last
//! segment is truncated and counted; any other damage is `Error::Corruption`
//! naming the file and the offset of the bad frame; recovery never panics and
//! never keeps a value nobody wrote. Shared set-ups: `tests/common/corrupt.rs`.
//!
//! Scale by hand: `BWTX_CORRUPT_ALL_BITS=1` flips every bit of every payload
//! byte (default: one bit per byte).

use bwtx_kit::env;

mod common;
use common::corrupt::{assert_corruption, build, expected, fs_with, multi_segment_log, records, segments, Files};
use common::{dump, fault_opts, DIR};

/// Flip bits of `seg` (segment `name`, the last segment iff `last`) in every
/// header byte and payload byte, and check each recovery.
fn flip_sweep(files: &Files, name: &str, last: bool) -> usize {
    let all_bits = env::parse::<u64>("BWTX_CORRUPT_ALL_BITS").unwrap_or(0) != 0;
    let seg = &files[name];
    let recs = records(seg);
    let mut cases = 0;
    for pos in 0..seg.len() {
        // Every bit of the segment header and of each frame (len, crc); one
        // bit per payload byte unless asked for all.
        let rec = recs.iter().position(|r| r.start <= pos && pos < r.end);
        let in_frame = rec.is_none_or(|r| pos < recs[r].start + 8);
        let bits: Vec<u8> = if in_frame || all_bits {
            (0..8).collect()
        } else {
            vec![(pos % 8) as u8]
        };
        for bit in bits {
            let ctx = format!("{name}: bit {bit} of byte {pos} flipped");
            let mut d = seg.clone();
            d[pos] ^= 1 << bit;
            let mut f = files.clone();
            f.insert(name.to_owned(), d);
            let fs = fs_with(&f);
            let r = fault_opts(&fs).open(DIR);
            cases += 1;
            match rec {
                None if pos >= 12 => {
                    // The header's reserved word (zero in version 1).
                    match r {
                        Ok(db) => {
                            let (ts, state) = dump(&db);
                            assert_eq!(state, expected(1..=ts), "{ctx}");
                            assert_eq!(ts, 20, "{ctx}: a reserved header bit lost records");
                        }
                        Err(e) => assert_corruption(Err(e), name, Some(0), &ctx),
                    }
                }
                None => assert_corruption(r, name, Some(0), &ctx),
                Some(i) if last && i + 1 == recs.len() => match r {
                    // The last record: a torn tail (dropped) or corruption,
                    // never a changed value.
                    Ok(db) => {
                        let kept: Vec<u64> = recs[..i].iter().map(|r| r.ts).filter(|&t| t > 0).collect();
                        let (ts, state) = dump(&db);
                        assert_eq!(db.stats().torn_tails, 1, "{ctx}");
                        let first = recs.iter().map(|r| r.ts).find(|&t| t > 0).unwrap();
                        let before: Vec<u64> = (1..first).collect();
                        // The last frame is the mark a clean close writes
                        // (`Wal::seal`): dropping it keeps every commit.
                        let want = match recs[i].ts {
                            0 => kept.last().copied().unwrap_or(first - 1),
                            t => t - 1,
                        };
                        assert_eq!(ts, want, "{ctx}");
                        assert_eq!(state, expected(before.into_iter().chain(kept)), "{ctx}");
                    }
                    Err(e) => assert_corruption(Err(e), name, Some(recs[i].start as u64), &ctx),
                },
                Some(i) => assert_corruption(r, name, Some(recs[i].start as u64), &ctx),
            }
        }
    }
    cases
}

/// (c) Bit flips in the only segment: every header byte and the payloads of
/// every record but the last are corruption at that record's offset.
#[test]
fn bit_flips_in_the_last_segment() {
    let files = build(1 << 20, 20, None);
    let segs = segments(&files);
    assert_eq!(segs.len(), 1);
    assert!(flip_sweep(&files, &segs[0], true) > 2000);
}

/// (c) Bit flips in every segment of a multi-segment log.
#[test]
fn bit_flips_in_every_segment() {
    let files = multi_segment_log();
    let segs = segments(&files);
    let mut cases = 0;
    for (i, name) in segs.iter().enumerate() {
        cases += flip_sweep(&files, name, i + 1 == segs.len());
    }
    assert!(cases > 2000, "{cases}");
}
