//! Reads at a snapshot timestamp, optionally merged with a transaction's
//! own writes.

use std::ops::Bound;

use bytes::Bytes;

use super::Engine;
use crate::mvcc::iter::{bounds, prefix_end, Iter};
use crate::mvcc::WriteSet;
use crate::Result;

impl Engine {
    /// The value of `key` as of `ts`.
    #[inline]
    pub(crate) fn get(&self, key: &[u8], ts: u64) -> Result<Option<Bytes>> {
        self.tree.get(key, ts)
    }

    /// The keys between `start` and `end` as of `ts`, merged with `writes`.
    pub(crate) fn scan<'a>(
        &'a self,
        ts: u64,
        writes: Option<&'a WriteSet>,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Iter<'a> {
        let Some(b) = bounds(start, end) else {
            return Iter::empty();
        };
        let buf = writes.filter(|w| !w.is_empty()).map(|w| w.range::<[u8], _>(b));
        Iter::new(self.tree.range::<&[u8], _>(b, ts), buf)
    }

    /// [`Engine::scan`] over the keys that start with `prefix`.
    pub(crate) fn scan_prefix<'a>(&'a self, ts: u64, writes: Option<&'a WriteSet>, prefix: &[u8]) -> Iter<'a> {
        match prefix_end(prefix) {
            Some(end) => self.scan(ts, writes, Bound::Included(prefix), Bound::Excluded(&end[..])),
            None => self.scan(ts, writes, Bound::Included(prefix), Bound::Unbounded),
        }
    }
}
