//! The [`Engine`] a workload runs on, and bwtx as one: its transactions,
//! its conflict handling, and how `bwtx bench` opens the database.

use std::time::Duration;

use bwtx::{Db, Durability, Isolation, Options, Transaction};

use super::{balance_of, key, rmw_value, BenchArgs, DurabilityArg, Op};

/// A store the workload runs on: bwtx itself, or (with `--compare`) a peer
/// from `peers/`. Every engine gets the same keys ([`key`]), the same
/// resolved operations and the same value bytes.
pub trait Engine: Sync {
    /// Short name for the report.
    fn name(&self) -> &'static str;
    /// How the engine is configured (printed in the report).
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    fn settings(&self) -> String;
    /// Write the records `(index, value)` in one transaction.
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String>;
    /// Run one attempt of a transaction of `ops` (no [`Op::Insert`] left
    /// unresolved: its index is the record to write). Updates and inserts
    /// write `value`.
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String>;
    /// The sum of the balances of records `0..n` (bank), read in one snapshot
    /// where the engine has them.
    fn bank_total(&self, n: u64) -> Result<u64, String>;
    /// Hand every write so far to the operating system as the engine's
    /// relaxed durability would eventually (an isolated comparison calls it
    /// after each phase, untimed, so the bytes a phase wrote to disk include
    /// what the engine still held in its own buffers). The default does
    /// nothing: right for engines that write at commit (bwtx's buffered log
    /// writes each commit's record to the OS before `commit` returns) and
    /// for those with nothing to persist.
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    fn persist(&self) -> Result<(), String> {
        Ok(())
    }
    /// The engine's own counters, for a side-by-side run's progress lines:
    /// bwtx's [`bwtx::Stats`] (the others have none to give).
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    fn stats(&self) -> Option<bwtx::Stats> {
        None
    }
}

/// One transaction's outcome.
pub enum Outcome {
    Committed,
    Conflict,
}

/// bwtx as an [`Engine`].
pub struct Bwtx {
    pub db: Db,
    /// The level every transaction begins with (`Db::begin_with`).
    pub isolation: Isolation,
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    pub settings: String,
}

impl Engine for Bwtx {
    fn name(&self) -> &'static str {
        "bwtx"
    }
    fn settings(&self) -> String {
        self.settings.clone()
    }
    fn stats(&self) -> Option<bwtx::Stats> {
        Some(self.db.stats())
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        self.db
            .transaction(|tx| {
                for (i, v) in batch {
                    tx.put(key(*i), v)?;
                }
                Ok(())
            })
            .map_err(|e| e.to_string())
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        let r = (|| {
            let mut tx = self.db.begin_with(self.isolation);
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        tx.get(key(i))?;
                    }
                    Op::Update(i) | Op::Insert(i) => tx.put(key(i), value)?,
                    Op::Scan(i, len) => {
                        for kv in tx.range(key(i)..).take(len as usize) {
                            kv?;
                        }
                    }
                    Op::Rmw(i) => {
                        let k = key(i);
                        let v = rmw_value(tx.get(k)?.as_deref(), value);
                        tx.put(k, &v)?;
                    }
                    Op::Transfer(a, b, amount) => transfer(&mut tx, a, b, amount)?,
                }
            }
            finish(&self.db, tx)
        })();
        r.map_err(|e| format!("transaction failed: {e}"))
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        let snap = self.db.snapshot();
        let mut sum: u64 = 0;
        for kv in snap.range(key(0)..=key(n - 1)) {
            let (_, v) = kv.map_err(|e| e.to_string())?;
            sum += balance_of(&v);
        }
        Ok(sum)
    }
}

fn balance(tx: &Transaction, i: u64) -> Result<u64, bwtx::Error> {
    Ok(tx.get(key(i))?.map_or(0, |b| balance_of(&b)))
}

