//! `bwtx bench --compare`: the same workload on bwtx and on its peers
//! (skipdb, fjall, redb, sled), one engine after the other in one process,
//! with the same keys, the same seeded operation streams and the same
//! values. Needs the `bench-peers` feature.
//!
//! Durability is relaxed alike by default: bwtx in memory (or
//! `Durability::Buffered` in `--dir`), fjall, redb and sled in a temporary
//! directory without a sync per commit (fjall: no journal persist per
//! transaction; redb: `Durability::None`; sled: no `flush()`); skipdb is in
//! memory only. With `--durability sync` every engine that can syncs each
//! commit as in `benches/durable.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use skipdb::optimistic::OptimisticDb;

use crate::bench::{
    self, balance_of, key, read_only, rmw_value, BenchArgs, DurabilityArg, Engine, Measured, Op, Outcome,
};
use crate::report::{json_str, num};

/// Whether `--durability sync` was asked for.
fn sync(args: &BenchArgs) -> bool {
    args.durability == Some(DurabilityArg::Sync)
}

// skipdb --------------------------------------------------------------------

/// skipdb's optimistic (snapshot + first-committer-wins) database, in memory.
struct Skip(OptimisticDb<Vec<u8>, Vec<u8>>);

/// skipdb does not re-export its error types; a conflict prints as this.
fn skip_conflict(e: &impl std::fmt::Debug) -> bool {
    format!("{e:?}") == "Transaction(Conflict)"
}

impl Engine for Skip {
    fn name(&self) -> &'static str {
        "skipdb"
    }
    fn settings(&self) -> String {
        "skipdb 0.2 OptimisticDb<Vec<u8>, Vec<u8>>: in memory only (no durability in any mode); write() per \
         transaction with writes, read() for read-only ones"
            .to_owned()
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        let mut tx = self.0.write();
        for (i, v) in batch {
            tx.insert(key(*i).into_bytes(), v.clone()).map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        if read_only(ops) {
            let r = self.0.read();
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(r.get(key(i).as_bytes()).map(|e| e.value().len()));
                    }
                    Op::Scan(i, len) => {
                        for e in r.range(key(i).into_bytes()..).take(len as usize) {
                            std::hint::black_box(e.value().len());
                        }
                    }
                    _ => unreachable!("read-only"),
                }
            }
            return Ok(Outcome::Committed);
        }
        let err = |e: &dyn std::fmt::Display| format!("skipdb: {e}");
        let mut tx = self.0.write();
        for op in ops {
            match *op {
                Op::Read(i) => {
                    let k = key(i).into_bytes();
                    std::hint::black_box(tx.get(&k).map_err(|e| err(&e))?.map(|e| e.value().len()));
                }
                Op::Update(i) | Op::Insert(i) => tx.insert(key(i).into_bytes(), value.to_vec()).map_err(|e| err(&e))?,
                Op::Scan(i, len) => {
                    for e in tx.range(key(i).into_bytes()..).map_err(|e| err(&e))?.take(len as usize) {
                        std::hint::black_box(e.value().len());
                    }
                }
                Op::Rmw(i) => {
                    let k = key(i).into_bytes();
                    let v = match tx.get(&k).map_err(|e| err(&e))? {
                        Some(e) => rmw_value(Some(&e.value()), value),
                        None => rmw_value(None, value),
                    };
                    tx.insert(k, v).map_err(|e| err(&e))?;
                }
                Op::Transfer(a, b, amount) => {
                    let (ka, kb) = (key(a).into_bytes(), key(b).into_bytes());
                    let fa = tx.get(&ka).map_err(|e| err(&e))?.map_or(0, |e| balance_of(&e.value()));
                    let fb = tx.get(&kb).map_err(|e| err(&e))?.map_or(0, |e| balance_of(&e.value()));
                    let amount = amount.min(fa);
                    tx.insert(ka, (fa - amount).to_le_bytes().to_vec())
                        .map_err(|e| err(&e))?;
                    tx.insert(kb, (fb + amount).to_le_bytes().to_vec())
                        .map_err(|e| err(&e))?;
                }
            }
        }
        match tx.commit() {
            Ok(()) => Ok(Outcome::Committed),
            Err(e) if skip_conflict(&e) => Ok(Outcome::Conflict),
            Err(e) => Err(err(&e)),
        }
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        let r = self.0.read();
        Ok(r.range(key(0).into_bytes()..=key(n - 1).into_bytes())
            .map(|e| balance_of(&e.value()))
            .sum())
    }
}

