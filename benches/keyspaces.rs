//! The cost of a second keyspace (issue 15's benchmark): a transaction that
//! writes one key in each of two keyspaces, against one that writes the same
//! two keys in one keyspace.
//!
//! ```text
//! cargo bench --bench keyspaces                          # full run
//! BWTX_BENCH_CRITERION=0 cargo bench --bench keyspaces   # table only
//! cargo bench --bench keyspaces -- --test                # smoke (10,000 keys)
//! ```
//!
//! Data: `BWTX_BENCH_KEYS` (100,000 by default; 10,000 in `--test` mode)
//! random 8-byte keys. `one`: the keys live in the default keyspace twice,
//! as `a` + key and `b` + key; a transaction picks a random key and writes
//! both of its spellings. `two`: keyspaces `a` and `b` hold the key bare; a
//! transaction writes it in each (`put_in`). Both write two 8-byte values of
//! two 9- or 8-byte keys in one commit, on an in-memory database (no log:
//! the engine's own cost) and on a buffered on-disk one (a log record per
//! commit, no fsync wait). One element is one committed transaction.
//!
//! After criterion, a plain timing loop prints txns/s of both on 1 and 2
//! threads and the ratio two/one, with the goal (within 5%: ratio >= 0.95).
//! Each cell is the best of 5 passes of about `BWTX_BENCH_PASS_MS` (300 ms;
//! 10 ms in `--test` mode), the two variants' passes interleaved so a burst
//! of load elsewhere hits both.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bwtx::{Db, Durability, Keyspace, Options};
use bwtx_kit::criterion_setup;
use bwtx_kit::env;
use bwtx_kit::machine::loadavg;
use bwtx_kit::rng::SplitMix64;

/// One database holding both layouts' data.
struct Setup {
    db: Db,
    a: Keyspace,
    b: Keyspace,
    keys: Vec<u64>,
    _dir: Option<TempDir>,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Setup {
    fn new(n: usize, on_disk: bool) -> Setup {
        let (db, dir) = if on_disk {
            let p = std::env::temp_dir().join(format!("bwtx-bench-keyspaces-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            let db = Options::new().durability(Durability::Buffered).open(&p).expect("open");
            (db, Some(TempDir(p)))
        } else {
            (Db::in_memory(), None)
        };
        let a = db.keyspace("a").expect("keyspace a");
        let b = db.keyspace("b").expect("keyspace b");
        let mut rng = SplitMix64::new(15);
        let keys: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
        for chunk in keys.chunks(1000) {
            let mut tx = db.begin();
            for &k in chunk {
                let key = k.to_be_bytes();
                tx.put(one_key(b'a', k), key).unwrap();
                tx.put(one_key(b'b', k), key).unwrap();
                tx.put_in(&a, key, key).unwrap();
                tx.put_in(&b, key, key).unwrap();
            }
            tx.commit().expect("load");
        }
        Setup { db, a, b, keys, _dir: dir }
    }

    /// One transaction of layout `two` (or `one`) on key number `i`.
    fn txn(&self, two: bool, i: u64, v: u64) {
        let k = self.keys[(i % self.keys.len() as u64) as usize];
        let mut tx = self.db.begin();
        if two {
            tx.put_in(&self.a, k.to_be_bytes(), v.to_be_bytes()).unwrap();
            tx.put_in(&self.b, k.to_be_bytes(), v.to_be_bytes()).unwrap();
        } else {
            tx.put(one_key(b'a', k), v.to_be_bytes()).unwrap();
            tx.put(one_key(b'b', k), v.to_be_bytes()).unwrap();
        }
        // Distinct keys per thread (see `pass`): a conflict is a bug here.
        black_box(tx.commit().expect("no conflicts: threads write disjoint keys"));
    }
}

/// `key` spelled with a one-byte prefix, for the one-keyspace layout.
fn one_key(prefix: u8, key: u64) -> [u8; 9] {
    let mut out = [prefix; 9];
    out[1..].copy_from_slice(&key.to_be_bytes());
    out
}

/// Transactions per second of `threads` threads for about `len`; thread `t`
/// writes keys `i` with `i % threads == t` (no conflicts).
fn pass(s: &Setup, two: bool, threads: usize, len: Duration, seed: u64) -> f64 {
    let start = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut rng = SplitMix64::new(seed ^ (t as u64 + 1));
                    let mut n = 0u64;
                    while start.elapsed() < len {
                        for _ in 0..64 {
                            let i = rng.next_u64() / threads as u64 * threads as u64 + t as u64;
                            s.txn(two, i, n);
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let test = std::env::args().any(|a| a == "--test");
    let n: usize = env::number("BWTX_BENCH_KEYS").unwrap_or(if test { 10_000 } else { 100_000 });
    let pass_ms: u64 = env::number("BWTX_BENCH_PASS_MS").unwrap_or(if test { 10 } else { 300 });
    let setups = [("in-memory", Setup::new(n, false)), ("buffered", Setup::new(n, true))];

    if env::flag("BWTX_BENCH_CRITERION") {
        let mut c = criterion_setup::short();
        for (name, s) in &setups {
            let mut g = c.benchmark_group(format!("keyspaces/{name}"));
            criterion_setup::flat(&mut g);
            for (label, two) in [("one", false), ("two", true)] {
                let mut i = 0u64;
                g.bench_function(label, |bch| {
                    bch.iter(|| {
                        i = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
                        s.txn(two, i, i);
                    })
                });
            }
            g.finish();
        }
        c.final_summary();
    }

    if env::flag("BWTX_BENCH_SUMMARY") {
        println!(
            "\nkeyspaces: {n} keys, best of 5 passes of {pass_ms} ms, load {}",
            loadavg()
        );
        println!("{:<10} {:>7} {:>14} {:>14} {:>9}", "database", "threads", "one txns/s", "two txns/s", "two/one");
        let len = Duration::from_millis(pass_ms);
        for (name, s) in &setups {
            for threads in [1, 2] {
                let (mut one, mut two) = (0f64, 0f64);
                for p in 0..5 {
                    one = one.max(pass(s, false, threads, len, p));
                    two = two.max(pass(s, true, threads, len, p));
                }
                println!(
                    "{name:<10} {threads:>7} {one:>14.0} {two:>14.0} {:>8.3}x",
                    two / one
                );
            }
        }
        println!("goal: the second keyspace costs at most 5% (two/one >= 0.95)");
    }
    // Both layouts hold every key.
    for (_, s) in &setups {
        let snap = s.db.snapshot();
        assert_eq!(snap.len_in(&s.a).unwrap(), n as u64);
        assert_eq!(snap.len(), 2 * n as u64);
    }
}
