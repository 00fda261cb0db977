//! Bf-Tree (crate `bf-tree`, Microsoft's larger-than-memory range index,
//! VLDB 2024) as a `--compare` peer without transactions, like the indexes
//! of `index.rs`: each operation runs on its own and `bank` skips it. Needs
//! the `peer-bftree` feature.
//!
//! By default the tree is in memory (`Config::default()`: leaf pages in
//! memory behind a 32 MiB circular buffer of mini-pages). With
//! `BWTX_BFTREE_CACHE_MIB=N` in the environment it keeps its leaf pages in a
//! file in the run's temporary directory instead, with a circular buffer
//! (its cache of hot records and pages) of N MiB, so that a larger-than-memory
//! comparison can give it the same cache as the other engines; `--cache-size
//! N` does the same with a buffer of N bytes (rounded down to a power of
//! two, which Bf-Tree requires). Either way the settings line says which,
//! and how large the buffer is.

use std::path::{Path, PathBuf};

use bf_tree::{BfTree, Config, LeafInsertResult, LeafReadResult, ScanReturnField};

use super::index::{Index, Plain};
use crate::bench::Engine;

/// The environment variable that puts the tree on a file with a cache of
/// this many MiB.
pub const CACHE_ENV: &str = "BWTX_BFTREE_CACHE_MIB";

/// Bf-Tree's largest record (key plus value) in its default configuration
/// (`cb_max_record_size`); reads copy values into a buffer this large.
const MAX_RECORD: usize = 1952;

/// Where the tree keeps its leaf pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// In memory, `Config::default()`.
    Memory,
    /// In this file, behind a circular buffer of `cache_bytes` (a power of
    /// two, as Bf-Tree requires).
    File { path: PathBuf, cache_bytes: usize },
}

impl Storage {
    /// The storage `--cache-size` asks for: a file `bftree.db` in `dir`
    /// with a circular buffer of the largest power of two of bytes at most
    /// `cache` (Bf-Tree wants a power of two). Without `--cache-size`, what
    /// [`CACHE_ENV`] asks for (see [`Storage::from_env`]).
    pub fn from_args(cache: Option<u64>, dir: &Path) -> Result<Storage, String> {
        let Some(n) = cache else {
            return Storage::from_env(dir);
        };
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n == 0 {
            return Err("bf-tree: --cache-size must be at least 1 byte".into());
        }
        Ok(Storage::File {
            path: dir.join("bftree.db"),
            cache_bytes: 1 << n.ilog2(),
        })
    }

    /// The storage [`CACHE_ENV`] asks for: a file `bftree.db` in `dir` if it
    /// is set, else memory.
    pub fn from_env(dir: &Path) -> Result<Storage, String> {
        let Ok(mib) = std::env::var(CACHE_ENV) else {
            return Ok(Storage::Memory);
        };
        let cache_bytes = mib
            .trim()
            .parse::<usize>()
            .ok()
            .and_then(|m| m.checked_mul(1 << 20))
            .filter(|b| b.is_power_of_two())
            .ok_or_else(|| format!("{CACHE_ENV}={mib}: want a power of two of MiB (1, 2, 4, ..., 256, ...)"))?;
        Ok(Storage::File {
            path: dir.join("bftree.db"),
            cache_bytes,
        })
    }
}

impl Index for BfTree {
    fn get_len(&self, k: &[u8]) -> Option<usize> {
        let mut buf = [0u8; MAX_RECORD];
        match self.read(k, &mut buf) {
            LeafReadResult::Found(n) => Some(n as usize),
            _ => None,
        }
    }
    fn get_vec(&self, k: &[u8]) -> Option<Vec<u8>> {
        let mut buf = [0u8; MAX_RECORD];
        match self.read(k, &mut buf) {
            LeafReadResult::Found(n) => Some(buf[..n as usize].to_vec()),
            _ => None,
        }
    }
    fn put(&self, k: Vec<u8>, v: Vec<u8>) -> Result<(), String> {
        match self.insert(&k, &v) {
            LeafInsertResult::Success => Ok(()),
            LeafInsertResult::InvalidKV(e) => Err(format!("bf-tree: {e}")),
        }
    }
    fn scan(&self, k: &[u8], len: usize) -> usize {
        if len == 0 {
            return 0; // scan_with_count refuses a count of zero
        }
        let Ok(mut it) = self.scan_with_count(k, len, ScanReturnField::Value) else {
            return 0;
        };
        let mut buf = [0u8; MAX_RECORD];
        let mut n = 0;
        while let Some((_, value_len)) = it.next(&mut buf) {
            std::hint::black_box(value_len);
            n += 1;
        }
        n
    }
}

/// An empty Bf-Tree on `storage`.
pub fn open(storage: Storage) -> Result<Box<dyn Engine>, String> {
    let (config, place) = match &storage {
        Storage::Memory => (
            Config::default(),
            "in memory (Config::default(): StorageBackend::Memory".to_owned(),
        ),
        Storage::File { path, cache_bytes } => (
            Config::new(path, *cache_bytes),
            format!("in {} (Config::new: StorageBackend::Std", path.display()),
        ),
    };
    let cache = config.get_cb_size_byte();
    let tree = BfTree::with_config(config, None).map_err(|e| format!("bf-tree: {e:?}"))?;
    Ok(Box::new(Plain {
        name: "bf-tree",
        settings: format!(
            "bf-tree 0.5.7 BfTree {place}, cache: circular buffer of {}{}): no transactions (each operation on \
             its own, read-modify-write not atomic), no WAL",
            crate::bench::show_bytes(cache as u64),
            if storage == Storage::Memory {
                format!("; {CACHE_ENV}=N puts it on a file with an N MiB cache")
            } else {
                String::new()
            }
        ),
        index: tree,
    }))
}
