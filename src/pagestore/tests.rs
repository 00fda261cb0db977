//! Tests of [`SegmentStore`] on `FaultFs`: round trips, rotation, power
//! loss, appends during a sync, torn tails, corruption, poisoning, read
//! faults, concurrent appenders, and a model test against a `Vec`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use super::record::{addr_offset, addr_seq, Addr, Kind, Meta, RecordKind, NO_ADDR, SEGMENT_HEADER_LEN};
use super::segment;
use super::store::SegmentStore;
use crate::fs::{FaultFs, Fs};
use crate::Error;

fn dir() -> PathBuf {
    PathBuf::from("/db")
}

fn open(fs: &FaultFs, segment_bytes: u64) -> crate::Result<SegmentStore> {
    let fs: Arc<dyn Fs> = Arc::new(fs.clone());
    SegmentStore::open(fs, &dir(), Kind::Pages, segment_bytes)
}

fn meta(id: u64) -> Meta {
    Meta {
        rkind: if id.is_multiple_of(3) {
            RecordKind::Base
        } else {
            RecordKind::Delta
        },
        flags: id as u8,
        tree: (id % 5) as u16,
        id,
        prev: if id.is_multiple_of(3) { NO_ADDR } else { id * 8 },
        max_ts: id + 100,
    }
}

fn payload(id: u64) -> Vec<u8> {
    (0..(id * 7 % 61) as usize).map(|i| (i as u64 ^ id) as u8).collect()
}

/// Append records `ids`, returning their addresses.
fn append_all(s: &SegmentStore, ids: std::ops::Range<u64>) -> Vec<Addr> {
    ids.map(|id| s.append(&meta(id), &payload(id)).unwrap()).collect()
}

fn check(s: &SegmentStore, ids: std::ops::Range<u64>, addrs: &[Addr]) {
    for (id, &a) in ids.zip(addrs) {
        let r = s.read(a).unwrap_or_else(|e| panic!("record {id} at {a:#x}: {e}"));
        assert_eq!((r.meta, &r.payload[..]), (meta(id), &payload(id)[..]), "record {id}");
    }
}

fn seg_path(seq: u64) -> PathBuf {
    dir().join(segment::name(Kind::Pages, seq))
}

fn is_corruption_at(e: &Error, file: &Path, at: u64) -> bool {
    matches!(e, Error::Corruption { file: f, offset, .. } if f == file && *offset == at)
}

