//! Little-endian fields of the on-disk formats, read at an offset; `None`
//! when the field runs past the end (the callers' "truncated").

/// The `u32` at `at`.
pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The `u64` at `at`.
pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Why [`varint_at`] could not read a varint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadVarint {
    /// It runs past the end.
    Truncated,
    /// A longer form than its value's shortest (a last byte of 0 after the
    /// first).
    NotShortest,
    /// More than 64 bits.
    TooLong,
}

/// The unsigned LEB128 varint at `at` ([`put_varint`]) and its length in
/// bytes: at most 10, and only its value's shortest form, so that a
/// format using it has one encoding per value.
pub(crate) fn varint_at(b: &[u8], at: usize) -> Result<(u64, usize), BadVarint> {
    let mut v = 0u64;
    for i in 0..10 {
        let byte = *b
            .get(at.checked_add(i).ok_or(BadVarint::Truncated)?)
            .ok_or(BadVarint::Truncated)?;
        if i == 9 && byte > 1 {
            return Err(BadVarint::TooLong);
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(BadVarint::NotShortest);
            }
            return Ok((v, i + 1));
        }
    }
    Err(BadVarint::TooLong)
}

/// Append `v` as an unsigned LEB128 varint: 7 bits a byte, low bits first,
/// the high bit set on every byte but the last (1 byte below 128, at most
/// 10).
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `v` as a LEB128 varint in a stack buffer (at most 10 bytes) and its
/// length: what [`put_varint`] appends, for a caller that splices it in.
pub(crate) fn varint_array(mut v: u64) -> ([u8; 10], usize) {
    let mut b = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        b[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    b[n] = v as u8;
    (b, n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_in_their_shortest_form() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 35, u64::MAX - 1, u64::MAX] {
            let mut out = vec![9];
            put_varint(&mut out, v);
            assert_eq!(varint_at(&out, 1), Ok((v, out.len() - 1)), "{v}");
            let len = out.len() - 1;
            let (b, n) = varint_array(v);
            assert_eq!(&b[..n], &out[1..], "{v}: the stack buffer holds the same bytes");
            assert_eq!(len, (64 - v.leading_zeros() as usize).div_ceil(7).max(1), "{v}");
            for cut in 1..out.len() {
                assert_eq!(varint_at(&out[..cut], 1), Err(BadVarint::Truncated), "{v} cut at {cut}");
            }
        }
        assert_eq!(varint_at(&[0x80, 0x00], 0), Err(BadVarint::NotShortest));
        assert_eq!(varint_at(&[0xff, 0x80, 0x00], 0), Err(BadVarint::NotShortest));
        assert_eq!(
            varint_at(&[[0xff; 9].as_slice(), &[2]].concat(), 0),
            Err(BadVarint::TooLong)
        );
        assert_eq!(varint_at(&[0x80; 11], 0), Err(BadVarint::TooLong));
        assert_eq!(varint_at(&[1], usize::MAX), Err(BadVarint::Truncated));
    }
}
