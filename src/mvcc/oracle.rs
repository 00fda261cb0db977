//! The timestamp oracle: commit timestamps and two watermarks over them.
//!
//! - `next` is the last commit timestamp handed out (`fetch_add`: the only
//!   serial step of a commit, one atomic instruction, no lock).
//! - `visible` is the *read timestamp*: every commit at or below it is wholly
//!   installed and published. New snapshots start there, so a snapshot never
//!   sees part of a commit.
//! - `installed`: every commit at or below it has its versions in the tree
//!   (or, refused by serializable validation, will never have any). A
//!   serializable committer waits for it to reach the timestamp before its
//!   own before validating its reads.
//!
//! Both are a [`Watermark`]: a level plus a ring of marks. A committer marks
//! its timestamp, and the level advances over every consecutive mark
//! (whoever advances helps earlier committers that finished but did not
//! advance it). See `design/mvcc.md`, sections 1 and 10.

use crossbeam_utils::CachePadded;

use crate::sync::{fence, wait_until, AtomicU64, Backoff, Ordering::SeqCst};

/// Slots in the rings: at most this many commits can be allocated but not yet
/// visible at once; the next allocation waits (a bound never met in practice
/// with fewer threads than slots).
#[cfg(not(loom))]
const RING: u64 = 1024;
#[cfg(loom)]
const RING: u64 = 4;

/// A level that only grows, and a ring of per-timestamp marks: level `v`
/// means every timestamp `1..=v` was marked (or covered by [`Watermark::raise`]).
///
/// Slot `ts % RING` holds the largest timestamp marked there (`fetch_max`).
/// The oracle keeps every allocated timestamp within `RING` of `visible`,
/// and `visible` is at or below every watermark's truth, so a slot holding
/// more than `v + 1` (a later `v + 1 + k RING`) proves `v + 1` was marked
/// too: that later timestamp was allocated only once `v + 1` was visible.
struct Watermark {
    level: CachePadded<AtomicU64>,
    marks: Box<[AtomicU64]>,
}

impl Watermark {
    fn new(last: u64) -> Self {
        Watermark {
            level: CachePadded::new(AtomicU64::new(last)),
            // A slot holds the timestamp it last marked; `last` itself counts.
            marks: (0..RING).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    #[inline]
    fn load(&self) -> u64 {
        self.level.load(SeqCst)
    }

    /// Mark `ts`: one atomic instruction. The level moves when someone
    /// advances it.
    #[inline]
    fn mark(&self, ts: u64) {
        self.marks[(ts % RING) as usize].fetch_max(ts, SeqCst);
    }

    /// Raise the level to `ts` at once (the caller knows every timestamp up
    /// to it qualifies).
    fn raise(&self, ts: u64) {
        self.level.fetch_max(ts, SeqCst);
    }

    /// Move the level over every consecutive mark; returns it.
    fn advance(&self) -> u64 {
        let mut v = self.level.load(SeqCst);
        loop {
            if self.marks[((v + 1) % RING) as usize].load(SeqCst) < v + 1 {
                return v;
            }
            match self.level.compare_exchange(v, v + 1, SeqCst, SeqCst) {
                Ok(_) => v += 1,
                Err(now) => v = now,
            }
            // Our store to the level before the next load of a mark, against
            // a committer's store of its mark before its load of the level.
            fence(SeqCst);
        }
    }
}

pub(crate) struct Oracle {
    next: CachePadded<AtomicU64>,
    visible: Watermark,
    installed: Watermark,
}

impl Oracle {
    /// An oracle whose first commit gets `last + 1`, with everything up to
    /// `last` visible.
    pub(crate) fn new(last: u64) -> Self {
        Oracle {
            next: CachePadded::new(AtomicU64::new(last)),
            visible: Watermark::new(last),
            installed: Watermark::new(last),
        }
    }

    /// The read timestamp: a snapshot taken now sees exactly the commits at or
    /// below it.
    #[inline]
    pub(crate) fn read_ts(&self) -> u64 {
        self.visible.load()
    }

    /// Hand out the next commit timestamp. The caller must [`Oracle::publish`]
    /// it (see [`Allocated`], which does so even on unwind), or visibility
    /// stops at the timestamp before it.
    pub(crate) fn allocate(&self) -> Allocated<'_> {
        let ts = self.next.fetch_add(1, SeqCst) + 1;
        let backoff = Backoff::new();
        // The ring slots of `ts` are free once `ts - RING` is visible.
        while ts - self.visible.load() > RING {
            backoff.snooze();
        }
        Allocated {
            oracle: self,
            ts,
            installed: false,
            published: false,
        }
    }

    /// Wait until every commit up to `ts` is installed in the tree (or was
    /// refused and installs nothing). Used by a serializable committer with
    /// `ts` one below its own timestamp: it waits only for smaller
    /// timestamps, whose committers hold no latch and wait for nothing
    /// larger, so this cannot deadlock.
    pub(crate) fn wait_installed(&self, ts: u64) {
        // Everything visible is installed: start there, so a long run of
        // snapshot-isolation commits (which mark but never advance) is not
        // walked mark by mark.
        self.installed.raise(self.visible.load());
        wait_until(|| self.installed.advance() >= ts);
    }

    /// The installed watermark (tests and loom models).
    #[cfg(any(test, loom))]
    #[allow(dead_code)]
    pub(crate) fn installed_ts(&self) -> u64 {
        self.installed.load()
    }

    /// Mark `ts` published and wait until it is visible (every earlier
    /// commit published too).
    fn publish(&self, ts: u64) {
        // `fetch_max`: a commit made visible in bulk by `advance_to` may mark
        // its slot late; it must not overwrite a later commit's mark there.
        self.visible.mark(ts);
        fence(SeqCst);
        // Earlier commits still installing are running (usually on another
        // core) and finish within microseconds: spin before yielding.
        wait_until(|| self.visible.advance() >= ts);
    }

    /// Make every commit up to `ts` visible at once. The caller guarantees
    /// they are all installed (the log writes commits in timestamp order, and
    /// each after its install, so everything it has synced qualifies).
    pub(crate) fn advance_to(&self, ts: u64) {
        self.visible.raise(ts);
    }
}

/// A commit timestamp handed out and not yet published. Dropping it marks
/// it installed and publishes it, so that a panic between allocation and
/// publication (for example an allocation failure while installing) cannot
/// stop visibility, or a serializable committer's wait, for everyone.
pub(crate) struct Allocated<'o> {
    oracle: &'o Oracle,
    pub(crate) ts: u64,
    installed: bool,
    published: bool,
}

