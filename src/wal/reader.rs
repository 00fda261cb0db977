//! Reading log segments back: every record, and where and why reading stopped.

use super::record::{self, Commit, Frame};

/// The outcome of reading one segment's bytes.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) commits: Vec<Commit>,
    /// Offset of each commit's frame.
    pub(crate) offsets: Vec<u64>,
    /// Bytes up to the end of the last good record.
    pub(crate) valid_len: u64,
    /// Set if reading stopped before the end: the offset of the first bad
    /// frame (or of the header) and why.
    pub(crate) damage: Option<(u64, &'static str)>,
    /// The damage is a partial record (or header) running to the end of the
    /// data: what a crash in the middle of a write leaves.
    pub(crate) torn: bool,
    /// The base its header carries (`record::header_base`).
    pub(crate) base: Option<u32>,
    /// In a segment with marks (`record::header_marks`): the highest
    /// offset a valid mark carries (the header's length if none). Its
    /// records before it were durable when the writer wrote a later mark;
    /// those from it on may never have been synced. `None` for a segment
    /// without marks.
    pub(crate) synced_to: Option<u64>,
}

/// Read the records of a segment.
pub(crate) fn read_segment(b: &[u8]) -> Segment {
    let mut seg = Segment {
        commits: Vec::new(),
        offsets: Vec::new(),
        valid_len: 0,
        damage: None,
        torn: false,
        base: None,
        synced_to: None,
    };
    if b.len() < record::HEADER_LEN || (b.len() == record::HEADER_LEN && b.iter().all(|&x| x == 0)) {
        // A crash between creating the file and syncing its header (which
        // may leave the file's size and zeros where the header goes). Not
        // a longer file: nothing is written or reserved before the header
        // is synced (W0), so zeros over a longer one are damage.
        seg.damage = Some((0, "segment header truncated"));
        seg.torn = true;
        return seg;
    }
    let Some(version) = record::header_version(b) else {
        seg.damage = Some((0, "bad segment header"));
        return seg;
    };
    seg.base = record::header_base(b);
    if record::header_marks(b) {
        seg.synced_to = Some(record::HEADER_LEN as u64);
    }
    let mut at = record::HEADER_LEN;
    seg.valid_len = at as u64;
    while at < b.len() {
        match record::decode_frame(&b[at..], version) {
            Ok((frame, n)) => {
                match frame {
                    Frame::Commit(c) => {
                        seg.commits.push(c);
                        seg.offsets.push(at as u64);
                    }
                    Frame::Mark(m) => {
                        if let Some(s) = &mut seg.synced_to {
                            *s = (*s).max(m);
                        }
                    }
                }
                at += n;
                seg.valid_len = at as u64;
            }
            // Zeros to the end: the segment's reserved space, never
            // written (a record's frame starts with its nonzero length).
            Err(_) if b[at..].iter().all(|&x| x == 0) => return seg,
            Err(bad) => {
                seg.damage = Some((at as u64, bad.reason()));
                seg.torn = is_torn(b, at, version, record::header_marks(b));
                return seg;
            }
        }
    }
    seg
}

