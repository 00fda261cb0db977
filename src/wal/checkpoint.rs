//! Checkpoint files: a consistent image of the database as of one snapshot
//! timestamp.
//!
//! ```text
//! file    = header | entry* | footer
//! header  = "BWTXCKP\0" (8) | version u32 LE (= 4; 1 still read) | reserved u32 (= 0) | ts u64 LE
//! entry   = tree u32 LE | klen u32 LE | vlen u32 LE | key | value
//!           (live keys only; the catalog's tree first, then by tree, key order)
//! footer  = count u64 LE | crc u32 LE | "BWTXEND\0" (8)
//!           crc = CRC32C of every byte before the footer
//! ```
//! `tree` is a keyspace id (0: the default keyspace; `u32::MAX`: the
//! catalog of keyspaces, `design/keyspaces.md`). Version 1, written before
//! keyspaces, has no `tree` field: its entries are the default keyspace's.
//! (Version 2 is the location table, `crate::pagestore::table`, which shares
//! the header's magic and version field. 3 is skipped: no single flipped bit
//! turns one of 1, 2, 4 into another, so a damaged version reads as a bad
//! header, not as the other format.)
//! Written as `ckpt-<ts>.tmp`, synced, renamed to `ckpt-<ts>.ckpt`, and the
//! directory synced: a `.ckpt` file is complete, or absent.

use std::path::Path;

use bytes::Bytes;

use crate::fs::{Fs, FsFile};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"BWTXCKP\0";
const END: &[u8; 8] = b"BWTXEND\0";
const VERSION: u32 = 4;
/// The image format before keyspaces, still read.
const VERSION_1: u32 = 1;
const HEADER_LEN: usize = 24;

/// Whether `version` (a checkpoint file header's) is a key-value image's.
pub(crate) fn is_image_version(version: u32) -> bool {
    version == VERSION || version == VERSION_1
}

const FOOTER_LEN: usize = 20;
/// Bytes buffered between writes.
const CHUNK: usize = 1 << 20;

pub(crate) fn name(ts: u64) -> String {
    format!("ckpt-{ts:020}.ckpt")
}

pub(crate) fn tmp_name(ts: u64) -> String {
    format!("ckpt-{ts:020}.tmp")
}

/// The timestamp of a checkpoint file name.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    name.strip_prefix("ckpt-")?.strip_suffix(".ckpt")?.parse().ok()
}

/// Streams entries into a checkpoint file.
pub(crate) struct Writer {
    file: Box<dyn FsFile>,
    buf: Vec<u8>,
    crc: u32,
    count: u64,
    /// Bytes of the file so far, the buffer's included.
    bytes: u64,
}

impl Writer {
    pub(crate) fn new(mut file: Box<dyn FsFile>, ts: u64) -> Result<Self> {
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&ts.to_le_bytes());
        file.write_all(&h).map_err(Error::Io)?;
        Ok(Writer {
            file,
            crc: crc32c::crc32c(&h),
            buf: Vec::with_capacity(CHUNK),
            count: 0,
            bytes: h.len() as u64,
        })
    }

    pub(crate) fn entry(&mut self, tree: u32, key: &[u8], value: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(&tree.to_le_bytes());
        self.buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        self.count += 1;
        self.bytes += (12 + key.len() + value.len()) as u64;
        if self.buf.len() >= CHUNK {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, &self.buf);
        self.file.write_all(&self.buf).map_err(Error::Io)?;
        self.buf.clear();
        Ok(())
    }

    /// Write the footer and sync the file: the file's size. A failed sync
    /// is `poison`'s error.
    pub(crate) fn finish(mut self, poison: &dyn Fn(std::io::Error) -> Error) -> Result<u64> {
        self.drain()?;
        let mut f = Vec::with_capacity(FOOTER_LEN);
        f.extend_from_slice(&self.count.to_le_bytes());
        f.extend_from_slice(&self.crc.to_le_bytes());
        f.extend_from_slice(END);
        self.file.write_all(&f).map_err(Error::Io)?;
        self.file.sync().map_err(poison)?;
        Ok(self.bytes + f.len() as u64)
    }
}

/// A checkpoint's content.
pub(crate) struct Image {
    pub(crate) ts: u64,
    /// `(tree, key, value)`, in file order (the catalog's first).
    pub(crate) entries: Vec<(u32, Bytes, Bytes)>,
}

