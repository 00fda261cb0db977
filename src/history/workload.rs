//! The list-append workload: concurrent transactions on real threads,
//! recorded as a [`History`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bwtx_kit::SplitMix64;

use super::model::{History, Mop, Op, OpKind};
use crate::{Db, Isolation, Transaction};

/// Parameters of [`run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// Client threads (one process each).
    pub threads: usize,
    /// Transactions each thread runs.
    pub txns_per_thread: usize,
    /// Keys in play at any moment (fewer keys: more conflicts).
    pub keys: u64,
    /// Micro-operations per transaction: uniformly 1 to this.
    pub max_ops_per_txn: usize,
    /// A key is retired, and a fresh one takes its place, after this many
    /// appends are planned to it (Elle's `max-writes-per-key`), which keeps
    /// lists short. 0 means never.
    pub max_writes_per_key: usize,
    /// Seed of the per-thread random choices (thread scheduling adds its own).
    pub seed: u64,
    /// The isolation level every transaction begins with
    /// ([`Db::begin_with`]); check the history with
    /// [`check_with`](super::check_with) at the same level.
    pub isolation: Isolation,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            threads: 4,
            txns_per_thread: 200,
            keys: 8,
            max_ops_per_txn: 4,
            max_writes_per_key: 32,
            seed: 0,
            isolation: Isolation::Snapshot,
        }
    }
}

/// The database key holding list `k`: `list/{k}`.
pub fn key_name(k: u64) -> String {
    format!("list/{k}")
}

/// A list as stored: its elements as little-endian u64s, concatenated.
pub fn encode(list: &[u64]) -> Vec<u8> {
    list.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The inverse of [`encode`]; `None` if the length is not a multiple of 8.
pub fn decode(bytes: &[u8]) -> Option<Vec<u64>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    )
}

/// Uniform in `0..n` (`0..1` for `n = 0`) by a modulo: the draws this workload
/// has always made, so a seed keeps its choices.
fn below(rng: &mut SplitMix64, n: u64) -> u64 {
    rng.next_u64() % n.max(1)
}

/// The active keys: `slots[i] = (key, appends planned to it)`.
struct KeyPool {
    slots: Vec<(u64, usize)>,
    next_key: u64,
    max_writes: usize,
}

impl KeyPool {
    fn pick(&mut self, rng: &mut SplitMix64, append: bool) -> u64 {
        let i = below(rng, self.slots.len() as u64) as usize;
        let (key, writes) = &mut self.slots[i];
        let k = *key;
        if append {
            *writes += 1;
            if self.max_writes > 0 && *writes >= self.max_writes {
                *key = self.next_key;
                *writes = 0;
                self.next_key += 1;
            }
        }
        k
    }
}

struct WorkloadState {
    clock: AtomicU64,
    next_value: AtomicU64,
    next_process: AtomicU64,
    pool: Mutex<KeyPool>,
}

/// Run the workload on `db` and return the history: `cfg.threads` threads
/// each run `cfg.txns_per_thread` transactions of random reads of whole
/// lists and appends of globally unique values (read the list, append,
/// put), with explicit begin (at `cfg.isolation`) and commit. A commit that loses a conflict is
/// a `Fail` operation; any other commit error an `Info` one (and the thread
/// continues as a new process). At the end one more transaction reads every
/// key used. Operations are in completion order, with logical invoke and
/// completion times from one global counter.
///
/// # Panics
///
/// If a stored list does not decode (a corrupted value).
pub fn run(db: &Db, cfg: WorkloadConfig) -> History {
    let keys = cfg.keys.max(1);
    let shared = WorkloadState {
        clock: AtomicU64::new(0),
        next_value: AtomicU64::new(1),
        next_process: AtomicU64::new(cfg.threads as u64),
        pool: Mutex::new(KeyPool {
            slots: (0..keys).map(|k| (k, 0)).collect(),
            next_key: keys,
            max_writes: cfg.max_writes_per_key,
        }),
    };
    let mut ops: Vec<Op> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.threads)
            .map(|t| {
                let shared = &shared;
                s.spawn(move || client(db, &cfg, shared, t as u64))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("workload thread panicked"))
            .collect()
    });
    // A final read of every key, so every committed append should be seen.
    let used = shared.pool.lock().unwrap_or_else(|e| e.into_inner()).next_key;
    let process = shared.next_process.fetch_add(1, Ordering::Relaxed);
    let txn = (0..used).map(|k| Mop::Read(k, None)).collect();
    let mut rng = SplitMix64::new(cfg.seed);
    ops.push(transact(db, &shared, cfg.isolation, process, txn, &mut rng));
    ops.sort_by_key(|o| o.completed_at);
    History::new(ops)
}

