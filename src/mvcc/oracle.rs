//! The timestamp oracle: commit timestamps and the visibility watermark.
//!
//! - `next` is the last commit timestamp handed out (`fetch_add`: the only
//!   serial step of a commit, one atomic instruction, no lock).
//! - `visible` is the *read timestamp*: every commit at or below it is wholly
//!   installed. New snapshots start there, so a snapshot never sees part of a
//!   commit.
//! - `done` is a ring of "installed" marks. A committer marks its timestamp
//!   when its versions are in the tree, then advances `visible` over every
//!   consecutive mark it finds (helping earlier committers that finished but
//!   have not advanced it yet), and returns once `visible` covers its own
//!   timestamp. See `design/mvcc.md`, section 1, "Timestamps and the oracle".

use crossbeam_utils::CachePadded;

use crate::sync::{fence, wait_until, AtomicU64, Backoff, Ordering::SeqCst};

/// Slots in the ring: at most this many commits can be allocated but not yet
/// visible at once; the next allocation waits (a bound never met in practice
/// with fewer threads than slots).
#[cfg(not(loom))]
const RING: u64 = 1024;
#[cfg(loom)]
const RING: u64 = 4;

pub(crate) struct Oracle {
    next: CachePadded<AtomicU64>,
    visible: CachePadded<AtomicU64>,
    done: Box<[AtomicU64]>,
}

impl Oracle {
    /// An oracle whose first commit gets `last + 1`, with everything up to
    /// `last` visible.
    pub(crate) fn new(last: u64) -> Self {
        Oracle {
            next: CachePadded::new(AtomicU64::new(last)),
            visible: CachePadded::new(AtomicU64::new(last)),
            // A slot holds the timestamp it last marked; `last` itself counts as done.
            done: (0..RING).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The read timestamp: a snapshot taken now sees exactly the commits at or
    /// below it.
    #[inline]
    pub(crate) fn read_ts(&self) -> u64 {
        self.visible.load(SeqCst)
    }

    /// Hand out the next commit timestamp. The caller must [`Oracle::publish`]
    /// it (see [`Allocated`], which does so even on unwind), or visibility
    /// stops at the timestamp before it.
    pub(crate) fn allocate(&self) -> Allocated<'_> {
        let ts = self.next.fetch_add(1, SeqCst) + 1;
        let backoff = Backoff::new();
        // The ring slot of `ts` is free once `ts - RING` is visible.
        while ts - self.visible.load(SeqCst) > RING {
            backoff.snooze();
        }
        Allocated {
            oracle: self,
            ts,
            published: false,
        }
    }

    /// Mark `ts` installed and wait until it is visible (every earlier
    /// commit installed too).
    fn publish(&self, ts: u64) {
        // `fetch_max`: a commit made visible in bulk by `advance_to` may mark
        // its slot late; it must not overwrite a later commit's mark there.
        self.done[(ts % RING) as usize].fetch_max(ts, SeqCst);
        fence(SeqCst);
        // Earlier commits still installing are running (usually on another
        // core) and finish within microseconds: spin before yielding.
        wait_until(|| self.advance() >= ts);
    }

    /// Make every commit up to `ts` visible at once. The caller guarantees
    /// they are all installed (the log writes commits in timestamp order, and
    /// each after its install, so everything it has synced qualifies).
    pub(crate) fn advance_to(&self, ts: u64) {
        self.visible.fetch_max(ts, SeqCst);
    }

    /// Move `visible` over every consecutive installed timestamp; returns it.
    fn advance(&self) -> u64 {
        let mut v = self.visible.load(SeqCst);
        loop {
            if self.done[((v + 1) % RING) as usize].load(SeqCst) != v + 1 {
                return v;
            }
            match self.visible.compare_exchange(v, v + 1, SeqCst, SeqCst) {
                Ok(_) => v += 1,
                Err(now) => v = now,
            }
            // Our store to `visible` before the next load of a mark, against
            // a committer's store of its mark before its load of `visible`.
            fence(SeqCst);
        }
    }
}

/// A commit timestamp handed out and not yet published. Dropping it publishes
/// it, so that a panic between allocation and publication (for example an
/// allocation failure while installing) cannot stop visibility for everyone.
pub(crate) struct Allocated<'o> {
    oracle: &'o Oracle,
    pub(crate) ts: u64,
    published: bool,
}

impl Allocated<'_> {
    /// Publish: returns once every commit up to this one is visible.
    pub(crate) fn publish(mut self) -> u64 {
        self.published = true;
        self.oracle.publish(self.ts);
        self.ts
    }
}

impl Drop for Allocated<'_> {
    fn drop(&mut self) {
        if !self.published {
            self.oracle.publish(self.ts);
        }
    }
}
