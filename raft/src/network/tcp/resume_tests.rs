//! A snapshot transfer cut off midway resumes where the receiver's part
//! ends: the real sender (`TcpConnection::full_snapshot`) against a peer
//! that receives with the real receiving end (`network::receive`) and
//! closes the first connection after a few chunks.

use std::time::Duration;

use tokio::net::TcpListener;

use super::*;
use crate::keys::{self, AppliedState};
use crate::network::receive::{self, Receiver};
use crate::snapshot::format::Writer;
use crate::snapshot::{SnapshotDir, SnapshotFile};
use crate::types::{log_id, SnapshotMeta};

const CHUNK: usize = 1024;
/// Chunks the peer takes on its first connection before it closes it.
const CUT_AFTER: usize = 7;

/// A snapshot file of 200 records (about 24 KB) in `dir`, with its meta;
/// `salt` changes the values (another file of the same log id).
fn snapshot_file(dir: &std::path::Path, salt: u8) -> (std::path::PathBuf, SnapshotMeta, Vec<u8>) {
    let applied = AppliedState {
        last_applied: Some(log_id(1, 0, 9)),
        membership: Default::default(),
        ..Default::default()
    };
    let mut w = Writer::new(Vec::new(), &applied).unwrap();
    for i in 0..200u32 {
        w.record(
            format!("key{i:05}").as_bytes(),
            &keys::encode_value(9, Some(&[(i as u8).wrapping_add(salt); 100])),
        )
        .unwrap();
    }
    let (bytes, _, _) = w.finish().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("sent.snap");
    std::fs::write(&path, &bytes).unwrap();
    let meta = SnapshotMeta {
        last_log_id: applied.last_applied,
        last_membership: Default::default(),
    };
    (path, meta, bytes)
}

/// What the peer saw on one connection: its resume answers and the
/// offsets of the chunks.
type Seen = (Vec<u64>, Vec<u64>);

/// A peer that serves `conns` connections with `receiver`, cutting the
/// first after [`CUT_AFTER`] chunks; after the last chunk it checks the
/// file and returns its bytes.
async fn peer(receiver: Receiver, conns: usize) -> (String, tokio::task::JoinHandle<(Vec<Seen>, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (mut seen, mut got) = (Vec::new(), Vec::new());
        for n in 0..conns {
            let mut conn = wire::framed(listener.accept().await.unwrap().0);
            assert_eq!(wire::accept_hello(&mut conn).await.unwrap(), Mode::Rpc);
            let mut incoming = receiver.incoming();
            let mut this: Seen = (Vec::new(), Vec::new());
            while let Ok(Some(req)) = wire::recv::<Request>(&mut conn).await {
                let reply = match req {
                    Request::SnapshotResume { meta, len } => {
                        let at = incoming.resume(&receive::snapshot_id(&meta), len);
                        this.0.push(at);
                        Reply::SnapshotResume(at)
                    }
                    Request::SnapshotChunk {
                        vote,
                        meta,
                        len,
                        offset,
                        done,
                        data,
                    } => {
                        if n == 0 && this.1.len() == CUT_AFTER {
                            break; // the connection is cut
                        }
                        this.1.push(offset);
                        match incoming.add(&receive::snapshot_id(&meta), len, offset, &data, done) {
                            Err(e) => Reply::Snapshot(Err(e)),
                            Ok(None) => Reply::Snapshot(Ok(None)),
                            Ok(Some(file)) => match receive::check(file, meta).await {
                                Ok(mut file) => {
                                    std::io::Read::read_to_end(file.reader().unwrap(), &mut got).unwrap();
                                    Reply::Snapshot(Ok(Some(SnapshotResponse::new(vote))))
                                }
                                Err(e) => Reply::Snapshot(Err(e)),
                            },
                        }
                    }
                    _ => panic!("not a snapshot request"),
                };
                let body = wire::encode(&reply, MAX_FRAME).unwrap();
                wire::send(&mut conn, body).await.unwrap();
            }
            drop(incoming); // a cut transfer is parked here
            seen.push(this);
        }
        (seen, got)
    });
    (addr, task)
}

async fn send(conn: &mut TcpConnection, path: &std::path::Path, meta: &SnapshotMeta) -> bool {
    let snapshot = Snapshot {
        meta: meta.clone(),
        snapshot: SnapshotFile::open(path).unwrap(),
    };
    let option = RPCOption::new(Duration::from_secs(5));
    let r = conn
        .full_snapshot(Vote::new_committed(1, 0), snapshot, std::future::pending(), option)
        .await;
    r.is_ok()
}

#[tokio::test]
async fn a_cut_transfer_resumes_where_the_receivers_part_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, meta, bytes) = snapshot_file(tmp.path(), 0);
    let receiver = Receiver::new(SnapshotDir::open(&tmp.path().join("recv")).unwrap());
    let (addr, peer) = peer(receiver.clone(), 2).await;
    let mut conn = TcpConnection::new(addr, Cut::default(), MAX_FRAME);
    conn.chunk = CHUNK;
    assert!(!send(&mut conn, &path, &meta).await, "the first transfer is cut");
    assert!(send(&mut conn, &path, &meta).await, "the second completes");
    drop(conn); // the peer serves a connection until it closes
    let (seen, got) = peer.await.unwrap();
    assert_eq!(got, bytes, "the file received is the file sent");
    let cut = (CUT_AFTER * CHUNK) as u64;
    assert_eq!(seen[0].0, vec![0]);
    assert_eq!(
        seen[0].1,
        (0..CUT_AFTER as u64).map(|i| i * CHUNK as u64).collect::<Vec<_>>()
    );
    // The second connection starts at the bytes the first left, and sends
    // only the rest.
    assert_eq!(seen[1].0, vec![cut]);
    let rest: Vec<u64> = (cut..bytes.len() as u64).step_by(CHUNK).collect();
    assert_eq!(seen[1].1, rest);
    assert_eq!(receiver.parked(), None);
    assert_eq!(
        std::fs::read_dir(tmp.path().join("recv")).unwrap().count(),
        0,
        "nothing left"
    );
}

#[tokio::test]
async fn a_resumed_part_of_other_bytes_fails_the_check_and_the_next_try_starts_at_0() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, meta, bytes) = snapshot_file(tmp.path(), 0);
    let receiver = Receiver::new(SnapshotDir::open(&tmp.path().join("recv")).unwrap());
    let (addr, peer) = peer(receiver.clone(), 2).await;
    let mut conn = TcpConnection::new(addr, Cut::default(), MAX_FRAME);
    conn.chunk = CHUNK;
    assert!(!send(&mut conn, &path, &meta).await);
    // Another file of the same log id and length (other values): the
    // resumed file, its head from the first and its tail from this one, is
    // refused whole...
    let (_, _, other) = snapshot_file(&tmp.path().join("other"), 1);
    assert_eq!((other.len(), other != bytes), (bytes.len(), true));
    std::fs::write(&path, &other).unwrap();
    assert!(
        !send(&mut conn, &path, &meta).await,
        "a file of two snapshots' bytes is refused"
    );
    assert_eq!(receiver.parked(), None, "and removed");
    // ...and the next try starts at 0 and completes.
    std::fs::write(&path, &bytes).unwrap();
    assert!(send(&mut conn, &path, &meta).await);
    drop(conn);
    let (seen, got) = peer.await.unwrap();
    assert_eq!(got, bytes);
    // The refusal left the connection open: both later tries went on it.
    assert_eq!(seen[0].0, vec![0]);
    assert_eq!(seen[1].0, vec![(CUT_AFTER * CHUNK) as u64, 0]);
}
