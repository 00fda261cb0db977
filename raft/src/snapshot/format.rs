//! The snapshot file's byte layout, its streaming writer and its checking
//! reader (`design/replication.md` §5.1).
//!
//! ```text
//! header  = "BWTXSNAP" (8) | version u32 LE (= 1) | alen u32 LE | applied (alen bytes, JSON)
//! record  = klen u32 LE | vlen u32 LE | key (klen) | value (vlen)
//! trailer = 0xFFFF_FFFF (4) | count u64 LE | crc u32 LE
//!           crc = CRC32C over every byte before it (header, records, the
//!           end marker, count)
//! ```
//! `applied` is the [`AppliedState`] the data reflects; a record's key is a
//! user key (without the `sm/data/` prefix) and its value a stored value
//! ([`keys::encode_value`]: last-written index, tag, bytes). Records come in
//! strictly increasing key order. The end marker is a `klen` no record has
//! (keys are at most [`keys::MAX_USER_KEY_LEN`] bytes).
//!
//! Both sides hold one record at a time: the writer streams through a
//! buffered file, the reader checks every length against the limits before
//! it allocates, keys for order, values for their encoding, and at the end
//! the count, the CRC and that nothing follows the trailer. Anything else is
//! [`Error::Corrupt`] (never a panic).

use std::io::{BufReader, BufWriter, Read, Write};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::keys::{self, AppliedState};

/// The first bytes of a snapshot file.
pub const MAGIC: &[u8; 8] = b"BWTXSNAP";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// The `klen` that marks the trailer.
const END: u32 = u32::MAX;
/// The longest applied-state JSON a reader accepts (a membership of many
/// nodes is still far below it).
const MAX_APPLIED: u32 = 1 << 20;
/// Size of the writer's and reader's file buffers.
const BUF: usize = 256 << 10;

fn corrupt(msg: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("snapshot file: {msg}"))
}

fn io_err(what: &str, e: std::io::Error) -> Error {
    Error::Raft(format!("snapshot file: {what}: {e}"))
}

/// Writes one snapshot file, a record at a time.
pub struct Writer<W: Write> {
    out: BufWriter<W>,
    crc: u32,
    count: u64,
    last: Option<Vec<u8>>,
    bytes: u64,
}

impl<W: Write> Writer<W> {
    /// Start a snapshot of the state `applied` in `out` (writes the header).
    pub fn new(out: W, applied: &AppliedState) -> Result<Writer<W>> {
        let mut w = Writer {
            out: BufWriter::with_capacity(BUF, out),
            crc: 0,
            count: 0,
            last: None,
            bytes: 0,
        };
        let json = keys::to_json(applied);
        w.put(MAGIC)?;
        w.put(&VERSION.to_le_bytes())?;
        w.put(&(json.len() as u32).to_le_bytes())?;
        w.put(&json)?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.bytes += b.len() as u64;
        self.out.write_all(b).map_err(|e| io_err("write", e))
    }

    /// Append the record of user key `key` with stored value `value`; keys
    /// must come in strictly increasing order.
    pub fn record(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.last.as_deref().is_some_and(|l| l >= key) {
            return Err(Error::Raft("snapshot records out of key order".to_string()));
        }
        self.put(&(key.len() as u32).to_le_bytes())?;
        self.put(&(value.len() as u32).to_le_bytes())?;
        self.put(key)?;
        self.put(value)?;
        self.count += 1;
        let last = self.last.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(key);
        Ok(())
    }

    /// Write the trailer and flush; returns the sink, the record count and
    /// the file's length.
    pub fn finish(mut self) -> Result<(W, u64, u64)> {
        self.put(&END.to_le_bytes())?;
        let count = self.count;
        self.put(&count.to_le_bytes())?;
        let crc = self.crc;
        self.out.write_all(&crc.to_le_bytes()).map_err(|e| io_err("write", e))?;
        let len = self.bytes + 4;
        let out = self.out.into_inner().map_err(|e| io_err("flush", e.into_error()))?;
        Ok((out, count, len))
    }
}

/// Reads and checks one snapshot file, a record at a time.
pub struct Reader<R: Read> {
    input: BufReader<R>,
    crc: u32,
    count: u64,
    last: Option<Vec<u8>>,
    done: bool,
    applied: AppliedState,
}

impl<R: Read> Reader<R> {
    /// Open a snapshot: reads and checks the header (magic, version) and the
    /// applied state.
    pub fn new(input: R) -> Result<Reader<R>> {
        let mut r = Reader {
            input: BufReader::with_capacity(BUF, input),
            crc: 0,
            count: 0,
            last: None,
            done: false,
            applied: AppliedState::default(),
        };
        let mut magic = [0u8; 8];
        r.take(&mut magic, "the header")?;
        if &magic != MAGIC {
            return Err(corrupt("not a bwtx-raft snapshot (bad magic)"));
        }
        let version = r.u32("the header")?;
        if version != VERSION {
            return Err(corrupt(format!(
                "format version {version}; this build reads version {VERSION}"
            )));
        }
        let alen = r.u32("the header")?;
        if alen > MAX_APPLIED {
            return Err(corrupt(format!("an applied state of {alen} bytes")));
        }
        let mut json = vec![0u8; alen as usize];
        r.take(&mut json, "the applied state")?;
        r.applied = keys::from_json(&json, "snapshot applied state")?;
        Ok(r)
    }

    /// The applied state the snapshot's data reflects.
    pub fn applied(&self) -> &AppliedState {
        &self.applied
    }