fn client(db: &Db, cfg: &WorkloadConfig, shared: &WorkloadState, thread: u64) -> Vec<Op> {
    let mut rng = SplitMix64::new(cfg.seed ^ thread.wrapping_mul(0xA076_1D64_78BD_642F));
    let mut process = thread;
    let mut ops = Vec::with_capacity(cfg.txns_per_thread);
    for _ in 0..cfg.txns_per_thread {
        let n = 1 + below(&mut rng, cfg.max_ops_per_txn.max(1) as u64);
        let txn: Vec<Mop> = {
            let mut pool = shared.pool.lock().unwrap_or_else(|e| e.into_inner());
            (0..n)
                .map(|_| {
                    let append = below(&mut rng, 2) == 0;
                    let k = pool.pick(&mut rng, append);
                    if append {
                        Mop::Append(k, shared.next_value.fetch_add(1, Ordering::Relaxed))
                    } else {
                        Mop::Read(k, None)
                    }
                })
                .collect()
        };
        let op = transact(db, shared, cfg.isolation, process, txn, &mut rng);
        if op.kind == OpKind::Info {
            process = shared.next_process.fetch_add(1, Ordering::Relaxed);
        }
        ops.push(op);
    }
    ops
}

/// Run one transaction; `txn`'s reads are filled in if it commits.
fn transact(
    db: &Db,
    shared: &WorkloadState,
    level: Isolation,
    process: u64,
    mut txn: Vec<Mop>,
    rng: &mut SplitMix64,
) -> Op {
    let invoked = shared.clock.fetch_add(1, Ordering::SeqCst);
    let mut tx = db.begin_with(level);
    let snapshot = tx.snapshot_ts();
    let executed = execute(&mut tx, &mut txn, rng);
    let (kind, commit_ts) = match executed {
        Err(_) => (OpKind::Fail, None), // nothing was attempted: a definite abort
        Ok(()) => match tx.commit() {
            Ok(ts) => (OpKind::Ok, Some(ts)),
            Err(e) if e.is_conflict() => (OpKind::Fail, None),
            Err(_) => (OpKind::Info, None),
        },
    };
    let completed = shared.clock.fetch_add(1, Ordering::SeqCst);
    let mut op = Op::new(process, kind, txn);
    if kind != OpKind::Ok {
        op.txn = op.invocation();
    }
    op.snapshot_ts = Some(snapshot);
    op.commit_ts = commit_ts;
    op.with_times(invoked, completed)
}

fn execute(tx: &mut Transaction, txn: &mut [Mop], rng: &mut SplitMix64) -> crate::Result<()> {
    for mop in txn.iter_mut() {
        let k = mop.key();
        let name = key_name(k);
        let current = match tx.get(&name)? {
            None => Vec::new(),
            Some(b) => decode(&b).unwrap_or_else(|| panic!("{name} holds {} bytes: not a list of u64", b.len())),
        };
        match mop {
            Mop::Read(_, r) => *r = Some(current),
            Mop::Append(_, v) => {
                let mut list = current;
                list.push(*v);
                tx.put(&name, encode(&list))?;
            }
        }
        // Widen the windows in which other threads' commits land mid-transaction.
        if below(rng, 4) == 0 {
            std::thread::yield_now();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        for l in [vec![], vec![0], vec![1, u64::MAX, 7]] {
            assert_eq!(decode(&encode(&l)), Some(l));
        }
        assert_eq!(decode(&[1, 2, 3]), None);
        assert_eq!(key_name(7), "list/7");
    }

    #[test]
    fn single_thread_history_is_valid() {
        let db = Db::in_memory();
        let cfg = WorkloadConfig {
            threads: 1,
            txns_per_thread: 50,
            keys: 3,
            max_writes_per_key: 5,
            ..WorkloadConfig::default()
        };
        let h = run(&db, cfg);
        assert_eq!(h.len(), 51);
        // One thread never conflicts; every op committed.
        assert_eq!(h.counts(), (51, 0, 0));
        let rep = super::super::check(&h);
        assert!(rep.ok, "{rep}");
        assert!(rep.stats.keys > 3, "keys rotate: {rep}");
    }
}
