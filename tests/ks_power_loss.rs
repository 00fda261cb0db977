//! Keyspaces under power loss at every sync point (the sweep of
//! `wal_power_loss.rs`, on [`FaultFs`], `Durability::Sync`): a script that
//! creates keyspace `x`, commits transactions writing to the default
//! keyspace, `x` and (once created, midway) `y`, drops and re-creates `y`,
//! checkpoints twice, on small log segments. After each crash and recovery:
//! - every acknowledged creation, drop and transaction is there;
//! - the transactions present are a prefix of the script (each writes a
//!   marker `m/<i>` in the default keyspace), and the keyspaces hold exactly
//!   what that prefix wrote: a transaction over several keyspaces is all or
//!   nothing.
//!
//! The paged variant runs the same sweep on a page store with a tiny cache
//! (every tree evicting, checkpoints writing location tables that list
//! every keyspace).

use std::collections::BTreeMap;

use bwtx::fs::FaultFs;
use bwtx::{Db, Durability, Error};

mod common;
use common::{dump, fault_opts, markers, DIR};

#[derive(Clone, Copy, Debug)]
enum Step {
    /// Transaction `i`: marker, then writes to x and (if live) y.
    Txn(usize),
    Create(&'static str),
    Drop(&'static str),
    Checkpoint,
}

fn script() -> Vec<Step> {
    let mut s = vec![Step::Create("x")];
    for i in 0..24 {
        s.push(Step::Txn(i));
        match i {
            5 => s.push(Step::Create("y")),
            9 | 17 => s.push(Step::Checkpoint),
            13 => s.push(Step::Drop("y")),
            15 => s.push(Step::Create("y")),
            _ => {}
        }
    }
    s
}

type Spaces = BTreeMap<&'static str, BTreeMap<String, String>>;

/// What transaction `i` writes to a keyspace: key `k<i % 5>`; every third
/// deletes it instead.
fn write_of(i: usize, ks: &str) -> (String, Option<String>) {
    let k = format!("k{}", i % 5);
    if i % 3 == 2 {
        (k, None)
    } else {
        (k, Some(format!("{ks}@{i}{}", ".".repeat(i * 7 % 30))))
    }
}

/// Apply `step` to the model.
fn apply(model: &mut Spaces, step: Step) {
    match step {
        Step::Txn(i) => {
            for (ks, m) in model.iter_mut() {
                match write_of(i, ks) {
                    (k, Some(v)) => m.insert(k, v),
                    (k, None) => m.remove(&k),
                };
            }
        }
        Step::Create(n) => {
            model.entry(n).or_default();
        }
        Step::Drop(n) => {
            model.remove(n);
        }
        Step::Checkpoint => {}
    }
}

fn run_step(db: &Db, step: Step) -> Result<(), Error> {
    match step {
        Step::Txn(i) => {
            let mut tx = db.begin();
            tx.put(format!("m/{i}"), "1")?;
            for n in db.keyspaces()? {
                if n == "default" {
                    continue;
                }
                let ks = db.keyspace(&n)?;
                let name = if n == "x" { "x" } else { "y" };
                match write_of(i, name) {
                    (k, Some(v)) => tx.put_in(&ks, k, v)?,
                    (k, None) => tx.delete_in(&ks, k)?,
                }
            }
            tx.commit().map(|_| ())
        }
        Step::Create(n) => db.keyspace(n).map(|_| ()),
        Step::Drop(n) => db.drop_keyspace(n),
        Step::Checkpoint => db.checkpoint().map(|_| ()),
    }
}

/// Run the script until the first error; the steps acknowledged. The
/// error must be the injected fault's (`Io`, or `Poisoned` after it): any
/// other would be a bug the crash merely ended the script at.
fn run_script(db: &Db, script: &[Step]) -> usize {
    for (n, &step) in script.iter().enumerate() {
        if let Err(e) = run_step(db, step) {
            assert_fault(&e);
            return n;
        }
    }
    script.len()
}

fn assert_fault(e: &Error) {
    assert!(
        matches!(e, Error::Io(_) | Error::Poisoned),
        "a fault must surface as Io or Poisoned, got {e}"
    );
}

/// `cache`: with a page store of that budget.
fn open(fs: &FaultFs, cache: Option<u64>) -> Result<Db, Error> {
    let mut o = fault_opts(fs).durability(Durability::Sync).segment_bytes(400);
    if let Some(c) = cache {
        o = o.cache_size(c);
    }
    o.open(DIR)
}

/// After recovery: the keyspaces and their contents are those of a prefix
/// of the script that includes every acknowledged step.
fn check(fs: &FaultFs, cache: Option<u64>, script: &[Step], acked: usize, ctx: &str) {
    let db = open(fs, cache).unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
    let (_, default) = dump(&db);
    let present = markers(&default);
    let txns: Vec<usize> = script
        .iter()
        .filter_map(|s| if let Step::Txn(i) = s { Some(*i) } else { None })
        .collect();
    let p = present.len();
    assert!(
        present.iter().copied().eq(txns[..p].iter().copied()),
        "{ctx}: markers {present:?} are not a prefix"
    );
    // Candidate prefixes: every step up to the last present transaction,
    // plus any of the non-transaction steps after it (up to the next
    // transaction, which is absent).
    let last_txn = script
        .iter()
        .position(|s| matches!(s, Step::Txn(i) if p > 0 && *i == txns[p - 1]))
        .map_or(0, |at| at + 1);
    let next_txn = script[last_txn..]
        .iter()
        .position(|s| matches!(s, Step::Txn(_)))
        .map_or(script.len(), |at| last_txn + at);
    let names = db.keyspaces().unwrap();
    let snap = db.snapshot();
    let mut found = false;
    for end in last_txn..=next_txn {
        if end < acked {
            continue;
        }
        let mut model = Spaces::new();
        for &s in &script[..end] {
            apply(&mut model, s);
        }
        let mut want_names: Vec<String> = model.keys().map(|s| s.to_string()).chain(["default".into()]).collect();
        want_names.sort();
        if want_names != names {
            continue;
        }
        let same = model.iter().all(|(n, m)| {
            let ks = db.keyspace(n).unwrap();
            let got: BTreeMap<String, String> = snap
                .range_in::<&[u8], _>(&ks, ..)
                .map(|kv| {
                    let (k, v) = kv.unwrap();
                    (
                        String::from_utf8(k.to_vec()).unwrap(),
                        String::from_utf8(v.to_vec()).unwrap(),
                    )
                })
                .collect();
            &got == m && snap.len_in(&ks).unwrap() == m.len() as u64
        });
        if same {
            found = true;
            break;
        }
    }
    assert!(
        found,
        "{ctx}: keyspaces {names:?} after {p} transactions match no prefix of the script at or past the {acked} steps acknowledged"
    );
}

#[test]
fn keyspaces_survive_power_loss_at_every_sync_point() {
    sweep(None);
}

#[test]
fn paged_keyspaces_survive_power_loss_at_every_sync_point() {
    sweep(Some(2 << 10));
}

fn sweep(cache: Option<u64>) {
    let script = script();
    let fs = FaultFs::new();
    let db = open(&fs, cache).unwrap();
    assert_eq!(run_script(&db, &script), script.len());
    let n = fs.syncs();
    drop(db);
    check(&fs, cache, &script, script.len(), "clean run");
    let mut crashed = 0;
    for k in 0..n + 3 {
        let fs = FaultFs::new();
        fs.crash_at_sync(k);
        let acked = match open(&fs, cache) {
            Ok(db) => run_script(&db, &script),
            Err(e) => {
                assert_fault(&e);
                0
            }
        };
        if acked < script.len() {
            crashed += 1;
        }
        fs.power_loss();
        check(&fs, cache, &script, acked, &format!("crash at sync {k} of {n}"));
    }
    assert!(
        crashed as u64 >= n * 3 / 4,
        "only {crashed} of {n} crash points were hit"
    );
}
