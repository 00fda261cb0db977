//! Offline checks of a database directory's files (used by `bwtx check`):
//! each file is verified on its own, from its bytes, without opening the
//! database.
//!
//! An open reads the newest checkpoint only (with
//! `Options::history_retention`, also the older version-1 images its
//! history needs), so damage in another kept checkpoint or history file
//! would show only on the day it is needed. These functions read every one.

use std::path::Path;

use bytes::Bytes;

use crate::pagestore::table;
pub use crate::pagestore::verify::{verify_segment, SegmentSummary};
use crate::wal::{checkpoint, hist};
use crate::{Error, Result};

/// The timestamp a checkpoint file's name (`ckpt-<ts>.ckpt`) carries, or
/// `None` if `name` is not a checkpoint's: the parser the open uses.
///
/// ```
/// assert_eq!(bwtx::check::checkpoint_ts("ckpt-00000000000000000042.ckpt"), Some(42));
/// assert_eq!(bwtx::check::checkpoint_ts("ckpt-00000000000000000042.tmp"), None);
/// ```
pub fn checkpoint_ts(name: &str) -> Option<u64> {
    checkpoint::parse_name(name)
}

/// Verify the checkpoint or history file at `path`, whose content is
/// `bytes`: `None` if its name is neither a checkpoint's
/// (`ckpt-<ts>.ckpt`: a key-value image, or a page store's location table)
/// nor a history file's (`hist-<ts>.hist`); else `Ok(())`, or
/// [`Error::Corruption`] naming `path` and the offset of the first damage
/// (a file whose header names another timestamp than its name is damaged
/// at offset 0).
pub fn verify_checkpoint(path: &Path, bytes: &[u8]) -> Option<Result<()>> {
    let name = path.file_name()?.to_str()?;
    let damage = |(offset, reason): (u64, &'static str)| Error::Corruption {
        file: path.to_path_buf(),
        offset,
        reason,
    };
    let named = |want: u64, ts: u64| {
        if ts == want {
            Ok(())
        } else {
            Err((0, "the header's timestamp is not the file name's"))
        }
    };
    if let Some(want) = checkpoint::parse_name(name) {
        let version = bytes.get(8..12).and_then(|v| v.try_into().ok()).map(u32::from_le_bytes);
        let r = if version == Some(table::VERSION) {
            table::decode(&Bytes::copy_from_slice(bytes)).and_then(|t| named(want, t.ts))
        } else {
            checkpoint::parse(bytes).and_then(|image| named(want, image.ts))
        };
        return Some(r.map_err(damage));
    }
    let want = hist::parse_name(name)?;
    Some(hist::decode(bytes).and_then(|h| named(want, h.ts)).map_err(damage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FaultFs, Fs};
    use crate::Options;
    use std::sync::Arc;

    /// Every kept checkpoint and history file of a database verifies, in
    /// both formats; a flipped byte anywhere in one, or a file renamed to
    /// another timestamp, is damage naming it; other files are not judged.
    #[test]
    fn every_checkpoint_and_history_file_verifies_and_damage_is_named() {
        for paged in [false, true] {
            let fs = FaultFs::new();
            let mut opts = Options::new()
                .file_system(Arc::new(fs.clone()))
                .history_retention(std::time::Duration::from_secs(3600));
            if paged {
                opts = opts.cache_size(1 << 20);
            }
            let db = opts.open("/db").unwrap();
            for i in 0..50u32 {
                db.transaction(|tx| tx.put(format!("k{i}"), "v")).unwrap();
            }
            db.checkpoint().unwrap();
            drop(db);
            let dir = Path::new("/db");
            let mut judged = 0;
            for name in fs.list(dir).unwrap() {
                let path = dir.join(&name);
                let bytes = fs.read(&path).unwrap();
                let Some(r) = verify_checkpoint(&path, &bytes) else {
                    assert!(!name.starts_with("ckpt-") && !name.starts_with("hist-"), "{name}");
                    continue;
                };
                r.unwrap_or_else(|e| panic!("{name}: {e}"));
                judged += 1;
                for i in (0..bytes.len()).step_by(7) {
                    let mut bad = bytes.clone();
                    bad[i] ^= 0x20;
                    let e = verify_checkpoint(&path, &bad).unwrap().unwrap_err();
                    assert!(
                        matches!(&e, Error::Corruption { file, .. } if *file == path),
                        "{name} at {i}: {e}"
                    );
                }
                let renamed = dir.join(name.replacen('0', "1", 1));
                assert!(verify_checkpoint(&renamed, &bytes).unwrap().is_err(), "{name} renamed");
            }
            assert!(judged >= 2, "a checkpoint and its history file, paged: {paged}");
        }
    }
}