fn transfer(tx: &mut Transaction, a: u64, b: u64, amount: u64) -> Result<(), bwtx::Error> {
    let (fa, fb) = (balance(tx, a)?, balance(tx, b)?);
    let amount = amount.min(fa);
    tx.put(key(a), (fa - amount).to_le_bytes())?;
    tx.put(key(b), (fb + amount).to_le_bytes())
}

/// Commit; on a conflict, wait for the winner to become visible first (as
/// `Db::transaction` does), so the retry's snapshot includes it.
fn finish(db: &Db, tx: Transaction) -> Result<Outcome, bwtx::Error> {
    match tx.commit() {
        Ok(_) => Ok(Outcome::Committed),
        Err(bwtx::Error::Conflict { winner, .. }) => {
            db.wait_visible(winner, Duration::from_millis(10));
            Ok(Outcome::Conflict)
        }
        Err(e) if e.is_conflict() => Ok(Outcome::Conflict),
        Err(e) => Err(e),
    }
}

/// The bwtx durability `args` ask for.
fn durability(args: &BenchArgs, default: DurabilityArg) -> Durability {
    match args.durability.unwrap_or(default) {
        DurabilityArg::Sync => Durability::Sync,
        DurabilityArg::Buffered => Durability::Buffered(Duration::from_millis(args.buffer_ms.max(1))),
        DurabilityArg::None => Durability::None,
    }
}

/// `opts` with `--cache-size` and `--history-retention`, if given.
fn with_cache(opts: Options, args: &BenchArgs) -> Options {
    let opts = match args.history_retention {
        Some(s) => opts.history_retention(Duration::from_secs(s)),
        None => opts,
    };
    match args.cache_size {
        Some(n) => opts.cache_size(n),
        None => opts,
    }
}

/// The page cache setting, for the settings line.
pub(super) fn cache_setting(args: &BenchArgs) -> String {
    match args.cache_size {
        Some(n) => format!("page cache {} (Options::cache_size)", super::args::show_bytes(n)),
        None => "page cache unlimited".to_owned(),
    }
}

/// The database the bench runs on.
pub(super) fn open(args: &BenchArgs) -> Result<Db, String> {
    let opts = Options::new();
    match &args.dir {
        None => with_cache(opts, args).in_memory().map_err(|e| e.to_string()),
        Some(dir) => with_cache(opts, args)
            .durability(durability(args, DurabilityArg::Sync))
            .open(dir)
            .map_err(|e| format!("cannot open {}: {e}", dir.display())),
    }
}

/// bwtx for `--compare`: in memory, or buffered in --dir, unless
/// `--durability sync` (then sync, in --dir or in `tmp`).
#[cfg(feature = "bench-peers")]
pub fn open_compare(args: &BenchArgs, tmp: &std::path::Path) -> Result<Bwtx, String> {
    let sync = args.durability == Some(DurabilityArg::Sync);
    let dir = match &args.dir {
        Some(d) => Some(d.clone()),
        None if sync => Some(tmp.join("bwtx")),
        None => None,
    };
    let isolation = args.isolation.level();
    match dir {
        None => Ok(Bwtx {
            db: with_cache(Options::new(), args)
                .in_memory()
                .map_err(|e| e.to_string())?,
            isolation,
            settings: format!(
                "bwtx: in memory (Options::new().in_memory()), no log; begin_with(Isolation::{isolation:?})/commit \
                 per transaction, on a conflict waits for the winner to become visible (Db::wait_visible) before \
                 the retry"
            ),
        }),
        Some(dir) => {
            let d = durability(args, DurabilityArg::Buffered);
            let db = with_cache(Options::new(), args)
                .durability(d)
                .open(&dir)
                .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
            Ok(Bwtx {
                db,
                isolation,
                settings: format!(
                    "bwtx: {} with Durability::{d:?} (group commit), {}; begin_with(Isolation::{isolation:?})/commit \
                     per transaction, on a conflict waits for the winner to become visible (Db::wait_visible) \
                     before the retry",
                    dir.display(),
                    cache_setting(args)
                ),
            })
        }
    }
}