// fjall ---------------------------------------------------------------------

struct Fjall {
    db: fjall::OptimisticTxDatabase,
    ks: fjall::OptimisticTxKeyspace,
    mode: Option<fjall::PersistMode>,
    dir: PathBuf,
}

impl Fjall {
    fn open(dir: PathBuf, sync: bool) -> Result<Self, String> {
        let e = |e: fjall::Error| format!("fjall: {e}");
        let db = fjall::OptimisticTxDatabase::builder(&dir).open().map_err(e)?;
        let ks = db.keyspace("bench", fjall::KeyspaceCreateOptions::default).map_err(e)?;
        let mode = sync.then_some(fjall::PersistMode::SyncAll);
        Ok(Fjall { db, ks, mode, dir })
    }
}

impl Engine for Fjall {
    fn name(&self) -> &'static str {
        "fjall"
    }
    fn settings(&self) -> String {
        format!(
            "fjall 3 OptimisticTxDatabase in {}: write_tx().durability({}) per transaction with writes, read_tx() \
             for read-only ones",
            self.dir.display(),
            match self.mode {
                Some(m) => format!("Some(PersistMode::{m:?})"),
                None => "None".to_owned(),
            }
        )
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        let mut tx = self.db.write_tx().map_err(|e| format!("fjall: {e}"))?.durability(None);
        for (i, v) in batch {
            tx.insert(&self.ks, key(*i), v.as_slice());
        }
        match tx.commit().map_err(|e| format!("fjall: {e}"))? {
            Ok(()) => Ok(()),
            Err(fjall::Conflict) => Err("fjall: conflict while loading".into()),
        }
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        use fjall::Readable;
        let err = |e: fjall::Error| format!("fjall: {e}");
        if read_only(ops) {
            let r = self.db.read_tx();
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(r.get(&self.ks, key(i)).map_err(err)?);
                    }
                    Op::Scan(i, len) => {
                        for g in r.range(&self.ks, key(i)..).take(len as usize) {
                            std::hint::black_box(g.into_inner().map_err(err)?);
                        }
                    }
                    _ => unreachable!("read-only"),
                }
            }
            return Ok(Outcome::Committed);
        }
        let mut tx = self.db.write_tx().map_err(err)?.durability(self.mode);
        for op in ops {
            match *op {
                Op::Read(i) => {
                    std::hint::black_box(tx.get(&self.ks, key(i)).map_err(err)?);
                }
                Op::Update(i) | Op::Insert(i) => tx.insert(&self.ks, key(i), value),
                Op::Scan(i, len) => {
                    for g in tx.range(&self.ks, key(i)..).take(len as usize) {
                        std::hint::black_box(g.into_inner().map_err(err)?);
                    }
                }
                Op::Rmw(i) => {
                    let k = key(i);
                    let v = rmw_value(tx.get(&self.ks, &k).map_err(err)?.as_deref(), value);
                    tx.insert(&self.ks, k, v);
                }
                Op::Transfer(a, b, amount) => {
                    let (ka, kb) = (key(a), key(b));
                    let fa = tx.get(&self.ks, &ka).map_err(err)?.map_or(0, |v| balance_of(&v));
                    let fb = tx.get(&self.ks, &kb).map_err(err)?.map_or(0, |v| balance_of(&v));
                    let amount = amount.min(fa);
                    tx.insert(&self.ks, ka, (fa - amount).to_le_bytes());
                    tx.insert(&self.ks, kb, (fb + amount).to_le_bytes());
                }
            }
        }
        match tx.commit().map_err(err)? {
            Ok(()) => Ok(Outcome::Committed),
            Err(fjall::Conflict) => Ok(Outcome::Conflict),
        }
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        use fjall::Readable;
        let r = self.db.read_tx();
        let mut sum = 0;
        for g in r.range(&self.ks, key(0)..=key(n - 1)) {
            let (_, v) = g.into_inner().map_err(|e| format!("fjall: {e}"))?;
            sum += balance_of(&v);
        }
        Ok(sum)
    }
}

