//! `bwtx shell`, `check`, `history`, and bad arguments.

use std::io::Write;
use std::process::Stdio;

use crate::{bwtx, run, text, TempDir};

#[test]
fn check_rejects_a_missing_directory() {
    let dir = TempDir::new("missing");
    let out = run(&["check", dir.path()]);
    assert!(!out.status.success());
    assert!(!text(&out.stderr).is_empty());
}

pub(crate) fn shell(args: &[&str], script: &str) -> String {
    shell_bytes(args, script.as_bytes())
}

fn shell_bytes(args: &[&str], script: &[u8]) -> String {
    let mut child = bwtx()
        .arg("shell")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bwtx shell");
    child.stdin.take().unwrap().write_all(script).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    // A script's exit status says whether any command failed (printed an
    // `error:` line).
    let failed = stdout.lines().any(|l| l.starts_with("error: "));
    assert_eq!(
        out.status.code(),
        Some(i32::from(failed)),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    stdout
}

#[test]
fn shell_runs_a_scripted_session() {
    let dir = TempDir::new("shell");
    let out = shell(
        &[dir.path()],
        "put apple red\nput banana yellow fruit\nget banana\nbegin\nput cherry dark red\ndelete apple\n\
         scan\nrollback\nget cherry\nbegin\nput cherry 3\ncommit\nscan a c\nget\nfrobnicate\ncommit\nstats\nquit\n",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"yellow fruit"), "{out}");
    // Inside the transaction: its own writes.
    assert!(lines.contains(&"cherry = dark red"), "{out}");
    assert!(lines.contains(&"(2 keys)"), "{out}");
    assert!(lines.contains(&"rolled back"), "{out}");
    assert!(lines.contains(&"(not found)"), "{out}");
    // After rollback and a committed transaction: apple is back, cherry is 3.
    assert!(lines.contains(&"apple = red"), "{out}");
    assert!(lines.contains(&"error: usage: get KEY"), "{out}");
    assert!(out.contains("error: unknown command `frobnicate`"), "{out}");
    assert!(lines.contains(&"error: no open transaction"), "{out}");
    assert!(out.contains("commits:"), "{out}");

    // The data survived: reopen the directory.
    let out = shell(&[dir.path()], "get cherry\nscan\n");
    assert_eq!(out.lines().next(), Some("3"), "{out}");
    assert!(out.contains("(3 keys)"), "{out}");

    // A checkpoint, then more log: `check` sees both.
    let out = shell(&[dir.path()], "checkpoint\nput date brown\nquit\n");
    assert!(out.starts_with("checkpoint at "), "{out}");
    let out = run(&["check", dir.path()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("newest checkpoint: ts "), "{stdout}");
    assert!(stdout.contains("commits replayed from the log: 1"), "{stdout}");
    assert!(stdout.contains("live keys: 4"), "{stdout}");
}

/// A script line that is not UTF-8 is reported with its number and
/// skipped; the lines after it run (CRLF line ends too).
#[test]
fn shell_skips_a_line_that_is_not_utf8() {
    let dir = TempDir::new("shell-bytes");
    let out = shell_bytes(&[dir.path()], b"put a 1\r\nput \xff\xfe 2\nput b 3\nscan\n");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"error: line 2 is not valid UTF-8 (skipped)"), "{out}");
    assert!(lines.contains(&"a = 1"), "{out}");
    assert!(lines.contains(&"b = 3"), "{out}");
    assert!(lines.contains(&"(2 keys)"), "{out}");
}

