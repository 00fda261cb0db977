//! `bwtx shell [PATH]`: a small REPL over one database.
//!
//! - this file: the loop, the command table, transactions and savepoints,
//!   reads and writes;
//! - [`past`]: reads of the past and counts (`at TS ...`, `len`,
//!   `changes SINCE`);
//! - [`spaces`]: keyspaces (`use NAME`, `keyspaces`, `drop NAME`).
//!
//! Every read and write goes to the session's current keyspace (`default`
//! until `use NAME`).

mod past;
mod spaces;

use std::io::{BufRead, IsTerminal, Write};
use std::ops::Bound;
use std::path::Path;

use bwtx::{Db, Isolation, Keyspace, Savepoint, Transaction};

const HELP: &str = "\
commands (outside `begin` each command commits on its own):
  begin [snapshot|serializable]
                      start a transaction (default: snapshot isolation;
                      serializable also validates its reads at commit)
  get KEY             print KEY's value
  put KEY VALUE...    set KEY (the value is the rest of the line)
  delete KEY          delete KEY
  scan [LO [HI]]      list keys in [LO, HI) (at most 1000 shown)
  commit              commit the transaction
  rollback            discard the transaction
  savepoint NAME      mark the transaction's writes so far as NAME
  rollback to NAME    undo the writes made since savepoint NAME (which
                      stays; savepoints taken after it are dropped)
  release NAME        end savepoint NAME and those taken after it, keeping
                      the writes
  len                 the exact number of keys (the transaction's view if one is open)
  at TS get KEY | at TS scan [LO [HI]] | at TS len
                      read the database as of commit timestamp TS (time
                      travel: within the history retention, or while a
                      snapshot holds it)
  changes SINCE [N]   the first N (default 20) commits after timestamp SINCE,
                      with their writes (the change stream; on-disk databases;
                      other keyspaces' keys shown as NAME:KEY)
  use NAME            read and write keyspace NAME from now on (created if
                      new; `use default` goes back)
  keyspaces           list the keyspaces with their key counts
  drop NAME           drop keyspace NAME (snapshots taken before still read it)
  stats               database statistics
  checkpoint          write a checkpoint now (on-disk databases)
  help                this text
  quit | exit         leave (an open transaction is rolled back)";

/// Keys printed by one scan at most.
const SCAN_LIMIT: usize = 1000;

/// Run the shell on `path` (in memory if `None`). Returns the exit status.
pub fn run(path: Option<&Path>) -> i32 {
    let db = match path {
        // Not `Db::in_memory`, which panics if its thread cannot start.
        None => match bwtx::Options::new().in_memory() {
            Ok(db) => db,
            Err(e) => {
                eprintln!("error: cannot start an in-memory database: {e}");
                return 1;
            }
        },
        Some(p) => match Db::open(p) {
            Ok(db) => db,
            Err(e) => {
                eprintln!("error: cannot open {}: {e}", p.display());
                return 1;
            }
        },
    };
    let ks = match db.keyspace(spaces::DEFAULT) {
        Ok(ks) => ks,
        Err(e) => {
            eprintln!("error: the default keyspace: {e}");
            return 1;
        }
    };
    let mut session = Session {
        db: &db,
        ks,
        tx: None,
        savepoints: Vec::new(),
        failed: false,
    };
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        println!(
            "bwtx shell on {} (type `help`)",
            path.map_or("an in-memory database".to_owned(), |p| p.display().to_string())
        );
        let mut rl = match rustyline::DefaultEditor::new() {
            Ok(rl) => rl,
            Err(e) => {
                eprintln!("error: no line editor ({e}); reading plain lines");
                return plain(&mut session);
            }
        };
        loop {
            let prompt = session.prompt();
            match rl.readline(&prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = rl.add_history_entry(line.as_str());
                    }
                    if session.exec(&line) == Flow::Quit {
                        break;
                    }
                }
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(rustyline::error::ReadlineError::Eof) => break,
                Err(e) => {
                    eprintln!("error: {e}");
                    break;
                }
            }
        }
        session.close();
        0
    } else {
        plain(&mut session)
    }
}

