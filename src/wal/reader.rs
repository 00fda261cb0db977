//! Reading log segments back: every record, and where and why reading stopped.

use super::record::{self, Bad, Commit};

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
    let mut at = record::HEADER_LEN;
    seg.valid_len = at as u64;
    while at < b.len() {
        match record::decode(&b[at..], version) {
            Ok((c, n)) => {
                seg.commits.push(c);
                seg.offsets.push(at as u64);
                at += n;
                seg.valid_len = at as u64;
            }
            // Zeros to the end: the segment's reserved space, never
            // written (a record's frame starts with its nonzero length).
            Err(_) if b[at..].iter().all(|&x| x == 0) => return seg,
            Err(bad) => {
                seg.damage = Some((at as u64, bad.reason()));
                seg.torn = is_torn(&b[at..], bad, version);
                return seg;
            }
        }
    }
    seg
}

/// Whether a bad frame at the start of `rest` is a write cut short by a
/// crash rather than damage to data that was once complete: nothing valid
/// follows it. A torn write leaves a partial or garbled frame at the end and
/// nothing decodable after it (the file system persists appended data in
/// order up to a sync; see `design/durability.md`, "Assumptions"). Damage to
/// an earlier record (say a flipped bit in its length, which makes it look
/// like it runs past the end) leaves the records after it intact, and one of
/// them decodes: that is corruption, reported, never truncated away.
///
/// Every offset is tried, so each must cost little: a candidate's checksum
/// (over up to the rest of the segment) is computed only once its length
/// fits and its payload is well formed, which almost no offset inside a
/// value passes. Checksumming every offset whose length fitted took time
/// quadratic in the rest's size: hours for a 100 MB record of random bytes
/// cut short.
fn is_torn(rest: &[u8], _bad: Bad, version: u32) -> bool {
    (1..rest.len()).all(|j| !frame_at(&rest[j..], version))
}

/// Whether a valid record starts at the start of `b`: the cheap tests
/// first (a nonzero length that fits, a well-formed payload), then the
/// checksum, through [`record::decode`].
fn frame_at(b: &[u8], version: u32) -> bool {
    let Some(len) = crate::le::u32_at(b, 0).map(|l| l as usize) else {
        return false;
    };
    let Some(payload) = b.get(record::FRAME_LEN..record::FRAME_LEN.saturating_add(len)) else {
        return false;
    };
    len > 0 && record::well_formed(payload, version) && {
        #[cfg(test)]
        CHECKSUMS.with(|c| c.set(c.get() + 1));
        record::decode(b, version).is_ok()
    }
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
        // Zeros where records were, with a record after them: damage, never
        // an end or a torn tail.
        let mut d = b.clone();
        d[ends[2]..ends[3]].fill(0);
        let s = read_segment(&d);
        assert_eq!(s.commits.len(), 2);
        assert!(s.damage.is_some() && !s.torn);
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
