//! Unit tests of the wire format: messages round-trip through postcard,
//! malformed bodies and hellos are errors (never panics), and an append
//! over the frame limit is split into requests that chain.

use std::collections::BTreeSet;

use openraft::Membership;

use super::*;
use crate::types::{log_id, Entry, EntryPayload, KeyRange, LogId, Proposal};

fn txn(snapshot: u64, serializable: bool) -> Command {
    Command::Txn {
        snapshot,
        writes: vec![(b"acct/0001".to_vec(), Some(b"990".to_vec())), (b"gone".to_vec(), None)],
        reads: if serializable {
            vec![b"acct/0002".to_vec()]
        } else {
            vec![]
        },
        ranges: if serializable {
            vec![KeyRange {
                start: b"a".to_vec(),
                end: None,
            }]
        } else {
            vec![]
        },
    }
}

fn batch(snapshot: u64, n: usize) -> Command {
    let txns = (0..n)
        .map(|i| Proposal {
            snapshot,
            writes: vec![(format!("xfer/{i:016x}").into_bytes(), Some(vec![b'x'; 40]))],
            reads: vec![],
            ranges: vec![],
        })
        .collect();
    Command::Batch { txns }
}

fn entry(index: u64, payload: EntryPayload) -> Entry {
    Entry {
        log_id: log_id(3, 1, index),
        payload,
    }
}

/// An append of `n` batch entries after index 9.
fn append(n: u64) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new_committed(3, 1),
        prev_log_id: Some(log_id(3, 1, 9)),
        leader_commit: Some(log_id(3, 1, 8)),
        entries: (10..10 + n)
            .map(|i| entry(i, EntryPayload::Normal(batch(i - 1, 8))))
            .collect(),
    }
}

#[test]
fn commands_round_trip_in_postcard_with_and_without_read_sets() {
    for cmd in [
        txn(4, false),
        txn(4, true),
        batch(7, 3),
        Command::Batch { txns: vec![] },
    ] {
        let body = encode(&cmd, MAX_FRAME).unwrap();
        assert_eq!(decode::<Command>(&body).unwrap(), cmd);
    }
    let p = Proposal {
        snapshot: 1,
        writes: vec![],
        reads: vec![b"k".to_vec()],
        ranges: vec![],
    };
    assert_eq!(decode::<Proposal>(&encode(&p, MAX_FRAME).unwrap()).unwrap(), p);
}

#[test]
fn the_logs_json_of_a_snapshot_isolation_proposal_is_unchanged() {
    // The log's records (JSON) leave empty read sets out, as before the
    // hand-written serialization; a serializable one keeps them.
    let json = serde_json::to_string(&txn(4, false)).unwrap();
    assert_eq!(
        json,
        r#"{"Txn":{"snapshot":4,"writes":[[[97,99,99,116,47,48,48,48,49],[57,57,48]],[[103,111,110,101],null]]}}"#
    );
    assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), txn(4, false));
    let json = serde_json::to_string(&txn(4, true)).unwrap();
    assert!(json.contains(r#""reads""#) && json.contains(r#""ranges""#), "{json}");
    assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), txn(4, true));
}

#[test]
fn requests_and_replies_round_trip() {
    let members = Membership::new_with_defaults(vec![BTreeSet::from([1, 2, 3])], []);
    let mut rpc = append(2);
    rpc.entries.push(entry(12, EntryPayload::Membership(members)));
    rpc.entries.push(entry(13, EntryPayload::Blank));
    let body = encode(&Request::AppendEntries(rpc.clone()), MAX_FRAME).unwrap();
    match decode::<Request>(&body).unwrap() {
        Request::AppendEntries(back) => assert_eq!(format!("{back:?}"), format!("{rpc:?}")),
        other => panic!("decoded {other:?}"),
    }
    let replies: Vec<AppendReply> = vec![
        Ok(Ok(Some(log_id(3, 1, 12)))),
        Ok(Ok(None)),
        Ok(Err(openraft::raft::StreamAppendError::Conflict(log_id(2, 2, 5)))),
        Err("stopped".to_string()),
    ];
    for reply in replies {
        let back: AppendReply = decode(&encode(&reply, MAX_FRAME).unwrap()).unwrap();
        assert_eq!(back, reply);
    }
}

