//! The parts of an on-disk page chain as the page file's chain map keeps
//! them (`super::pages`, `design/storage.md` §4): at most [`FLUSH_CHAIN`]
//! addresses, inline, so that an entry of the map (one per chain head, pruned
//! by the evictor) allocates nothing of its own.

use crate::bwtree::FLUSH_CHAIN;

/// A chain's parts' addresses, the base image first: at most
/// [`FLUSH_CHAIN`], kept inline: no allocation per map entry (small
/// long-lived allocations placed between leaf pages can keep glibc from
/// giving those pages back once the leaves are freed).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Parts {
    len: u8,
    addrs: [u64; FLUSH_CHAIN],
}

impl Parts {
    /// The parts `addrs` (base first; at most [`FLUSH_CHAIN`] are kept).
    pub(crate) fn of(addrs: &[u64]) -> Self {
        let mut p = Parts {
            len: 0,
            addrs: [0; FLUSH_CHAIN],
        };
        for &a in addrs {
            p.push(a);
        }
        p
    }

    /// Add `addr` as the newest part (callers push only onto a chain
    /// shorter than [`FLUSH_CHAIN`]).
    pub(crate) fn push(&mut self, addr: u64) {
        debug_assert!((self.len as usize) < FLUSH_CHAIN);
        if let Some(slot) = self.addrs.get_mut(self.len as usize) {
            *slot = addr;
            self.len += 1;
        }
    }
}

impl std::ops::Deref for Parts {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        &self.addrs[..self.len as usize]
    }
}
