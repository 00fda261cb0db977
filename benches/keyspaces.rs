//! The cost of a second keyspace (issue 15): a transaction writing 2 keys
//! into 2 keyspaces against one writing the same 2 keys into one keyspace,
//! on an in-memory database (no log: the CPU cost of the commit path).
//! Keys cycle over `BWTX_BENCH_KEYS` (default 100,000) per keyspace, so the
//! trees stay the same size throughout.
//!
//! ```text
//! cargo bench --bench keyspaces             # a few seconds per case
//! cargo bench --bench keyspaces -- --test   # smoke test
//! ```
//! After criterion, a plain timing loop prints both rates and their ratio.

use std::hint::black_box;
use std::time::Instant;

use bwtx::{Db, Keyspace};
use bwtx_kit::{criterion_setup, env};

/// One transaction of the benchmark: keys `i` of `a` and of `b` (which may
/// be the same keyspace: then two keys of one keyspace).
fn txn(db: &Db, a: &Keyspace, b: &Keyspace, i: u64, n: u64) {
    let k = i % n;
    let mut tx = db.begin();
    tx.put_in(a, format!("a{k:08}"), "value-16-bytes..").unwrap();
    tx.put_in(b, format!("b{k:08}"), "value-16-bytes..").unwrap();
    black_box(tx.commit().unwrap());
}

fn setup(two: bool) -> (Db, Keyspace, Keyspace) {
    let db = Db::in_memory();
    let a = db.keyspace("a").unwrap();
    let b = if two { db.keyspace("b").unwrap() } else { a.clone() };
    (db, a, b)
}

fn main() {
    let n = env::parse::<u64>("BWTX_BENCH_KEYS").unwrap_or(100_000);
    let mut c = criterion_setup::short();
    {
        let mut g = c.benchmark_group("keyspaces");
        criterion_setup::flat(&mut g);
        for (name, two) in [("2 keys, 1 keyspace", false), ("2 keys, 2 keyspaces", true)] {
            let (db, a, b) = setup(two);
            let mut i = 0u64;
            g.bench_function(name, |bch| {
                bch.iter(|| {
                    i += 1;
                    txn(&db, &a, &b, i, n)
                })
            });
        }
        g.finish();
    }
    c.final_summary();
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    // Alternate the two cases in rounds, so machine noise hits both alike.
    let mut rates = [Vec::new(), Vec::new()];
    let dbs = [setup(false), setup(true)];
    for round in 0..6 {
        for (which, (db, a, b)) in dbs.iter().enumerate() {
            let start = Instant::now();
            let count = 200_000u64;
            for i in 0..count {
                txn(db, a, b, i + round * count, n);
            }
            rates[which].push(count as f64 / start.elapsed().as_secs_f64());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|x, y| x.partial_cmp(y).unwrap());
        v[v.len() / 2]
    };
    let one = median(&mut rates[0]);
    let two = median(&mut rates[1]);
    println!("2 keys in 1 keyspace:  {one:.0} txns/s (median of 6 rounds)");
    println!("2 keys in 2 keyspaces: {two:.0} txns/s (median of 6 rounds)");
    println!("ratio (2 keyspaces / 1): {:.3}", two / one);
}
