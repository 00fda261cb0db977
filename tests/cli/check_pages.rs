//! `bwtx check` on a paged database: a clean one passes and says what it
//! checked; a flipped byte in a page segment's record, or in a value-log
//! record, fails it with exit status 3 and a message naming the file.

use std::path::{Path, PathBuf};

use bwtx::Options;

use crate::{run, text, TempDir};

/// A paged database with small segments: several `pages-*.seg` of many
/// records, and values that go to the value log.
fn make(dir: &Path) {
    let opts = || Options::new().cache_size(64 << 10).segment_bytes(16 << 10);
    let db = opts().open(dir).unwrap();
    for round in 0..3 {
        let mut tx = db.begin();
        for k in 0..300 {
            let len = if k % 50 == 0 { 2_000 } else { 40 };
            tx.put(format!("key{k:04}"), format!("{round}-{k}-").repeat(len / 8))
                .unwrap();
        }
        tx.commit().unwrap();
        db.checkpoint().unwrap();
    }
    drop(db);
}

/// Segment files named `prefix-*` in `dir`, with their lengths, oldest first.
fn segments(dir: &Path, prefix: &str) -> Vec<(PathBuf, usize)> {
    let mut v: Vec<(PathBuf, usize)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .map(|p| {
            let n = std::fs::metadata(&p).unwrap().len() as usize;
            (p, n)
        })
        .collect();
    v.sort();
    v
}

/// Flip a byte inside the first record of the first segment named
/// `prefix-*` holding at least two records' worth; returns its name.
fn damage(dir: &Path, prefix: &str) -> String {
    let (path, _) = segments(dir, prefix)
        .into_iter()
        .find(|(_, n)| *n > 32 + 2 * 64)
        .unwrap_or_else(|| panic!("no {prefix} segment with records"));
    let mut b = std::fs::read(&path).unwrap();
    // The segment header is 32 bytes, a record's header 40: a payload byte.
    b[32 + 48] ^= 0x10;
    std::fs::write(&path, b).unwrap();
    path.file_name().unwrap().to_str().unwrap().to_owned()
}

#[test]
fn check_verifies_the_page_store() {
    let dir = TempDir::new("check-pages");
    make(&dir.0);
    let out = run(&["check", dir.path()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("live keys: 300"), "{stdout}");
    assert!(stdout.contains("page store: "), "{stdout}");
    assert!(!stdout.contains("torn segment tail"), "{stdout}");

    let file = damage(&dir.0, "pages-");
    let out = run(&["check", dir.path()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{} {stderr}", text(&out.stdout));
    assert!(stderr.contains("CORRUPT: ") && stderr.contains(&file), "{stderr}");
}

#[test]
fn check_reads_every_value_log_reference() {
    let dir = TempDir::new("check-vlog");
    make(&dir.0);
    let file = damage(&dir.0, "vlog-");
    let out = run(&["check", dir.path()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{} {stderr}", text(&out.stdout));
    assert!(stderr.contains("CORRUPT: ") && stderr.contains(&file), "{stderr}");
}

/// Every file of `dir` with its contents.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// `check` reads the files in place and changes none of them, though its
/// open cuts a torn log tail, starts a log segment and checkpoints at its
/// close (all of it in the copy-on-write view's memory). Before, it
/// copied the whole directory into memory first.
#[test]
fn check_changes_no_file() {
    let dir = TempDir::new("check-ro");
    make(&dir.0);
    let (newest, _) = segments(&dir.0, "wal-").pop().expect("a log segment");
    let mut log = std::fs::read(&newest).unwrap();
    // A record's length that runs past the end: a torn tail.
    log.extend_from_slice(&[0x40, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&newest, &log).unwrap();
    let before = files(&dir.0);
    let out = run(&["check", dir.path()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("torn tails: 1"), "{stdout}");
    assert!(stdout.contains("live keys: 300"), "{stdout}");
    assert!(files(&dir.0) == before, "check changed the directory");
    // And a second check finds the same.
    let again = run(&["check", dir.path()]);
    assert_eq!(text(&again.stdout), stdout);
}
