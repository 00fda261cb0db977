//! YCSB's record keys and its scrambling of zipfian ranks, shared by the
//! `bwtx bench` CLI and the examples that mimic it.

/// The key of record `i`: `user` and `i` in 12 decimal digits (the digits
/// above the 12th are dropped, so `i` below 10^12 keeps keys distinct and
/// ordered by `i`).
pub fn key(mut i: u64) -> [u8; 16] {
    let mut b = *b"user000000000000";
    for d in b[4..].iter_mut().rev() {
        *d = b'0' + (i % 10) as u8;
        i /= 10;
    }
    b
}

/// FNV-1a of a u64: YCSB's scrambling of zipfian ranks.
pub fn fnv(x: u64) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in x.to_le_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::{fnv, key};

    #[test]
    fn keys_are_ordered_by_record_number() {
        assert_eq!(&key(0), b"user000000000000");
        assert_eq!(&key(42), b"user000000000042");
        assert!(key(9) < key(10));
        assert_ne!(fnv(1), fnv(2));
    }
}
