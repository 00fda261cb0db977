//! `FaultFs`'s own tests: syncs held across writes, handles that die with
//! a power loss, and a killed process's unsynced bytes.

use std::path::Path;

use super::FaultFs;
use crate::fs::Fs;

/// A sync makes durable what was written when it began: bytes written
/// while it is held do not survive a power loss through it alone,
/// bytes written before it do, and a later sync makes them durable.
#[test]
fn a_held_sync_makes_durable_only_what_was_written_when_it_began() {
    let fs = FaultFs::new();
    let path = Path::new("/d/wal-1");
    fs.create_dir_all(Path::new("/d")).unwrap();
    let mut file = fs.create(path).unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    file.write_all(b"before").unwrap();
    let syncer = file.syncer().unwrap().unwrap();
    fs.hold_syncs("wal-");
    let held = std::thread::spawn(move || syncer.sync());
    while fs.held_syncs() == 0 {
        std::thread::yield_now();
    }
    file.write_all(b"+during").unwrap();
    fs.release_syncs();
    held.join().unwrap().unwrap();
    let image = fs.clone();
    image.power_loss();
    assert_eq!(image.contents(path).unwrap(), b"before");
    // After the power loss, through a file opened again.
    let mut file = fs.open_append(path).unwrap();
    file.write_all(b"+after").unwrap();
    file.sync().unwrap();
    fs.power_loss();
    assert_eq!(fs.contents(path).unwrap(), b"before+after");
}

/// Handles opened before a power loss fail after it (their process is
/// gone); the file system itself, and files opened since, work.
#[test]
fn handles_from_before_a_power_loss_fail() {
    let fs = FaultFs::new();
    let path = Path::new("/d/f");
    let mut file = fs.create(path).unwrap();
    let syncer = file.syncer().unwrap().unwrap();
    let reader = fs.open_read(path).unwrap();
    file.write_all(b"x").unwrap();
    file.sync().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.clone().power_loss();
    let stale = |r: std::io::Result<()>| r.unwrap_err().to_string().contains("before the power loss");
    assert!(stale(file.write_all(b"y")));
    assert!(stale(file.sync()));
    assert!(stale(syncer.sync()));
    assert!(stale(reader.read_exact_at(0, &mut [0u8; 1])));
    assert!(stale(reader.len().map(drop)));
    assert_eq!(fs.contents(path).unwrap(), b"x", "nothing written after the power loss");
    let mut again = fs.open_append(path).unwrap();
    again.write_all(b"z").unwrap();
    let mut buf = [0u8; 2];
    fs.open_read(path).unwrap().read_exact_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"xz");
}

/// A kill fails every operation until the restart; what was written stays
/// readable after it, unsynced bytes included (a power loss then drops
/// them), and syncs that failed because of the kill lose nothing.
#[test]
fn a_killed_process_leaves_its_unsynced_bytes_in_the_cache() {
    let fs = FaultFs::new();
    let path = Path::new("/d/f");
    let mut file = fs.create(path).unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    file.write_all(b"synced").unwrap();
    file.sync().unwrap();
    file.write_all(b"+cached").unwrap();
    fs.kill();
    assert!(file.sync().is_err());
    assert!(file.write_all(b"+never").is_err());
    assert!(fs.read(path).is_err());
    fs.restart();
    assert!(file.sync().is_err(), "a handle of the killed process");
    fs.drop_cache(path).unwrap();
    assert_eq!(fs.read(path).unwrap(), b"synced+cached");
    fs.power_loss();
    assert_eq!(fs.read(path).unwrap(), b"synced");
}
