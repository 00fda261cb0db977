//! Integration tests of the `bwtx` command-line tool (needs `--features cli`):
//! each subcommand on a small size.
#![cfg(feature = "cli")]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn bwtx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bwtx"))
}

fn run(args: &[&str]) -> Output {
    bwtx().args(args).output().expect("run bwtx")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh directory for one test (removed on drop).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("bwtx-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The value of `"key":` in a flat JSON object, as text.
fn field<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":");
    let at = json.find(&pat).unwrap_or_else(|| panic!("no {key} in {json}")) + pat.len();
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn bench_every_workload_json() {
    for w in ["a", "b", "c", "d", "e", "f", "bank"] {
        let out = run(&["bench", "--workload", w, "--keys", "2000", "--ops", "2000", "--json"]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{w}: {stdout} {}", text(&out.stderr));
        let json = stdout.trim();
        assert!(json.starts_with('{') && json.ends_with('}'), "{w}: {json}");
        assert_eq!(json.lines().count(), 1, "{w}: one object on one line");
        assert_eq!(field(json, "workload"), format!("\"{w}\""));
        for key in [
            "txns_per_sec",
            "ops_per_sec",
            "p50",
            "p99",
            "p999",
            "abort_rate",
            "fsyncs_per_commit",
            "peak_rss_kib",
            "versions_collected",
        ] {
            field(json, key);
        }
        let ops: u64 = field(json, "ops").parse().unwrap();
        assert!(ops >= 2000, "{w}: ran {ops} ops");
        if w == "bank" {
            assert_eq!(field(json, "bank_ok"), "true");
            assert_eq!(field(json, "bank_total"), "2000000");
        }
    }
}

/// `--cache-size` pages leaves out to the directory; the settings show it,
/// and `check` still finds the database clean.
#[test]
fn bench_with_a_page_cache() {
    let dir = TempDir::new("cache");
    let out = run(&[
        "bench",
        "--keys",
        "3000",
        "--ops",
        "2000",
        "--workload",
        "c",
        "--dir",
        dir.path(),
        "--durability",
        "buffered",
        "--cache-size",
        "64KiB",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("page cache 64 KiB"), "{stdout}");
    let out = run(&["check", dir.path()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("live keys: 3000"), "{stdout}");
}

#[test]
fn bench_table_on_a_directory_then_check_clean_and_damaged() {
    let dir = TempDir::new("check");
    let out = run(&[
        "bench",
        "--keys",
        "500",
        "--ops",
        "400",
        "--threads",
        "2",
        "--dir",
        dir.path(),
        "--durability",
        "sync",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    for row in [
        "throughput",
        "latency (us)",
        "aborts",
        "fsyncs/commit",
        "peak RSS",
        "versions collected",
    ] {
        assert!(stdout.contains(row), "no {row} row in\n{stdout}");
    }

    let out = run(&["check", dir.path()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("clean"), "{stdout}");
    assert!(stdout.contains("live keys: 500"), "{stdout}");

    // Flip a byte inside the first record of the segment: records after it
    // still decode, so this is corruption, not a torn tail.
    let seg = dir.0.join("wal-0000000000.log");
    let mut bytes = std::fs::read(&seg).expect("segment");
    assert!(bytes.len() > 100, "segment of {} bytes", bytes.len());
    bytes[16 + 20] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let out = run(&["check", dir.path()]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "damage not reported: {}", text(&out.stdout));
    assert!(stderr.contains("wal-0000000000.log"), "{stderr}");
    assert!(stderr.contains("offset 16"), "{stderr}");
    // Read-only: the damaged file is untouched.
    assert_eq!(std::fs::read(&seg).unwrap(), bytes);
}

#[test]
fn check_rejects_a_missing_directory() {
    let dir = TempDir::new("missing");
    let out = run(&["check", dir.path()]);
    assert!(!out.status.success());
    assert!(!text(&out.stderr).is_empty());
}

fn shell(args: &[&str], script: &str) -> String {
    let mut child = bwtx()
        .arg("shell")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bwtx shell");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
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
}

/// Several workloads in one invocation: one JSON object per line, in order.
#[test]
fn bench_several_workloads_json_lines() {
    let out = run(&[
        "bench",
        "--workload",
        "c,bank,a",
        "--keys",
        "2000",
        "--ops",
        "1000",
        "--json",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for (line, w) in lines.iter().zip(["c", "bank", "a"]) {
        assert_eq!(field(line, "workload"), format!("\"{w}\""));
    }
}

#[cfg(all(feature = "cli", feature = "bench-peers"))]
#[test]
fn bench_compare_runs_every_engine() {
    let out = run(&[
        "bench",
        "--compare",
        "--keys",
        "2000",
        "--ops",
        "2000",
        "--workload",
        "a",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    for engine in ["bwtx", "skipdb", "fjall", "redb", "sled", "crossbeam-skiplist", "scc"] {
        // The table row (settings lines are indented), ending in its ratios.
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{engine} ")))
            .unwrap_or_else(|| panic!("no {engine} row in {stdout}"));
        assert!(row.trim_end().ends_with('x'), "{engine}: no ratio in {row}");
        assert!(
            stdout.lines().any(|l| l.starts_with("  ") && l.contains(engine)),
            "{engine}: no settings in {stdout}"
        );
    }
    assert!(stdout.contains("bwtx/peer"), "{stdout}");
    assert!(stdout.contains("bwtx / best transactional peer ("), "{stdout}");
}

/// Two workloads compared, as JSON lines and as a chart: every engine in
/// each (no index peers for bank, which needs transactions), and one bar
/// per engine and workload in the SVG.
#[cfg(all(feature = "cli", feature = "bench-peers"))]
#[test]
fn bench_compare_several_workloads_json_and_plot() {
    let dir = TempDir::new("plot");
    std::fs::create_dir_all(&dir.0).unwrap();
    let svg = dir.0.join("cmp.svg");
    let out = run(&[
        "bench",
        "--compare",
        "--keys",
        "1000",
        "--ops",
        "1000",
        "--workload",
        "e,bank",
        "--json",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let engines = |line: &str| line.matches("\"engine\":").count();
    assert_eq!(field(lines[0], "workload"), "\"e\"");
    assert_eq!(engines(lines[0]), 7, "{}", lines[0]);
    assert!(lines[0].contains("\"engine\":\"scc\",\"transactional\":false"));
    assert_eq!(field(lines[1], "workload"), "\"bank\"");
    assert_eq!(engines(lines[1]), 5, "{}", lines[1]);
    assert_eq!(lines[1].matches("\"bank_ok\":true").count(), 5, "{}", lines[1]);
    assert!(lines[1].contains("\"bwtx_over_best_transactional_peer\":"));
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    assert_eq!(
        chart.matches("<title>").count(),
        7 + 5,
        "one bar per engine and workload"
    );
}
