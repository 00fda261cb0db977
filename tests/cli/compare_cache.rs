//! `bwtx bench --compare --cache-size`: the isolated comparison (each
//! engine in its own process, one load for every workload) reports each
//! engine's RSS and write amplification, and leaves no engine directory
//! behind. Needs `bench-peers`.
#![cfg(feature = "bench-peers")]

use crate::{assert_left_nothing, field, run, text, TempDir};

/// The engines with a cache in this build (the in-memory ones sit out).
fn engines() -> Vec<&'static str> {
    let mut e = vec!["bwtx", "fjall", "redb", "sled"];
    if cfg!(feature = "peer-rocksdb") {
        e.push("rocksdb");
    }
    if cfg!(feature = "peer-seerdb") {
        e.push("seerdb");
    }
    if cfg!(feature = "peer-bftree") {
        e.push("bf-tree");
    }
    e
}

/// A positive number in `json`'s member `key`.
fn positive(json: &str, key: &str) -> f64 {
    let x: f64 = field(json, key)
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"));
    assert!(x > 0.0, "{key} = {x} in {json}");
    x
}

#[test]
fn cache_size_comparison_isolates_each_engine() {
    let dir = TempDir::new("cmpcache");
    std::fs::create_dir_all(&dir.0).unwrap();
    let out = run(&[
        "bench",
        "--compare",
        "--dir",
        dir.path(),
        "--cache-size",
        "1MiB",
        "--keys",
        "2000",
        "--duration",
        "1",
        "--workload",
        "a,c",
        "--json",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one report per workload: {stdout}");
    let mut loads = Vec::new();
    for (line, workload) in lines.iter().zip(["a", "c"]) {
        assert_eq!(field(line, "workload"), format!("\"{workload}\""), "{line}");
        assert_eq!(field(line, "isolated"), "true", "{line}");
        assert_eq!(field(line, "cache_size"), "1048576", "{line}");
        assert!(line.contains("sat out: in memory"), "{line}");
        let rows: Vec<&str> = line.split("{\"engine\":").skip(1).collect();
        let names: Vec<&str> = rows.iter().map(|r| r.split('"').nth(1).unwrap_or("")).collect();
        assert_eq!(names, engines(), "{line}");
        for row in &rows {
            assert!(positive(row, "txns") >= 1.0, "{row}");
            positive(row, "peak_rss_kib");
            positive(row, "end_rss_kib");
            positive(row, "rss_over_cache");
            positive(row, "load_peak_rss_kib");
            positive(row, "load_write_amplification");
            // User bytes are the puts of the phase: workload a updates,
            // c only reads.
            if workload == "a" {
                positive(row, "user_bytes");
                if row.starts_with("\"bf-tree\"") || row.starts_with("\"seerdb\"") {
                    // Bf-Tree has no log, and seerdb's unsynced log is
                    // buffered in the process (`SyncPolicy::None`): a
                    // short run's updates can stay in memory, so nothing
                    // reaches the disk (seen once for seerdb in a 1 s run).
                    let wa: f64 = field(row, "write_amplification").parse().expect("a number");
                    assert!(wa >= 0.0, "{row}");
                } else {
                    positive(row, "write_amplification");
                }
            } else {
                assert_eq!(field(row, "user_bytes"), "0", "{row}");
                assert_eq!(field(row, "write_amplification"), "null", "{row}");
            }
            loads.push(field(row, "load_secs").to_owned());
        }
    }
    // One load per engine, shared by both workloads.
    let (a, c) = loads.split_at(loads.len() / 2);
    assert_eq!(a, c, "{stdout}");
    // Every engine's directory was deleted when its process ended.
    assert_left_nothing(&dir);
}
