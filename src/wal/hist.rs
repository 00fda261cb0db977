//! History files: what a restart needs to keep `Options::history_retention`
//! (`design/mvcc.md` §11, "Restart"), written beside each checkpoint.
//!
//! ```text
//! file    = header | sample* | count* | footer
//! header  = "BWTXHST\0" (8) | version u32 LE (= 1) | reserved u32 (= 0)
//!           | ts u64 LE | oldest u64 LE | samples u32 LE | counts u32 LE       40 bytes
//! sample  = wall_ms u64 LE | read_ts u64 LE        (increasing wall_ms)      16 bytes
//! count   = ts u64 LE | live u64 LE                (increasing ts)           16 bytes
//! footer  = crc u32 LE | "BWTXEND\0" (8)
//!           crc = CRC32C of every byte before it
//! ```
//!
//! - `ts`: the checkpoint it goes with (`hist-<ts:020>.hist` beside
//!   `ckpt-<ts:020>.ckpt`).
//! - `oldest`: the oldest timestamp a location table at `ts` can serve (its
//!   page images were built with GC watermarks at or below it); `ts` for a
//!   version-1 image.
//! - `samples`: `(t, read_ts(t))` pairs of the horizon (`mvcc/horizon.rs`),
//!   `t` in milliseconds since the Unix epoch, rounded up (a later time
//!   keeps more history, never less).
//! - `counts`: `(t, count(t))` entries of the exact counts
//!   (`mvcc/counts.rs`) from the newest at or below `oldest` to `ts` (a
//!   location table only; empty for a version-1 image).
//!
//! Written as `hist-<ts>.tmp`, synced, renamed, and the directory synced,
//! before the checkpoint it goes with is renamed into place: a checkpoint
//! on disk has its history file (or was written by a version that wrote
//! none: then the restart keeps no history below it).

use std::path::Path;

use crate::fs::Fs;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"BWTXHST\0";
const END: &[u8; 8] = b"BWTXEND\0";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 40;
const FOOTER_LEN: usize = 12;

/// A history file's content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hist {
    pub(crate) ts: u64,
    pub(crate) oldest: u64,
    pub(crate) samples: Vec<(u64, u64)>,
    pub(crate) counts: Vec<(u64, u64)>,
}

/// What the history files say at open ([`read`]): the newest one's
/// samples, and the file of the checkpoint recovered from, if it has one.
pub(crate) type AtOpen = (Vec<(u64, u64)>, Option<Hist>);

/// File name of the history file of checkpoint `ts`.
pub(crate) fn name(ts: u64) -> String {
    format!("hist-{ts:020}.hist")
}

fn tmp_name(ts: u64) -> String {
    format!("hist-{ts:020}.tmp")
}

/// The checkpoint timestamp of a history file name.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    name.strip_prefix("hist-")?.strip_suffix(".hist")?.parse().ok()
}

/// Whether `name` is a history file being written (deleted at open).
pub(crate) fn is_tmp(name: &str) -> bool {
    name.starts_with("hist-") && name.ends_with(".tmp")
}

/// The bytes of `h`.
pub(crate) fn encode(h: &Hist) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN + 16 * (h.samples.len() + h.counts.len()) + FOOTER_LEN);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&h.ts.to_le_bytes());
    b.extend_from_slice(&h.oldest.to_le_bytes());
    b.extend_from_slice(&(h.samples.len() as u32).to_le_bytes());
    b.extend_from_slice(&(h.counts.len() as u32).to_le_bytes());
    for &(a, v) in h.samples.iter().chain(&h.counts) {
        b.extend_from_slice(&a.to_le_bytes());
        b.extend_from_slice(&v.to_le_bytes());
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(END);
    b
}

