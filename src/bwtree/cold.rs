//! Cold stubs (`design/storage.md` §5.9): what a mapping-table slot holds
//! for an evicted leaf nothing has touched for a while, in place of its
//! `Evicted` node.
//!
//! An `Evicted` stub is a whole chain node (320 bytes: every node has the
//! size of the largest body), its two fences in allocations of their own
//! and, for a leaf evicted dirty, its key set (8 bytes a key): 500-600
//! bytes a leaf, which grow with the data, not the cache. A [`Cold`] keeps
//! only what rebuilding the stub needs: the chain's address, the stub's
//! `max_ts`, GC watermark and read hint, the sibling and both fences in one
//! allocation (about 110 bytes a leaf with 16-byte keys), and the key set
//! if the stub had one (it is what spares the blind writes that follow a
//! dirty eviction a read of the on-disk chain, P7: dropping it measured
//! 15% fewer transactions in YCSB A, §5.9).
//!
//! Definitions
//! - A slot is *cold* when it holds a [`Cold`] (tagged pointer, see
//!   `super::mapping_table`, T6-T8).
//! - *Packing* replaces a plain stub (an `Evicted` node with nothing over
//!   it) by its [`Cold`] ([`Cold::of`]); *unpacking* replaces a [`Cold`] by
//!   the stub it describes ([`Cold::stub`]). Both by CAS, in the table.
//!
//! Invariants
//! - C1. `Cold::of(s).stub()` equals `s`: the same address, fences,
//!   sibling, `max_ts`, watermark, hint and key set. Every use of a leaf
//!   therefore sees the same stub whether its slot was packed meanwhile or
//!   not.
//! - C2. A [`Cold`] is immutable once published; a relocation publishes a
//!   new one by CAS.

use bytes::Bytes;

use super::base::PageRange;
use super::chain::{counter, Chain, Node};
use super::delta::Body;
use super::mapping_table::Pid;

/// `low_len` of a [`Cold`] without a low fence (the leftmost leaf).
const NONE: u32 = u32::MAX;

/// An evicted leaf's stub, packed (module doc).
#[derive(Debug)]
pub(crate) struct Cold {
    /// The stub's key set, if it had one (P7): kept, so that the blind
    /// writes that follow a leaf evicted dirty do not read it back, until
    /// aging passes drop it (KS1 in `super::paging`).
    keys: Option<Box<[u64]>>,
    addr: u64,
    max_ts: u64,
    watermark: u64,
    sibling: Pid,
    hint: u32,
    /// Bytes of the low fence at the start of `fences` ([`NONE`]: none).
    low_len: u32,
    /// Is there a high fence (the rest of `fences`)?
    has_high: bool,
    /// The low fence, then the high fence.
    fences: Box<[u8]>,
}

impl Cold {
    /// The cold form of `head` if it is a plain stub (an `Evicted` node
    /// with nothing over it), else `None`.
    pub(crate) fn of(head: &Node) -> Option<Box<Cold>> {
        if !head.is_stub() {
            return None;
        }
        let Body::Evicted {
            addr,
            range,
            max_ts,
            watermark,
            hint,
            keys,
        } = &head.body
        else {
            return None;
        };
        let mut cold = Self::new(*addr, range, *max_ts, *watermark, *hint);
        cold.keys = keys.clone();
        Some(cold)
    }

    /// A cold stub for the chain at `addr` of a leaf over `range` (a leaf
    /// restored from a location table, or a relocated one).
    pub(crate) fn new(addr: u64, range: &PageRange, max_ts: u64, watermark: u64, hint: u32) -> Box<Cold> {
        let low = range.low();
        let high = range.high();
        let mut fences = Vec::with_capacity(low.map_or(0, <[u8]>::len) + high.map_or(0, <[u8]>::len));
        fences.extend_from_slice(low.unwrap_or_default());
        fences.extend_from_slice(high.unwrap_or_default());
        Self::boxed(Cold {
            keys: None,
            addr,
            max_ts,
            watermark,
            sibling: range.sibling,
            hint,
            // Keys are at most `MAX_KEY_LEN` bytes, far below `u32::MAX`.
            low_len: low.map_or(NONE, |l| l.len() as u32),
            has_high: high.is_some(),
            fences: fences.into_boxed_slice(),
        })
    }

    /// Box `cold`, counted with the live nodes (feature `leak-check`: a
    /// cold stub stands for a node).
    fn boxed(cold: Cold) -> Box<Cold> {
        counter::alloc();
        Box::new(cold)
    }

    /// The same leaf at another address (a relocation; C2), with the read
    /// hint of the chain there.
    pub(crate) fn moved(&self, addr: u64, hint: u32) -> Box<Cold> {
        self.copy(addr, hint, self.keys.clone())
    }

    /// The same leaf without its key set (KS1 in `super::paging`: an aging
    /// pass drops the key set of a leaf no write used for three; its next
    /// blind write reads it from the chain, P7). C2: a new record.
    pub(crate) fn without_keys(&self) -> Box<Cold> {
        self.copy(self.addr, self.hint, None)
    }

