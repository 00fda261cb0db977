//! `bwtx bench --compare` (needs `bench-peers`; seerdb and Bf-Tree behind
//! their own features).
#![cfg(feature = "bench-peers")]

#[cfg(feature = "peer-bftree")]
use crate::bwtx;
use crate::{field, line_of, run, text, TempDir};

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
        let row = line_of(&stdout, engine);
        assert!(row.trim_end().ends_with('x'), "{engine}: no ratio in {row}");
        assert!(
            stdout.lines().any(|l| l.starts_with("  ") && l.contains(engine)),
            "{engine}: no settings in {stdout}"
        );
    }
    assert!(stdout.contains("bwtx/peer"), "{stdout}");
    assert!(stdout.contains("bwtx / best transactional peer ("), "{stdout}");
}

/// `--durability none` has no counterpart in the peers (each writes its
/// log): a usage error, not a comparison of bwtx without a log against
/// peers with one.
#[cfg(all(feature = "cli", feature = "bench-peers"))]
#[test]
fn bench_compare_refuses_durability_none() {
    let out = run(&[
        "bench",
        "--compare",
        "--keys",
        "100",
        "--ops",
        "100",
        "--durability",
        "none",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("--durability none"), "{}", text(&out.stderr));
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

/// `bench --compare` of workload e on 1,000 keys: its output, checked to be
/// a success with a table row for `engine` that ends in its ratios.
#[cfg(all(feature = "cli", any(feature = "peer-seerdb", feature = "peer-bftree")))]
fn compare_e_with(engine: &str) -> String {
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
    let row = line_of(&stdout, engine);
    assert!(row.trim_end().ends_with('x'), "no ratio in {row}");
    stdout
}

/// seerdb (`peer-seerdb`) runs as a transactional peer: in the table with
/// its settings (which name its cache), and in bank, where one thread keeps
/// its total (two can lose a transfer: see the README).
#[cfg(all(feature = "cli", feature = "peer-seerdb"))]
#[test]
fn bench_compare_with_seerdb() {
    let stdout = compare_e_with("seerdb");
    let settings = line_of(&stdout, "  seerdb");
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
    let stdout = compare_e_with("bf-tree");
    let settings = line_of(&stdout, "  bf-tree");
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
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "a cache that is no power of two");
    // Reported in Bf-Tree's row, beside the others' results (before
    // 2026-12-08 the error ended the whole comparison).
    assert!(
        line_of(&stdout, "bf-tree").contains("failed:") && stdout.contains("BWTX_BFTREE_CACHE_MIB"),
        "{stdout} {stderr}"
    );
    assert!(line_of(&stdout, "bwtx").split_whitespace().count() >= 10, "{stdout}");
}
