//! Durable databases: where they live (`Disk`), and the restart and
//! checkpoint harness.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bwtx::fs::{FaultFs, Fs, StdFs};
use bwtx::{Db, Durability, Error, Options};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::model::Model;
use crate::ops::{Op, Shutdown, Target};
use crate::run::Run;

/// Where a durable database lives, and how it is opened.
pub struct Disk {
    pub name: &'static str,
    /// `None`: the real file system.
    pub fault: Option<FaultFs>,
    pub dir: PathBuf,
    pub tiny_pages: bool,
    /// Small log segments (`None`: the default, never filled here).
    pub segment_bytes: Option<u64>,
    /// `Options::cache_size` (`None`: no page store).
    pub cache: Option<u64>,
}

impl Disk {
    pub fn fault(name: &'static str, tiny_pages: bool, segment_bytes: Option<u64>) -> Disk {
        Disk {
            name,
            fault: Some(FaultFs::new()),
            dir: PathBuf::from("/db"),
            tiny_pages,
            segment_bytes,
            cache: None,
        }
    }

    /// On `FaultFs` with a page cache of `cache` bytes: evictions, fault-ins,
    /// location tables and recovery from them at every restart.
    pub fn paged(name: &'static str, cache: u64) -> Disk {
        let mut disk = Disk::fault(name, true, Some(512));
        disk.cache = Some(cache);
        disk
    }

    /// A fresh directory under the system's temporary directory.
    pub fn real(name: &'static str, tiny_pages: bool, segment_bytes: Option<u64>) -> Disk {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("bwtx-tx-model-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Disk {
            name,
            fault: None,
            dir,
            tiny_pages,
            segment_bytes,
            cache: None,
        }
    }

    pub fn open(&self) -> bwtx::Result<Db> {
        let mut o = Options::new()
            .durability(Durability::Sync)
            .gc_interval(None)
            .checkpoint_bytes(0);
        if let Some(fs) = &self.fault {
            o = o.file_system(Arc::new(fs.clone()));
        }
        if self.tiny_pages {
            o = o.tree_config(bwtx::tree::Config::tiny());
        }
        if let Some(n) = self.segment_bytes {
            o = o.segment_bytes(n);
        }
        if let Some(n) = self.cache {
            o = o.cache_size(n);
        }
        o.open(&self.dir)
    }

    pub fn list(&self) -> std::io::Result<Vec<String>> {
        match &self.fault {
            Some(fs) => fs.list(&self.dir),
            None => StdFs.list(&self.dir),
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if self.fault.is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `ops` on a durable database in `disk`, opened afresh at every
/// [`Op::Restart`], and once more after the last operation (after a power
/// loss while open). After every open, everything committed (and only that)
/// is there, and the counters restart.
pub fn run_durable(disk: &Disk, ops: &[Op]) -> Result<Model, TestCaseError> {
    let mut state = (Model::default(), 0);
    let mut i = 0;
    let mut opens = 0;
    let mut last_open = false;
    loop {
        let ctx = format!("open {opens} (before op {i})");
        let db = disk.open().map_err(|e| TestCaseError::fail(format!("{ctx}: {e}")))?;
        opens += 1;
        let (mut model, serial) = state;
        model.reopen();
        if disk.cache.is_some() {
            // Opened from a location table: a checkpoint at its timestamp
            // has nothing to add.
            model.disk.written = model.disk.checkpoint;
        }
        let mut run = Run::resume(&db, model, serial, true, Some(disk));
        run.check_stats(&ctx)?;
        run.check_all(Target::Fresh, &ctx)?;
        if last_open {
            run.finish()?;
            return Ok(run.close().0);
        }
        while let Some(op) = ops.get(i).filter(|op| !matches!(op, Op::Restart(_))) {
            run.step(i, op)?;
            i += 1;
        }
        let how = match ops.get(i) {
            Some(Op::Restart(how)) => *how,
            _ => {
                // The end: check, then restart once more.
                run.finish()?;
                last_open = true;
                Shutdown::PowerLossWhileOpen
            }
        };
        // The directory is locked while the database is open.
        let second = disk.open();
        prop_assert!(
            matches!(second, Err(Error::Locked { .. })),
            "op {}: second open: {:?}",
            i,
            second
        );
        drop(second);
        i += 1;
        state = run.close();
        if disk.cache.is_some() && !matches!(how, Shutdown::PowerLossWhileOpen) {
            // A clean close of a paged database writes a checkpoint.
            state.0.checkpoint(state.0.last);
        }
        match (how, &disk.fault) {
            (Shutdown::PowerLossWhileOpen, Some(fs)) if disk.cache.is_some() => {
                // The machine dies at the next sync, and the process with it:
                // the checkpoint the close starts fails at its first sync.
                fs.crash_at_sync(fs.syncs());
                drop(db);
                fs.power_loss();
            }
            (Shutdown::PowerLossWhileOpen, Some(fs)) => {
                fs.power_loss();
                drop(db);
            }
            (Shutdown::PowerLossAfterClose, Some(fs)) => {
                drop(db);
                fs.power_loss();
            }
            _ => drop(db),
        }
    }
}

pub fn durable_all(ops: &[Op]) -> Result<(), TestCaseError> {
    for disk in [
        Disk::fault("FaultFs, default config", false, None),
        Disk::fault("FaultFs, tiny pages, 512-byte segments", true, Some(512)),
        Disk::paged("FaultFs, tiny pages, 512-byte segments, 1-byte page cache", 1),
    ] {
        run_durable(&disk, ops).map_err(|e| TestCaseError::fail(format!("{}: {e}", disk.name)))?;
    }
    Ok(())
}