/// Parse and verify a checkpoint file's bytes; `Err((offset, reason))`.
pub(crate) fn parse(b: &[u8]) -> std::result::Result<Image, (u64, &'static str)> {
    if b.len() < HEADER_LEN + FOOTER_LEN {
        return Err((0, "checkpoint shorter than header and footer"));
    }
    let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if &b[..8] != MAGIC || (version != VERSION && version != VERSION_1) {
        return Err((0, "bad checkpoint header"));
    }
    let foot = b.len() - FOOTER_LEN;
    if &b[foot + 12..] != END {
        return Err((foot as u64, "bad checkpoint footer"));
    }
    let crc = u32::from_le_bytes(b[foot + 8..foot + 12].try_into().expect("4 bytes"));
    if crc32c::crc32c(&b[..foot]) != crc {
        return Err((foot as u64, "checkpoint checksum mismatch"));
    }
    let count = u64::from_le_bytes(b[foot..foot + 8].try_into().expect("8 bytes"));
    let ts = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
    let mut entries = Vec::with_capacity((count as usize).min(foot / 8));
    let mut at = HEADER_LEN;
    let u32_at =
        |at: usize| -> Option<usize> { Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize) };
    while at < foot {
        let bad = (at as u64, "checkpoint entry malformed");
        let tree = if version == VERSION_1 {
            0
        } else {
            at += 4;
            u32_at(at - 4).ok_or(bad)? as u32
        };
        let klen = u32_at(at).ok_or(bad)?;
        let vlen = u32_at(at + 4).ok_or(bad)?;
        let k0 = at + 8;
        let v0 = k0.checked_add(klen).ok_or(bad)?;
        let v1 = v0.checked_add(vlen).ok_or(bad)?;
        if v1 > foot {
            return Err(bad);
        }
        entries.push((
            tree,
            Bytes::copy_from_slice(&b[k0..v0]),
            Bytes::copy_from_slice(&b[v0..v1]),
        ));
        at = v1;
    }
    if entries.len() as u64 != count {
        return Err((foot as u64, "checkpoint entry count mismatch"));
    }
    Ok(Image { ts, entries })
}

/// Write a checkpoint of `entries` at `ts` into `dir` atomically: temporary
/// file, sync, rename, directory sync (a failure removes the temporary
/// file). Returns the file's size. A failed sync is `poison`'s error (the
/// caller poisons the database: a sync is never retried).
pub(crate) fn write<'a>(
    fs: &dyn Fs,
    dir: &Path,
    ts: u64,
    entries: impl Iterator<Item = Result<(u32, Bytes, Bytes)>> + 'a,
    poison: &dyn Fn(std::io::Error) -> Error,
) -> Result<u64> {
    let tmp = dir.join(tmp_name(ts));
    removing_on_error(fs, &tmp, || {
        let mut w = Writer::new(fs.create(&tmp).map_err(Error::Io)?, ts)?;
        for kv in entries {
            let (t, k, v) = kv?;
            w.entry(t, &k, &v)?;
        }
        let n = w.finish(poison)?;
        fs.rename(&tmp, &dir.join(name(ts))).map_err(Error::Io)?;
        fs.sync_dir(dir).map_err(poison)?;
        Ok(n)
    })
}

/// Write `bytes` as the file `name` of `dir` durably: the temporary file
/// `tmp` (of `dir`), **fsync**, rename, **fsync the directory**. A failure
/// removes the temporary file (if it is still there); a failed sync is
/// `poison`'s error (the caller poisons the database: a sync is never
/// retried). For the history file and the location table; an image is
/// streamed ([`fn@write`]).
pub(crate) fn write_bytes(
    fs: &dyn Fs,
    dir: &Path,
    tmp: &str,
    name: &str,
    bytes: &[u8],
    poison: &dyn Fn(std::io::Error) -> Error,
) -> Result<()> {
    let tmp = dir.join(tmp);
    removing_on_error(fs, &tmp, || {
        let mut f = fs.create(&tmp).map_err(Error::Io)?;
        f.write_all(bytes).map_err(Error::Io)?;
        f.sync().map_err(poison)?;
        drop(f);
        fs.rename(&tmp, &dir.join(name)).map_err(Error::Io)?;
        fs.sync_dir(dir).map_err(poison)
    })
}

/// Run `write`, which writes the temporary file `tmp` and renames it into
/// place; if it fails, remove `tmp` (best effort: it may be renamed
/// already, or never created), so that a checkpoint failing again and
/// again (a full disk) leaves no file behind each time. Open removes any
/// left by a crash.
pub(crate) fn removing_on_error<T, E>(
    fs: &dyn Fs,
    tmp: &Path,
    write: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let r = write();
    if r.is_err() {
        let _ = fs.remove(tmp);
    }
    r
}
