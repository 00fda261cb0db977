//! The sections of a leaf image (the format in [`super::leaf`]'s module
//! doc), parsed once from its header: shared by the full decode
//! ([`super::leaf::decode_leaf_with`]) and the point look-up that reads a
//! version without decoding the page ([`super::find`]).
//!
//! [`Layout::parse`] checks the header, the fences and that every section
//! lies inside the image. The accessors check what they read (a key's
//! offsets, a version's value bounds), never the order across keys or
//! versions: that is the full decode's job, and the look-up relies on the
//! record's crc instead (`design/storage.md` §5.4).

use std::ops::Range;

use bytes::Bytes;

use super::super::base::INLINE_MAX;
use super::super::mapping_table::NO_PID;
use super::super::tree::{MAX_KEY_LEN, MAX_VALUE_LEN};
use super::wire::{bad, u32_at, Malformed, Reader, NO_FENCE, REF, REF_BYTES, TOMB_LEN};

/// `kind` of a leaf image.
pub(super) const KIND_LEAF: u8 = 1;
/// Bytes of the fixed header.
pub(super) const HEADER: usize = 32;

/// `count * each` bytes, or `reason` at `at` if that overflows.
fn size(count: usize, each: usize, at: usize, reason: &'static str) -> Result<usize, Malformed> {
    count.checked_mul(each).map_or_else(|| bad(at, reason), Ok)
}

/// A version's value as the image stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Raw {
    Tomb,
    /// `len` bytes at `off` in the values section.
    Inline {
        off: u32,
        len: u32,
    },
    /// A value of `len` bytes at `addr` in the value log.
    Ref {
        addr: u64,
        len: u32,
    },
}

/// A leaf image's header and where its sections are.
pub(super) struct Layout<'a> {
    pub(super) image: &'a Bytes,
    /// Keys.
    pub(super) n: usize,
    /// Versions.
    pub(super) m: usize,
    pub(super) low: Option<Bytes>,
    pub(super) high: Option<Bytes>,
    pub(super) sibling: u64,
    pub(super) offs_at: usize,
    /// `[u32; n + 1]`.
    pub(super) offs: &'a [u8],
    pub(super) vstart_at: usize,
    /// `[u32; n + 1]`, only if `m != n`.
    pub(super) vstart: Option<&'a [u8]>,
    pub(super) vers_at: usize,
    /// `[ts u64 | off u32 | len u32; m]`.
    pub(super) vers: &'a [u8],
    pub(super) keys_at: usize,
    pub(super) keys_len: usize,
    pub(super) vals_at: usize,
    pub(super) vals: &'a [u8],
}

impl<'a> Layout<'a> {
    /// Parse the header and fences of `image` and locate its sections.
    pub(super) fn parse(image: &'a Bytes) -> Result<Self, Malformed> {
        let mut r = Reader::new(image);
        let kind = r.bytes(1, "truncated header")?[0];
        if kind != KIND_LEAF {
            return bad(0, "not a leaf image");
        }
        if r.bytes(3, "truncated header")? != [0, 0, 0] {
            return bad(1, "unknown flags or nonzero padding");
        }
        let n = r.u32("truncated header")? as usize;
        let m = r.u32("truncated header")? as usize;
        if r.u32("truncated header")? != 0 {
            return bad(12, "nonzero padding");
        }
        let low_len = r.u32("truncated header")?;
        let high_len = r.u32("truncated header")?;
        let sibling = r.u64("truncated header")?;
        let mut fence = |len: u32| -> Result<Option<Bytes>, Malformed> {
            if len == NO_FENCE {
                return Ok(None);
            }
            let at = r.pos();
            if len as usize > MAX_KEY_LEN {
                return bad(at, "fence longer than a key can be");
            }
            r.bytes(len as usize, "fence past the end")?;
            Ok(Some(image.slice(at..at + len as usize)))
        };
        let (low, high) = (fence(low_len)?, fence(high_len)?);
        if high.is_some() != (sibling != NO_PID) {
            return bad(24, "sibling present iff high fence is not");
        }
        if let (Some(l), Some(h)) = (&low, &high) {
            if l >= h {
                return bad(HEADER, "low fence not below high fence");
            }
        }
        r.pad8("truncated fences")?;
        if m < n {
            return bad(4, "fewer versions than keys");
        }
        let offs_at = r.pos();
        let offs = r.bytes(
            size(n + 1, 4, offs_at, "key count overflows")?,
            "key offsets past the end",
        )?;
        r.pad8("truncated key offsets")?;
        let vstart_at = r.pos();
        let vstart = if m != n {
            let v = r.bytes(4 * (n + 1), "version index past the end")?;
            r.pad8("truncated version index")?;
            Some(v)
        } else {
            None
        };
        let vers_at = r.pos();
        let vers = r.bytes(size(m, 16, 8, "version count overflows")?, "versions past the end")?;
        let keys_at = r.pos();
        let keys_len = u32_at(offs, n) as usize;
        r.bytes(keys_len, "keys past the end")?;
        r.pad8("truncated keys")?;
        let vals_at = r.pos();
        Ok(Layout {
            image,
            n,
            m,
            low,
            high,
            sibling,
            offs_at,
            offs,
            vstart_at,
            vstart,
            vers_at,
            vers,
            keys_at,
            keys_len,
            vals_at,
            vals: &image[vals_at..],
        })
    }

