//! Held syncs (`FaultFs::hold_syncs`): a liveness wait and a guard that
//! lets the syncs go on, for tests that look at what other threads do
//! while a sync waits.

use std::time::{Duration, Instant};

use bwtx::fs::FaultFs;

/// Wait for `done`, failing after a minute (a liveness bound, not a timing
/// measurement: the awaited event takes milliseconds when it happens).
pub fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "{what} never happened");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Releases the held syncs when dropped, on a failure too (closing a
/// database joins its threads, which may wait on a held sync).
pub struct Release(pub FaultFs);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.release_syncs();
    }
}