// redb ----------------------------------------------------------------------

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("bench");

struct Redb {
    db: redb::Database,
    sync: bool,
    path: PathBuf,
}

fn redb_err(e: impl std::fmt::Display) -> String {
    format!("redb: {e}")
}

impl Redb {
    fn durability(&self) -> redb::Durability {
        if self.sync {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        }
    }
    fn write(&self) -> Result<redb::WriteTransaction, String> {
        let mut tx = self.db.begin_write().map_err(redb_err)?;
        tx.set_durability(self.durability()).map_err(redb_err)?;
        Ok(tx)
    }
}

impl Engine for Redb {
    fn name(&self) -> &'static str {
        "redb"
    }
    fn settings(&self) -> String {
        format!(
            "redb 4 in {}: one write transaction per transaction with writes, Durability::{:?} (single writer); \
             begin_read() for read-only ones",
            self.path.display(),
            self.durability()
        )
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        let tx = self.write()?;
        {
            let mut t = tx.open_table(REDB_TABLE).map_err(redb_err)?;
            for (i, v) in batch {
                t.insert(key(*i).as_bytes(), v.as_slice()).map_err(redb_err)?;
            }
        }
        tx.commit().map_err(redb_err)
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        use redb::{ReadableDatabase, ReadableTable};
        if read_only(ops) {
            let tx = self.db.begin_read().map_err(redb_err)?;
            let t = tx.open_table(REDB_TABLE).map_err(redb_err)?;
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(t.get(key(i).as_bytes()).map_err(redb_err)?.map(|g| g.value().len()));
                    }
                    Op::Scan(i, len) => {
                        let k = key(i);
                        for kv in t.range::<&[u8]>(k.as_bytes()..).map_err(redb_err)?.take(len as usize) {
                            std::hint::black_box(kv.map_err(redb_err)?.1.value().len());
                        }
                    }
                    _ => unreachable!("read-only"),
                }
            }
            return Ok(Outcome::Committed);
        }
        let tx = self.write()?;
        {
            let mut t = tx.open_table(REDB_TABLE).map_err(redb_err)?;
            let get = |t: &redb::Table<&[u8], &[u8]>, k: &str| -> Result<Option<Vec<u8>>, String> {
                Ok(t.get(k.as_bytes()).map_err(redb_err)?.map(|g| g.value().to_vec()))
            };
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(get(&t, &key(i))?);
                    }
                    Op::Update(i) | Op::Insert(i) => {
                        t.insert(key(i).as_bytes(), value).map_err(redb_err)?;
                    }
                    Op::Scan(i, len) => {
                        let k = key(i);
                        for kv in t.range::<&[u8]>(k.as_bytes()..).map_err(redb_err)?.take(len as usize) {
                            std::hint::black_box(kv.map_err(redb_err)?.1.value().len());
                        }
                    }
                    Op::Rmw(i) => {
                        let k = key(i);
                        let v = rmw_value(get(&t, &k)?.as_deref(), value);
                        t.insert(k.as_bytes(), v.as_slice()).map_err(redb_err)?;
                    }
                    Op::Transfer(a, b, amount) => {
                        let (ka, kb) = (key(a), key(b));
                        let fa = get(&t, &ka)?.map_or(0, |v| balance_of(&v));
                        let fb = get(&t, &kb)?.map_or(0, |v| balance_of(&v));
                        let amount = amount.min(fa);
                        t.insert(ka.as_bytes(), &(fa - amount).to_le_bytes()[..])
                            .map_err(redb_err)?;
                        t.insert(kb.as_bytes(), &(fb + amount).to_le_bytes()[..])
                            .map_err(redb_err)?;
                    }
                }
            }
        }
        tx.commit().map_err(redb_err)?;
        Ok(Outcome::Committed)
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        use redb::ReadableDatabase;
        let tx = self.db.begin_read().map_err(redb_err)?;
        let t = tx.open_table(REDB_TABLE).map_err(redb_err)?;
        let (lo, hi) = (key(0), key(n - 1));
        let mut sum = 0;
        for kv in t.range::<&[u8]>(lo.as_bytes()..=hi.as_bytes()).map_err(redb_err)? {
            sum += balance_of(kv.map_err(redb_err)?.1.value());
        }
        Ok(sum)
    }
}