    /// Has it a key set?
    pub(crate) fn has_keys(&self) -> bool {
        self.keys.is_some()
    }

    fn copy(&self, addr: u64, hint: u32, keys: Option<Box<[u64]>>) -> Box<Cold> {
        Self::boxed(Cold {
            keys,
            addr,
            max_ts: self.max_ts,
            watermark: self.watermark,
            sibling: self.sibling,
            hint,
            low_len: self.low_len,
            has_high: self.has_high,
            fences: self.fences.clone(),
        })
    }

    /// The chain's address.
    pub(crate) fn addr(&self) -> u64 {
        self.addr
    }

    /// The newest version timestamp of the leaf's chain (`u64::MAX`:
    /// unknown, a leaf restored from a location table).
    pub(crate) fn max_ts(&self) -> u64 {
        self.max_ts
    }

    /// The leaf's right sibling (B-link).
    pub(crate) fn sibling(&self) -> Pid {
        self.sibling
    }

    /// The chain's read hint (`PageIo::read_hint`; 0: none).
    pub(crate) fn hint(&self) -> u32 {
        self.hint
    }

    /// The GC watermark the leaf was built with (0: unknown).
    pub(crate) fn watermark(&self) -> u64 {
        self.watermark
    }

    /// The leaf's low fence (`None`: minus infinity).
    pub(crate) fn low(&self) -> Option<&[u8]> {
        (self.low_len != NONE).then(|| &self.fences[..self.low_len as usize])
    }

    /// The leaf's high fence (`None`: plus infinity).
    pub(crate) fn high(&self) -> Option<&[u8]> {
        let at = if self.low_len == NONE { 0 } else { self.low_len as usize };
        self.has_high.then(|| &self.fences[at..])
    }

    /// The leaf's range (fences copied out).
    pub(crate) fn range(&self) -> PageRange {
        PageRange::new(
            self.low().map(Bytes::copy_from_slice),
            self.high().map(Bytes::copy_from_slice),
            self.sibling,
        )
    }

    /// The stub this describes (C1).
    pub(crate) fn stub(&self) -> Chain {
        Chain::base(Node::base(Body::Evicted {
            addr: self.addr,
            range: self.range(),
            max_ts: self.max_ts,
            watermark: self.watermark,
            keys: self.keys.clone(),
            hint: self.hint,
        }))
    }

    /// Estimated heap bytes (the resident accounting's stub bytes).
    pub(crate) fn bytes(&self) -> u64 {
        (std::mem::size_of::<Cold>() + self.fences.len() + self.keys.as_ref().map_or(0, |k| k.len() * 8)) as u64
    }
}

impl Drop for Cold {
    fn drop(&mut self) {
        counter::free();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::bwtree::mapping_table::NO_PID;

    fn stub(low: Option<&'static [u8]>, high: Option<&'static [u8]>, keys: bool) -> Node {
        Node::base(Body::Evicted {
            addr: 8 << 3,
            range: PageRange::new(low.map(Bytes::from_static), high.map(Bytes::from_static), 7),
            max_ts: 41,
            watermark: 9,
            keys: keys.then(|| vec![2u64, 5].into_boxed_slice()),
            hint: 1234,
        })
    }

    /// C1: a packed stub unpacks to the same stub, its key set too, for
    /// every combination of fences (the empty key as a fence too).
    #[test]
    fn a_stub_packs_and_unpacks_to_itself() {
        let fences: [Option<&'static [u8]>; 3] = [None, Some(b""), Some(b"user000123")];
        for low in fences {
            for high in [None, Some(&b"user000200"[..]), Some(&b"z"[..])] {
                let s = stub(low, high, true);
                let cold = Cold::of(&s).expect("a plain stub packs");
                assert_eq!((cold.low(), cold.high()), (low, high));
                let fences = low.map_or(0, <[u8]>::len) + high.map_or(0, <[u8]>::len);
                assert_eq!(cold.bytes() as usize, std::mem::size_of::<Cold>() + fences + 16);
                assert!(std::mem::size_of::<Cold>() <= 80);
                let back = cold.stub();
                let Body::Evicted {
                    addr,
                    range,
                    max_ts,
                    watermark,
                    keys,
                    hint,
                } = &back.head().body
                else {
                    panic!("not a stub");
                };
                assert_eq!((*addr, *max_ts, *watermark, *hint), (8 << 3, 41, 9, 1234));
                assert_eq!((range.low(), range.high(), range.sibling), (low, high, 7));
                assert_eq!(keys.as_deref(), Some(&[2u64, 5][..]), "the key set is kept");
                let moved = cold.moved(16 << 3, 0);
                assert_eq!((moved.addr(), moved.low(), moved.high()), (16 << 3, low, high));
            }
        }
    }

    /// Only a plain stub packs: not a resident page.
    #[test]
    fn only_a_plain_stub_packs() {
        let leaf = Node::base(Body::Leaf(crate::bwtree::base::LeafBase::empty(PageRange::new(
            None, None, NO_PID,
        ))));
        assert!(Cold::of(&leaf).is_none());
    }
}
