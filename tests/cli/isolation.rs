//! `--isolation` of `bwtx bench`, `bwtx history` and `bench --compare`, and
//! the shell's `begin serializable` and savepoints.

use crate::tools::shell;
use crate::{field, run, text};

/// `release NAME` in the shell ends the savepoint and those after it and
/// keeps the writes; an earlier savepoint still rolls back past them.
#[test]
fn shell_release_keeps_writes_and_ends_later_savepoints() {
    let out = shell(
        &[],
        "begin
put a 1
savepoint one
put b 2
savepoint two
put c 3
release two
scan
         rollback to two
release
rollback to one
scan
commit
",
    );
    let lines: Vec<&str> = out.lines().collect();
    let at = |l: &str| crate::line_at(&lines, l, &out);
    assert!(lines.contains(&"released two"), "{out}");
    // The writes stay: three keys.
    assert_eq!(lines[at("released two") + 4], "(3 keys)", "{out}");
    assert!(
        lines.contains(&"error: no savepoint named `two` in this transaction"),
        "{out}"
    );
    assert!(lines.contains(&"error: usage: release NAME"), "{out}");
    // `one` still undoes `b` and `c`.
    assert_eq!(
        &lines[at("rolled back to one") + 1..at("rolled back to one") + 3],
        ["a = 1", "(1 keys)"],
        "{out}"
    );
}

/// Savepoints by name in the shell: rollback to one undoes the later
/// writes and drops the later savepoints, works twice, and unknown names,
/// missing names and savepoints outside a transaction are error lines.
#[test]
fn shell_savepoints_and_begin_serializable() {
    let out = shell(
        &[],
        "begin serializable\nput a 1\nsavepoint one\nput b 2\nsavepoint two\nput a 9\nget a\n\
         rollback to one\nget a\nscan\nrollback to two\nrollback to nowhere\nput c 3\nrollback to one\n\
         scan\nsavepoint\nrollback to\nrollback sideways x\ncommit\nsavepoint late\nrollback to one\n\
         begin bogus\nbegin snapshot\nsavepoint s\nput z 1\nrollback to s\ncommit\nscan\nhelp\n",
    );
    let lines: Vec<&str> = out.lines().collect();
    let at = |l: &str| crate::line_at(&lines, l, &out);
    assert!(
        lines[0].starts_with("begun at snapshot ") && lines[0].ends_with("(serializable)"),
        "{out}"
    );
    assert!(
        lines.contains(&"savepoint one") && lines.contains(&"savepoint two"),
        "{out}"
    );
    // Own write read back, then undone: `a` is 1 again, `b` is gone.
    assert!(at("9") < at("rolled back to one"), "{out}");
    let after = &lines[at("rolled back to one")..];
    assert_eq!(after[1], "1", "{out}");
    assert_eq!(&after[2..4], ["a = 1", "(1 keys)"], "{out}");
    // `two` was taken after `one`: dropped by the rollback.
    assert!(
        lines.contains(&"error: no savepoint named `two` in this transaction"),
        "{out}"
    );
    assert!(
        lines.contains(&"error: no savepoint named `nowhere` in this transaction"),
        "{out}"
    );
    // Rolled back to `one` a second time: `c` is undone too.
    assert_eq!(lines.iter().filter(|l| **l == "rolled back to one").count(), 2, "{out}");
    assert!(lines.contains(&"error: usage: savepoint NAME"), "{out}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "error: usage: rollback [to NAME]")
            .count(),
        2,
        "{out}"
    );
    assert!(
        lines.contains(&"error: no open transaction (savepoints live in one: `begin` first)"),
        "{out}"
    );
    assert!(lines.contains(&"error: no open transaction"), "{out}");
    assert!(lines.contains(&"error: usage: begin [snapshot|serializable]"), "{out}");
    assert!(lines.iter().any(|l| l.ends_with("(snapshot isolation)")), "{out}");
    // Committed: only `a = 1` (the second transaction's `z` was rolled back to `s`).
    let last_scan = lines.iter().rposition(|l| l.ends_with(" keys)")).unwrap();
    assert_eq!(&lines[last_scan - 1..=last_scan], ["a = 1", "(1 keys)"], "{out}");
    for cmd in ["begin [snapshot|serializable]", "savepoint NAME", "rollback to NAME"] {
        assert!(out.contains(cmd), "help lists {cmd}: {out}");
    }
}

/// `bench --isolation serializable`: shown in the table and the JSON, and
/// the bank total is conserved.
#[test]
fn bench_serializable_bank_and_a() {
    let out = run(&[
        "bench",
        "--workload",
        "bank,a",
        "--keys",
        "200",
        "--ops",
        "3000",
        "--threads",
        "4",
        "--isolation",
        "serializable",
        "--json",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for l in &lines {
        assert_eq!(field(l, "isolation"), "\"serializable\"", "{l}");
        field(l, "abort_rate");
    }
    assert_eq!(field(lines[0], "bank_ok"), "true", "{}", lines[0]);
    assert_eq!(field(lines[0], "bank_total"), "200000");
    let out = run(&["bench", "--workload", "a", "--keys", "200", "--ops", "200"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("2 ops/txn, snapshot isolation"), "{stdout}");
}

/// `history --isolation serializable`: the workload begins serializable
/// transactions and the check is for serializability (no cycle at all).
#[test]
fn history_serializable() {
    let dir = crate::TempDir::new("history-ser");
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("h.json");
    let args = [
        "history",
        "--out",
        file.to_str().unwrap(),
        "--threads",
        "3",
        "--txns",
        "100",
        "--keys",
        "3",
    ];
    let out = run(&[&args[..], &["--isolation", "serializable"]].concat());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("checked for serializable isolation"), "{stdout}");
    assert!(
        stdout.contains("valid: ") && stdout.contains(" 0 G2 components"),
        "{stdout}"
    );
    let h = bwtx::history::json::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(bwtx::history::check_with(&h, bwtx::Isolation::Serializable).ok);
}

/// `--compare --isolation serializable`: bwtx and the peers with a
/// serializable mode run (skipdb's `SerializableDb`), the others are named
/// as skipped, with the reason.
#[cfg(feature = "bench-peers")]
#[test]
fn compare_serializable_runs_serializable_peers_only() {
    let out = run(&[
        "bench",
        "--compare",
        "--isolation",
        "serializable",
        "--keys",
        "1000",
        "--ops",
        "1000",
        "--workload",
        "bank",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("1 ops/txn, serializable isolation"), "{stdout}");
    for engine in ["bwtx", "skipdb", "fjall", "redb"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("{engine} "))),
            "no {engine} row: {stdout}"
        );
        assert!(
            stdout.contains(&format!("{engine} bank total 1000000 (expected 1000000): ok")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("begin_with(Isolation::Serializable)"), "{stdout}");
    assert!(
        stdout.contains("SerializableDb<Arc<[u8]>, Vec<u8>> (serializable)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sled skipped under serializable isolation: "),
        "{stdout}"
    );
    assert!(
        !stdout
            .lines()
            .any(|l| l.starts_with("sled ") && l.trim_end().ends_with('x')),
        "{stdout}"
    );
}
