//! Segment files: their names, their creation, and the scan of the newest
//! segment at open that finds where appending resumes.
//!
//! A segment is `<prefix>-<seq:010>.seg` in the store's directory (prefix
//! `pages` or `vlog`, [`Kind::prefix`]); its bytes are those of
//! [`super::record`]: a 32-byte header, then 8-aligned records. `seq` fits in
//! 32 bits (it is the high half of an address).
//!
//! The scan tells a *torn tail* from *corruption* as the log's reader does
//! (`crate::wal::reader`): a bad record with no valid record at any 8-aligned
//! offset after it is what a crash in the middle of an unsynced append
//! leaves, and is cut off; a bad record followed by a valid one is damage to
//! data that was once complete, and is reported. A file shorter than its
//! header is a crash between creating the file and syncing its header.

use std::io;
use std::path::Path;

use super::record::{self, Kind, ALIGN, SEGMENT_HEADER_LEN};
use crate::fs::{Fs, FsFile};

/// File name of segment `seq` of `kind`.
pub(crate) fn name(kind: Kind, seq: u64) -> String {
    format!("{}-{seq:010}.seg", kind.prefix())
}

/// The sequence number of a segment file name of `kind`.
pub(crate) fn parse_name(kind: Kind, name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(kind.prefix())?
        .strip_prefix('-')?
        .strip_suffix(".seg")?;
    let seq: u64 = digits.parse().ok()?;
    (digits.len() == 10 && seq <= u64::from(u32::MAX)).then_some(seq)
}

/// Create segment `seq` (truncating any file of that name), write its
/// header, sync it, then sync the directory so that the new name is durable.
pub(crate) fn create(fs: &dyn Fs, dir: &Path, kind: Kind, seq: u64) -> io::Result<Box<dyn FsFile>> {
    let mut f = fs.create(&dir.join(name(kind, seq)))?;
    f.write_all(&record::segment_header(kind, seq))?;
    f.sync()?;
    fs.sync_dir(dir)?;
    Ok(f)
}

/// What the scan of a segment's bytes found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Valid records up to `end`; `torn` is the offset and reason of a torn
    /// tail after them (`None` if the records run to the end of the data).
    Valid {
        end: u64,
        records: u64,
        torn: Option<(u64, &'static str)>,
    },
    /// The file is shorter than its header.
    TornHeader,
}

/// Scan segment `seq` of `kind`: `Err((offset, reason))` for corruption.
pub(crate) fn scan(b: &[u8], kind: Kind, seq: u64) -> Result<Scan, (u64, &'static str)> {
    // Shorter than a header, or a header's length of zeros (a crash after
    // the file's size reached the disk but not its header): a crash while
    // creating it. Nothing is appended before the header is synced, so
    // zeros over a longer file are damage.
    if b.len() < SEGMENT_HEADER_LEN || (b.len() == SEGMENT_HEADER_LEN && b.iter().all(|&x| x == 0)) {
        return Ok(Scan::TornHeader);
    }
    record::check_segment_header(b, kind, seq).map_err(|r| (0, r))?;
    let mut at = SEGMENT_HEADER_LEN;
    let mut records = 0;
    while at < b.len() {
        let bad = match record::decode(&b[at..]) {
            Ok((meta, _, n)) if meta.rkind.belongs_in(kind) => {
                at += n;
                records += 1;
                continue;
            }
            Ok(_) => "record of the wrong kind for its segment",
            Err(bad) => bad.reason(),
        };
        if !is_torn(b, at) {
            return Err((at as u64, bad));
        }
        return Ok(Scan::Valid {
            end: at as u64,
            records,
            torn: Some((at as u64, bad)),
        });
    }
    Ok(Scan::Valid {
        end: at as u64,
        records,
        torn: None,
    })
}

/// Whether nothing valid follows the bad record at `at`: no 8-aligned offset
/// after it starts a record that decodes. A candidate's checksum is computed
/// only once its header's fixed fields are plausible (a known kind, the
/// reserved word zero): checksumming every offset whose length fitted took
/// time quadratic in the rest's size (a large value record cut short).
fn is_torn(b: &[u8], at: usize) -> bool {
    next_record(b, at).is_none()
}

