//! What an isolated comparison reads about its own process from `/proc`:
//! the bytes it caused to be written to disk (`/proc/self/io`), its peak
//! and current resident set (`VmHWM`, `VmRSS` of `/proc/self/status`), and
//! the reset of the peak between phases (`/proc/self/clear_refs`).
//!
//! Linux counts `write_bytes` when a page of a file is first dirtied (or
//! written directly), charged to the process whose thread dirtied it, and
//! `cancelled_write_bytes` when a dirty page is dropped unwritten (its file
//! truncated or deleted first). The figures cover every thread of the
//! process, background threads included.

/// The disk counters of `/proc/self/io`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Io {
    /// Bytes of pages dirtied or written directly (`write_bytes`).
    pub write_bytes: u64,
    /// Bytes of dirty pages dropped before writeback (`cancelled_write_bytes`).
    pub cancelled: u64,
}

impl Io {
    /// The counters now; an error if `/proc/self/io` cannot be read (not
    /// Linux, or a kernel without task I/O accounting).
    pub fn now() -> Result<Io, String> {
        let s = std::fs::read_to_string("/proc/self/io").map_err(|e| format!("cannot read /proc/self/io: {e}"))?;
        let field = |name: &str| -> Result<u64, String> {
            s.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| format!("no {name} in /proc/self/io"))
        };
        Ok(Io {
            write_bytes: field("write_bytes")?,
            cancelled: field("cancelled_write_bytes")?,
        })
    }

    /// The bytes written to disk since `before`: pages dirtied less those
    /// dropped unwritten (never below zero).
    pub fn disk_bytes_since(&self, before: &Io) -> u64 {
        let written = self.write_bytes.saturating_sub(before.write_bytes);
        let cancelled = self.cancelled.saturating_sub(before.cancelled);
        written.saturating_sub(cancelled)
    }
}

/// A `kB` field of `/proc/self/status` (`VmHWM`, `VmRSS`), in KiB.
pub fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Reset the peak resident set (`VmHWM`) to the current one (Linux 4.0 and
/// later: `5` to `/proc/self/clear_refs`); false if the kernel refused, and
/// then the next peak counts from the process's start.
pub fn reset_peak() -> bool {
    crate::bench::reset_peak_rss()
}