/// Parse and verify; `Err((offset, reason))`.
pub(crate) fn decode(b: &[u8]) -> std::result::Result<Hist, (u64, &'static str)> {
    if b.len() < HEADER_LEN + FOOTER_LEN {
        return Err((0, "history file shorter than header and footer"));
    }
    let foot = b.len() - FOOTER_LEN;
    if &b[..8] != MAGIC || b[8..12] != VERSION.to_le_bytes() || b[12..16] != [0; 4] {
        return Err((0, "bad history file header"));
    }
    if &b[foot + 4..] != END {
        return Err((foot as u64, "bad history file footer"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&b[..foot]) != u32_at(foot) {
        return Err((foot as u64, "history file checksum mismatch"));
    }
    let (ns, nc) = (u32_at(32) as usize, u32_at(36) as usize);
    if (ns as u64 + nc as u64) * 16 != (foot - HEADER_LEN) as u64 {
        return Err((32, "history file entry counts do not fill it"));
    }
    let pairs = |from: usize, n: usize| -> Vec<(u64, u64)> {
        (0..n)
            .map(|i| (u64_at(from + 16 * i), u64_at(from + 16 * i + 8)))
            .collect()
    };
    let h = Hist {
        ts: u64_at(16),
        oldest: u64_at(24),
        samples: pairs(HEADER_LEN, ns),
        counts: pairs(HEADER_LEN + 16 * ns, nc),
    };
    let increasing = |v: &[(u64, u64)]| v.windows(2).all(|w| w[0].0 < w[1].0);
    if h.oldest > h.ts || !increasing(&h.samples) || !increasing(&h.counts) {
        return Err((HEADER_LEN as u64, "history file entries out of order"));
    }
    if h.counts.first().is_some_and(|c| c.0 > h.oldest) || h.counts.last().is_some_and(|c| c.0 > h.ts) {
        return Err((HEADER_LEN as u64, "history file counts do not cover its range"));
    }
    Ok(h)
}

/// Write `h` into `dir` durably: `hist-<ts>.tmp`, **fsync**, rename,
/// **fsync the directory**.
/// A failure removes the temporary file (if it is still there); a failed
/// sync is `poison`'s error (the caller poisons the database).
pub(crate) fn write(fs: &dyn Fs, dir: &Path, h: &Hist, poison: &dyn Fn(std::io::Error) -> Error) -> Result<()> {
    super::checkpoint::write_bytes(fs, dir, &tmp_name(h.ts), &name(h.ts), &encode(h), poison)
}

/// What the history files of `dir` say at open: the samples of the newest
/// one, and the file of checkpoint `ts` (if there is one). Damage is
/// `Error::Corruption`, as for any file renamed into place after its sync.
pub(crate) fn read(fs: &dyn Fs, dir: &Path, ts: Option<u64>) -> Result<AtOpen> {
    let mut names: Vec<(u64, String)> = fs
        .list(dir)
        .map_err(Error::Io)?
        .into_iter()
        .filter_map(|n| parse_name(&n).map(|t| (t, n)))
        .collect();
    names.sort();
    let load = |n: &str| -> Result<Hist> {
        let bytes = fs.read(&dir.join(n)).map_err(Error::Io)?;
        decode(&bytes).map_err(|(offset, reason)| Error::Corruption {
            file: dir.join(n),
            offset,
            reason,
        })
    };
    let samples = match names.last() {
        Some((_, n)) => load(n)?.samples,
        None => Vec::new(),
    };
    let of_ts = match names.iter().find(|(t, _)| Some(*t) == ts) {
        Some((_, n)) => Some(load(n)?),
        None => None,
    };
    Ok((samples, of_ts))
}

/// Delete the history files of checkpoints older than `ts` (no directory
/// sync: one that survives a crash is harmless, and the caller syncs).
pub(crate) fn remove_older(fs: &dyn Fs, dir: &Path, ts: u64) -> Result<usize> {
    let mut n = 0;
    for name in fs.list(dir).map_err(Error::Io)? {
        if parse_name(&name).is_some_and(|t| t < ts) {
            match fs.remove(&dir.join(&name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::Io(e)),
                _ => n += 1,
            }
        }
    }
    Ok(n)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn sample() -> Hist {
        Hist {
            ts: 90,
            oldest: 40,
            samples: vec![(1_000, 10), (2_000, 50), (3_000, 90)],
            counts: vec![(35, 7), (41, 8), (90, 6)],
        }
    }

    #[test]
    fn round_trips() {
        let h = sample();
        assert_eq!(decode(&encode(&h)).unwrap(), h);
        let empty = Hist::default();
        assert_eq!(decode(&encode(&empty)).unwrap(), empty);
    }

    #[test]
    fn every_bit_flip_and_cut_is_refused() {
        let b = encode(&sample());
        for i in 0..b.len() * 8 {
            let mut c = b.clone();
            c[i / 8] ^= 1 << (i % 8);
            assert!(decode(&c).is_err(), "bit {i}");
        }
        for n in 0..b.len() {
            assert!(decode(&b[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!(parse_name(&name(17)), Some(17));
        assert!(is_tmp(&tmp_name(17)));
        assert_eq!(parse_name(&tmp_name(17)), None);
    }
}
