//! Recovery on open: the newest checkpoint, then every later commit in the
//! log, in commit-timestamp order.

use std::collections::BTreeMap;
use std::path::Path;

use super::checkpoint;
use super::reader::read_segment;
use super::record::Commit;
use super::writer::parse_segment_name;
use crate::bwtree::Tree;
use crate::fs::Fs;
use crate::{Error, Result};

/// What recovery found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// The highest commit timestamp restored (the oracle continues above it).
    pub(crate) last_ts: u64,
    /// The checkpoint loaded (0: none).
    pub(crate) checkpoint_ts: u64,
    /// Log segments kept, with their highest commit timestamps.
    pub(crate) segments: BTreeMap<u64, u64>,
    /// The sequence number for the next segment.
    pub(crate) next_seq: u64,
    /// Torn tails found (and truncated) at the end of the log.
    pub(crate) torn_tails: u64,
    /// Commits replayed from the log.
    pub(crate) replayed: u64,
    /// Versions installed (checkpoint entries and replayed writes).
    pub(crate) versions: u64,
}

fn corruption(dir: &Path, name: &str, offset: u64, reason: &'static str) -> Error {
    Error::Corruption {
        file: dir.join(name),
        offset,
        reason,
    }
}

/// Restore `dir` into the empty `tree`.
pub(crate) fn recover(fs: &dyn Fs, dir: &Path, tree: &Tree) -> Result<Recovered> {
    let names = fs.list(dir).map_err(Error::Io)?;
    let mut out = Recovered::default();

    // 1. Leftover temporary checkpoints are incomplete by definition.
    for n in names.iter().filter(|n| n.starts_with("ckpt-") && n.ends_with(".tmp")) {
        fs.remove(&dir.join(n)).map_err(Error::Io)?;
    }

    // 2. The newest checkpoint. It was renamed into place only after it was
    //    synced, so damage to it is corruption, never a reason to fall back
    //    to an older one (the log it covered may be gone).
    let newest = names
        .iter()
        .filter_map(|n| checkpoint::parse_name(n).map(|ts| (ts, n)))
        .max();
    if let Some((ts, name)) = newest {
        let bytes = fs.read(&dir.join(name)).map_err(Error::Io)?;
        let image = checkpoint::parse(&bytes).map_err(|(off, why)| corruption(dir, name, off, why))?;
        if image.ts != ts {
            return Err(corruption(dir, name, 16, "checkpoint timestamp differs from its name"));
        }
        for (k, v) in image.entries {
            tree.install(k, ts.max(1), Some(v))?;
            out.versions += 1;
        }
        out.checkpoint_ts = ts;
        out.last_ts = ts;
    }

    // 3. The log, segment by segment. Only the last segment may end in a
    //    torn record (the crash interrupted its last write); it is truncated.
    let mut segs: Vec<(u64, &String)> = names
        .iter()
        .filter_map(|n| parse_segment_name(n).map(|s| (s, n)))
        .collect();
    segs.sort();
    let mut commits: Vec<Commit> = Vec::new();
    for (i, &(seq, name)) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let bytes = fs.read(&dir.join(name)).map_err(Error::Io)?;
        let seg = read_segment(&bytes);
        out.next_seq = seq + 1;
        if let Some((offset, why)) = seg.damage {
            if !(last && seg.torn) {
                return Err(corruption(dir, name, offset, why));
            }
            out.torn_tails += 1;
            if seg.valid_len == 0 {
                // Not even a whole header (a crash while creating it): the
                // segment never held a record. Remove it, or the next
                // recovery would find a headerless segment before the end.
                fs.remove(&dir.join(name)).map_err(Error::Io)?;
                fs.sync_dir(dir).map_err(Error::Io)?;
                continue;
            }
            fs.truncate(&dir.join(name), seg.valid_len).map_err(Error::Io)?;
        }
        let max = seg.commits.iter().map(|c| c.ts).max().unwrap_or(0);
        out.segments.insert(seq, max);
        commits.extend(seg.commits.into_iter().filter(|c| c.ts > out.checkpoint_ts));
    }

    // 4. Replay in commit order. Records can sit in the log out of order
    //    (committers append concurrently), and a record can be present while
    //    an earlier timestamp's is not (a commit that never became visible,
    //    so never acknowledged): each commit is applied whole or not at all.
    commits.sort_by_key(|c| c.ts);
    commits.dedup_by_key(|c| c.ts);
    for c in commits {
        for (k, v) in c.writes {
            tree.install(k, c.ts, v)?;
            out.versions += 1;
        }
        out.last_ts = out.last_ts.max(c.ts);
        out.replayed += 1;
    }
    Ok(out)
}