#[test]
fn history_writes_elle_json_and_checks_it() {
    let dir = TempDir::new("history");
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("h.json");
    let out = run(&[
        "history",
        "--out",
        file.to_str().unwrap(),
        "--threads",
        "2",
        "--txns",
        "50",
        "--keys",
        "4",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("valid"), "{stdout}");
    let json = std::fs::read_to_string(&file).unwrap();
    let h = bwtx::history::json::parse(&json).expect("Elle JSON parses");
    assert!(h.len() >= 100, "{} ops", h.len());
    assert!(bwtx::history::check(&h).ok);
}

#[test]
fn bad_arguments_fail_readably() {
    let out = run(&["bench", "--workload", "z"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--workload"));
    let out = run(&["bench", "--keys", "10", "--ops", "10", "--theta", "1.5"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("theta"));
    let out = run(&["bench", "--keys", "10", "--ops", "10", "--plot", "x.svg"]);
    assert!(!out.status.success(), "--plot without --compare");
    assert!(text(&out.stderr).contains("--compare"), "{}", text(&out.stderr));
    let out = run(&["bench", "--keys", "1000000000000", "--ops", "10"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--keys"));
    // Numbers past what a run can do are usage errors, not panics (exit
    // 101) or failed thread spawns.
    for (args, named) in [
        (&["bench", "--keys", "10", "--duration", "1e20"][..], "--duration"),
        (
            &["bench", "--keys", "10", "--ops", "10", "--threads", "1000000"][..],
            "--threads",
        ),
        (
            &[
                "bench",
                "--keys",
                "10",
                "--ops",
                "10",
                "--ops-per-txn",
                "18446744073709551615",
            ][..],
            "--ops-per-txn",
        ),
        // A transaction of 1000 values of 2 MB: past the largest log
        // record; refused up front.
        (
            &[
                "bench",
                "--keys",
                "10",
                "--ops",
                "10",
                "--ops-per-txn",
                "1000",
                "--value-size",
                "2000000",
            ][..],
            "--ops-per-txn x --value-size",
        ),
        // In memory nothing is logged: a durability would be ignored.
        (
            &["bench", "--keys", "10", "--ops", "10", "--durability", "sync"][..],
            "--durability needs --dir",
        ),
        (&["history", "--keys", "18446744073709551615"][..], "--keys"),
        (&["history", "--txns", "18446744073709551615"][..], "--txns"),
        (&["history", "--threads", "1000000"][..], "--threads"),
    ] {
        let out = run(args);
        let code = out.status.code();
        assert!(matches!(code, Some(1 | 2)), "{args:?}: {code:?} {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(named), "{args:?}: {}", text(&out.stderr));
    }
}

/// The shell's `len`, `at TS ...` and `changes SINCE [N]` on a fresh
/// database (its first commits get timestamps 1, 2, 3).
#[test]
fn shell_counts_time_travel_and_changes() {
    let dir = TempDir::new("shell-past");
    let out = shell(
        &[dir.path()],
        "put a 1\nput b 2\ndelete a\nlen\nbegin\nput c 3\nlen\nrollback\nat 3 len\nat 3 get b\nat 3 get a\n\
         at 3 scan\nchanges 0\nchanges 1 1\nat 99 get a\nat x get a\nat 3 frob\nchanges\nchanges 99\n",
    );
    let lines: Vec<&str> = out.lines().collect();
    let has = |l: &str| assert!(lines.contains(&l), "no {l:?} in\n{out}");
    has("ok (committed at 3)");
    has("1 keys");
    has("2 keys");
    has("1 keys at 3");
    has("(not found at 3)");
    has("b = 2");
    has("1: put a = 1");
    has("2: put b = 2");
    has("3: delete a");
    has("(3 commits; resume with `changes 3`)");
    has("(1 commits, more after; resume with `changes 2`)");
    has("error: invalid argument: snapshot_at: the timestamp is above the newest visible commit");
    has("error: `x` is not a commit timestamp");
    has("error: usage: at TS get KEY | at TS scan [LO [HI]] | at TS len");
    has("error: usage: changes SINCE [N]");
    has("error: invalid argument: changes_since: the timestamp is above the newest visible commit");
}

/// `bwtx check` on a database another process holds open refuses (exit 1,
/// "in use") rather than copying files a checkpoint may be deleting; once
/// closed, it checks it. A directory whose log and checkpoints are gone
/// but whose page segments stay is corrupt (exit 3), not "not a database".
#[test]
fn check_refuses_a_database_in_use_and_reports_lost_files() {
    let dir = TempDir::new("check-in-use");
    let db = bwtx::Options::new().cache_size(1 << 20).open(&dir.0).unwrap();
    db.transaction(|tx| tx.put("k", "v")).unwrap();
    let out = run(&["check", dir.path()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("in use"), "{}", text(&out.stderr));
    drop(db);
    let out = run(&["check", dir.path()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("wal-") || name.starts_with("ckpt-") {
            std::fs::remove_file(dir.0.join(&name)).unwrap();
        }
    }
    let out = run(&["check", dir.path()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("files are missing"), "{}", text(&out.stderr));
    // Header-only page segments (an open that stopped before creating its
    // log segment) are no sign of lost files: "not a database", exit 1.
    let fresh = TempDir::new("check-headers");
    std::fs::create_dir_all(&fresh.0).unwrap();
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.starts_with("pages-") || name.starts_with("vlog-") {
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(fresh.0.join(name), &bytes[..32]).unwrap();
        }
    }
    let out = run(&["check", fresh.path()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no log segment"), "{}", text(&out.stderr));
}

/// A checkpoint kept for `history_retention` but older than the one an
/// open reads: `check` verifies it too, and its damage is exit status 3
/// naming it. (Before, only the files the open read were checked, so this
/// damage passed until the day a restart needed that checkpoint.)
#[test]
fn check_verifies_every_kept_checkpoint() {
    let dir = TempDir::new("check-kept");
    let opts = || ::bwtx::Options::new().history_retention(std::time::Duration::from_secs(3600));
    let db = opts().open(&dir.0).unwrap();
    for round in 0..2u32 {
        for i in 0..20u32 {
            db.transaction(|tx| tx.put(format!("k{i}"), format!("v{round}")))
                .unwrap();
        }
        db.checkpoint().unwrap();
    }
    drop(db);
    let mut ckpts: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
        .collect();
    ckpts.sort();
    assert!(ckpts.len() >= 2, "an older checkpoint is kept: {ckpts:?}");
    let out = run(&["check", dir.path()]);
    assert!(out.status.success(), "{} {}", text(&out.stdout), text(&out.stderr));
    let oldest = &ckpts[0];
    let mut bytes = std::fs::read(oldest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(oldest, &bytes).unwrap();
    let out = run(&["check", dir.path()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{} {stderr}", text(&out.stdout));
    let name = oldest.file_name().unwrap().to_str().unwrap();
    assert!(stderr.contains("CORRUPT: ") && stderr.contains(name), "{stderr}");
}
