//! Integration tests of the `bwtx` command-line tool (needs `--features cli`):
//! each subcommand on a small size.
//!
//! Files: `bench.rs` (`bwtx bench` alone, and `check` on what it left),
//! `tools.rs` (`shell`, `check`, `history`, bad arguments), `compare.rs`
//! (`bench --compare`, needs `bench-peers`), `compare_cache.rs` (`bench
//! --compare --cache-size`: each engine in its own process, RSS and write
//! amplification, needs `bench-peers`), `compare_faults.rs` (the same when
//! an engine's process times out or dies; `--engines`), `isolation.rs` (`--isolation`
//! of `bench`, `history` and `--compare`, the shell's `begin serializable`
//! and savepoints), `check_pages.rs` (`check` of a paged database's page
//! store, clean and damaged), `keyspaces.rs` (the shell's keyspace commands
//! and `check` per keyspace).
#![cfg(feature = "cli")]

mod bench;
mod check_pages;
mod compare;
mod compare_cache;
mod compare_faults;
mod isolation;
mod keyspaces;
mod tools;

use std::path::PathBuf;
use std::process::{Command, Output};

pub(crate) fn bwtx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bwtx"))
}

pub(crate) fn run(args: &[&str]) -> Output {
    bwtx().args(args).output().expect("run bwtx")
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh directory for one test (removed on drop).
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("bwtx-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
    pub(crate) fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The value of `"key":` in a flat JSON object, as text.
pub(crate) fn field<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":");
    let at = json.find(&pat).unwrap_or_else(|| panic!("no {key} in {json}")) + pat.len();
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    &rest[..end]
}

/// The index of the line of `lines` that is exactly `line` (`out` is the
/// whole output, shown if there is none).
pub(crate) fn line_at(lines: &[&str], line: &str, out: &str) -> usize {
    lines
        .iter()
        .position(|x| *x == line)
        .unwrap_or_else(|| panic!("no {line:?} in {out}"))
}

/// The line of `out` that starts with `prefix` and a space: an engine's table
/// row (`"fjall"`) or, indented, its settings line (`"  fjall"`).
#[cfg(feature = "bench-peers")]
pub(crate) fn line_of<'a>(out: &'a str, prefix: &str) -> &'a str {
    let start = format!("{prefix} ");
    out.lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {out}"))
}

/// Assert that an isolated comparison left nothing in `dir`.
#[cfg(feature = "bench-peers")]
pub(crate) fn assert_left_nothing(dir: &TempDir) {
    let left: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