impl Allocated<'_> {
    /// Mark the timestamp installed: its versions are in the tree, or it
    /// was refused and will install none. One atomic instruction.
    #[inline]
    pub(crate) fn mark_installed(&mut self) {
        self.installed = true;
        self.oracle.installed.mark(self.ts);
    }

    /// Publish: returns once every commit up to this one is visible.
    pub(crate) fn publish(mut self) -> u64 {
        if !self.installed {
            self.mark_installed();
        }
        self.published = true;
        self.oracle.publish(self.ts);
        self.ts
    }
}

impl Drop for Allocated<'_> {
    fn drop(&mut self) {
        if !self.installed {
            self.mark_installed();
        }
        if !self.published {
            self.oracle.publish(self.ts);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Snapshot-isolation commits only mark `installed`; a level that lags
    /// more than a ring behind still advances over the slots later
    /// timestamps overwrote (a mark above `v + 1` proves `v + 1`).
    #[test]
    fn a_lagging_installed_level_advances_over_overwritten_slots() {
        let oracle = Oracle::new(0);
        for _ in 0..3 * RING {
            let mut a = oracle.allocate();
            a.mark_installed();
            a.publish();
        }
        assert_eq!(oracle.read_ts(), 3 * RING);
        assert_eq!(oracle.installed_ts(), 0);
        assert_eq!(oracle.installed.advance(), 3 * RING);
        // A serializable committer's wait starts from the read timestamp.
        let fresh = Oracle::new(0);
        for _ in 0..5 {
            fresh.allocate().publish();
        }
        fresh.wait_installed(5);
        assert_eq!(fresh.installed_ts(), 5);
    }

    /// A timestamp allocated and dropped without publishing (an unwind)
    /// is marked installed and published, so waiters go on.
    #[test]
    fn dropping_an_allocation_marks_and_publishes_it() {
        let oracle = Oracle::new(7);
        drop(oracle.allocate());
        let mut b = oracle.allocate();
        b.mark_installed();
        oracle.wait_installed(9);
        assert_eq!(b.publish(), 9);
        assert_eq!(oracle.read_ts(), 9);
    }
}