/// Whether the bad frame at offset `d` of segment `b` is a write cut short
/// by a power loss rather than damage to bytes that were once durable
/// (`design/durability.md` §6.4 and §7):
///
/// - *Nothing valid follows it*: a torn final write.
/// - In a segment with marks (`marks`, `record::header_marks`): *whole
///   frames follow it, but a sector is unwritten between it and the first
///   of them, and no mark after it says the segment was durable past
///   `d`*: a power loss that kept a later page of the unsynced tail and
///   lost an earlier one (a disk writes back pages in any order; the zero
///   fill of a sync-mode segment turns every write into an overwrite of
///   zeros). An unwritten sector reads as zeros: a whole 512-byte sector
///   of zeros between `d` and the first whole frame, or zeros from `d` (its
///   frame's length and checksum included: no record's frame is 8 zero
///   bytes) to the end of `d`'s sector. A mark written after `d` was synced
///   carries an offset past `d`.
///
/// Anything else is damage, reported, never truncated away: a flipped bit
/// in an earlier record (say in its length, which makes it look like it
/// runs past the end) leaves no zero sector, and a lost sector in bytes a
/// later write's mark shows durable is refused by the mark. What stays
/// ambiguous is the write a crash found unsynced-or-just-synced with
/// nothing written after its sync: a sector of it lost by the medium
/// after its sync reads as a torn write, as the last record always did.
///
/// Every offset after `d` is tried, so each must cost little: a
/// candidate's checksum (over up to the rest of the segment) is computed
/// only once its length fits and its payload is well formed, which almost
/// no offset inside a value passes. Checksumming every offset whose length
/// fitted took time quadratic in the rest's size: hours for a 100 MB record
/// of random bytes cut short.
fn is_torn(b: &[u8], d: usize, version: u32, marks: bool) -> bool {
    // Where the bad frame ends by its own length (`crate::torn::unwritten`).
    let e = crate::le::u32_at(b, d).map_or(usize::MAX, |len| {
        d.saturating_add(record::FRAME_LEN).saturating_add(len as usize)
    });
    let mut first = false;
    // Every offset, inside whole frames too: a frame found inside a value
    // must not hide a real mark after it (one found inside a value that
    // says more than `d` was durable is taken at its word: damage).
    for j in d + 1..b.len() {
        let Some((frame, _)) = frame_at(&b[j..], version) else {
            continue;
        };
        if let Frame::Mark(synced) = frame {
            if synced > d as u64 {
                return false;
            }
        }
        if !first {
            if !marks || !crate::torn::unwritten(b, d, e, j, record::FRAME_LEN) {
                return false;
            }
            first = true;
        }
    }
    true
}

/// The frame at the start of `b`, if a valid one starts there: the cheap
/// tests first (a nonzero length that fits, a well-formed payload), then
/// the checksum, through [`record::decode_frame`].
fn frame_at(b: &[u8], version: u32) -> Option<(Frame, usize)> {
    let len = crate::le::u32_at(b, 0)? as usize;
    let payload = b.get(record::FRAME_LEN..record::FRAME_LEN.saturating_add(len))?;
    if len == 0 || !record::well_formed(payload, version) {
        return None;
    }
    #[cfg(test)]
    CHECKSUMS.with(|c| c.set(c.get() + 1));
    record::decode_frame(b, version).ok()
}

