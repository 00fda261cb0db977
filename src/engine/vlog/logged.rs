//! Values written once (`design/storage.md` §10.1): with a buffered log, a
//! committed value above the threshold goes to the value log at commit
//! ([`ValueLog::place_at_commit`]) and the log record references it. The
//! log syncs those values before its own syncs ([`ValueLog::sync_logged`]);
//! recovery reads the references ([`ValueLog::fetch_logged`]), taking one
//! that dangles at the value log's torn tail for the log's torn tail; and a
//! segment holding such values stays while the log may be read back to it
//! (`logged`, kept by [`ValueLog::collect`]).

use bytes::Bytes;

use super::{ValueLog, VALUE_HEADER};
use crate::pagestore::record::{addr_offset, addr_seq, record_bytes, Kind, SEGMENT_HEADER_LEN};
use crate::pagestore::segment;
use crate::sync::{lock, Ordering};
use crate::{Error, Result};

impl ValueLog {
    /// Values written once (`design/storage.md` §10.1): the value of
    /// version `(key, ts)` of tree `tree`, committing now, if it belongs in
    /// the log (`None`: the log record holds it). Appended (no sync) and
    /// named in `placed`, so its page's flushes reference it; its segment
    /// is noted in `logged`. The caller's log record references it, and
    /// the log syncs it first ([`ValueLog::sync_logged`]).
    pub(crate) fn place_at_commit(&self, tree: u16, key: &[u8], ts: u64, value: &[u8]) -> Result<Option<u64>> {
        if !self.takes(value.len()) {
            return Ok(None);
        }
        let mut placed = lock(&self.placed);
        let addr = self.append(&mut placed, (tree, key.into(), ts), value, false)?;
        self.note_logged(addr, ts);
        let end = addr + record_bytes(VALUE_HEADER + key.len() + value.len());
        self.logged_end.fetch_max(end, Ordering::AcqRel);
        Ok(Some(addr))
    }

    /// Would a value of `len` bytes go to the log ([`ValueLog::place_at_commit`])?
    pub(crate) fn takes(&self, len: usize) -> bool {
        len as u64 > self.threshold && len > crate::bwtree::INLINE_MAX
    }

    /// Segment of `addr` holds a value the log references at `ts` (also
    /// recovery's note of the references of records it keeps but does not
    /// replay, which the change stream may read).
    pub(crate) fn note_logged(&self, addr: u64, ts: u64) {
        let mut logged = lock(&self.logged);
        let max = logged.entry(addr_seq(addr)).or_insert(ts);
        *max = (*max).max(ts);
    }

    /// Recovery replayed version `(key, ts)` of tree `tree`, whose value the
    /// log references at `addr`: `placed` names it (its page's next flush
    /// references the record instead of appending it again) and its segment
    /// is noted in `logged`.
    pub(crate) fn note_replayed(&self, tree: u16, key: &[u8], ts: u64, addr: u64) {
        self.note_placed(tree, key, ts, addr);
        self.note_logged(addr, ts);
    }

    /// Sync the value log if a value placed at commit is not synced yet:
    /// the log's hook before each of its syncs (`crate::wal::writer::BeforeSync`).
    pub(crate) fn sync_logged(&self) -> Result<()> {
        // Check the poison first: once any sync of the store failed,
        // `durable` alone does not show the values are safe (its two
        // handles share one open file description, and an fsync error
        // reported to one may not be reported to the other).
        self.store.check()?;
        if self.store.ends().1 >= self.logged_end.load(Ordering::Acquire) {
            return Ok(());
        }
        self.store.sync()
    }

    /// Recovery's read of a value the log references (placed at commit),
    /// checked as [`ValueLog::resolve`] checks it, nothing noted (recovery
    /// notes a commit's references once all of them read back,
    /// [`ValueLog::note_replayed`]: a commit cut at a later one leaves no
    /// `placed` entry that a new commit at its timestamp could take). A
    /// record that does not read back is `Ok(None)` if it lies in the value
    /// log's torn tail (see [`ValueLog::in_torn_tail`]), else the error.
    /// `unsynced`: the referencing log record may never have been synced
    /// (the log's marks, `crate::wal::recovery::Replay::fetch`); see
    /// [`ValueLog::in_torn_tail`].
    pub(crate) fn fetch_logged(
        &self,
        tree: u16,
        key: &[u8],
        ts: u64,
        addr: u64,
        len: u32,
        unsynced: bool,
    ) -> Result<Option<Bytes>> {
        match self.read_value(tree, key, ts, addr, len) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                if self.in_torn_tail(addr, unsynced)? {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Is `addr` at or above the loaded table's `vlog_head` and past the
    /// valid records of the newest segment of the runs before this one
    /// that holds records (the only one that may end in
    /// values never synced; closed segments are synced when the next
    /// starts), or in this run's first segment (the previous run's newest,
    /// if a crash cut its header, was deleted and its number reused)? Read whole and scanned as the
    /// log's segments are: a bad record with a valid one after it is
    /// damage, not a torn tail, unless the referencing log record may never
    /// have been synced (`unsynced`: past what the log's marks show
    /// durable, so its value may not have been either) and an unwritten
    /// sector lies between the bad record and the next valid one (a power
    /// loss that kept the segment's unsynced pages out of order,
    /// `crate::torn`).
    fn in_torn_tail(&self, addr: u64, unsynced: bool) -> Result<bool> {
        // Below the loaded table's head: synced before the table was, so
        // damage, not a tail a crash cut.
        if addr < self.published_head.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let seq = addr_seq(addr);
        if seq == self.first_seq {
            return Ok(true);
        }
        if seq > self.first_seq {
            return Ok(false);
        }
        // The newest segment of the runs before with a record: runs that
        // wrote none after it (an open that failed or crashed during its
        // recovery) left only headers.
        let newer_hold_records = self
            .store
            .segments()
            .iter()
            .any(|s| s.seq > seq && s.seq < self.first_seq && s.bytes > SEGMENT_HEADER_LEN as u64);
        if newer_hold_records {
            return Ok(false);
        }
        let path = self.dir.join(segment::name(Kind::ValueLog, seq));
        let bytes = match self.store.fs().read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::Io(e)),
        };
        Ok(match segment::scan(&bytes, Kind::ValueLog, seq) {
            Ok(segment::Scan::Valid { end, .. }) => addr_offset(addr) >= end,
            Ok(segment::Scan::TornHeader) => true,
            // The bad record too past the loaded table's head: nothing
            // synced before the table is taken for a torn write.
            Err((bad, _)) => {
                unsynced
                    && addr_offset(addr) >= bad
                    && (seq << 32 | bad) >= self.published_head.load(Ordering::Relaxed)
                    && segment::unwritten_before_next(&bytes, bad as usize)
            }
        })
    }
}
