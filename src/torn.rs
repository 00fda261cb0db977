//! Telling a torn write from damage by an *unwritten sector*.
//!
//! A disk writes a file's dirty pages back in any order, and a sector
//! (512 bytes) whole or not at all. After a power loss in the middle of an
//! unsynced write, a sector that did not reach the disk reads as what was
//! durable there: zeros in reserved or fresh space (`design/durability.md`
//! §7). So when a bad frame at offset `d` is followed by a whole frame at
//! `f`, the bytes between show an unwritten sector if the write was torn,
//! and none if a bit flipped in bytes once whole. The log's reader
//! (`wal::reader`) and the value log's recovery (`engine::vlog`) take a bad
//! frame for a torn write only with this evidence and with proof that its
//! bytes were not synced (the log's marks).

/// The unit a disk writes whole or not at all.
pub(crate) const SECTOR: usize = 512;

/// Whether a sector that the bad frame at `d` overlaps reads as never
/// written, before the first whole frame after it at `f` (offsets from the
/// file's start, so sectors are aligned; `e`: where the bad frame's length
/// says it ends, or `f` if its length cannot be trusted):
///
/// - zeros from `d` to the end of `d`'s sector, at least `frame` bytes
///   (the bad frame's fixed header, never all zeros in a frame that was
///   written), and `f` past that sector (a sector holding the whole frame
///   at `f` was written, so zeros in it were written too); or
/// - a whole sector of zeros after `d`'s, starting before `e` (a lost
///   sector must overlap the bad frame, or the frame would read whole) and
///   ending by `f`.
///
/// A flipped bit leaves no such sector unless the bad frame's own bytes
/// hold 512 aligned zeros (`design/durability.md` §9).
pub(crate) fn unwritten(b: &[u8], d: usize, e: usize, f: usize, frame: usize) -> bool {
    let f = f.min(b.len());
    if d >= f {
        return false;
    }
    let zero = |r: std::ops::Range<usize>| b[r].iter().all(|&x| x == 0);
    let first_end = (d / SECTOR + 1) * SECTOR;
    if first_end <= f && first_end - d >= frame && zero(d..first_end) {
        return true;
    }
    (first_end..f.saturating_sub(SECTOR) + 1)
        .step_by(SECTOR)
        .take_while(|&s| s < e)
        .any(|s| zero(s..s + SECTOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_sectors_between_are_unwritten_and_flips_are_not() {
        let mut b = vec![1u8; 4096];
        assert!(!unwritten(&b, 100, 3000, 3000, 8));
        // A whole aligned sector of zeros inside.
        b[1024..1536].fill(0);
        assert!(unwritten(&b, 100, 3000, 3000, 8));
        assert!(!unwritten(&b, 100, 3000, 1500, 8), "the sector runs past f");
        assert!(
            !unwritten(&b, 100, 1024, 3000, 8),
            "the sector starts past the bad frame's end"
        );
        assert!(unwritten(&b, 100, 1025, 3000, 8), "the bad frame reaches into it");
        assert!(unwritten(&b, 1100, 3000, 3000, 8), "zeros from d inside it to its end");
        // Zeros from d to its sector's end.
        let mut b = vec![1u8; 4096];
        b[600..1024].fill(0);
        assert!(unwritten(&b, 600, 2000, 2000, 8));
        assert!(
            !unwritten(&b, 600, 700, 700, 8),
            "f in d's sector: that sector was written"
        );
        assert!(!unwritten(&b, 1020, 2000, 2000, 8), "fewer than a frame's bytes");
        assert!(!unwritten(&b, 599, 2000, 2000, 8));
        assert!(!unwritten(&b, 600, 2000, 600, 8));
    }
}
