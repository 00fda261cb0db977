//! Operations (`Op` and what it targets) and their strategies.

use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};

use proptest::prelude::*;

/// Transaction slots.
pub const SLOTS: usize = 4;
/// Held-snapshot slots.
pub const HELD: usize = 2;
/// Savepoint slots (shared by the transactions: a savepoint can be used on
/// another transaction, or outlive its own).
pub const SAVEPOINTS: usize = 3;

pub type Key = Vec<u8>;
pub type Val = Vec<u8>;
pub type Writes = BTreeMap<Key, Option<Val>>;

/// Key `i`: keys sharing prefixes (`k000`, `k000\0`, `k000/2`), keys made of
/// `0xff` bytes (whose prefix has no upper bound), big-endian integers
/// starting with `0x00`, short `p..` keys, and the empty key.
pub fn key(i: usize) -> Key {
    match i % 6 {
        0 => format!("k{i:03}").into_bytes(),
        1 => format!("k{:03}\0", i - 1).into_bytes(),
        2 => format!("k{:03}/{i}", i - 2).into_bytes(),
        3 if i == 3 => Vec::new(),
        3 => vec![0xff, 0xff, (i / 6) as u8],
        4 => (i as u16).to_be_bytes().to_vec(),
        _ => format!("p{i}").into_bytes(),
    }
}

/// A value unique to its write (`serial`), sometimes empty (which is not
/// absent), sometimes large enough not to be inlined in a delta.
pub fn value(v: u8, serial: usize) -> Val {
    match v % 16 {
        0 => Vec::new(),
        1 | 2 => {
            let mut out = vec![v; 300];
            out.extend_from_slice(&serial.to_be_bytes());
            out
        }
        _ => format!("v{v}-{serial}").into_bytes(),
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The transaction in this slot (begun implicitly if the slot is empty).
    Txn(usize),
    /// The snapshot held in this slot (taken implicitly if empty).
    Held(usize),
    /// A fresh `db.snapshot()`, dropped right after the read.
    Fresh,
}

#[derive(Debug, Clone)]
pub enum Scan {
    Range(Bound<usize>, Bound<usize>),
    /// `prefix(key(i)[..len])`.
    Prefix(usize, usize),
}

#[derive(Debug, Clone)]
pub enum Consume {
    Forward,
    Reverse,
    /// `true` = `next_back`, `false` = `next`; then drain with `next`.
    Mixed(Vec<bool>),
    /// Take this many items from the front (or the back), then drop the iterator.
    Partial(usize, bool),
}

#[derive(Debug, Clone)]
pub enum Op {
    /// Roll back whatever the slot holds, begin a new snapshot-isolation
    /// transaction. (A slot begun implicitly is snapshot isolation for
    /// slots 0 and 1, serializable for 2 and 3.)
    Begin(usize),
    /// Roll back whatever the slot holds, begin a serializable transaction.
    BeginSerializable(usize),
    Get(Target, usize),
    Put(usize, usize, u8),
    Delete(usize, usize),
    /// Put (or delete) `len` consecutive keys from `start`.
    Fill(usize, usize, usize, u8, bool),
    Scan(Target, Scan, Consume),
    Commit(usize),
    Rollback(usize),
    /// Take a savepoint of the transaction in the slot, keep it in the
    /// savepoint slot.
    Savepoint(usize, usize),
    /// Roll the transaction in the slot back to the savepoint in the
    /// savepoint slot (nothing if that slot is empty).
    RollbackTo(usize, usize),
    /// Release the savepoint in the savepoint slot (and those after it) in
    /// the transaction in the slot (nothing if that slot is empty).
    ReleaseSavepoint(usize, usize),
    /// `db.transaction` putting (or, `None`, deleting) one key.
    Auto(usize, Option<u8>),
    /// Drop a held snapshot.
    Release(usize),
    Gc,
    /// `db.checkpoint()` (durable databases only).
    Checkpoint,
    /// Close and reopen the database (durable databases only).
    Restart(Shutdown),
}

/// How [`Op::Restart`] closes the database.
#[derive(Debug, Clone, Copy)]
pub enum Shutdown {
    /// Drop the handle (which flushes), then reopen.
    Clean,
    /// Drop the handle, then lose power: every unsynced byte and directory
    /// entry is gone (only on [`FaultFs`]; a clean close elsewhere).
    PowerLossAfterClose,
    /// Lose power while the database is still open, then drop the handle:
    /// nothing the close would flush can help.
    PowerLossWhileOpen,
}

pub fn bound(n: usize) -> impl Strategy<Value = Bound<usize>> {
    prop_oneof![
        1 => Just(Unbounded),
        2 => (0..n + 2).prop_map(Included),
        2 => (0..n + 2).prop_map(Excluded),
    ]
}

pub fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        6 => (0..SLOTS).prop_map(Target::Txn),
        1 => (0..HELD).prop_map(Target::Held),
        1 => Just(Target::Fresh),
    ]
}

