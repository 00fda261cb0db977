//! [`Changes`]: an owned handle on the change stream, from a timestamp on.

use std::time::{Duration, Instant};

use crate::engine::changes::KsNames;
use crate::engine::{Change, Engine};
use crate::sync::Arc;
use crate::wal::changes::ChangeCursor;
use crate::Result;

/// The committed transactions after a timestamp, in commit order, each with
/// its writes ([`crate::Db::changes_since`]).
///
/// As an iterator it ends at the newest commit visible when it was created
/// (or last waited); [`Changes::wait_next`] tails the stream, waiting for
/// new commits. It gives out only durable commits (in `Buffered` mode,
/// once the background sync or [`crate::Db::sync`] has made them so), so
/// [`Changes::position`] is where to resume, after a restart or a power
/// loss too, with `changes_since(position)`. An item is an error for a damaged
/// log (`Error::Corruption`, never a wrong change) or for log segments
/// deleted under it (`Error::SnapshotTooOld`: see
/// [`crate::Options::change_retention`]); reading on after an error repeats it.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("bwtx-doc-changes-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let db = bwtx::Db::open(&dir)?;
/// let start = db.snapshot().ts();
/// db.transaction(|tx| tx.put("a", "1"))?;
/// db.transaction(|tx| tx.delete("a"))?;
/// let mut changes = db.changes_since(start)?;
/// let first = changes.next().unwrap()?;
/// assert_eq!(first.writes, vec![("a".into(), Some("1".into()))]);
/// let second = changes.next().unwrap()?;
/// assert_eq!(second.writes, vec![("a".into(), None)]);
/// assert!(changes.next().is_none());
/// // A consumer stores `position()` and resumes from it later.
/// assert_eq!(changes.position(), second.ts);
/// # drop(changes); drop(db); std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), bwtx::Error>(())
/// ```
pub struct Changes {
    engine: Arc<Engine>,
    cursor: ChangeCursor,
    names: KsNames,
    upto: u64,
}

impl Changes {
    pub(crate) fn new(engine: &Arc<Engine>, ts: u64) -> Result<Self> {
        let cursor = engine.change_cursor(ts)?;
        Ok(Changes {
            upto: engine.change_limit(),
            engine: engine.clone(),
            cursor,
            names: KsNames::default(),
        })
    }

    /// The timestamp of the last change returned (at first, the one the
    /// stream started after): resume with `changes_since(position)`.
    pub fn position(&self) -> u64 {
        self.cursor.after()
    }

    /// The next change, waiting up to `timeout` for one to be committed;
    /// `None` if none came. A timeout past about a century waits as long
    /// as a century.
    pub fn wait_next(&mut self, timeout: Duration) -> Option<Result<Change>> {
        // Clamped: `Instant + Duration::MAX` overflows.
        let started = Instant::now();
        let deadline = started + timeout.min(Duration::from_secs(100 * 365 * 86_400));
        loop {
            self.upto = self.engine.change_limit();
            if let Some(next) = self.next() {
                return Some(next);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            // Caught up with the log, and it is poisoned: nothing will be
            // logged after this (a commit whose log write failed is
            // visible but not logged; after a failed background sync or
            // checkpoint no commit comes at all): report it.
            if let Err(e) = self.engine.check_log() {
                return Some(Err(e));
            }
            if self.engine.read_ts() > self.cursor.after() {
                // Visible but not yet durable: one being logged, or (in
                // `Buffered` mode) waiting for the background sync. Every
                // sync wakes the wait; in slices, as below.
                self.engine
                    .wait_durable(self.cursor.after() + 1, left.min(Duration::from_secs(1)));
                continue;
            }
            // In slices, so that a log poisoned meanwhile is reported
            // within one; the naps lengthen with the whole wait.
            self.engine.wait_visible_after(
                self.cursor.after() + 1,
                left.min(Duration::from_secs(1)),
                started.elapsed(),
            );
        }
    }
}

impl Iterator for Changes {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Result<Change>> {
        self.engine
            .next_change(&mut self.cursor, &mut self.names, self.upto)
            .transpose()
    }
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("position", &self.cursor.after())
            .field("upto", &self.upto)
            .finish()
    }
}