// sled ----------------------------------------------------------------------

struct Sled {
    db: sled::Db,
    sync: bool,
    dir: PathBuf,
}

fn sled_err(e: impl std::fmt::Display) -> String {
    format!("sled: {e}")
}

impl Engine for Sled {
    fn name(&self) -> &'static str {
        "sled"
    }
    fn settings(&self) -> String {
        format!(
            "sled 0.34 in {}: Tree::transaction per transaction with writes (it retries conflicts itself, so \
             aborts show 0; scans read the tree before the transaction: sled's transactions cannot scan){}; \
             read-only ones read the tree directly (sled has no read snapshots)",
            self.dir.display(),
            if self.sync {
                ", then Db::flush() (sync_file_range)"
            } else {
                ", no flush() (background flush every 500 ms)"
            }
        )
    }
    fn load(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), String> {
        let mut b = sled::Batch::default();
        for (i, v) in batch {
            b.insert(key(*i).as_bytes(), v.as_slice());
        }
        self.db.apply_batch(b).map_err(sled_err)
    }
    fn attempt(&self, ops: &[Op], value: &[u8]) -> Result<Outcome, String> {
        let scan = |i: u64, len: u64| -> Result<(), String> {
            for kv in self.db.range(key(i).as_bytes()..).take(len as usize) {
                std::hint::black_box(kv.map_err(sled_err)?.1.len());
            }
            Ok(())
        };
        if read_only(ops) {
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(self.db.get(key(i)).map_err(sled_err)?);
                    }
                    Op::Scan(i, len) => scan(i, len)?,
                    _ => unreachable!("read-only"),
                }
            }
            return Ok(Outcome::Committed);
        }
        // Scans first, outside the transaction: scanning the tree from inside
        // a sled transaction can block on the transaction's own locks.
        for op in ops {
            if let Op::Scan(i, len) = *op {
                scan(i, len)?;
            }
        }
        use sled::transaction::TransactionError;
        let r: Result<(), TransactionError<String>> = self.db.transaction(|tx| {
            for op in ops {
                match *op {
                    Op::Read(i) => {
                        std::hint::black_box(tx.get(key(i))?);
                    }
                    Op::Update(i) | Op::Insert(i) => {
                        tx.insert(key(i).as_bytes(), value)?;
                    }
                    Op::Scan(..) => {}
                    Op::Rmw(i) => {
                        let k = key(i);
                        let v = rmw_value(tx.get(&k)?.as_deref(), value);
                        tx.insert(k.as_bytes(), v)?;
                    }
                    Op::Transfer(a, b, amount) => {
                        let (ka, kb) = (key(a), key(b));
                        let fa = tx.get(&ka)?.map_or(0, |v| balance_of(&v));
                        let fb = tx.get(&kb)?.map_or(0, |v| balance_of(&v));
                        let amount = amount.min(fa);
                        tx.insert(ka.as_bytes(), &(fa - amount).to_le_bytes()[..])?;
                        tx.insert(kb.as_bytes(), &(fb + amount).to_le_bytes()[..])?;
                    }
                }
            }
            Ok(())
        });
        match r {
            Ok(()) => {}
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(sled_err(e)),
        }
        if self.sync {
            self.db.flush().map_err(sled_err)?;
        }
        Ok(Outcome::Committed)
    }
    fn bank_total(&self, n: u64) -> Result<u64, String> {
        let mut sum = 0;
        for kv in self.db.range(key(0).as_bytes()..=key(n - 1).as_bytes()) {
            sum += balance_of(&kv.map_err(sled_err)?.1);
        }
        Ok(sum)
    }
}