    /// Key `i` (`i < n`), its offsets checked.
    pub(super) fn key(&self, i: usize) -> Result<&'a [u8], Malformed> {
        let (a, b) = (u32_at(self.offs, i) as usize, u32_at(self.offs, i + 1) as usize);
        if b < a || b - a > MAX_KEY_LEN || b > self.keys_len {
            return bad(self.offs_at + 4 * i + 4, "key offsets out of order or key too long");
        }
        Ok(&self.image[self.keys_at + a..self.keys_at + b])
    }

    /// The indexes of key `i`'s versions (`i < n`; with a version index,
    /// as it says, checked to be non-empty and inside `0..m`).
    pub(super) fn versions(&self, i: usize) -> Result<Range<usize>, Malformed> {
        match self.vstart {
            None => Ok(i..i + 1),
            Some(v) => {
                let (a, b) = (u32_at(v, i) as usize, u32_at(v, i + 1) as usize);
                if b <= a || b > self.m {
                    return bad(self.vstart_at + 4 * i + 4, "a key without versions");
                }
                Ok(a..b)
            }
        }
    }

    /// The timestamp of version `j` (`j < m`).
    pub(super) fn ts(&self, j: usize) -> u64 {
        u64::from_le_bytes(self.vers[16 * j..16 * j + 8].try_into().expect("8 bytes"))
    }

    /// The value of version `j` (`j < m`), its bounds checked; a reference
    /// is malformed unless `refs` (an image read with no value log).
    pub(super) fn value(&self, j: usize, refs: bool) -> Result<Raw, Malformed> {
        let at = self.vers_at + 16 * j;
        let rec = &self.vers[16 * j..16 * j + 16];
        let (off, len) = (u32_at(rec, 2), u32_at(rec, 3));
        match len {
            TOMB_LEN if off == 0 => Ok(Raw::Tomb),
            TOMB_LEN => bad(at + 8, "tombstone with an offset"),
            l if l & REF != 0 => {
                let l = l & !REF;
                if !refs {
                    return bad(at + 12, "value-log reference (no value log to read it from)");
                }
                let end = off as usize + REF_BYTES;
                if l as usize > MAX_VALUE_LEN || (l as usize) <= INLINE_MAX || end > self.vals.len() {
                    return bad(at + 8, "value-log reference out of bounds");
                }
                let r = &self.vals[off as usize..end];
                if u32_at(r, 2) != l {
                    return bad(self.vals_at + off as usize + 8, "value-log reference length differs");
                }
                let addr = u64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
                Ok(Raw::Ref { addr, len: l })
            }
            l => {
                if l as usize > MAX_VALUE_LEN || off as usize + l as usize > self.vals.len() {
                    return bad(at + 8, "value past the end");
                }
                Ok(Raw::Inline { off, len: l })
            }
        }
    }
}
