//! The cost of a second keyspace (issue 15): a transaction writing 2 keys
//! into 2 keyspaces against one writing the same 2 keys into one keyspace,
//! on an in-memory database (no log: the CPU cost of the commit path).
//!
//! Three layouts, each transaction writing keys `a<k>` and `b<k>`:
//! - `1 keyspace, 2N keys`: both keys in one keyspace, which holds the same
//!   data as the two keyspaces together (one tree of 2N keys);
//! - `1 keyspace, N keys`: both keys in one keyspace with `k` over `N / 2`,
//!   so the tree is as large as each of the two (same depth per descent);
//! - `2 keyspaces, N each`: `a<k>` in keyspace `a`, `b<k>` in keyspace `b`.
//!
//! Every tree is filled before anything is measured (`N` =
//! `BWTX_BENCH_KEYS`, default 100,000), so criterion and the timing loop
//! both measure the same thing: updates of existing keys at a fixed tree
//! size, the key index continuing where the last run stopped.
//!
//! ```text
//! cargo bench --bench keyspaces             # criterion, then the timing loop
//! cargo bench --bench keyspaces -- --test   # smoke test
//! # instructions per transaction of one layout (0, 1 or 2), repeatable on a
//! # noisy machine; only `measured` is counted:
//! BWTX_BENCH_LAYOUT=2 BWTX_BENCH_TXNS=20000 valgrind --tool=callgrind \
//!     --collect-atstart=no --toggle-collect='*keyspaces*measured*' \
//!     target/release/deps/keyspaces-<hash>
//! ```
//! The timing loop alternates the layouts in rounds (so machine noise hits
//! them alike) and prints each one's best and median rate and their ratios.

use std::hint::black_box;
use std::time::Instant;

use bwtx::{Db, Keyspace};
use bwtx_kit::{criterion_setup, env};

/// One layout's database and keyspaces.
struct Case {
    name: &'static str,
    db: Db,
    a: Keyspace,
    b: Keyspace,
    /// `k` runs over `0..keys`.
    keys: u64,
    /// The next transaction's index.
    next: u64,
}

/// One transaction of the benchmark: key `a<k>` in `a` and `b<k>` in `b`
/// (which may be the same keyspace).
#[inline]
fn txn(db: &Db, a: &Keyspace, b: &Keyspace, k: u64) {
    let mut tx = db.begin();
    tx.put_in(a, format!("a{k:08}"), "value-16-bytes..").unwrap();
    tx.put_in(b, format!("b{k:08}"), "value-16-bytes..").unwrap();
    black_box(tx.commit().unwrap());
}

impl Case {
    /// Layout `which` (module doc) over `n` keys, filled.
    fn new(which: usize, n: u64) -> Case {
        let db = Db::in_memory();
        let a = db.keyspace("a").unwrap();
        let (name, b, keys) = match which {
            0 => ("1 keyspace, 2N keys", a.clone(), n),
            1 => ("1 keyspace, N keys", a.clone(), (n / 2).max(1)),
            _ => ("2 keyspaces, N each", db.keyspace("b").unwrap(), n),
        };
        for chunk in (0..keys).collect::<Vec<_>>().chunks(1000) {
            let mut tx = db.begin();
            for &k in chunk {
                tx.put_in(&a, format!("a{k:08}"), "value-16-bytes..").unwrap();
                tx.put_in(&b, format!("b{k:08}"), "value-16-bytes..").unwrap();
            }
            tx.commit().unwrap();
        }
        let mut case = Case {
            name,
            db,
            a,
            b,
            keys,
            next: 0,
        };
        case.run(keys.min(10_000));
        case
    }

    /// `count` transactions, continuing the key sequence.
    fn run(&mut self, count: u64) {
        for _ in 0..count {
            txn(&self.db, &self.a, &self.b, self.next % self.keys);
            self.next += 1;
        }
    }
}

/// The transactions callgrind counts (`BWTX_BENCH_LAYOUT`): not inlined, so
/// `--toggle-collect` finds it.
#[inline(never)]
fn measured(case: &mut Case, count: u64) {
    case.run(count);
}

fn main() {
    let n = env::parse::<u64>("BWTX_BENCH_KEYS").unwrap_or(100_000);
    if let Some(which) = env::number::<usize>("BWTX_BENCH_LAYOUT") {
        let count = env::number::<u64>("BWTX_BENCH_TXNS").unwrap_or(20_000);
        let mut case = Case::new(which, n);
        measured(&mut case, count);
        println!("{}: {count} transactions measured", case.name);
        return;
    }
    let mut cases: Vec<Case> = (0..3).map(|w| Case::new(w, n)).collect();
    let mut c = criterion_setup::short();
    {
        let mut g = c.benchmark_group("keyspaces");
        criterion_setup::flat(&mut g);
        for case in &mut cases {
            g.bench_function(case.name, |bch| bch.iter(|| case.run(1)));
        }
        g.finish();
    }
    c.final_summary();
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let rounds = env::number::<usize>("BWTX_BENCH_ROUNDS").unwrap_or(7);
    let count = env::number::<u64>("BWTX_BENCH_TXNS").unwrap_or(100_000);
    let mut rates = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (case, rates) in cases.iter_mut().zip(&mut rates) {
            let start = Instant::now();
            case.run(count);
            rates.push(count as f64 / start.elapsed().as_secs_f64());
        }
    }
    println!("load average: {}", bwtx_kit::machine::loadavg());
    let mut best = Vec::new();
    for (case, r) in cases.iter().zip(&mut rates) {
        r.sort_by(|x, y| x.total_cmp(y));
        let (max, median) = (r[r.len() - 1], r[r.len() / 2]);
        best.push((max, median));
        println!(
            "{:<22} best {max:>9.0} txns/s, median {median:>9.0} ({rounds} rounds of {count})",
            case.name
        );
    }
    let two = best[2];
    for (i, case) in cases[..2].iter().enumerate() {
        println!(
            "2 keyspaces / {:<20} best {:.3}, median {:.3}",
            case.name,
            two.0 / best[i].0,
            two.1 / best[i].1
        );
    }
}