#[cfg(test)]
thread_local! {
    /// Candidates [`frame_at`] checksummed on this thread (the tests of the
    /// scan's cost count them).
    static CHECKSUMS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn log(n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut b = record::header(Some(0)).to_vec();
        let mut ends = vec![b.len()];
        for ts in 1..=n {
            let k = Bytes::from(format!("key{ts}"));
            let v = Some(Bytes::from(vec![ts as u8; ts as usize * 3]));
            record::encode(&mut b, ts, [(0, &k, record::ToLog::Inline(&v))].into_iter());
            ends.push(b.len());
        }
        (b, ends)
    }

    #[test]
    fn truncation_anywhere_is_a_torn_tail() {
        let (b, ends) = log(5);
        for cut in record::HEADER_LEN..b.len() {
            let s = read_segment(&b[..cut]);
            let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
            assert_eq!(s.commits.len(), whole, "cut at {cut}");
            assert_eq!(s.valid_len as usize, ends[whole]);
            assert_eq!(s.torn, cut != ends[whole], "cut at {cut}");
        }
    }

    #[test]
    fn damage_before_the_tail_is_not_torn() {
        let (b, ends) = log(5);
        for at in [ends[1] + 9, ends[2] + 2, ends[2] + 3, ends[0] + 12, ends[0]] {
            let mut d = b.clone();
            d[at] ^= 0x10;
            let s = read_segment(&d);
            assert!(s.damage.is_some(), "flip at {at}");
            assert!(!s.torn, "flip at {at} taken for a torn tail");
        }
    }

    /// A segment's reserved space (`writer::PREALLOCATE`) reads as zeros
    /// after its records: the end of the log, not damage. A record cut short
    /// before it is still a torn tail, and a record after zeros is damage.
    #[test]
    fn reserved_zeros_end_a_segment_and_hide_no_damage() {
        let (b, ends) = log(5);
        let zeros = |mut v: Vec<u8>, n: usize| {
            v.resize(v.len() + n, 0);
            v
        };
        // Every record, then zeros: no damage.
        for n in [1, 3, 4, 8, 4096] {
            let s = read_segment(&zeros(b.clone(), n));
            assert_eq!((s.commits.len(), s.damage), (5, None), "{n} zeros");
            assert_eq!(s.valid_len as usize, b.len());
        }
        // A record cut anywhere, then zeros (what a crash during its write
        // into reserved space leaves): torn.
        for cut in ends[3] + 1..ends[4] {
            let s = read_segment(&zeros(b[..cut].to_vec(), 4096));
            assert_eq!(s.commits.len(), 3, "cut at {cut}");
            assert!(s.torn, "cut at {cut}");
        }
        // Zeros where records were, with a record after them, in a segment
        // without marks (version 8): damage, never an end or a torn tail.
        let mut d = b.clone();
        d[8..12].copy_from_slice(&record::VERSION_BASE.to_le_bytes());
        d[ends[2]..ends[3]].fill(0);
        let s = read_segment(&d);
        assert_eq!(s.commits.len(), 2);
        assert!(s.damage.is_some() && !s.torn);
    }

    /// A log of `groups` writes of `per` records of about 700 bytes each,
    /// as the writer makes them: a mark before each write after the first
    /// (the write before it synced). Returns the bytes and each write's
    /// start.
    fn groups(groups: usize, per: usize) -> (Vec<u8>, Vec<usize>) {
        let mut b = record::header(Some(0)).to_vec();
        let mut starts = Vec::new();
        let mut ts = 0;
        for g in 0..groups {
            starts.push(b.len());
            if g > 0 {
                record::encode_mark(&mut b, starts[g] as u64);
            }
            for _ in 0..per {
                ts += 1;
                let k = Bytes::from(format!("key{ts}"));
                let v = Some(Bytes::from(vec![ts as u8 | 1; 700]));
                record::encode(&mut b, ts, [(0, &k, record::ToLog::Inline(&v))].into_iter());
            }
        }
        (b, starts)
    }

    /// The unsynced last write lost one 4 KiB page and kept the pages after
    /// it (a disk writes back pages in any order): a torn tail at the
    /// first damaged frame, the records after it dropped. The same loss in
    /// a synced write (a later mark shows it) is damage, and so is a flipped
    /// bit (no zero sector), and in a segment without marks, anything
    /// followed by a whole frame.
    #[test]
    fn a_lost_page_of_the_last_write_is_a_torn_tail() {
        let (b, starts) = groups(3, 16);
        let last = starts[2];
        let page = (last / 4096 + 1) * 4096;
        assert!(b.len() > page + 2 * 4096, "the last write spans pages");
        let count = |s: &Segment| s.commits.len();
        for lost in [page - 4096, page, page + 4096] {
            let mut d = b.clone();
            let lost = lost.max(last);
            let to = ((lost / 4096 + 1) * 4096).min(d.len());
            // Before the last write, its bytes read as the reserved zeros.
            d[lost..to].fill(0);
            let s = read_segment(&d);
            let (at, _) = s.damage.expect("damage found");
            assert!(s.torn, "lost {lost}..{to}: {:?}", s.damage);
            assert_eq!(s.valid_len, at);
            assert!(count(&s) >= 24 && at as usize >= last, "{} commits", count(&s));

            // The same loss, then a later write whose mark says it was synced.
            let mut e = d.clone();
            e.truncate(b.len());
            let end = e.len();
            record::encode_mark(&mut e, end as u64);
            let k = Bytes::from_static(b"later");
            let v = Some(Bytes::from_static(b"v"));
            record::encode(&mut e, 99, [(0, &k, record::ToLog::Inline(&v))].into_iter());
            let s = read_segment(&e);
            assert!(s.damage.is_some() && !s.torn, "a synced loss taken for a torn tail");

            // Without marks: damage.
            let mut e = d.clone();
            e[8..12].copy_from_slice(&record::VERSION_BASE.to_le_bytes());
            let s = read_segment(&e);
            assert!(s.damage.is_some() && !s.torn, "version 8");
        }
        // A flipped bit in the last write, whole frames after it: damage.
        for at in [last + 20, page + 100, b.len() - 800] {
            let mut d = b.clone();
            d[at] ^= 0x04;
            let s = read_segment(&d);
            assert!(s.damage.is_some() && !s.torn, "flip at {at}");
        }
        // Two flipped bits in the last write, in record A and in the frame
        // of B after it, whose value is 2 KiB of zeros (aligned sectors of
        // them, but past A's end): damage. A lost sector must overlap the
        // first bad frame.
        let mut b = b.clone();
        let a_at = b.len();
        let k = Bytes::from_static(b"a");
        let v = Some(Bytes::from(vec![5u8; 300]));
        record::encode(&mut b, 99, [(0, &k, record::ToLog::Inline(&v))].into_iter());
        let b_at = b.len();
        let zeros = Some(Bytes::from(vec![0u8; 2048]));
        let k = Bytes::from_static(b"zeros");
        record::encode(&mut b, 100, [(0, &k, record::ToLog::Inline(&zeros))].into_iter());
        let v = Some(Bytes::from_static(b"c"));
        record::encode(&mut b, 101, [(0, &k, record::ToLog::Inline(&v))].into_iter());
        b[a_at + 40] ^= 0x04;
        b[b_at + 5] ^= 0x04;
        let s = read_segment(&b);
        assert_eq!(s.damage.map(|d| d.0), Some(a_at as u64));
        assert!(!s.torn, "zeros of a later value taken for a lost sector");
        // A lost page in an earlier write (the last write's mark is past it).
        let mut d = b.clone();
        let early = (starts[1] / 4096 + 1) * 4096;
        assert!(early + 4096 < starts[2]);
        d[early..early + 4096].fill(0);
        let s = read_segment(&d);
        assert!(s.damage.is_some() && !s.torn, "a lost page before the last mark");
    }

    /// A large record of random bytes cut short (a kill during its write)
    /// is a torn tail, and the records before it stand; a frame of the log
    /// itself embedded in a value, cut after it, reads as damage (it is a
    /// valid record after a bad one: the reader cannot tell them apart).
    /// Before the cheap tests ahead of the checksum, the tail's scan took
    /// time quadratic in its size (about 2 s for this one in a release
    /// build, hours for 100 MB).
    #[test]
    fn a_large_random_record_cut_short_is_torn() {
        let (mut b, ends) = log(3);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let random: Vec<u8> = (0..8 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let k = Bytes::from_static(b"big");
        let v = Some(Bytes::from(random));
        record::encode(&mut b, 4, [(0, &k, record::ToLog::Inline(&v))].into_iter());
        let before = CHECKSUMS.with(|c| c.get());
        let s = read_segment(&b[..ends[3] + (4 << 20)]);
        assert_eq!(s.commits.len(), 3);
        assert!(s.torn);
        // Without the cheap tests about one offset in a thousand has a
        // length that fits and was checksummed (over up to 4 MiB each).
        let checked = CHECKSUMS.with(|c| c.get()) - before;
        assert!(checked < 16, "{checked} candidates checksummed");

        let (inner, _) = log(1);
        let mut embedded = vec![b'x'; 100];
        embedded.extend_from_slice(&inner[record::HEADER_LEN..]);
        embedded.extend_from_slice(&[b'y'; 100]);
        let (mut b, ends) = log(3);
        let v = Some(Bytes::from(embedded));
        record::encode(&mut b, 4, [(0, &k, record::ToLog::Inline(&v))].into_iter());
        let s = read_segment(&b[..b.len() - 50]);
        assert_eq!(s.commits.len(), 3);
        assert!(s.damage.is_some() && !s.torn, "{:?}", s.damage);
        assert_eq!(s.valid_len as usize, ends[3]);
    }
}
