//! Offline verification of a segment file's bytes (for `bwtx check`): every
//! record frames and checksums correctly and belongs in its segment's kind,
//! as the scan at open checks the newest segment (`super::segment::scan`).
//! A bad record with nothing valid after it is a *torn tail* (what a crash
//! in an unsynced append leaves; the run that wrote it never published an
//! address in it), reported but not damage, and so is one followed by
//! valid records after an unwritten sector (`crate::torn`: a power loss
//! that kept the append's pages out of order); another bad record followed
//! by a valid one is [`Error::Corruption`] with the file and the record's
//! offset.

use std::path::Path;

use super::record::Kind;
use super::segment::{self, Scan};
use crate::{Error, Result};

/// What the scan of one segment file found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    /// `true` for a value-log segment (`vlog-*.seg`), `false` for a page
    /// segment (`pages-*.seg`).
    pub value_log: bool,
    /// Valid records.
    pub records: u64,
    /// A torn tail after them: its offset and what is wrong there (a file
    /// shorter than its header, or a header's length of zeros: offset 0).
    pub torn_tail: Option<(u64, &'static str)>,
}

/// Verify the segment file at `path`, whose content is `bytes`: `None` if
/// its name is not a page or value-log segment's, else its summary, or
/// [`Error::Corruption`] naming `path` and the damaged record's offset.
pub fn verify_segment(path: &Path, bytes: &[u8]) -> Option<Result<SegmentSummary>> {
    let name = path.file_name()?.to_str()?;
    let (kind, seq) = [Kind::Pages, Kind::ValueLog]
        .into_iter()
        .find_map(|k| segment::parse_name(k, name).map(|seq| (k, seq)))?;
    let value_log = kind == Kind::ValueLog;
    Some(match segment::scan(bytes, kind, seq) {
        Ok(Scan::Valid { records, torn, .. }) => Ok(SegmentSummary {
            value_log,
            records,
            torn_tail: torn,
        }),
        Ok(Scan::TornHeader) => Ok(SegmentSummary {
            value_log,
            records: 0,
            torn_tail: Some((0, "segment header truncated or zeroed")),
        }),
        // Whole records after an unwritten sector (`crate::torn`): what a
        // power loss leaves of an unsynced append whose pages reached the
        // disk out of order. The database never reads there (the open
        // appends to a new segment, and recovery cuts the log records
        // that reference such values: `design/durability.md` §6 step 5).
        Err((offset, _)) if segment::unwritten_before_next(bytes, offset as usize) => Ok(SegmentSummary {
            value_log,
            records: count_before(bytes, offset, kind, seq),
            torn_tail: Some((offset, "unsynced pages lost out of order (whole records after zeros)")),
        }),
        Err((offset, reason)) => Err(Error::Corruption {
            file: path.to_path_buf(),
            offset,
            reason,
        }),
    })
}

/// The valid records before offset `end` of segment bytes `b` (whose scan
/// stopped at a bad record there).
fn count_before(b: &[u8], end: u64, kind: Kind, seq: u64) -> u64 {
    match segment::scan(&b[..end as usize], kind, seq) {
        Ok(Scan::Valid { records, .. }) => records,
        _ => 0,
    }
}