#[test]
fn malformed_bodies_are_errors_not_panics() {
    let good = encode(&Request::AppendEntries(append(3)), MAX_FRAME).unwrap();
    // Truncated anywhere: an error.
    for cut in 0..good.len() {
        let e = decode::<Request>(&good[..cut]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "cut at {cut}");
    }
    // Bytes left over after a whole message: an error.
    let mut long = good.to_vec();
    long.push(0);
    assert_eq!(decode::<Request>(&long).unwrap_err().kind(), io::ErrorKind::InvalidData);
    // An unknown variant, and a JSON body of the old wire version.
    assert!(decode::<Request>(&[9]).is_err());
    assert!(decode::<Request>(br#"{"Vote":{}}"#).is_err());
    // Every byte flipped to every value: decodes or errs, never panics (and
    // a length prefix claiming gigabytes allocates nothing first).
    for at in 0..good.len().min(64) {
        for v in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut bad = good.to_vec();
            bad[at] = v;
            let _ = decode::<Request>(&bad);
            let _ = decode::<AppendReply>(&bad);
        }
    }
    // Pseudo-random garbage.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..512 {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = decode::<Request>(&junk);
        let _ = decode::<Reply>(&junk);
    }
}

#[test]
fn hellos_name_what_is_wrong() {
    assert_eq!(check_hello(&hello(Mode::Rpc), true).unwrap(), Some(Mode::Rpc));
    assert_eq!(check_hello(&hello(Mode::Append), true).unwrap(), Some(Mode::Append));
    assert_eq!(check_hello(&hello_reply(), false).unwrap(), None);
    let mut other = hello(Mode::Rpc).to_vec();
    other[MAGIC.len()] = WIRE_VERSION + 1;
    let e = check_hello(&other, true).unwrap_err().to_string();
    assert!(
        e.contains(&format!("version {}", WIRE_VERSION + 1)) && e.contains(&format!("version {WIRE_VERSION}")),
        "{e}"
    );
    // A version-1 peer's first frame is a JSON request.
    let e = check_hello(br#"{"Vote":{"vote":{}}}"#, true).unwrap_err().to_string();
    assert!(e.contains("no hello"), "{e}");
    // Unknown mode, no mode, a mode where none belongs, nothing at all.
    let mut bad = hello(Mode::Rpc).to_vec();
    bad[MAGIC.len() + 1] = 7;
    assert!(check_hello(&bad, true).is_err());
    assert!(check_hello(&hello_reply(), true).is_err());
    assert!(check_hello(&hello(Mode::Rpc), false).is_err());
    assert!(check_hello(MAGIC, true).is_err());
    assert!(check_hello(&[], false).is_err());
}

#[tokio::test]
async fn a_peer_of_another_version_gets_a_clear_error_on_both_sides() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A server that answers as version WIRE_VERSION + 1 would.
    let server = tokio::spawn(async move {
        let mut conn = framed(listener.accept().await.unwrap().0);
        let first = conn.next().await.unwrap().unwrap();
        let mut reply = MAGIC.to_vec();
        reply.push(WIRE_VERSION + 1);
        conn.send(Bytes::from(reply)).await.unwrap();
        // This node's hello, as a newer node would check it.
        let mut theirs = first.to_vec();
        theirs[MAGIC.len()] = WIRE_VERSION + 1;
        (check_hello(&first, true), check_hello(&theirs, true))
    });
    let mut conn = framed(TcpStream::connect(addr).await.unwrap());
    let e = handshake(&mut conn, Mode::Append).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("version"), "{e}");
    let (ours, theirs) = server.await.unwrap();
    assert_eq!(ours.unwrap(), Some(Mode::Append));
    assert!(theirs.unwrap_err().to_string().contains("version"));

    // A version-1 client's JSON request: the server answers nothing and
    // refuses the connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut conn = framed(listener.accept().await.unwrap().0);
        accept_hello(&mut conn).await
    });
    let mut conn = framed(TcpStream::connect(addr).await.unwrap());
    conn.send(Bytes::from_static(br#"{"Vote":{}}"#)).await.unwrap();
    let e = server.await.unwrap().unwrap_err();
    assert!(e.to_string().contains("no hello"), "{e}");
    assert!(conn.next().await.is_none(), "closed without an answer");
}

/// The log ids of `frames`' requests: (previous, entries).
fn chain(frames: &[Bytes]) -> Vec<(Option<LogId>, Vec<u64>)> {
    frames
        .iter()
        .map(|f| {
            let rpc: AppendEntriesRequest<TypeConfig> = decode(f).unwrap();
            (rpc.prev_log_id, rpc.entries.iter().map(|e| e.log_id.index).collect())
        })
        .collect()
}

#[test]
fn an_append_over_the_frame_limit_is_split_into_requests_that_chain() {
    let whole = append(10);
    let size = encode(&whole, MAX_FRAME).unwrap().len();
    assert_eq!(append_frames(whole.clone(), size).unwrap().len(), 1, "fits whole");
    // A third of the size: split into parts of at most that, which chain.
    let limit = size / 3;
    let frames = append_frames(whole.clone(), limit).unwrap();
    assert!(frames.len() >= 3, "{} parts", frames.len());
    assert!(frames.iter().all(|f| f.len() <= limit));
    let parts = chain(&frames);
    let mut prev = whole.prev_log_id;
    let mut all = Vec::new();
    for (p, indexes) in parts {
        assert_eq!(p, prev, "each part follows the one before");
        assert!(!indexes.is_empty());
        prev = Some(log_id(3, 1, *indexes.last().unwrap()));
        all.extend(indexes);
    }
    assert_eq!(all, (10..20).collect::<Vec<_>>(), "every entry once, in order");
    for f in &frames {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(f).unwrap();
        assert_eq!((rpc.vote, rpc.leader_commit), (whole.vote, whole.leader_commit));
    }
    // One entry over the limit cannot be sent.
    let one = encode(&append(1), MAX_FRAME).unwrap().len();
    let e = append_frames(append(1), one - 1).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("one log entry"), "{e}");
}