/// The first 8-aligned offset after `at` where a valid record starts.
pub(crate) fn next_record(b: &[u8], at: usize) -> Option<usize> {
    (at + ALIGN..b.len())
        .step_by(ALIGN)
        .find(|&j| record::plausible_header(&b[j..]) && record::decode(&b[j..]).is_ok())
}

/// Whether the bad record at `at`, followed by a valid one, shows an
/// unwritten sector before it (`crate::torn`): what a power loss that kept
/// an append's pages out of order leaves, where a flipped bit leaves none.
/// The bad record's first 16 bytes (its length, checksum and kind, never
/// all zero in a written record) must be among the zeros if they start at
/// `at`.
pub(crate) fn unwritten_before_next(b: &[u8], at: usize) -> bool {
    // Where the bad record ends by its own length.
    let e = crate::le::u32_at(b, at).map_or(usize::MAX, |len| {
        at.saturating_add(record::RECORD_HEADER_LEN)
            .saturating_add(len as usize)
    });
    next_record(b, at).is_some_and(|f| crate::torn::unwritten(b, at, e, f, 16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pagestore::record::{Meta, RecordKind, NO_ADDR};

    fn seg(n: usize) -> (Vec<u8>, Vec<usize>) {
        let mut b = record::segment_header(Kind::Pages, 5).to_vec();
        let mut ends = vec![b.len()];
        for i in 0..n {
            let m = Meta {
                rkind: RecordKind::Base,
                flags: 0,
                tree: 0,
                id: i as u64,
                prev: NO_ADDR,
                max_ts: 1,
            };
            record::encode(&mut b, &m, &vec![i as u8; i * 5 + 1]);
            ends.push(b.len());
        }
        (b, ends)
    }

    #[test]
    fn names() {
        assert_eq!(name(Kind::Pages, 7), "pages-0000000007.seg");
        assert_eq!(name(Kind::ValueLog, 7), "vlog-0000000007.seg");
        assert_eq!(parse_name(Kind::Pages, "pages-0000000007.seg"), Some(7));
        assert_eq!(parse_name(Kind::ValueLog, "pages-0000000007.seg"), None);
        assert_eq!(parse_name(Kind::Pages, "pages-7.seg"), None);
        assert_eq!(parse_name(Kind::Pages, "pages-9999999999.seg"), None, "beyond 32 bits");
        assert_eq!(parse_name(Kind::Pages, "pages-0000000007.seg.tmp"), None);
    }

    #[test]
    fn a_cut_anywhere_is_a_torn_tail() {
        let (b, ends) = seg(4);
        assert_eq!(scan(&b[..SEGMENT_HEADER_LEN - 1], Kind::Pages, 5), Ok(Scan::TornHeader));
        for cut in SEGMENT_HEADER_LEN..=b.len() {
            let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
            let Ok(Scan::Valid { end, records, torn }) = scan(&b[..cut], Kind::Pages, 5) else {
                panic!("cut at {cut} not a torn tail");
            };
            assert_eq!((end as usize, records as usize), (ends[whole], whole), "cut at {cut}");
            assert_eq!(torn.is_some(), cut != ends[whole], "cut at {cut}");
        }
    }

    #[test]
    fn damage_before_the_tail_is_corruption() {
        let (b, ends) = seg(4);
        for at in [0, 20, ends[0], ends[0] + 9, ends[1] + 2, ends[2] + 40] {
            let mut d = b.clone();
            d[at] ^= 0x10;
            let e = scan(&d, Kind::Pages, 5).unwrap_err();
            assert!(e.0 as usize <= at, "flip at {at} reported at {}", e.0);
        }
        assert!(scan(&b, Kind::ValueLog, 5).is_err());
        assert!(scan(&b, Kind::Pages, 6).is_err());
        // Zeros after the last record (a file system that grew the file but
        // lost the data) are a torn tail.
        let mut z = b.clone();
        z.extend_from_slice(&[0; 64]);
        let Ok(Scan::Valid { end, torn: Some(_), .. }) = scan(&z, Kind::Pages, 5) else {
            panic!("zeros not taken for a torn tail");
        };
        assert_eq!(end as usize, b.len());
    }
}
