//! Serializable replicated transactions on a 3-node cluster: write skew
//! (two doctors going off call) aborts exactly one under serializable and
//! lets both commit under snapshot isolation; a phantom insert into a
//! scanned range aborts the scanner, while a scan narrowed by its limit
//! ignores writes past what it consumed; every replica agrees.

mod common;

use std::time::Duration;

use bwtx::{ConflictReason, Isolation};
use bwtx_raft::{Cluster, Error, Node};

fn reason(e: &Error) -> ConflictReason {
    match e {
        Error::Bwtx(bwtx::Error::Conflict { reason, .. }) => (**reason).clone(),
        other => panic!("expected a conflict, got {other}"),
    }
}

/// Both doctors read who is on call at one snapshot and, seeing the other
/// on call, each go off call concurrently. Returns the two outcomes.
async fn two_doctors(leader: &Node, level: Isolation) -> Vec<Result<u64, Error>> {
    let mut tasks = Vec::new();
    for (me, other) in [("alice", "bob"), ("bob", "alice")] {
        let mut txn = leader.begin_with(level).await.unwrap();
        assert!(txn.get(format!("doctor/{other}")).unwrap().is_some());
        let on_call = txn.scan_prefix("doctor/").unwrap();
        assert_eq!(on_call.len(), 2, "both on call at the start");
        txn.delete(format!("doctor/{me}")).unwrap();
        tasks.push(txn);
    }
    // Both began before either commits; commit them concurrently.
    let tasks: Vec<_> = tasks.into_iter().map(|t| tokio::spawn(t.commit())).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn both_on_call(leader: &Node) {
    let mut txn = leader.begin().await.unwrap();
    txn.put("doctor/alice", "on").unwrap();
    txn.put("doctor/bob", "on").unwrap();
    txn.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serializable_stops_write_skew_and_phantoms_on_every_replica() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), &[1, 2, 3]).await.unwrap();
    let leader = common::steady_leader(&cluster, &[1, 2, 3]).await;

    // Snapshot isolation: both go off call (write skew).
    both_on_call(&leader).await;
    let si = two_doctors(&leader, Isolation::Snapshot).await;
    assert!(
        si.iter().all(Result::is_ok),
        "snapshot isolation lets write skew through: {si:?}"
    );
    let read = leader.read_linearizable().await.unwrap();
    assert!(read.scan_prefix("doctor/").unwrap().is_empty());

    // Serializable: exactly one goes off call; the other gets a read conflict.
    both_on_call(&leader).await;
    let ser = two_doctors(&leader, Isolation::Serializable).await;
    let (ok, lost): (Vec<_>, Vec<_>) = ser.into_iter().partition(Result::is_ok);
    assert_eq!((ok.len(), lost.len()), (1, 1), "exactly one doctor commits");
    let e = lost.into_iter().next().unwrap().unwrap_err();
    assert!(e.is_conflict());
    // The winner deleted its own key, which the loser read (and scanned;
    // read keys are checked before ranges).
    assert_eq!(reason(&e), ConflictReason::Read, "{e}");
    let read = leader.read_linearizable().await.unwrap();
    assert_eq!(
        read.scan_prefix("doctor/").unwrap().len(),
        1,
        "one doctor stays on call"
    );

    // A phantom: the scanner counts the "shift/" keys; an insert into that
    // range commits first.
    let mut scanner = leader.begin_with(Isolation::Serializable).await.unwrap();
    let count = scanner.scan_prefix("shift/").unwrap().len();
    scanner.put("shift-count", count.to_string()).unwrap();
    let mut insert = leader.begin().await.unwrap();
    insert.put("shift/night", "carol").unwrap();
    insert.commit().await.unwrap();
    let e = scanner.commit().await.unwrap_err();
    match reason(&e) {
        ConflictReason::Range { .. } => {}
        other => panic!("expected a range conflict, got {other:?}"),
    }
    // The same under snapshot isolation commits.
    let mut scanner = leader.begin_with(Isolation::Snapshot).await.unwrap();
    let count = scanner.scan_prefix("shift/").unwrap().len();
    scanner.put("shift-count", count.to_string()).unwrap();
    let mut insert = leader.begin().await.unwrap();
    insert.put("shift/early", "dave").unwrap();
    insert.commit().await.unwrap();
    scanner.commit().await.expect("snapshot isolation ignores phantoms");

    // A scan cut by its limit records only what it consumed: a write past
    // it does not conflict, one inside it does.
    for (late_key, conflicts) in [("shift/zz", false), ("shift/a", true)] {
        let mut scanner = leader.begin_with(Isolation::Serializable).await.unwrap();
        // Keys now: shift/early, shift/night; with its own write shift/b.
        scanner.put("shift/b", "own").unwrap();
        let first: Vec<_> = scanner
            .scan("shift/", None, 2)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(first, ["shift/b", "shift/early"], "own writes merge into the scan");
        let mut other = leader.begin().await.unwrap();
        other.put(late_key, "x").unwrap();
        other.commit().await.unwrap();
        let outcome = scanner.commit().await;
        assert_eq!(outcome.is_err(), conflicts, "write to {late_key}: {outcome:?}");
        let mut cleanup = leader.begin().await.unwrap();
        cleanup.delete(late_key).unwrap();
        cleanup.delete("shift/b").unwrap();
        cleanup.commit().await.unwrap();
    }

    let index = cluster
        .wait_converged(&[1, 2, 3], Duration::from_secs(30))
        .await
        .unwrap();
    let mut states = Vec::new();
    for id in [1, 2, 3] {
        let read = cluster.node(id).unwrap().read_snapshot().unwrap();
        assert_eq!(read.position(), index, "node {id}");
        assert_eq!(read.scan_prefix("doctor/").unwrap().len(), 1, "node {id}");
        assert_eq!(
            read.get("shift-count").unwrap().as_deref(),
            Some(&b"1"[..]),
            "node {id}"
        );
        states.push(read.scan_prefix("").unwrap());
    }
    assert!(
        states.windows(2).all(|w| w[0] == w[1]),
        "every replica holds the same data"
    );
    cluster.shutdown().await.unwrap();
}
