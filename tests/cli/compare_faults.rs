//! `bwtx bench --compare --cache-size` when an engine's child process does
//! not finish: one past `--engine-timeout` is killed and reported as timed
//! out, one that panics or aborts is reported with its exit status and the
//! last lines of its stderr; either way the workloads it finished keep
//! their rows and the next engine still runs. The children misbehave on
//! purpose through the hidden test hook `--child-fault ENGINE:KIND`, which
//! strikes as the last workload starts. Also `--engines` and the checks of
//! these flags. Needs `bench-peers`.
#![cfg(feature = "bench-peers")]

use std::io::Read;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::{assert_left_nothing, bwtx, field, line_of, run, text, TempDir};

/// Run `bwtx` with `args`, failing the test if it has not ended after
/// `limit` (then it is killed): the harness must end even when a child
/// would hang forever.
fn run_within(args: &[&str], limit: Duration) -> Output {
    let mut child = bwtx()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bwtx");
    let mut pipes = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        pipes.0.read_to_end(&mut buf).unwrap();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        pipes.1.read_to_end(&mut buf).unwrap();
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "bwtx {args:?} still ran after {limit:?}: a hung child was not stopped; stderr: {}",
                text(&err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// An isolated comparison of `engines` at a tiny size (2,000 keys, 500
/// operations, a 1 MiB cache) in `dir`, with `extra` arguments, limited to
/// 300 s ([`run_within`]).
fn small_compare(dir: &TempDir, workload: &str, engines: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "bench",
        "--compare",
        "--dir",
        dir.path(),
        "--cache-size",
        "1MiB",
        "--keys",
        "2000",
        "--ops",
        "500",
        "--workload",
        workload,
        "--engines",
        engines,
    ];
    std::fs::create_dir_all(&dir.0).unwrap();
    args.extend_from_slice(extra);
    run_within(&args, Duration::from_secs(300))
}

/// The names of the engines with a row of figures in a JSON report.
fn rows(json: &str) -> Vec<&str> {
    let engines = json.split("\"engines\":[").nth(1).unwrap_or("");
    let end = ["\"notes\":[", "\"failed\":[", "\"skipped\":["]
        .iter()
        .filter_map(|m| engines.find(m))
        .min()
        .unwrap_or(engines.len());
    engines[..end]
        .split("{\"engine\":")
        .skip(1)
        .map(|r| r.split('"').nth(1).unwrap_or(""))
        .collect()
}

#[test]
fn a_child_past_the_timeout_is_killed_reported_and_the_next_engine_runs() {
    let dir = TempDir::new("cmptimeout");
    let out = small_compare(
        &dir,
        "a,c",
        "bwtx,redb",
        &[
            // Far above what bwtx's load and workload a take even on a
            // loaded CI machine: the row of workload a must be there.
            "--engine-timeout",
            "40",
            "--child-fault",
            "bwtx:hang",
            "--json",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "an engine timed out: {stdout} {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one report per workload: {stdout}");
    // bwtx finished its load and workload a before it hung: that row stays.
    assert_eq!(rows(lines[0]), ["bwtx", "redb"], "{}", lines[0]);
    // Workload c: bwtx was killed in it; redb, after it, still ran.
    assert_eq!(rows(lines[1]), ["redb"], "{}", lines[1]);
    for line in &lines {
        let failed = line
            .split("\"failed\":[")
            .nth(1)
            .unwrap_or_else(|| panic!("no failed in {line}"));
        assert_eq!(field(failed, "engine"), "\"bwtx\"", "{line}");
        assert_eq!(field(failed, "what"), "\"TIMED OUT after 40 s and was killed", "{line}");
        assert!(failed.contains("during workload c"), "{line}");
        assert!(failed.contains("\"exit\":\"signal: 9 (SIGKILL)\""), "{line}");
    }
    // Each phase was printed as it ended, before the kill.
    for progress in [
        "bwtx: loaded 2000 keys",
        "bwtx: workload a:",
        "bwtx: TIMED OUT after 40 s",
        "redb: workload c:",
        "redb: finished",
    ] {
        assert!(stderr.contains(progress), "no {progress:?} in {stderr}");
    }
    assert_left_nothing(&dir);
}

#[test]
fn a_child_that_dies_is_reported_with_its_exit_status_and_stderr() {
    let dir = TempDir::new("cmpdies");
    let out = small_compare(
        &dir,
        "a",
        "fjall,redb,sled",
        &["--child-fault", "fjall:panic", "--child-fault", "redb:abort"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout} {}", text(&out.stderr));
    let row = |name: &str| line_of(&stdout, name);
    // Both died after their load, as workload a started.
    assert!(
        row("fjall").ends_with("DIED (exit status: 101) during workload a"),
        "{stdout}"
    );
    assert!(
        row("redb").ends_with("DIED (signal: 6 (SIGABRT)) during workload a"),
        "{stdout}"
    );
    // Their stderr's last lines are in the report.
    assert!(
        stdout.contains("    | injected panic (--child-fault fjall:panic)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("    | injected abort (--child-fault redb:abort)"),
        "{stdout}"
    );
    // sled, after them, ran and has its figures.
    assert!(!row("sled").contains("DIED"), "{stdout}");
    assert!(row("sled").split_whitespace().count() > 10, "{stdout}");
    assert_left_nothing(&dir);
}

#[test]
fn engines_timeout_and_fault_flags_are_checked() {
    let base = ["bench", "--compare", "--keys", "100", "--ops", "10"];
    let with = |extra: &[&str]| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let out = run(&args);
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, _, err) = with(&["--engines", "bwtx,nosuch"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("unknown engine \"nosuch\""), "{err}");
    let (code, _, err) = with(&["--engine-timeout", "5"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--engine-timeout needs"), "{err}");
    let (code, _, err) = with(&["--isolate", "--engine-timeout", "0"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--engine-timeout must be a positive"), "{err}");
    let (code, _, err) = with(&["--isolate", "--child-fault", "bwtx:explode"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("expected ENGINE:hang"), "{err}");
    if cfg!(not(feature = "peer-rocksdb")) {
        let (code, _, err) = with(&["--engines", "rocksdb"]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("rocksdb is not in this build"), "{err}");
    }
    // In one process, --engines picks the rows.
    let (code, out, err) = with(&["--engines", "scc,bwtx", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(rows(&out), ["bwtx", "scc"], "{out}");
}

/// Without child processes, an engine whose run fails is reported in its
/// row, and the engines after it still run: one failure does not discard
/// the comparison (before 2026-12-08 it did).
#[test]
fn an_engine_failing_in_process_keeps_the_others_results() {
    let out = run(&[
        "bench",
        "--compare",
        "--keys",
        "2000",
        "--ops",
        "500",
        "--workload",
        "a",
        "--engines",
        "bwtx,fjall,redb",
        "--child-fault",
        "fjall:error",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout} {stderr}");
    assert!(
        line_of(&stdout, "fjall").ends_with("failed: injected error (--child-fault fjall:error)"),
        "{stdout}"
    );
    for name in ["bwtx", "redb"] {
        let row = line_of(&stdout, name);
        assert!(row.split_whitespace().count() >= 10, "no figures for {name}: {stdout}");
    }
    assert!(stdout.contains("bwtx / best transactional peer (redb)"), "{stdout}");
    // Only an error can be injected in this process.
    let out = run(&[
        "bench",
        "--compare",
        "--keys",
        "100",
        "--ops",
        "10",
        "--child-fault",
        "fjall:hang",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("needs engines in processes of their own"),
        "{}",
        text(&out.stderr)
    );
}