// The comparison ------------------------------------------------------------

/// The engines in the order they run.
pub const ENGINES: [&str; 5] = ["bwtx", "skipdb", "fjall", "redb", "sled"];

fn open_engine(name: &str, args: &BenchArgs, tmp: &Path) -> Result<Box<dyn Engine>, String> {
    let sync = sync(args);
    Ok(match name {
        "bwtx" => Box::new(bench::open_compare(args, tmp)?),
        "skipdb" => Box::new(Skip(OptimisticDb::new())),
        "fjall" => Box::new(Fjall::open(tmp.join("fjall"), sync)?),
        "redb" => {
            let path = tmp.join("bench.redb");
            let db = redb::Database::create(&path).map_err(redb_err)?;
            Box::new(Redb { db, sync, path })
        }
        "sled" => {
            let dir = tmp.join("sled");
            let db = sled::open(&dir).map_err(sled_err)?;
            Box::new(Sled { db, sync, dir })
        }
        _ => return Err(format!("unknown engine {name}")),
    })
}

/// One engine's row.
pub struct Row {
    pub name: &'static str,
    pub settings: String,
    pub m: Measured,
}

/// The result of `bwtx bench --compare`.
pub struct CompareReport {
    pub workload: String,
    pub distribution: String,
    pub theta: f64,
    pub keys: u64,
    pub value_size: usize,
    pub threads: usize,
    pub ops_per_txn: usize,
    pub seed: u64,
    pub durability: &'static str,
    pub rows: Vec<Row>,
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run the workload on every engine, one after the other.
pub fn run(args: &BenchArgs) -> Result<CompareReport, String> {
    let setup = bench::setup(args)?;
    let mut rows = Vec::new();
    for name in ENGINES {
        let tmp = TempDir(std::env::temp_dir().join(format!("bwtx-compare-{}-{name}", std::process::id())));
        let _ = std::fs::remove_dir_all(&tmp.0);
        std::fs::create_dir_all(&tmp.0).map_err(|e| format!("cannot create {}: {e}", tmp.0.display()))?;
        if !setup.hidden {
            eprintln!("{name} ...");
        }
        let engine = open_engine(name, args, &tmp.0)?;
        let m = bench::measure(&*engine, args, &setup, || {})?;
        rows.push(Row {
            name,
            settings: engine.settings(),
            m,
        });
        drop(engine);
    }
    // sled's background flusher may outlive its `Db` briefly and recreate
    // its directory: sweep once more after every engine has run.
    for name in ENGINES {
        let _ =
            std::fs::remove_dir_all(std::env::temp_dir().join(format!("bwtx-compare-{}-{name}", std::process::id())));
    }
    Ok(CompareReport {
        workload: format!("{:?}", args.workload).to_lowercase(),
        distribution: format!("{:?}", setup.dist).to_lowercase(),
        theta: args.theta,
        keys: args.keys,
        value_size: args.value_size,
        threads: args.threads,
        ops_per_txn: setup.ops_per_txn,
        seed: args.seed,
        durability: if sync(args) { "sync" } else { "relaxed" },
        rows,
    })
}

impl CompareReport {
    fn bwtx(&self) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == "bwtx")
    }

    /// bwtx's throughput over `row`'s, and `row`'s p99 over bwtx's.
    fn ratios(&self, row: &Row) -> (f64, f64) {
        let Some(b) = self.bwtx() else {
            return (f64::NAN, f64::NAN);
        };
        let tput = |r: &Row| r.m.txns as f64 / r.m.secs();
        (tput(b) / tput(row), row.m.latency().p99 / b.m.latency().p99)
    }

    /// Whether every bank total was conserved.
    pub fn ok(&self) -> bool {
        self.rows
            .iter()
            .all(|r| r.m.bank_total.is_none_or(|(found, want)| found == want))
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "workload {} ({}{}), {} keys x {} B, {} threads, {} ops/txn, seed {}, durability {}",
            self.workload,
            self.distribution,
            if self.distribution == "uniform" {
                String::new()
            } else {
                format!(" theta {}", self.theta)
            },
            self.keys,
            self.value_size,
            self.threads,
            self.ops_per_txn,
            self.seed,
            self.durability
        );
        let _ = writeln!(out, "settings:");
        for r in &self.rows {
            let _ = writeln!(out, "  {}", r.settings);
        }
        let _ = writeln!(
            out,
            "{:<8} {:>8} {:>10} {:>12} {:>12} {:>10} {:>10} {:>9} {:>10} {:>13}",
            "engine", "load s", "txns", "txns/s", "ops/s", "p50 us", "p99 us", "abort %", "bwtx/peer", "p99 peer/bwtx"
        );
        for r in &self.rows {
            let l = r.m.latency();
            let secs = r.m.secs();
            let (x, p) = self.ratios(r);
            let _ = writeln!(
                out,
                "{:<8} {:>8.2} {:>10} {:>12.0} {:>12.0} {:>10.1} {:>10.1} {:>9.2} {:>9.2}x {:>12.2}x",
                r.name,
                r.m.load.as_secs_f64(),
                r.m.txns,
                r.m.txns as f64 / secs,
                r.m.ops as f64 / secs,
                l.p50,
                l.p99,
                r.m.abort_rate() * 100.0,
                x,
                p
            );
        }
        for r in &self.rows {
            if let Some((found, want)) = r.m.bank_total {
                let _ = writeln!(
                    out,
                    "{} bank total {found} (expected {want}): {}",
                    r.name,
                    if found == want { "ok" } else { "VIOLATED" }
                );
            }
        }
        out
    }

    pub fn json(&self) -> String {
        let mut o = String::from("{");
        let _ = write!(
            o,
            "\"compare\":true,\"workload\":{},\"distribution\":{},\"theta\":{},\"keys\":{},\"value_size\":{},\
             \"threads\":{},\"ops_per_txn\":{},\"seed\":{},\"durability\":{},\"engines\":[",
            json_str(&self.workload),
            json_str(&self.distribution),
            num(self.theta),
            self.keys,
            self.value_size,
            self.threads,
            self.ops_per_txn,
            self.seed,
            json_str(self.durability)
        );
        for (n, r) in self.rows.iter().enumerate() {
            let l = r.m.latency();
            let secs = r.m.secs();
            let (x, p) = self.ratios(r);
            if n > 0 {
                o.push(',');
            }
            let _ = write!(
                o,
                "{{\"engine\":{},\"settings\":{},\"load_secs\":{},\"elapsed_secs\":{},\"txns\":{},\"ops\":{},\
                 \"txns_per_sec\":{},\"ops_per_sec\":{},\"aborts\":{},\"abort_rate\":{},\
                 \"latency_us\":{{\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{},\"mean\":{}}},\
                 \"bwtx_over_peer_throughput\":{},\"peer_over_bwtx_p99\":{}",
                json_str(r.name),
                json_str(&r.settings),
                num(r.m.load.as_secs_f64()),
                num(secs),
                r.m.txns,
                r.m.ops,
                num(r.m.txns as f64 / secs),
                num(r.m.ops as f64 / secs),
                r.m.aborts,
                num(r.m.abort_rate()),
                num(l.p50),
                num(l.p99),
                num(l.p999),
                num(l.max),
                num(l.mean),
                num(x),
                num(p)
            );
            if let Some((found, want)) = r.m.bank_total {
                let _ = write!(
                    o,
                    ",\"bank_total\":{found},\"bank_expected\":{want},\"bank_ok\":{}",
                    found == want
                );
            }
            o.push('}');
        }
        o.push_str("]}");
        o
    }
}
