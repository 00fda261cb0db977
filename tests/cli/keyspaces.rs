//! Keyspaces in the CLI: the shell's `use NAME`, `keyspaces` and `drop NAME`,
//! and `bwtx check`'s per-keyspace lines.

use crate::tools::shell;
use crate::{run, text, TempDir};

/// The same key in two keyspaces holds two values; `keyspaces` lists both
/// with their counts; a dropped keyspace is gone after a reopen while the
/// others stay; bad names and dropping `default` are error lines.
#[test]
fn shell_uses_lists_and_drops_keyspaces() {
    let dir = TempDir::new("keyspaces");
    let out = shell(
        &[dir.path()],
        "put a 1\nuse orders\nput a 2\nput b 3\nget a\nlen\nuse default\nget a\nlen\nkeyspaces\n\
         use bad/name\ndrop default\ndrop nowhere\nuse\nbegin\nuse fresh\nuse orders\nget b\nrollback\n",
    );
    let lines: Vec<&str> = out.lines().collect();
    let at = |l: &str| crate::line_at(&lines, l, &out);
    assert!(lines.contains(&"using keyspace orders (created)"), "{out}");
    // `get a` in orders reads 2, then in default 1.
    let orders = at("using keyspace orders (created)");
    let default = at("using keyspace default");
    assert_eq!(lines[orders + 3..orders + 5], ["2", "2 keys"], "{out}");
    assert_eq!(lines[default + 1..default + 3], ["1", "1 keys"], "{out}");
    assert!(lines.contains(&"default: 1 keys (current)"), "{out}");
    assert!(lines.contains(&"orders: 2 keys"), "{out}");
    assert!(lines.contains(&"(2 keyspaces)"), "{out}");
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(
        errors.len(),
        5,
        "bad name, drop default, drop missing, bare use, create in a tx: {out}"
    );
    assert!(lines.contains(&"error: usage: use NAME"), "{out}");
    // Switching to an existing keyspace inside a transaction works.
    assert_eq!(lines[at("using keyspace orders") + 1], "3", "{out}");

    // The keyspace survived a restart; `check` verifies each keyspace.
    let out = run(&["check", dir.path()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("keyspace default: 1 live keys"), "{stdout}");
    assert!(stdout.contains("keyspace orders: 2 live keys"), "{stdout}");
    assert!(stdout.contains("live keys: 3 in 2 keyspace(s)"), "{stdout}");

    let out = shell(&[dir.path()], "use orders\ndrop orders\nget a\nkeyspaces\n");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"dropped keyspace orders"), "{out}");
    // The current keyspace falls back to default, which still holds a = 1.
    assert_eq!(
        lines[lines.iter().position(|l| *l == "using keyspace default").unwrap() + 1],
        "1",
        "{out}"
    );
    assert!(lines.contains(&"(1 keyspaces)"), "{out}");
    let out = shell(&[dir.path()], "keyspaces\n");
    assert!(!out.contains("orders"), "dropped for good: {out}");

    // The change stream names the keyspace of each write but the default's.
    let out = shell(
        &[dir.path()],
        "use t\nbegin\nput k v\nuse default\nput k w\ncommit\nchanges 0 100\n",
    );
    assert!(out.contains(": put k = w; put t:k = v"), "{out}");
    assert!(out.contains("3: put orders:a = 2"), "{out}");
    // Creations and drops are changes of their own.
    assert!(out.contains("2: create keyspace orders"), "{out}");
    assert!(out.contains(": drop keyspace orders"), "{out}");
    assert!(out.contains(": create keyspace t"), "{out}");
}
