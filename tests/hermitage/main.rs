//! Hermitage: Martin Kleppmann's catalogue of isolation anomalies
//! (<https://github.com/ept/hermitage>), rewritten for a key-value API, with
//! the outcome of every case asserted exactly under snapshot isolation and
//! under serializable (`Db::begin_with`).
//!
//! Setup of every case: key `1` = 10 and key `2` = 20, committed by a setup
//! transaction. Keys are the decimal strings `"1"`, `"2"`, ...; values are
//! decimal strings. A "scan(pred)" is a range scan over *all* keys
//! (`tx.range::<&[u8], _>(..)`) with a client-side filter on the values; it is
//! run forwards and backwards, and both directions must agree. (A
//! serializable transaction on the churning database scans the Hermitage
//! keys' ranges instead, which leave out the filler: see `ops::scan`.)
//!
//! bwtx buffers writes until commit and validates them there (first committer
//! wins), so where PostgreSQL would block a statement and abort it when the
//! other transaction commits, bwtx lets the statement through and refuses the
//! commit with [`Error::Conflict`] (`key`: the contested key, `winner`: the
//! commit timestamp the winner's `commit()` returned, `snapshot`: the loser's
//! snapshot timestamp, `reason`: write, read or range). Nothing of a refused
//! commit is installed.
//!
//! Under serializable, G1c, G2-item, G2 and the read-only anomaly each
//! refuse exactly one transaction (the later committer, whose reads are
//! stale), with `ConflictReason::Read` or `Range` naming the key and the
//! winner; every other case has the SI outcome, and read-only transactions
//! and disjoint writers commit. A refusal on a read takes a commit
//! timestamp (reads are validated after it is drawn) and commits nothing;
//! one on a write takes none.
//!
//! Every case runs on two databases, each under both levels (see
//! `env::envs`): the default configuration, and tiny pages (`Config::tiny()`, no background GC) with ~300 filler keys
//! around the Hermitage keys, so that keys `1`..`4` live on different leaves,
//! plus "churn" commits between the steps of the interleaving that insert and
//! delete filler next to keys `1` and `2`, so the pages that hold them split
//! and merge while the transactions are open, each followed by a full
//! garbage collection. Filler values are not numbers,
//! so the value predicates never match them.
//!
//! Files: `env.rs` (the four set-ups and the churn between steps),
//! `ops.rs` (reads, scans and the commit checks), and the cases by anomaly:
//! `g0_g1.rs` (G0, G1a, G1b, G1c, OTV), `pmp_p4.rs` (PMP, P4),
//! `g_single.rs` (G-single), `g2.rs` (G2-item, G2, the read-only anomaly)
//! `serial.rs` (read-only transactions, disjoint writers, mixed levels) and
//! `keyspaces.rs` (G0 and P4 with the two keys in different keyspaces).

mod env;
mod g0_g1;
mod g2;
mod g_single;
mod keyspaces;
mod ops;
mod pmp_p4;
mod serial;
