//! The engines under test behind one [`Engine`] trait, bwtx as one, and
//! the list of engines the bench opens by name.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bwtx::{Db, Durability, Options};
use bwtx_kit::par::value_of;

use crate::naive::{append_file, FsyncFiles, FsyncLog};
use crate::peers::{Fjall, Redb, Sled};

/// Writes per transaction when loading.
pub(crate) const LOAD_BATCH: usize = 1000;

pub(crate) trait Engine: Send + Sync {
    fn name(&self) -> &'static str;
    /// Store `value_of(k)` under every key, durably.
    fn load(&self, keys: &[u64]);
    /// One durable transaction writing `writes` (key, value), by committing
    /// thread `thread`; the attempts that failed with a conflict.
    fn commit(&self, thread: usize, writes: &[(u64, u64)]) -> u64;
    /// The value of `key` (None: absent). Naive logs store no keys.
    fn value(&self, key: u64) -> Option<u64>;
    /// bwtx only: (log syncs, commits, conflicts) from its own statistics.
    fn own_stats(&self) -> Option<[u64; 3]> {
        None
    }
    /// Close and open again (recovery). Naive logs: nothing to do.
    fn reopen(&mut self);
    /// Whether it stores keys (so recovery can be checked).
    fn stores_keys(&self) -> bool {
        true
    }
}

pub(crate) fn be(v: &[u8]) -> u64 {
    u64::from_be_bytes(v[..8].try_into().expect("8-byte value"))
}

// bwtx ----------------------------------------------------------------------

pub(crate) struct Bwtx {
    pub(crate) dir: PathBuf,
    pub(crate) db: Option<Db>,
}

impl Bwtx {
    fn options() -> Options {
        Options::new().durability(Durability::Sync)
    }
    fn open(dir: PathBuf) -> Self {
        let db = Self::options().open(&dir).expect("bwtx open");
        Bwtx { dir, db: Some(db) }
    }
    fn db(&self) -> &Db {
        self.db.as_ref().expect("open")
    }
}

impl Engine for Bwtx {
    fn name(&self) -> &'static str {
        "bwtx"
    }
    fn load(&self, keys: &[u64]) {
        for chunk in keys.chunks(LOAD_BATCH) {
            let mut tx = self.db().begin();
            for &k in chunk {
                tx.put(k.to_be_bytes(), value_of(k).to_be_bytes()).expect("bwtx put");
            }
            tx.commit().expect("bwtx load commit");
        }
    }
    fn commit(&self, _thread: usize, writes: &[(u64, u64)]) -> u64 {
        // `Db::transaction` retries a conflict with backoff (a conflicting
        // commit may be waiting for its sync, and an immediate retry would
        // only spin until it is published); its refused attempts are in
        // `stats().conflicts`.
        loop {
            let r = self.db().transaction(|tx| {
                for &(k, v) in writes {
                    tx.put(k.to_be_bytes(), v.to_be_bytes())?;
                }
                Ok(())
            });
            match r {
                Ok(()) => return 0,
                Err(e) if e.is_conflict() => continue,
                Err(e) => panic!("bwtx commit: {e}"),
            }
        }
    }
    fn value(&self, key: u64) -> Option<u64> {
        self.db()
            .snapshot()
            .get(key.to_be_bytes())
            .expect("bwtx get")
            .map(|v| be(&v))
    }
    fn own_stats(&self) -> Option<[u64; 3]> {
        let s = self.db().stats();
        Some([s.log_syncs, s.commits, s.conflicts])
    }
    fn reopen(&mut self) {
        drop(self.db.take());
        self.db = Some(Self::options().open(&self.dir).expect("bwtx reopen"));
    }
}

/// Every engine's name, in table order.
pub(crate) const ENGINES: [&str; 6] = ["bwtx", "fjall", "redb", "sled", "fsync-log", "fsync-files"];

pub(crate) fn open_engine(name: &str, root: &Path, max_threads: usize) -> Box<dyn Engine> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("create engine dir");
    match name {
        "bwtx" => Box::new(Bwtx::open(dir)),
        "fjall" => Box::new(Fjall::open(dir)),
        "redb" => Box::new(Redb::open(dir.join("bench.redb"))),
        "sled" => Box::new(Sled::open(dir)),
        "fsync-log" => Box::new(FsyncLog {
            file: Mutex::new(append_file(&dir.join("log"))),
        }),
        "fsync-files" => Box::new(FsyncFiles {
            files: (0..max_threads)
                .map(|t| Mutex::new(append_file(&dir.join(format!("log-{t}")))))
                .collect(),
        }),
        _ => unreachable!("checked against ENGINES"),
    }
}

/// How each engine is configured, for the output.
pub(crate) fn config_of(name: &str) -> &'static str {
    match name {
        "bwtx" => "Options::new() (Durability::Sync, fdatasync, group commit; 64 MiB segments, ckpt every 256 MiB)",
        "fjall" => "fjall 3 OptimisticTxDatabase, write_tx().durability(Some(PersistMode::SyncAll)) per commit",
        "redb" => "redb 4, one write txn per commit, Durability::Immediate (single writer)",
        "sled" => "sled 0.34, Tree::transaction + Db::flush() per commit (flush = sync_file_range, not fsync)",
        "fsync-log" => "one shared file, Mutex: write + sync_data per commit",
        "fsync-files" => "one file per thread, no shared lock: write + sync_data per commit",
        _ => "",
    }
}