#[test]
fn round_trip_reopen_and_resume() {
    let fs = FaultFs::new();
    let s = open(&fs, 1 << 20).unwrap();
    let a = append_all(&s, 0..20);
    assert_eq!(addr_offset(a[0]), SEGMENT_HEADER_LEN as u64);
    assert!(a.windows(2).all(|w| w[0] < w[1]));
    check(&s, 0..20, &a);
    s.sync().unwrap();
    drop(s);
    let s = open(&fs, 1 << 20).unwrap();
    assert_eq!(s.truncated(), None);
    check(&s, 0..20, &a);
    let b = append_all(&s, 20..30);
    assert!(b[0] > a[19], "appending resumes after the records found");
    check(&s, 0..20, &a);
    check(&s, 20..30, &b);
    // The value log refuses page records and the page store values.
    assert!(matches!(
        s.append(
            &Meta {
                rkind: RecordKind::Value,
                ..meta(1)
            },
            b"v"
        ),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn rotation_live_counts_and_delete() {
    let fs = FaultFs::new();
    let s = open(&fs, 300).unwrap();
    let a = append_all(&s, 0..40);
    let segs = s.segments();
    assert!(segs.len() > 3, "{segs:?}");
    assert!(segs.iter().all(|g| g.bytes < 300 + 40 + 64), "{segs:?}");
    check(&s, 0..40, &a);
    let first = addr_seq(a[0]);
    let in_first: Vec<usize> = (0..40).filter(|&i| addr_seq(a[i]) == first).collect();
    let bytes = |i: usize| super::record::record_bytes(payload(i as u64).len());
    for &i in &in_first {
        s.add_live(a[i], bytes(i));
    }
    assert_eq!(s.live_fraction(first), Some(1.0));
    s.sub_live(a[in_first[0]], bytes(in_first[0]));
    let f = s.live_fraction(first).unwrap();
    assert!(f > 0.0 && f < 1.0, "{f}");
    assert_eq!(s.live_fraction(999), None);
    let current = segs.last().unwrap().seq;
    assert!(matches!(s.delete(current), Err(Error::InvalidArgument(_))));
    s.delete(first).unwrap();
    assert!(is_corruption_at(
        &s.read(a[0]).unwrap_err(),
        &seg_path(first),
        addr_offset(a[0])
    ));
    assert!(matches!(s.delete(first), Err(Error::InvalidArgument(_))));
    // Every closed segment was synced when it closed: a power loss keeps all
    // of them, and the deletion (its directory was synced).
    fs.power_loss();
    drop(s);
    let s = open(&fs, 300).unwrap();
    assert_eq!(s.segments().len(), segs.len() - 1);
    let kept = in_first.len()..40;
    let lost_tail = a.iter().filter(|&&x| addr_seq(x) == current).count();
    check(
        &s,
        kept.start as u64..(40 - lost_tail) as u64,
        &a[kept.start..40 - lost_tail],
    );
}

#[test]
fn power_loss_drops_exactly_the_unsynced_records() {
    let fs = FaultFs::new();
    let s = open(&fs, 1 << 20).unwrap();
    let a = append_all(&s, 0..5);
    s.sync().unwrap();
    let syncs = fs.syncs();
    s.sync().unwrap();
    assert_eq!(fs.syncs(), syncs, "a sync with nothing new does not fsync");
    let b = append_all(&s, 5..9);
    fs.power_loss();
    drop(s);
    let s = open(&fs, 1 << 20).unwrap();
    check(&s, 0..5, &a);
    for &x in &b {
        assert!(matches!(s.read(x), Err(Error::Corruption { .. })), "{x:#x} survived");
    }
    let c = s.append(&meta(9), &payload(9)).unwrap();
    assert_eq!(c, b[0], "the lost records' space is reused");
}

#[test]
fn appends_go_on_while_a_sync_runs() {
    let fs = FaultFs::new();
    let s = Arc::new(open(&fs, 1 << 20).unwrap());
    let a = append_all(&s, 0..5);
    let end_a = s.ends().0;
    fs.hold_syncs("pages-");
    let syncer = {
        let s = s.clone();
        std::thread::spawn(move || s.sync())
    };
    let start = std::time::Instant::now();
    // A liveness bound, not a timing measurement (as for the append below).
    let within_a_minute = || start.elapsed() < std::time::Duration::from_secs(60);
    while fs.held_syncs() == 0 {
        assert!(within_a_minute(), "the sync never started");
        std::thread::yield_now();
    }
    // Appends while the fsync is held return: the sync runs through the
    // segment's second handle, without the appenders' mutex. (Before, they
    // waited for the sync's end, and this test failed after a minute.)
    let appender = {
        let s = s.clone();
        std::thread::spawn(move || append_all(&s, 5..9))
    };
    while !appender.is_finished() {
        if !within_a_minute() {
            fs.release_syncs();
            panic!("the appends waited for the sync");
        }
        std::thread::yield_now();
    }
    assert_eq!(fs.held_syncs(), 1, "the sync is still held");
    let b = appender.join().unwrap();
    fs.release_syncs();
    syncer.join().unwrap().unwrap();
    assert_eq!(s.ends().1, end_a, "durable: what was appended before the sync");
    check(&s, 0..5, &a);
    check(&s, 5..9, &b);
    // What the sync covered survives a power loss.
    fs.power_loss();
    drop(s);
    let s = open(&fs, 1 << 20).unwrap();
    check(&s, 0..5, &a);
}

#[test]
fn torn_tail_is_truncated_and_earlier_damage_is_corruption() {
    let fs = FaultFs::new();
    let s = open(&fs, 1 << 20).unwrap();
    let a = append_all(&s, 0..4);
    s.sync().unwrap();
    fs.short_write_at(fs.writes());
    assert!(matches!(s.append(&meta(4), &payload(4)), Err(Error::Io(_))));
    drop(s);
    let len_torn = fs.contents(&seg_path(1)).unwrap().len();
    let s = open(&fs, 1 << 20).unwrap();
    let (seq, at, _) = s.truncated().expect("the torn tail was found");
    assert_eq!(
        (seq, at),
        (1, addr_offset(a[3]) + super::record::record_bytes(payload(3).len()))
    );
    assert!((fs.contents(&seg_path(1)).unwrap().len() as u64) < len_torn as u64);
    check(&s, 0..4, &a);
    drop(s);
    // A flipped bit in the second record, with valid records after it.
    let mut d = fs.contents(&seg_path(1)).unwrap();
    d[addr_offset(a[1]) as usize + 20] ^= 4;
    fs.set_contents(&seg_path(1), d);
    let e = open(&fs, 1 << 20).err().expect("corruption found at open");
    assert!(is_corruption_at(&e, &seg_path(1), addr_offset(a[1])), "{e}");
}

#[test]
fn every_bit_flip_in_a_record_is_corruption_on_read() {
    let fs = FaultFs::new();
    let s = open(&fs, 1 << 20).unwrap();
    let a = append_all(&s, 1..4);
    let (start, len) = (addr_offset(a[1]) as usize, (a[2] - a[1]) as usize);
    let good = fs.contents(&seg_path(1)).unwrap();
    for bit in 0..len * 8 {
        let mut d = good.clone();
        d[start + bit / 8] ^= 1 << (bit % 8);
        fs.set_contents(&seg_path(1), d);
        let e = s
            .read(a[1])
            .err()
            .unwrap_or_else(|| panic!("flip of bit {bit} went unnoticed"));
        assert!(is_corruption_at(&e, &seg_path(1), start as u64), "bit {bit}: {e}");
    }
    fs.set_contents(&seg_path(1), good);
    check(&s, 1..4, &a);
    // Addresses that name no record are corruption too.
    for bad in [a[1] + 8, a[1] + 1, NO_ADDR, 7 << 32 | 32, a[2] + (1 << 20)] {
        assert!(matches!(s.read(bad), Err(Error::Corruption { .. })), "{bad:#x}");
    }
}

#[test]
fn hinted_reads_equal_plain_reads_and_catch_every_bit_flip() {
    let fs = FaultFs::new();
    let s = open(&fs, 1 << 20).unwrap();
    let a = append_all(&s, 1..8);
    for (i, id) in (1..7).enumerate() {
        let bytes = a[i + 1] - a[i];
        // The right size, wrong ones (the header decides), none.
        for hint in [
            Some(bytes),
            Some(bytes + 8),
            Some(bytes - 8),
            Some(0),
            Some(u64::MAX),
            None,
        ] {
            let r = s.read_hinted(a[i], hint).unwrap();
            assert_eq!((r.meta, &r.payload[..]), (meta(id), &payload(id)[..]), "{id} {hint:?}");
        }
    }
    let (start, len) = (addr_offset(a[1]) as usize, (a[2] - a[1]) as usize);
    let good = fs.contents(&seg_path(1)).unwrap();
    for bit in 0..len * 8 {
        let mut d = good.clone();
        d[start + bit / 8] ^= 1 << (bit % 8);
        fs.set_contents(&seg_path(1), d);
        let e = s
            .read_hinted(a[1], Some(len as u64))
            .err()
            .unwrap_or_else(|| panic!("flip of bit {bit} went unnoticed"));
        assert!(is_corruption_at(&e, &seg_path(1), start as u64), "bit {bit}: {e}");
    }
    fs.set_contents(&seg_path(1), good);
    for bad in [a[1] + 8, a[1] + 1, NO_ADDR, 7 << 32 | 32] {
        assert!(
            matches!(s.read_hinted(bad, Some(len as u64)), Err(Error::Corruption { .. })),
            "{bad:#x}"
        );
    }
}

/// Scratch reads give what plain reads give; a dropped scratch hands its
/// buffer to the thread's next scratch read, and a slice kept past its
/// scratch keeps its own bytes (the buffer is not handed back under it).
#[test]
fn scratch_reads_reuse_the_buffer_and_never_a_kept_one() {
    let fs = FaultFs::new();
    let s = open(&fs, 1 << 20).unwrap();
    let a = append_all(&s, 1..8);
    let hint = |i: usize| Some(a[i + 1] - a[i]);
    let mut first = None;
    // Largest first (`payload` grows with the id here): each fits the
    // buffer the first one grew.
    for i in (0..6).rev() {
        let id = i as u64 + 1;
        let r = s.read_scratch(a[i], hint(i)).unwrap();
        assert_eq!((r.meta, &r.payload[..]), (meta(id), &payload(id)[..]), "{id}");
        // Each read's buffer starts where the first one's did (its
        // payload after the same header).
        let at = r.payload.as_ptr();
        assert_eq!(*first.get_or_insert(at), at, "read {id} got a new buffer");
    }
    // A kept slice: the next read gets another buffer, and the slice its bytes.
    let kept = s.read_scratch(a[0], hint(0)).unwrap().payload.clone();
    let other = s.read_scratch(a[1], hint(1)).unwrap();
    assert_ne!(other.payload.as_ptr(), kept.as_ptr());
    assert_eq!(&kept[..], &payload(1)[..]);
    assert_eq!(&other.payload[..], &payload(2)[..]);
    drop(other);
    // Unhinted (two reads, a buffer of its own): the same record.
    let r = s.read_scratch(a[2], None).unwrap();
    assert_eq!((r.meta, &r.payload[..]), (meta(3), &payload(3)[..]));
}

#[test]
fn failed_write_or_sync_poisons() {
    let fs = FaultFs::new();
    let s = open(&fs, 1 << 20).unwrap();
    let a = append_all(&s, 0..2);
    fs.fail_write_at(fs.writes());
    assert!(matches!(s.append(&meta(2), &payload(2)), Err(Error::Io(_))));
    assert!(matches!(s.append(&meta(3), &payload(3)), Err(Error::Poisoned)));
    assert!(matches!(s.sync(), Err(Error::Poisoned)));
    check(&s, 0..2, &a);

    let fs2 = FaultFs::new();
    let s = open(&fs2, 1 << 20).unwrap();
    append_all(&s, 0..2);
    fs2.fail_sync_at(fs2.syncs());
    assert!(matches!(s.sync(), Err(Error::Io(_))));
    assert!(matches!(s.sync(), Err(Error::Poisoned)));
    assert!(matches!(s.append(&meta(3), &payload(3)), Err(Error::Poisoned)));

    // A failed sync while closing a segment poisons too.
    let fs3 = FaultFs::new();
    let s = open(&fs3, 100).unwrap();
    append_all(&s, 0..2);
    fs3.fail_sync_at(fs3.syncs());
    let r: Vec<_> = (2..6).map(|id| s.append(&meta(id), &payload(id))).collect();
    assert!(r.iter().any(|r| matches!(r, Err(Error::Io(_)))), "{r:?}");
    assert!(matches!(s.append(&meta(9), &payload(9)), Err(Error::Poisoned)));
}

#[test]
fn read_faults_are_errors_not_poison() {
    let fs = FaultFs::new();
    let s = open(&fs, 1 << 20).unwrap();
    let a = append_all(&s, 0..3);
    for step in 0..2 {
        // The header's read, then the payload's.
        fs.fail_read_at(fs.reads() + step);
        assert!(matches!(s.read(a[1]), Err(Error::Io(_))));
        check(&s, 0..3, &a);
    }
    append_all(&s, 3..4);
    s.sync().unwrap();
    // The scan at open reads too.
    drop(s);
    fs.fail_read_at(fs.reads());
    assert!(matches!(open(&fs, 1 << 20), Err(Error::Io(_))));
    assert!(open(&fs, 1 << 20).is_ok());
}

#[test]
fn concurrent_appenders_get_distinct_addresses() {
    let fs = FaultFs::new();
    let s = open(&fs, 4096).unwrap();
    let per = 300u64;
    let addrs: Vec<(u64, Addr)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4u64)
            .map(|t| {
                let s = &s;
                sc.spawn(move || {
                    let mut v = Vec::new();
                    for i in 0..per {
                        let id = t * per + i;
                        v.push((id, s.append(&meta(id), &payload(id)).unwrap()));
                        if i.is_multiple_of(17) {
                            s.sync().unwrap();
                        }
                    }
                    s.sync().unwrap();
                    v
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut sorted: Vec<Addr> = addrs.iter().map(|p| p.1).collect();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), addrs.len());
    fs.power_loss();
    drop(s);
    let s = open(&fs, 4096).unwrap();
    for &(id, a) in &addrs {
        check(&s, id..id + 1, &[a]);
    }
}

#[test]
fn a_newest_segment_without_its_header_is_created_again() {
    let fs = FaultFs::new();
    let s = open(&fs, 1 << 20).unwrap();
    let a = append_all(&s, 0..3);
    s.sync().unwrap();
    drop(s);
    // A crash between creating segment 2 and syncing its header.
    let mut f = fs.create(&seg_path(2)).unwrap();
    f.write_all(&[0x42; 10]).unwrap();
    let s = open(&fs, 1 << 20).unwrap();
    assert_eq!(s.truncated().map(|t| (t.0, t.1)), Some((2, 0)));
    check(&s, 0..3, &a);
    let b = s.append(&meta(3), &payload(3)).unwrap();
    assert_eq!((addr_seq(b), addr_offset(b)), (2, SEGMENT_HEADER_LEN as u64));
    check(&s, 3..4, &[b]);
}

/// A newest segment of an earlier version (a page segment of version 1) is
/// kept closed at open: its records read, and appends go to a new segment of
/// this build's version (a build before it would refuse that one at its
/// header instead of misreading what this build writes).
#[test]
fn an_earlier_versions_newest_segment_is_not_appended_to() {
    let fs = FaultFs::new();
    let s = open(&fs, 1 << 20).unwrap();
    let a = append_all(&s, 0..4);
    s.sync().unwrap();
    drop(s);
    let mut b = fs.read(&seg_path(1)).unwrap();
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&b[..24]);
    b[24..28].copy_from_slice(&crc.to_le_bytes());
    let mut f = fs.create(&seg_path(1)).unwrap();
    f.write_all(&b).unwrap();
    f.sync().unwrap();
    let s = open(&fs, 1 << 20).unwrap();
    check(&s, 0..4, &a);
    let c = append_all(&s, 4..5);
    assert_eq!((addr_seq(c[0]), addr_offset(c[0])), (2, SEGMENT_HEADER_LEN as u64));
    s.sync().unwrap();
    assert_eq!(fs.read(&seg_path(1)).unwrap(), b, "the old segment is untouched");
    drop(s);
    let s = open(&fs, 1 << 20).unwrap();
    check(&s, 0..4, &a);
    check(&s, 4..5, &c);
}

/// The real file system's positional reads, and reads past the end of a
/// file on both file systems.
#[test]
fn std_fs_round_trip_and_reads_past_the_end() {
    let dir = std::env::temp_dir().join(format!("bwtx-pagestore-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let std_fs: Arc<dyn Fs> = Arc::new(crate::fs::StdFs);
    let s = SegmentStore::open(std_fs.clone(), &dir, Kind::Pages, 256).unwrap();
    let a = append_all(&s, 0..12);
    s.sync().unwrap();
    assert!(s.segments().len() > 1);
    drop(s);
    let s = SegmentStore::open(std_fs.clone(), &dir, Kind::Pages, 256).unwrap();
    check(&s, 0..12, &a);
    drop(s);
    let fault = FaultFs::new();
    fault.create(&dir.join("f")).unwrap().write_all(b"0123456789").unwrap();
    let segment_1 = dir.join(segment::name(Kind::Pages, 1));
    for (fs, path) in [(std_fs, segment_1), (Arc::new(fault) as Arc<dyn Fs>, dir.join("f"))] {
        let r = fs.open_read(&path).unwrap();
        let len = r.len().unwrap();
        let mut buf = [0u8; 4];
        r.read_exact_at(len - 4, &mut buf).unwrap();
        let e = r.read_exact_at(len - 3, &mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(
            r.read_exact_at(u64::MAX, &mut buf).unwrap_err().kind(),
            std::io::ErrorKind::UnexpectedEof
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[derive(Clone, Debug)]
enum Op {
    Append(u64),
    Sync,
    PowerLoss,
    Reopen,
    Read(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..200).prop_map(Op::Append),
        2 => Just(Op::Sync),
        1 => Just(Op::PowerLoss),
        1 => Just(Op::Reopen),
        2 => any::<usize>().prop_map(Op::Read),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random appends, syncs, power losses and reopens against a `Vec` of
    /// what must be readable. A power loss keeps the synced records and every
    /// record of a closed segment (closing syncs), and nothing else.
    #[test]
    fn model(ops in proptest::collection::vec(op(), 1..60)) {
        let fs = FaultFs::new();
        let mut s = open(&fs, 400).unwrap();
        let mut recs: Vec<(u64, Addr)> = Vec::new();
        let mut synced = 0;
        for op in ops {
            match op {
                Op::Append(id) => recs.push((id, s.append(&meta(id), &payload(id)).unwrap())),
                Op::Sync => {
                    s.sync().unwrap();
                    synced = recs.len();
                }
                Op::PowerLoss => {
                    let last_seq = recs.last().map_or(0, |r| addr_seq(r.1));
                    let keep = recs
                        .iter()
                        .enumerate()
                        .take_while(|(i, r)| *i < synced || addr_seq(r.1) < last_seq)
                        .count();
                    fs.power_loss();
                    drop(s);
                    s = open(&fs, 400).unwrap();
                    for &(_, a) in &recs[keep..] {
                        prop_assert!(s.read(a).is_err(), "{:#x} survived", a);
                    }
                    recs.truncate(keep);
                    synced = keep;
                }
                Op::Reopen => {
                    drop(s);
                    s = open(&fs, 400).unwrap();
                    synced = recs.len();
                }
                Op::Read(i) if !recs.is_empty() => {
                    let (id, a) = recs[i % recs.len()];
                    check(&s, id..id + 1, &[a]);
                }
                Op::Read(_) => {}
            }
        }
        for &(id, a) in &recs {
            check(&s, id..id + 1, &[a]);
        }
    }
}

/// Throughput on the real file system (not run by default):
/// `cargo test --release --lib pagestore::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, run by hand in release mode"]
fn throughput() {
    use std::time::Instant;
    let dir = std::env::temp_dir().join(format!("bwtx-pagestore-throughput-{}", std::process::id()));
    let n: u64 = std::env::var("BWTX_PAGESTORE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let fs: Arc<dyn Fs> = Arc::new(crate::fs::StdFs);
    let s = SegmentStore::open(fs, &dir, Kind::Pages, 64 << 20).unwrap();
    let page = vec![0xa5u8; 4096];
    let t = Instant::now();
    let addrs: Vec<Addr> = (0..n).map(|id| s.append(&meta(id), &page).unwrap()).collect();
    let append = t.elapsed();
    let t = Instant::now();
    s.sync().unwrap();
    let sync = t.elapsed();
    let t = Instant::now();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let r = s.read(addrs[(x % n) as usize]).unwrap();
        assert_eq!(r.payload.len(), 4096);
    }
    let read = t.elapsed();
    let mb = (n * 4096) as f64 / (1 << 20) as f64;
    println!(
        "{n} appends of 4 KiB: {:.0}/s ({:.0} MiB/s), then one sync {:?}; {n} random reads (page cache): {:.0}/s; {} segments",
        n as f64 / append.as_secs_f64(),
        mb / append.as_secs_f64(),
        sync,
        n as f64 / read.as_secs_f64(),
        s.segments().len(),
    );
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `open_fresh` reads no segment whole: synced records read back, a torn
/// tail of the newest old segment is left alone (never read), appends go to
/// a new segment, and a newest segment without its header is deleted.
#[test]
fn open_fresh_appends_to_a_new_segment() {
    let fs = FaultFs::new();
    let s = open(&fs, 1 << 20).unwrap();
    let synced = append_all(&s, 0..10);
    s.sync().unwrap();
    let _lost = append_all(&s, 10..20);
    drop(s);
    fs.power_loss();
    // A torn record after the synced ones.
    let mut b = fs.contents(&seg_path(1)).unwrap();
    b.extend_from_slice(&[0xAB; 13]);
    fs.set_contents(&seg_path(1), b);
    let reads = fs.reads();
    let arc: Arc<dyn Fs> = Arc::new(fs.clone());
    let s = SegmentStore::open_fresh(arc.clone(), &dir(), Kind::Pages, 1 << 20).unwrap();
    assert!(fs.reads() - reads <= 2, "a header read per segment, no scan");
    check(&s, 0..10, &synced);
    let more = append_all(&s, 20..25);
    assert!(more.iter().all(|&a| addr_seq(a) == 2), "appends go to segment 2");
    s.sync().unwrap();
    check(&s, 20..25, &more);
    drop(s);
    // A newest segment shorter than its header: deleted.
    let mut f = fs.create(&seg_path(3)).unwrap();
    f.write_all(&[1, 2, 3]).unwrap();
    f.sync().unwrap();
    fs.sync_dir(&dir()).unwrap();
    let s = SegmentStore::open_fresh(arc, &dir(), Kind::Pages, 1 << 20).unwrap();
    check(&s, 20..25, &more);
    assert_eq!(addr_seq(append_all(&s, 25..26)[0]), 3);
}

/// A segment numbered at the 32-bit limit of an address: opening a fresh
/// segment after it is an error, not a segment whose addresses name
/// segment 0 (before: `next` went past the limit unchecked at open).
#[test]
fn open_refuses_segment_numbers_past_an_address() {
    let fs = FaultFs::new();
    let arc: Arc<dyn Fs> = Arc::new(fs.clone());
    arc.create_dir_all(&dir()).unwrap();
    let mut f = segment::create(&*arc, &dir(), Kind::Pages, u64::from(u32::MAX)).unwrap();
    f.sync().unwrap();
    drop(f);
    match SegmentStore::open_fresh(arc.clone(), &dir(), Kind::Pages, 1 << 20) {
        Err(Error::InvalidConfig(_)) => {}
        other => panic!("expected InvalidConfig, got {:?}", other.map(|_| ())),
    }
    // Opened to append to that segment (no new number), it works.
    SegmentStore::open(arc, &dir(), Kind::Pages, 1 << 20).unwrap();
}
