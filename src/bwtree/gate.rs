//! The gates of paged trees (`design/storage.md` §5.2, §6): a counter of
//! passes out and a `closed` flag, in a Dekker handshake. The *commit gate*
//! (G1, `super::paging`): commits hold a pass between prepare and install,
//! waiting while it is closed; an eviction batch closes it around its CASes.
//! The *structure-modification gate* (`super::flush`): a leaf merge start
//! takes a pass if the gate is open ([`Gate::try_enter`], never waiting); a
//! checkpoint closes it while it lists the leaves (leaf splits take no pass:
//! F2 in `super::flush`). Loom models: `loom_tests/tests/paging.rs` (the
//! commit gate), `checkpoint.rs` (the listing under a merge, and under a
//! split).

use crate::sync::{fence, AtomicBool, AtomicU64, Backoff, Ordering};

/// The commit gate (G1): commits hold it open between prepare and install;
/// an eviction batch closes it, waits for the commits inside to leave, does
/// its CASes, and opens it again.
#[derive(Default)]
pub(crate) struct Gate {
    inside: AtomicU64,
    closed: AtomicBool,
}

/// A commit's pass through the [`Gate`]; dropping it leaves.
pub(crate) struct GatePass<'a>(&'a Gate);

impl Gate {
    /// Enter (waits while an eviction batch has the gate closed).
    pub(crate) fn enter(&self) -> GatePass<'_> {
        let backoff = Backoff::new();
        loop {
            // Dekker, with a SeqCst fence on both sides between the write
            // and the read: either the evictor sees us inside, or we see
            // the gate closed. (Loom models SeqCst accesses as AcqRel, and
            // the fences as SeqCst: its model of this gate needs them.)
            self.inside.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if !self.closed.load(Ordering::SeqCst) {
                return GatePass(self);
            }
            self.inside.fetch_sub(1, Ordering::SeqCst);
            while self.closed.load(Ordering::SeqCst) {
                backoff.snooze();
            }
        }
    }

    /// Enter unless the gate is closed (then `None`, without waiting): the
    /// structure-modification gate, which a checkpoint closes while it
    /// lists the leaves (`super::flush`).
    pub(crate) fn try_enter(&self) -> Option<GatePass<'_>> {
        self.inside.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !self.closed.load(Ordering::SeqCst) {
            return Some(GatePass(self));
        }
        self.inside.fetch_sub(1, Ordering::SeqCst);
        None
    }

    /// Close the gate and wait until no pass is out. The caller is the only
    /// closer (the eviction mutex, or the checkpoint's turn).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let backoff = Backoff::new();
        while self.inside.load(Ordering::SeqCst) != 0 {
            backoff.snooze();
        }
    }

    pub(crate) fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
    }
}

impl Drop for GatePass<'_> {
    fn drop(&mut self) {
        self.0.inside.fetch_sub(1, Ordering::SeqCst);
    }
}
