//! The databases every case runs on: the default configuration, and tiny
//! pages with filler keys and "churn" commits between the steps; each under
//! snapshot isolation and under serializable.

use std::cell::Cell;

use bwtx::{Db, Isolation, Options, Transaction};

use crate::ops::{kv, state};

/// A database to run a case on, and the level the case's transactions
/// begin with.
pub(crate) struct Env {
    pub(crate) name: &'static str,
    pub(crate) db: Db,
    pub(crate) isolation: Isolation,
    /// Commit structure-modifying filler transactions between steps.
    pub(crate) churn: bool,
    pub(crate) round: Cell<u32>,
}

impl Env {
    /// Begin one of the case's transactions, at the env's level.
    pub(crate) fn begin(&self) -> Transaction {
        let tx = self.db.begin_with(self.isolation);
        assert_eq!(tx.isolation(), self.isolation);
        tx
    }

    /// Whether the case's transactions are serializable.
    pub(crate) fn serializable(&self) -> bool {
        self.isolation == Isolation::Serializable
    }

    /// Between two steps of an interleaving: on the tiny database, commit a
    /// transaction that inserts (odd rounds) or deletes (even rounds) 24
    /// filler keys right before and right after keys `1` and `2` (between
    /// them and the static filler), so that their leaves split or merge,
    /// then collect garbage on every page (the versions the open
    /// transactions read must survive it). Never touches a Hermitage key, so
    /// it never conflicts with a case's transactions and never changes what
    /// they read (serializable scans on this database skip the filler: see
    /// `ops::scan`). It begins with `Db::begin` (snapshot isolation) and
    /// only writes, so it never validates reads.
    pub(crate) fn churn(&self) {
        if !self.churn {
            return;
        }
        let round = self.round.get() + 1;
        self.round.set(round);
        let splits_before = self.db.stats().splits;
        let mut tx = self.db.begin();
        for side in ["0/zchurn", "1/churn", "1/zchurn", "2/churn"] {
            for i in 0..24 {
                let k = format!("{side}/{i:02}");
                if round % 2 == 1 {
                    tx.put(&k, "churn").unwrap();
                } else {
                    tx.delete(&k).unwrap();
                }
            }
        }
        tx.commit().expect("churn commits never conflict");
        // Collect garbage with the case's transactions open: the watermark
        // rises to the oldest of them, and every page is consolidated.
        self.db.collect_garbage();
        if round % 2 == 1 {
            assert!(
                self.db.stats().splits > splits_before,
                "{}: churn must split pages",
                self.name
            );
        }
    }
}

/// The tiny-page database with its filler.
fn tiny() -> Db {
    let tiny = Options::new()
        .tree_config(bwtx::tree::Config::tiny())
        .gc_interval(None)
        .in_memory()
        .unwrap();
    // ~300 filler keys: before key 1, between 1 and 2, 2 and 3, 3 and 4, after 4.
    for group in ["0", "1", "2", "3", "4", "5"] {
        tiny.transaction(|tx| {
            for i in 0..50 {
                tx.put(format!("{group}/fill/{i:03}"), "filler")?;
            }
            Ok(())
        })
        .unwrap();
    }
    assert!(
        tiny.stats().splits > 50,
        "the filler must spread the keys over many pages"
    );
    tiny
}

/// The four set-ups every case runs on: each database under each level.
pub(crate) fn envs() -> Vec<Env> {
    let env = |name, db, churn, isolation| Env {
        name,
        db,
        isolation,
        churn,
        round: Cell::new(0),
    };
    vec![
        env("default/snapshot", Db::in_memory(), false, Isolation::Snapshot),
        env("tiny/snapshot", tiny(), true, Isolation::Snapshot),
        env("default/serializable", Db::in_memory(), false, Isolation::Serializable),
        env("tiny/serializable", tiny(), true, Isolation::Serializable),
    ]
}

/// Run `case` on each database, after the common setup (1 = 10, 2 = 20).
pub(crate) fn run(case: impl Fn(&Env)) {
    for env in envs() {
        let mut tx = env.db.begin();
        tx.put("1", "10").unwrap();
        tx.put("2", "20").unwrap();
        tx.commit().unwrap();
        assert_eq!(state(&env.db), kv(&[("1", 10), ("2", 20)]), "{}: setup", env.name);
        case(&env);
        assert_eq!(
            env.db.stats().active_snapshots,
            0,
            "{}: every transaction ended",
            env.name
        );
    }
}
