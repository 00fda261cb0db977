//! Reading through a transaction or a snapshot, and checking iterators
//! against the model.

use std::ops::Bound::{self, Excluded, Included, Unbounded};

use bwtx::{Iter, Snapshot, Transaction};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::ops::{key, Consume, Key, Val};

/// Something that reads: a transaction or a snapshot.
pub enum Reader<'r> {
    Tx(&'r Transaction),
    Snap(&'r Snapshot),
}

impl Reader<'_> {
    pub fn get(&self, k: &[u8]) -> bwtx::Result<Option<bytes::Bytes>> {
        match self {
            Reader::Tx(t) => t.get(k),
            Reader::Snap(s) => s.get(k),
        }
    }

    /// Ranges through the std range types where one fits, else a bound pair.
    pub fn range(&self, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Iter<'_> {
        macro_rules! range_of {
            ($r:expr) => {
                match (lo, hi) {
                    (Included(a), Excluded(b)) => $r.range(a..b),
                    (Included(a), Included(b)) => $r.range(a..=b),
                    (Included(a), Unbounded) => $r.range(a..),
                    (Unbounded, Excluded(b)) => $r.range(..b),
                    (Unbounded, Included(b)) => $r.range(..=b),
                    (Unbounded, Unbounded) => $r.range::<&[u8], _>(..),
                    (lo, hi) => $r.range::<&[u8], _>((lo, hi)),
                }
            };
        }
        match self {
            Reader::Tx(t) => range_of!(t),
            Reader::Snap(s) => range_of!(s),
        }
    }

    pub fn prefix(&self, p: &[u8]) -> Iter<'_> {
        match self {
            Reader::Tx(t) => t.prefix(p),
            Reader::Snap(s) => s.prefix(p),
        }
    }
}

pub fn in_bound(k: &[u8], lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    let above = match lo {
        Included(l) => k >= l,
        Excluded(l) => k > l,
        Unbounded => true,
    };
    let below = match hi {
        Included(h) => k <= h,
        Excluded(h) => k < h,
        Unbounded => true,
    };
    above && below
}

pub fn map_bound(b: &Bound<usize>) -> Bound<Key> {
    match b {
        Included(i) => Included(key(*i)),
        Excluded(i) => Excluded(key(*i)),
        Unbounded => Unbounded,
    }
}

pub fn show(k: &[u8]) -> String {
    format!("{:?}", bytes::Bytes::copy_from_slice(k))
}

/// Consume `it` as `how` says, checking every item against `expected`, and
/// that a fully consumed iterator returns `None` from both ends.
pub fn check_iter(mut it: Iter<'_>, expected: &[(Key, Val)], how: &Consume, ctx: &str) -> Result<(), TestCaseError> {
    let (mut front, mut back) = (0, expected.len());
    let mut step = 0usize;
    loop {
        let from_back = match how {
            Consume::Forward => false,
            Consume::Reverse => true,
            Consume::Mixed(p) => p.get(step).copied().unwrap_or(false),
            Consume::Partial(n, b) => {
                if step == *n {
                    return Ok(());
                }
                *b
            }
        };
        step += 1;
        let got = if from_back { it.next_back() } else { it.next() };
        if front == back {
            prop_assert!(got.is_none(), "{ctx}: step {step}: expected the end, got {got:?}");
            prop_assert!(it.next().is_none(), "{ctx}: next() after the end");
            prop_assert!(it.next_back().is_none(), "{ctx}: next_back() after the end");
            return Ok(());
        }
        let want = if from_back {
            back -= 1;
            &expected[back]
        } else {
            front += 1;
            &expected[front - 1]
        };
        let (k, v) = match got {
            Some(Ok(kv)) => kv,
            Some(Err(e)) => return Err(TestCaseError::fail(format!("{ctx}: step {step}: error {e}"))),
            None => {
                return Err(TestCaseError::fail(format!(
                    "{ctx}: step {step} (back: {from_back}): ended early, expected {}",
                    show(&want.0)
                )))
            }
        };
        prop_assert_eq!(
            (show(&k), &v[..]),
            (show(&want.0), &want.1[..]),
            "{}: step {} (back: {})",
            ctx,
            step,
            from_back
        );
    }
}