/// A peer silent in the handshake: either side gives up after
/// [`HANDSHAKE_TIMEOUT`] with a `TimedOut` error, where before it waited
/// forever (a task, and on the connecting side the caller, held by a
/// stopped process or a port taken by something else). Paused time: the
/// timeout passes at once when nothing else can run; the outer 60 s bound
/// would pass instead if a side waited without one.
#[tokio::test(start_paused = true)]
async fn a_silent_peer_ends_the_handshake_with_an_error() {
    use tokio::net::{TcpListener, TcpStream};
    const BOUND: std::time::Duration = std::time::Duration::from_secs(60);
    // The connecting side: the serving peer accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut conn = framed(TcpStream::connect(addr).await.unwrap());
    let (silent, _) = listener.accept().await.unwrap();
    let r = tokio::time::timeout(BOUND, handshake(&mut conn, Mode::Rpc))
        .await
        .expect("it ended");
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    drop(silent);
    // The serving side: the connecting peer sends nothing.
    let _quiet = TcpStream::connect(addr).await.unwrap();
    let mut served = framed(listener.accept().await.unwrap().0);
    let r = tokio::time::timeout(BOUND, accept_hello(&mut served))
        .await
        .expect("it ended");
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
}

/// Every connection gets TCP keepalive (a dead host's connection ends in
/// about 25 s, not 2 hours), and a first frame longer than a hello is
/// refused before its bytes are waited for (a stranger's connection holds
/// at most `HELLO_MAX`, not `MAX_FRAME`); after the hello the limit is
/// `MAX_FRAME` again.
#[tokio::test]
async fn connections_keep_alive_and_hellos_are_small() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut conn = framed(listener.accept().await.unwrap().0);
        let alive = socket2::SockRef::from(conn.get_ref()).keepalive().unwrap();
        let time = socket2::SockRef::from(conn.get_ref()).tcp_keepalive_time().unwrap();
        (alive, time, accept_hello(&mut conn).await)
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    // A length header of 1 MiB, and nothing after it.
    stream.writable().await.unwrap();
    assert_eq!(stream.try_write(&(1u32 << 20).to_be_bytes()).unwrap(), 4);
    let (alive, time, hello) = server.await.unwrap();
    assert!(alive);
    assert_eq!(time, std::time::Duration::from_secs(10));
    let e = hello.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");

    // A real handshake still works, and then frames up to MAX_FRAME pass.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut conn = framed(listener.accept().await.unwrap().0);
        let mode = accept_hello(&mut conn).await.unwrap();
        let big = conn.next().await.unwrap().unwrap();
        (mode, big.len())
    });
    let mut conn = framed(TcpStream::connect(addr).await.unwrap());
    handshake(&mut conn, Mode::Rpc).await.unwrap();
    conn.send(Bytes::from(vec![7u8; 1 << 20])).await.unwrap();
    assert_eq!(server.await.unwrap(), (Mode::Rpc, 1 << 20));
}