pub fn scan(n: usize) -> impl Strategy<Value = Scan> {
    prop_oneof![
        3 => (bound(n), bound(n)).prop_map(|(lo, hi)| Scan::Range(lo, hi)),
        1 => (0..n, 0..6usize).prop_map(|(i, len)| Scan::Prefix(i, len)),
    ]
}

pub fn consume() -> impl Strategy<Value = Consume> {
    prop_oneof![
        3 => Just(Consume::Forward),
        2 => Just(Consume::Reverse),
        2 => proptest::collection::vec(any::<bool>(), 0..12).prop_map(Consume::Mixed),
        1 => (0..6usize, any::<bool>()).prop_map(|(n, back)| Consume::Partial(n, back)),
    ]
}

/// Operations over `n` keys; `fill` weights the bulk writes (which grow the
/// tree to many pages quickly, and shrink it again).
pub fn op(n: usize, fill: u32) -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        2 => slot.clone().prop_map(Op::Begin),
        2 => slot.clone().prop_map(Op::BeginSerializable),
        6 => (target(), 0..n).prop_map(|(t, k)| Op::Get(t, k)),
        8 => (slot.clone(), 0..n, any::<u8>()).prop_map(|(s, k, v)| Op::Put(s, k, v)),
        3 => (slot.clone(), 0..n).prop_map(|(s, k)| Op::Delete(s, k)),
        fill => (slot.clone(), 0..n, 1..40usize, any::<u8>(), any::<bool>())
            .prop_map(|(s, k, len, v, del)| Op::Fill(s, k, len, v, del)),
        4 => (target(), scan(n), consume()).prop_map(|(t, s, c)| Op::Scan(t, s, c)),
        5 => slot.clone().prop_map(Op::Commit),
        1 => slot.clone().prop_map(Op::Rollback),
        2 => (slot.clone(), 0..SAVEPOINTS).prop_map(|(s, p)| Op::Savepoint(s, p)),
        2 => (slot.clone(), 0..SAVEPOINTS).prop_map(|(s, p)| Op::RollbackTo(s, p)),
        1 => (slot, 0..SAVEPOINTS).prop_map(|(s, p)| Op::ReleaseSavepoint(s, p)),
        2 => (0..n, proptest::option::weighted(0.8, any::<u8>())).prop_map(|(k, v)| Op::Auto(k, v)),
        1 => (0..HELD).prop_map(Op::Release),
        1 => Just(Op::Gc),
    ]
}

/// One transaction over 4 keys, taking savepoints and rolling back to them
/// often: a key written in several stretches between nested savepoints,
/// rolled back to each. (The general [`op`] rarely nests them so.)
pub fn savepoint_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4usize, any::<u8>()).prop_map(|(k, v)| Op::Put(0, k, v)),
        2 => (0..4usize).prop_map(|k| Op::Delete(0, k)),
        3 => (0..SAVEPOINTS).prop_map(|p| Op::Savepoint(0, p)),
        3 => (0..SAVEPOINTS).prop_map(|p| Op::RollbackTo(0, p)),
        2 => (0..SAVEPOINTS).prop_map(|p| Op::ReleaseSavepoint(0, p)),
        2 => (0..4usize).prop_map(|k| Op::Get(Target::Txn(0), k)),
        1 => Just(Op::Commit(0)),
    ]
}

/// [`op`] plus checkpoints and restarts, each about once per 35 operations.
pub fn durable_op(n: usize, fill: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        33 + fill => op(n, fill),
        1 => Just(Op::Checkpoint),
        1 => prop_oneof![
            Just(Shutdown::Clean),
            Just(Shutdown::PowerLossAfterClose),
            Just(Shutdown::PowerLossWhileOpen),
        ]
        .prop_map(Op::Restart),
    ]
}