/// Read commands line by line from stdin (scripts, pipes). A line that is
/// not UTF-8 is an error like a bad command, and the next line runs; an
/// I/O error reading stdin ends the session. The exit status is 1 if any
/// command failed (its `error:` line is in the output), else 0.
fn plain(session: &mut Session<'_>) -> i32 {
    let stdin = std::io::stdin();
    for (n, line) in stdin.lock().split(b'\n').enumerate() {
        let mut line = match line {
            Ok(line) => line,
            Err(e) => {
                eprintln!("error: reading stdin: {e}");
                session.failed = true;
                break;
            }
        };
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let flow = match String::from_utf8(line) {
            Ok(line) => session.exec(&line),
            Err(_) => {
                println!("error: line {} is not valid UTF-8 (skipped)", n + 1);
                session.failed = true;
                Flow::Continue
            }
        };
        if flow == Flow::Quit {
            break;
        }
        let _ = std::io::stdout().flush();
    }
    session.close();
    i32::from(session.failed)
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

struct Session<'db> {
    db: &'db Db,
    /// The keyspace every command reads and writes.
    ks: Keyspace,
    tx: Option<Transaction>,
    /// The open transaction's named savepoints, oldest first (empty when
    /// no transaction is open).
    savepoints: Vec<(String, Savepoint)>,
    /// A command failed (its error printed): a script's exit status is 1.
    failed: bool,
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl<'db> Session<'db> {
    fn close(&mut self) {
        self.savepoints.clear();
        if self.tx.take().is_some() {
            println!("(open transaction rolled back)");
        }
    }

    fn exec(&mut self, line: &str) -> Flow {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Flow::Continue;
        }
        let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let args: Vec<&str> = rest.split_whitespace().collect();
        let r = match (cmd.to_ascii_lowercase().as_str(), args.len()) {
            ("quit" | "exit", _) => return Flow::Quit,
            ("help" | "?", _) => {
                println!("{HELP}");
                Ok(())
            }
            ("begin", 0) => self.begin(Isolation::Snapshot),
            ("begin", 1) => match args[0].to_ascii_lowercase().as_str() {
                "snapshot" => self.begin(Isolation::Snapshot),
                "serializable" => self.begin(Isolation::Serializable),
                _ => Err("usage: begin [snapshot|serializable]".to_owned()),
            },
            ("commit", 0) => self.commit(),
            ("rollback" | "abort", 0) => self.rollback(),
            ("savepoint", 1) => self.savepoint(args[0]),
            ("rollback", 2) if args[0].eq_ignore_ascii_case("to") => self.rollback_to(args[1]),
            ("release", 1) => self.release(args[0]),
            ("release", _) => Err("usage: release NAME".to_owned()),
            ("savepoint", _) => Err("usage: savepoint NAME".to_owned()),
            ("rollback", _) => Err("usage: rollback [to NAME]".to_owned()),
            ("get", 1) => self.get(args[0]),
            ("put", n) if n >= 2 => {
                let value = rest[args[0].len()..].trim_start();
                self.write(args[0], Some(value))
            }
            ("delete" | "del", 1) => self.write(args[0], None),
            ("scan", 0..=2) => self.scan(args.first().copied(), args.get(1).copied()),
            ("len", 0) => self.len(),
            ("use", 1) => self.use_keyspace(args[0]),
            ("keyspaces", 0) => self.keyspaces(),
            ("drop", 1) => self.drop_keyspace(args[0]),
            ("use" | "drop", _) => Err(format!("usage: {cmd} NAME")),
            ("at", n) if n >= 2 => self.at(&args),
            ("changes", 1..=2) => self.changes(&args),
            ("at", _) => Err("usage: at TS get KEY | at TS scan [LO [HI]] | at TS len".to_owned()),
            ("changes", _) => Err("usage: changes SINCE [N]".to_owned()),
            ("len", _) => Err("`len` takes no arguments".to_owned()),
            ("stats", 0) => {
                println!("{:#?}", self.db.stats());
                Ok(())
            }
            ("checkpoint", 0) => self
                .db
                .checkpoint()
                .map(|ts| println!("checkpoint at {ts}"))
                .map_err(|e| e.to_string()),
            ("begin", _) => Err("usage: begin [snapshot|serializable]".to_owned()),
            ("commit" | "abort" | "stats" | "checkpoint" | "keyspaces", _) => {
                Err(format!("`{cmd}` takes no arguments"))
            }
            ("get" | "delete" | "del", _) => Err(format!("usage: {cmd} KEY")),
            ("put", _) => Err("usage: put KEY VALUE".to_owned()),
            ("scan", _) => Err("usage: scan [LO [HI]]".to_owned()),
            _ => Err(format!("unknown command `{cmd}` (type `help`)")),
        };
        if let Err(e) = r {
            println!("error: {e}");
            self.failed = true;
        }
        Flow::Continue
    }

    fn begin(&mut self, level: Isolation) -> Result<(), String> {
        if self.tx.is_some() {
            return Err("a transaction is open already (commit or rollback first)".into());
        }
        let tx = self.db.begin_with(level);
        let name = if level == Isolation::Serializable {
            "serializable"
        } else {
            "snapshot isolation"
        };
        println!("begun at snapshot {} ({name})", tx.snapshot_ts());
        self.tx = Some(tx);
        self.savepoints.clear();
        Ok(())
    }

    fn savepoint(&mut self, name: &str) -> Result<(), String> {
        let tx = self
            .tx
            .as_mut()
            .ok_or("no open transaction (savepoints live in one: `begin` first)")?;
        // A name taken again moves to the newest savepoint.
        self.savepoints.retain(|(n, _)| n != name);
        self.savepoints.push((name.to_owned(), tx.savepoint()));
        println!("savepoint {name}");
        Ok(())
    }

    fn rollback_to(&mut self, name: &str) -> Result<(), String> {
        let tx = self.tx.as_mut().ok_or("no open transaction")?;
        let at = (self.savepoints.iter().position(|(n, _)| n == name))
            .ok_or_else(|| format!("no savepoint named `{name}` in this transaction"))?;
        tx.rollback_to(&self.savepoints[at].1).map_err(|e| e.to_string())?;
        // The savepoints taken after it are no longer valid.
        self.savepoints.truncate(at + 1);
        println!("rolled back to {name}");
        Ok(())
    }

    fn release(&mut self, name: &str) -> Result<(), String> {
        let tx = self.tx.as_mut().ok_or("no open transaction")?;
        let at = (self.savepoints.iter().position(|(n, _)| n == name))
            .ok_or_else(|| format!("no savepoint named `{name}` in this transaction"))?;
        tx.release_savepoint(&self.savepoints[at].1)
            .map_err(|e| e.to_string())?;
        // It and the savepoints taken after it are gone.
        self.savepoints.truncate(at);
        println!("released {name}");
        Ok(())
    }

    fn commit(&mut self) -> Result<(), String> {
        self.savepoints.clear();
        let tx = self.tx.take().ok_or("no open transaction")?;
        match tx.commit() {
            Ok(ts) => {
                println!("committed at {ts}");
                Ok(())
            }
            Err(e) if e.is_conflict() => Err(format!("{e} (the transaction was rolled back)")),
            // The transaction is gone either way; after a failed write or
            // sync its outcome is unknown until the database is reopened.
            Err(e @ (bwtx::Error::Io { .. } | bwtx::Error::Poisoned)) => Err(format!(
                "{e} (the transaction is closed; whether it committed is known after a reopen)"
            )),
            Err(e) => Err(format!("{e} (the transaction was rolled back)")),
        }
    }

    fn rollback(&mut self) -> Result<(), String> {
        self.savepoints.clear();
        self.tx.take().ok_or("no open transaction")?.rollback();
        println!("rolled back");
        Ok(())
    }

    fn get(&mut self, key: &str) -> Result<(), String> {
        let v = match &self.tx {
            Some(tx) => tx.get_in(&self.ks, key),
            None => self.db.snapshot().get_in(&self.ks, key),
        }
        .map_err(|e| e.to_string())?;
        match v {
            Some(v) => println!("{}", show(&v)),
            None => println!("(not found)"),
        }
        Ok(())
    }

    fn write(&mut self, key: &str, value: Option<&str>) -> Result<(), String> {
        let ks = &self.ks;
        let apply = |tx: &mut Transaction| match value {
            Some(v) => tx.put_in(ks, key, v),
            None => tx.delete_in(ks, key),
        };
        match &mut self.tx {
            Some(tx) => {
                apply(tx).map_err(|e| e.to_string())?;
                println!("ok (pending commit)");
            }
            None => {
                let mut tx = self.db.begin();
                apply(&mut tx).map_err(|e| e.to_string())?;
                let ts = tx.commit().map_err(|e| e.to_string())?;
                println!("ok (committed at {ts})");
            }
        }
        Ok(())
    }

    fn scan(&mut self, lo: Option<&str>, hi: Option<&str>) -> Result<(), String> {
        let lo = lo.map_or(Bound::Unbounded, |k| Bound::Included(k.as_bytes()));
        let hi = hi.map_or(Bound::Unbounded, |k| Bound::Excluded(k.as_bytes()));
        let snap;
        let iter = match &self.tx {
            Some(tx) => tx.range_in::<&[u8], _>(&self.ks, (lo, hi)),
            None => {
                snap = self.db.snapshot();
                snap.range_in::<&[u8], _>(&self.ks, (lo, hi))
            }
        };
        print_entries(iter)
    }
}

/// Print a scan's entries (at most [`SCAN_LIMIT`]) and their count.
fn print_entries(iter: impl Iterator<Item = bwtx::Result<(bytes::Bytes, bytes::Bytes)>>) -> Result<(), String> {
    let mut n = 0usize;
    let mut more = 0usize;
    for kv in iter {
        let (k, v) = kv.map_err(|e| e.to_string())?;
        if n < SCAN_LIMIT {
            println!("{} = {}", show(&k), show(&v));
            n += 1;
        } else {
            more += 1;
        }
    }
    if more > 0 {
        println!("... and {more} more");
    }
    println!("({} keys)", n + more);
    Ok(())
}
