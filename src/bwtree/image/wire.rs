//! Pieces shared by the image codecs: the decode error, the value-log hook,
//! little-endian reads that check their bounds, and the value-length codes.

use std::path::PathBuf;

pub(super) use crate::le::put_varint;
use crate::le::{varint_at, BadVarint};
use crate::Error;

/// Why a payload failed to decode: the offset (from the payload's first
/// byte) of the first damage found, and what is wrong there. The page store
/// turns it into [`Error::Corruption`] with [`Malformed::corruption`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub(crate) offset: usize,
    pub(crate) reason: &'static str,
}

impl Malformed {
    /// The error for a payload that starts at `payload_offset` in `file`.
    pub(crate) fn corruption(self, file: PathBuf, payload_offset: u64) -> Error {
        Error::Corruption {
            file,
            offset: payload_offset + self.offset as u64,
            reason: self.reason,
        }
    }
}

/// `Err(Malformed)` at `offset` for `reason`.
pub(super) fn bad<T>(offset: usize, reason: &'static str) -> Result<T, Malformed> {
    Err(Malformed { offset, reason })
}

/// The value-log hook an encoder may be given: called with a version's
/// `(key, ts, value)`, it returns `Some(addr)` once it has written the value
/// to the value log (the payload then holds a 12-byte reference), or `None`
/// to keep the value in the payload. Encoders offer it only values longer
/// than [`INLINE_MAX`](super::super::base::INLINE_MAX) bytes, so a value-log
/// threshold below that has no effect. The engine's value log passes one
/// (`engine/vlog.rs`).
pub(crate) type ValueSink<'a> = &'a mut dyn FnMut(&[u8], u64, &[u8]) -> crate::Result<Option<u64>>;

/// The value-log hook a decoder may be given: called with a reference's
/// `(key, ts, addr, len, newer)` (`newer`: the timestamp of the key's next
/// newer version in the same image, if any), it returns the value
/// ([`Fetched::Value`], exactly `len` bytes, the version's), or
/// [`Fetched::Unread`] for a version its caller's collection drops, or
/// `None` if it could not read it (the hook keeps its own error; the
/// decoder then fails at the reference's offset). Without one a reference
/// is malformed.
pub(crate) type ValueSource<'a> = &'a mut dyn FnMut(&[u8], u64, u64, u32, Option<u64>) -> Option<Fetched>;

/// What a [`ValueSource`] gives for a reference.
pub(crate) enum Fetched {
    /// The value.
    Value(bytes::Bytes),
    /// Not read: the caller collects the page at a watermark at which a
    /// newer version of the key hides this one (`design/storage.md` §5,
    /// fault-in). The page holds an empty placeholder for it until then.
    Unread,
}

/// Value length code: a tombstone.
pub(super) const TOMB_LEN: u32 = u32::MAX;
/// Value length flag: a value-log reference (`REF | l`, `l` the value's length).
pub(super) const REF: u32 = 1 << 31;
/// Bytes of a value-log reference in a payload: `addr u64 | vlen u32`.
pub(super) const REF_BYTES: usize = 12;
/// A fence length meaning "no fence" (minus or plus infinity).
pub(super) const NO_FENCE: u32 = u32::MAX;

/// `x` rounded up to a multiple of 8.
#[inline]
pub(super) fn align8(x: usize) -> usize {
    (x + 7) & !7
}

/// Append zero bytes until `out.len() - start` is a multiple of 8.
#[inline]
pub(super) fn pad8(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    out.resize(start + align8(len), 0);
}

/// A cursor over a payload that checks every read against its end.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// The next `len` bytes, or `reason` if fewer are left.
    #[inline]
    pub(super) fn bytes(&mut self, len: usize, reason: &'static str) -> Result<&'a [u8], Malformed> {
        match self.buf.get(self.pos..).and_then(|rest| rest.get(..len)) {
            Some(b) => {
                self.pos += len;
                Ok(b)
            }
            None => bad(self.pos, reason),
        }
    }

    #[inline]
    pub(super) fn u32(&mut self, reason: &'static str) -> Result<u32, Malformed> {
        let b = self.bytes(4, reason)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    #[inline]
    pub(super) fn u64(&mut self, reason: &'static str) -> Result<u64, Malformed> {
        let b = self.bytes(8, reason)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// An unsigned LEB128 varint (`crate::le::varint_at`): at most 10
    /// bytes, the shortest encoding of its value (a longer one, or one past
    /// `u64`, is malformed, so a payload re-encodes to its own bytes).
    #[inline]
    pub(super) fn varint(&mut self, reason: &'static str) -> Result<u64, Malformed> {
        match varint_at(self.buf, self.pos) {
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(BadVarint::Truncated) => bad(self.buf.len(), reason),
            Err(BadVarint::NotShortest) => bad(self.pos, "varint not in its shortest form"),
            Err(BadVarint::TooLong) => bad(self.pos, "varint past 64 bits"),
        }
    }

    /// Skip the zero padding up to the next multiple of 8 (from the start).
    pub(super) fn pad8(&mut self, reason: &'static str) -> Result<(), Malformed> {
        let at = self.pos;
        let pad = self.bytes(align8(at) - at, reason)?;
        if pad.iter().any(|&b| b != 0) {
            return bad(at, "nonzero padding");
        }
        Ok(())
    }
}

/// The `i`th little-endian `u32` of `b` (the caller checked `4 * i + 4 <= b.len()`).
#[inline]
pub(super) fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().expect("4 bytes"))
}
