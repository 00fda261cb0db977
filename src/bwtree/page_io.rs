//! The contract the tree reads and writes leaf images through
//! ([`PageIo`], implemented by the engine over the page store), split from
//! `super::paging`, which re-exports it.

use bytes::Bytes;

use super::base::LeafBase;
use super::mapping_table::Pid;
use crate::sync::Arc;
use crate::Result;

/// One version of a delta flush: key, commit timestamp, value (`None`: a
/// tombstone).
pub(crate) type DeltaVersion<'a> = (&'a [u8], u64, Option<&'a [u8]>);

/// The versions (key, ts) whose value-log values a read left unread
/// ([`PageIo::read_leaf_at`]).
pub(crate) type Unread = Vec<(Box<[u8]>, u64)>;

/// Per key, the newest version at or below a fault-in's watermark that is
/// over the image in memory (blind writes over its stub), 0 if none: GC at
/// the watermark drops every version of that key in the image (P5 in
/// `super::paging`).
pub(crate) type Over<'a> = &'a dyn Fn(&[u8]) -> u64;

/// What evicting a clean leaf does with its on-disk chain
/// ([`PageIo::clean_eviction`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CleanEviction {
    /// The chain is read-worn (P8 in `super::paging`): write the page
    /// whole, and let its stub name the new image.
    Rewrite,
    /// Keep the chain; `hint` is [`PageIo::read_hint`]'s figure for it,
    /// for the stub.
    Keep { hint: u32 },
}

