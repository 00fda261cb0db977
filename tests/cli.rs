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

/// The transactional peers a build has beyond skipdb, fjall, redb and sled
/// (RocksDB, seerdb: each behind its own feature).
#[cfg(all(feature = "cli", feature = "bench-peers"))]
const OPTIONAL_TXN_PEERS: usize = cfg!(feature = "peer-rocksdb") as usize + cfg!(feature = "peer-seerdb") as usize;

/// The indexes without transactions a build has beyond crossbeam-skiplist
/// and scc (Bf-Tree, behind `peer-bftree`).
#[cfg(all(feature = "cli", feature = "bench-peers"))]
const OPTIONAL_INDEXES: usize = cfg!(feature = "peer-bftree") as usize;

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
    // seerdb can lose a transfer under two threads (its transactions may
    // miss a commit still being applied; see the README): then its total is
    // off and the run exits 1. Every other engine must keep its total.
    let seer = cfg!(feature = "peer-seerdb");
    assert!(out.status.success() || seer, "{stdout} {}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let engines = |line: &str| line.matches("\"engine\":").count();
    assert_eq!(field(lines[0], "workload"), "\"e\"");
    let (e, bank) = (7 + OPTIONAL_TXN_PEERS + OPTIONAL_INDEXES, 5 + OPTIONAL_TXN_PEERS);
    assert_eq!(engines(lines[0]), e, "{}", lines[0]);
    assert!(lines[0].contains("\"engine\":\"scc\",\"transactional\":false"));
    assert_eq!(field(lines[1], "workload"), "\"bank\"");
    assert_eq!(engines(lines[1]), bank, "{}", lines[1]);
    let kept = lines[1].matches("\"bank_ok\":true").count();
    assert!(kept == bank || (seer && kept == bank - 1), "{}", lines[1]);
    assert!(lines[1].contains("\"bwtx_over_best_transactional_peer\":"));
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    assert_eq!(
        chart.matches("<title>").count(),
        e + bank,
        "one bar per engine and workload"
    );
}

/// The JSON object of `engine` in a `--compare --json` line, if it ran.
#[cfg(all(feature = "cli", any(feature = "peer-seerdb", feature = "peer-bftree")))]
fn engine_json<'a>(line: &'a str, engine: &str) -> Option<&'a str> {
    let at = line.find(&format!("{{\"engine\":\"{engine}\""))?;
    let rest = &line[at..];
    // Up to the next engine's object (the objects nest no engines).
    Some(&rest[..rest[1..].find("{\"engine\":").map_or(rest.len(), |e| e + 1)])
}

/// seerdb (`peer-seerdb`) runs as a transactional peer: in the table with
/// its settings (which name its cache), and in bank, where one thread keeps
/// its total (two can lose a transfer: see the README).
#[cfg(all(feature = "cli", feature = "peer-seerdb"))]
#[test]
fn bench_compare_with_seerdb() {
    let out = run(&[
        "bench",
        "--compare",
        "--keys",
        "1000",
        "--ops",
        "1000",
        "--workload",
        "e",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    let row = stdout
        .lines()
        .find(|l| l.starts_with("seerdb "))
        .unwrap_or_else(|| panic!("no seerdb row in {stdout}"));
    assert!(row.trim_end().ends_with('x'), "no ratio in {row}");
    let settings = stdout
        .lines()
        .find(|l| l.starts_with("  seerdb "))
        .unwrap_or_else(|| panic!("no seerdb settings in {stdout}"));
    assert!(settings.contains("cache: 256 MiB memtable"), "{settings}");
    assert!(settings.contains("SyncPolicy::None"), "{settings}");

    let out = run(&[
        "bench",
        "--compare",
        "--keys",
        "1000",
        "--ops",
        "1000",
        "--workload",
        "f,bank",
        "--json",
        "--threads",
        "1",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let f = engine_json(lines[0], "seerdb").unwrap_or_else(|| panic!("no seerdb in {}", lines[0]));
    assert!(f.contains("\"transactional\":true"), "{f}");
    assert!(field(f, "txns").parse::<u64>().unwrap() > 0, "{f}");
    let bank = engine_json(lines[1], "seerdb").unwrap_or_else(|| panic!("no seerdb in {}", lines[1]));
    assert!(bank.contains("\"bank_ok\":true"), "{bank}");
}

/// Bf-Tree (`peer-bftree`) runs as an index without transactions: in memory
/// by default, on a file with the cache `BWTX_BFTREE_CACHE_MIB` asks for,
/// its cache in the settings line either way, and not in bank.
#[cfg(all(feature = "cli", feature = "peer-bftree"))]
#[test]
fn bench_compare_with_bftree() {
    let out = run(&[
        "bench",
        "--compare",
        "--keys",
        "1000",
        "--ops",
        "1000",
        "--workload",
        "e",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    let row = stdout
        .lines()
        .find(|l| l.starts_with("bf-tree "))
        .unwrap_or_else(|| panic!("no bf-tree row in {stdout}"));
    assert!(row.trim_end().ends_with('x'), "no ratio in {row}");
    let settings = stdout
        .lines()
        .find(|l| l.starts_with("  bf-tree "))
        .unwrap_or_else(|| panic!("no bf-tree settings in {stdout}"));
    assert!(
        settings.contains("in memory") && settings.contains("cache: circular buffer of 32 MiB"),
        "{settings}"
    );
    assert!(
        stdout.contains("(crossbeam-skiplist, scc and bf-tree run each operation on its own"),
        "{stdout}"
    );

    let out = bwtx()
        .env("BWTX_BFTREE_CACHE_MIB", "1")
        .args([
            "bench",
            "--compare",
            "--keys",
            "1000",
            "--ops",
            "1000",
            "--workload",
            "a,bank",
            "--json",
            "--threads",
            "1",
        ])
        .output()
        .expect("run bwtx");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let a = engine_json(lines[0], "bf-tree").unwrap_or_else(|| panic!("no bf-tree in {}", lines[0]));
    assert!(a.contains("\"transactional\":false"), "{a}");
    assert!(
        a.contains("StorageBackend::Std") && a.contains("cache: circular buffer of 1 MiB"),
        "{a}"
    );
    assert!(
        engine_json(lines[1], "bf-tree").is_none(),
        "bf-tree in bank: {}",
        lines[1]
    );

    let out = bwtx()
        .env("BWTX_BFTREE_CACHE_MIB", "3")
        .args(["bench", "--compare", "--keys", "100", "--ops", "100", "--workload", "c"])
        .output()
        .expect("run bwtx");
    assert!(!out.status.success(), "a cache that is no power of two");
    assert!(
        text(&out.stderr).contains("BWTX_BFTREE_CACHE_MIB"),
        "{}",
        text(&out.stderr)
    );
}
