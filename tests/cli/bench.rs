//! `bwtx bench` alone: every workload, a page cache, a directory then `check`,
//! several workloads in one invocation.

use crate::{field, run, text, TempDir};

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
            "versions_stored",
            "gc_lag",
            "versions_held_by_oldest_snapshot",
        ] {
            field(json, key);
        }
        // The tool's allocator (`src/bin/bwtx/alloc.rs`), as this build chose it.
        let allocator = if cfg!(all(not(feature = "system-allocator"), not(target_env = "msvc"))) {
            "\"jemalloc\""
        } else {
            "\"system malloc\""
        };
        assert_eq!(field(json, "allocator"), allocator, "{w}");
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

/// With `--dir D` and several workloads each runs in `D/<workload>` on its
/// own records (before, each reloaded over the last one's database in D);
/// a directory that is not empty is refused, since the bench loads its own
/// records.
#[test]
fn bench_workloads_on_a_directory_each_get_their_own() {
    let dir = TempDir::new("workloads");
    let args = [
        "bench",
        "--keys",
        "1000",
        "--ops",
        "4000",
        "--workload",
        "e,c",
        "--dir",
        dir.path(),
        "--durability",
        "buffered",
    ];
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // C ran on the 1000 loaded records only, not after E's inserts.
    for (w, keys) in [("c", "live keys: 1000"), ("e", "live keys: ")] {
        let sub = format!("{}/{w}", dir.path());
        let out = run(&["check", &sub]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{w}: {stdout} {}", text(&out.stderr));
        assert!(stdout.contains(keys), "{w}: {stdout}");
    }
    let again = run(&args);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stdout));
    assert!(text(&again.stderr).contains("is not empty"), "{}", text(&again.stderr));
}