/// How the tree reads and writes leaf images (implemented by the engine).
pub(crate) trait PageIo: Send + Sync {
    /// Read and decode the image of leaf `pid` at `addr`. A bad image, or
    /// one written for another page or another tree, is `Error::Corruption`
    /// (with the segment file and offset), an I/O failure `Error::Io`;
    /// never a panic.
    fn read_leaf(&self, pid: Pid, addr: u64) -> Result<LeafBase>;
    /// [`PageIo::read_leaf`] for a fault-in that collects the page at
    /// `watermark`: the value-log values of versions that collection drops
    /// (a newer version of the key in the chain is at or below the
    /// watermark, or `over` names a newer one) may be left unread; the page
    /// then holds an empty placeholder for each, and the second part lists
    /// them, so the caller can check its collection dropped every one. The
    /// default reads everything.
    ///
    /// `hint`: the record bytes of the chain's one part, as
    /// [`PageIo::read_hint`] gave them when the stub was made (0: unknown),
    /// so that the read looks nothing up.
    fn read_leaf_at(
        &self,
        pid: Pid,
        addr: u64,
        hint: u32,
        watermark: u64,
        over: Over<'_>,
    ) -> Result<(LeafBase, Unread)> {
        let _ = (hint, watermark, over);
        Ok((self.read_leaf(pid, addr)?, Unread::new()))
    }
    /// The value of `key` as of snapshot `ts` in the image of leaf `pid` at
    /// `addr` (`None`: a tombstone, or no version at or below `ts`), read
    /// without building the page (read-through, `super::read_through`).
    /// Errors as [`PageIo::read_leaf`]'s. The default reads the whole page.
    /// `hint` as for [`PageIo::read_leaf_at`].
    fn read_version(&self, pid: Pid, addr: u64, hint: u32, key: &[u8], ts: u64) -> Result<Option<Bytes>> {
        let _ = hint;
        let base = self.read_leaf(pid, addr)?;
        let Some(i) = base.keys.find(key) else {
            return Ok(None);
        };
        Ok(base.versions(i).iter().find(|v| v.ts <= ts).and_then(|v| base.value(v)))
    }
    /// The key set of the image of leaf `pid` at `addr`, as
    /// `super::blind::key_set` builds it from the page, and the image's
    /// newest version timestamp: a blind write over a stub that has no
    /// set reads them (P5 in `super::paging`). Errors as
    /// [`PageIo::read_leaf`]'s. The default reads the whole page.
    fn key_set(&self, pid: Pid, addr: u64) -> Result<(Box<[u64]>, u64)> {
        let base = self.read_leaf(pid, addr)?;
        Ok((super::blind::key_set(&base), base.max_ts()))
    }
    /// Append the image of `base` (page `pid`); returns its address. Not
    /// durable until [`PageIo::sync`].
    fn write_leaf(&self, pid: Pid, base: &LeafBase) -> Result<u64>;
    /// `entries`: the versions of page `pid` (which builds on the chain at
    /// `prev`, DF1 in `super::flush`) at or below the flush's limit, in key
    /// order and newest first per key. Append those newer than
    /// [`PageIo::chain_upto`]`(prev)` as a delta flush on `prev`, or those
    /// newer than the chain's base image as a delta flush on the base (a
    /// rebase: the chain shrinks to two parts); return the new chain head.
    /// `None`: the caller writes a whole image (the page store declined:
    /// chain too long, deltas too large next to the base image). The
    /// default never writes a delta flush.
    fn write_delta(&self, pid: Pid, prev: u64, entries: &[DeltaVersion<'_>]) -> Result<Option<u64>> {
        let _ = (pid, prev, entries);
        Ok(None)
    }
    /// Append `entries` (as for [`PageIo::write_delta`], every one newer
    /// than the chain) as a delta flush on the chain at `prev`, never a
    /// rebase: the caller has only the versions newer than the chain (blind
    /// writes over an evicted leaf, P6 in `super::paging`). `None`: the
    /// page store declined (chain too long, deltas too large, chain
    /// unknown). The default always declines.
    fn write_delta_on(&self, pid: Pid, prev: u64, entries: &[DeltaVersion<'_>]) -> Result<Option<u64>> {
        let _ = (pid, prev, entries);
        Ok(None)
    }
    /// The newest version timestamp in the on-disk chain at `head` (its
    /// `upto`, DF1 in `super::flush`), if the page store knows it; `None`
    /// makes the next flush of a page building on it write a whole image.
    fn chain_upto(&self, head: u64) -> Option<u64> {
        let _ = head;
        None
    }
    /// What evicting a clean page whose chain is at `head` does (P8 in
    /// `super::paging`): a chain of several parts read often enough since
    /// it was written is worth writing whole; any other is kept, with the
    /// stub's read hint from the same look-up. The default: kept, no hint.
    fn clean_eviction(&self, head: u64) -> CleanEviction {
        let _ = head;
        CleanEviction::Keep { hint: 0 }
    }
    /// The record bytes of the chain at `head` if it is one part (a base
    /// image) whose length the page store knows, else 0: an eviction keeps
    /// it in the stub it makes (`Body::Evicted::hint`), and the stub's
    /// read-throughs and fault-in pass it back, instead of each looking the
    /// chain up. (Chain records never change and addresses are not reused,
    /// so the figure stays true for the stub's life.) The default: 0.
    fn read_hint(&self, head: u64) -> u32 {
        let _ = head;
        0
    }
    /// Make every image written so far durable.
    fn sync(&self) -> Result<()>;
    /// The log's durable timestamp `D`: every commit at or below it is
    /// durable (W1: an image holds no newer version).
    fn durable_ts(&self) -> u64;
}

/// A shared page store serves as well (the engine keeps a handle too).
impl<T: PageIo + ?Sized> PageIo for Arc<T> {
    fn read_leaf(&self, pid: Pid, addr: u64) -> Result<LeafBase> {
        (**self).read_leaf(pid, addr)
    }
    fn read_leaf_at(
        &self,
        pid: Pid,
        addr: u64,
        hint: u32,
        watermark: u64,
        over: Over<'_>,
    ) -> Result<(LeafBase, Unread)> {
        (**self).read_leaf_at(pid, addr, hint, watermark, over)
    }
    fn read_version(&self, pid: Pid, addr: u64, hint: u32, key: &[u8], ts: u64) -> Result<Option<Bytes>> {
        (**self).read_version(pid, addr, hint, key, ts)
    }
    fn key_set(&self, pid: Pid, addr: u64) -> Result<(Box<[u64]>, u64)> {
        (**self).key_set(pid, addr)
    }
    fn write_leaf(&self, pid: Pid, base: &LeafBase) -> Result<u64> {
        (**self).write_leaf(pid, base)
    }
    fn write_delta(&self, pid: Pid, prev: u64, entries: &[DeltaVersion<'_>]) -> Result<Option<u64>> {
        (**self).write_delta(pid, prev, entries)
    }
    fn write_delta_on(&self, pid: Pid, prev: u64, entries: &[DeltaVersion<'_>]) -> Result<Option<u64>> {
        (**self).write_delta_on(pid, prev, entries)
    }
    fn chain_upto(&self, head: u64) -> Option<u64> {
        (**self).chain_upto(head)
    }
    fn clean_eviction(&self, head: u64) -> CleanEviction {
        (**self).clean_eviction(head)
    }
    fn read_hint(&self, head: u64) -> u32 {
        (**self).read_hint(head)
    }
    fn sync(&self) -> Result<()> {
        (**self).sync()
    }
    fn durable_ts(&self) -> u64 {
        (**self).durable_ts()
    }
}