    fn take(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        match self.input.read_exact(buf) {
            Ok(()) => {
                self.crc = crc32c::crc32c_append(self.crc, buf);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(corrupt(format!("truncated in {what}"))),
            Err(e) => Err(io_err("read", e)),
        }
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let mut b = [0u8; 4];
        self.take(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }

    /// The next record (user key, stored value), checked; `None` after the
    /// last, once the trailer checked out.
    pub fn next_record(&mut self) -> Result<Option<(Vec<u8>, Bytes)>> {
        if self.done {
            return Ok(None);
        }
        let klen = self.u32("a record")?;
        if klen == END {
            self.trailer()?;
            self.done = true;
            return Ok(None);
        }
        let vlen = self.u32("a record")?;
        if klen as usize > keys::MAX_USER_KEY_LEN || vlen as usize > bwtx::tree::MAX_VALUE_LEN {
            return Err(corrupt(format!(
                "a record of a {klen}-byte key and a {vlen}-byte value"
            )));
        }
        let mut key = vec![0u8; klen as usize];
        self.take(&mut key, "a record's key")?;
        let mut value = vec![0u8; vlen as usize];
        self.take(&mut value, "a record's value")?;
        if self.last.as_deref().is_some_and(|l| l >= key.as_slice()) {
            return Err(corrupt("records out of key order"));
        }
        let value = Bytes::from(value);
        keys::decode_value(&value)?;
        self.count += 1;
        let last = self.last.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(&key);
        Ok(Some((key, value)))
    }

    fn trailer(&mut self) -> Result<()> {
        let mut c = [0u8; 8];
        self.take(&mut c, "the trailer")?;
        let count = u64::from_le_bytes(c);
        let want = self.crc;
        let mut b = [0u8; 4];
        match self.input.read_exact(&mut b) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(corrupt("truncated in the trailer")),
            Err(e) => return Err(io_err("read", e)),
        }
        let crc = u32::from_le_bytes(b);
        if crc != want {
            return Err(corrupt(format!("CRC32C {crc:#010x} stored, {want:#010x} computed")));
        }
        if count != self.count {
            return Err(corrupt(format!(
                "the trailer counts {count} records, the file holds {}",
                self.count
            )));
        }
        let mut extra = [0u8; 1];
        match self.input.read(&mut extra) {
            Ok(0) => Ok(()),
            Ok(_) => Err(corrupt("bytes after the trailer")),
            Err(e) => Err(io_err("read", e)),
        }
    }

    /// Read every remaining record and the trailer; returns the number of
    /// records read.
    pub fn check_rest(&mut self) -> Result<u64> {
        let mut n = 0;
        while self.next_record()?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}

/// Check the whole snapshot file at `path` (as an install's first step
/// does); its applied state.
pub fn check_file(path: &std::path::Path) -> Result<AppliedState> {
    let file = std::fs::File::open(path).map_err(|e| io_err(&format!("open {}", path.display()), e))?;
    let mut r = Reader::new(file)?;
    r.check_rest()?;
    Ok(r.applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::log_id;

    fn sample(n: u32) -> Vec<u8> {
        let applied = AppliedState {
            last_applied: Some(log_id(2, 1, 40)),
            membership: Default::default(),
            ..Default::default()
        };
        let mut w = Writer::new(Vec::new(), &applied).unwrap();
        for i in 0..n {
            let v = keys::encode_value(u64::from(i), (i % 3 != 0).then_some(&b"value"[..]));
            w.record(format!("k{i:05}").as_bytes(), &v).unwrap();
        }
        let (out, count, len) = w.finish().unwrap();
        assert_eq!((count, len), (u64::from(n), out.len() as u64));
        out
    }

    type Records = Vec<(Vec<u8>, Bytes)>;

    fn read_all(b: &[u8]) -> Result<(AppliedState, Records)> {
        let mut r = Reader::new(b)?;
        let mut out = Vec::new();
        while let Some(kv) = r.next_record()? {
            out.push(kv);
        }
        Ok((r.applied().clone(), out))
    }

    #[test]
    fn a_snapshot_round_trips() {
        let (applied, recs) = read_all(&sample(50)).unwrap();
        assert_eq!(applied.index(), 40);
        assert_eq!(recs.len(), 50);
        assert_eq!(recs[7].0, b"k00007");
        assert_eq!(
            keys::decode_value(&recs[7].1).unwrap(),
            (7, Some(Bytes::from_static(b"value")))
        );
        let (_, none) = read_all(&sample(0)).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_an_error() {
        let good = sample(6);
        for len in 0..good.len() {
            let e = read_all(&good[..len]).expect_err("a truncated snapshot is refused");
            assert!(matches!(e, Error::Corrupt(_)), "cut at {len}: {e}");
        }
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                assert!(read_all(&bad).is_err(), "a flip of bit {bit} of byte {i} was accepted");
            }
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(read_all(&longer).is_err(), "bytes after the trailer");
    }

    #[test]
    fn another_version_is_named_and_records_must_be_ordered() {
        let mut v2 = sample(1);
        v2[8] = 2;
        let e = read_all(&v2).unwrap_err().to_string();
        assert!(e.contains("version 2") && e.contains("version 1"), "{e}");
        let mut w = Writer::new(Vec::new(), &AppliedState::default()).unwrap();
        w.record(b"b", &keys::encode_value(1, None)).unwrap();
        assert!(w.record(b"a", &keys::encode_value(1, None)).is_err());
        assert!(w.record(b"b", &keys::encode_value(1, None)).is_err());
    }
}
