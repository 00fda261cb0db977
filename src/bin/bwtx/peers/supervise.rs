//! Watching one child process of an isolated comparison (`isolate.rs`
//! starts one per engine): its result lines are handed on as they arrive
//! (one per phase, so the parent can print each phase's figures at once),
//! its stderr is passed through with the engine's name and its last lines
//! kept, and with `--engine-timeout` a child past the limit is killed.
//!
//! Two threads read the child's pipes (so that neither pipe fills and
//! blocks it); this thread waits for the lines, the exit and the limit.
//! However the child ends (finished, exited with an error, killed by a
//! signal such as the OOM killer's, past the limit), the outcome says so
//! with its exit status and stderr tail: never a panic here.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::json::{parse, Value};

/// Lines of a child's stderr kept for its report.
const TAIL_LINES: usize = 12;

/// Lines of a child's stderr kept because they say why it ended (a
/// panic's first two lines, `error:` lines), in case a backtrace pushes
/// them out of the tail.
const KEY_LINES: usize = 4;

/// How often the child's exit and the limit are checked.
const POLL: Duration = Duration::from_millis(100);

/// How a child ended.
#[derive(Debug)]
pub(super) enum End {
    /// It exited with success after its `done` line.
    Done,
    /// It ended otherwise: an error exit, a signal, or success without its
    /// `done` line (the exit status).
    Died(String),
    /// It ran past the limit and was killed (the exit status of the kill).
    TimedOut(String),
    /// It could not be started or waited for (why).
    Broken(String),
}

/// What a child did.
pub(super) struct Outcome {
    /// Its result lines, parsed, in order.
    pub lines: Vec<Value>,
    pub end: End,
    /// The last lines it wrote to stderr, after any lines saying why it
    /// ended that came before them (a panic's message, `error:` lines), and
    /// any unreadable result line.
    pub stderr_tail: Vec<String>,
    /// Its running time.
    pub secs: f64,
}

/// `exit status: 1`, `signal: 9 (SIGKILL)`.
fn show(status: ExitStatus) -> String {
    status.to_string()
}

/// Start this program as the child of engine `name` (its files in `dir`),
/// hand each result line to `on_line` as it arrives, kill it once it has
/// run for `limit`, and return what it did.
pub(super) fn supervise(name: &str, dir: &Path, limit: Option<Duration>, mut on_line: impl FnMut(&Value)) -> Outcome {
    let start = Instant::now();
    let broken = |why: String| Outcome {
        lines: Vec::new(),
        end: End::Broken(why),
        stderr_tail: Vec::new(),
        secs: start.elapsed().as_secs_f64(),
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return broken(format!("cannot find this program: {e}")),
    };
    let spawned = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .arg("--child-engine")
        .arg(name)
        .arg("--child-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return broken(format!("cannot start a child process: {e}")),
    };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return broken("its pipes were not set up".into());
    };
    let (tx, rx) = mpsc::channel::<String>();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            if tx.send(String::from_utf8_lossy(&line).into_owned()).is_err() {
                break;
            }
        }
    });
    let prefix = format!("{name} stderr: ");
    let tail = thread::spawn(move || {
        let (mut key, mut tail) = (Vec::new(), VecDeque::with_capacity(TAIL_LINES));
        let mut after_panic = false;
        for line in BufReader::new(stderr).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line).trim_end_matches('\r').to_owned();
            eprintln!("{prefix}{line}");
            let panic = line.contains("panicked at");
            if (panic || after_panic || line.starts_with("error:")) && key.len() < KEY_LINES {
                key.push(line.clone());
            }
            after_panic = panic;
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        // The key lines that the tail no longer holds, then the tail.
        key.retain(|k| !tail.contains(k));
        if !key.is_empty() {
            key.push("...".to_owned());
        }
        key.extend(tail);
        key
    });
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    let mut take = |line: String, lines: &mut Vec<Value>| match parse(&line) {
        Ok(v) => {
            on_line(&v);
            lines.push(v);
        }
        Err(e) => bad.push(format!("(unreadable result line: {e}: {line})")),
    };
    let mut closed = false;
    // `Ok`: it exited by itself; `Err`: how it was stopped.
    let stop: Result<ExitStatus, End> = loop {
        match rx.recv_timeout(POLL) {
            Ok(line) => take(line, &mut lines),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if closed {
                    thread::sleep(POLL);
                }
                closed = true;
            }
        }
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => {
                break Err(kill(&mut child, |_| {
                    End::Broken(format!("cannot wait for its process: {e}"))
                }))
            }
        }
        if limit.is_some_and(|l| start.elapsed() >= l) {
            break Err(kill(&mut child, End::TimedOut));
        }
    };
    // The child has ended, so its pipes reach end of file: the rest of its
    // lines, then its stderr's tail.
    let _ = reader.join();
    for line in rx.try_iter() {
        take(line, &mut lines);
    }
    let mut stderr_tail: Vec<String> = tail.join().unwrap_or_default();
    stderr_tail.extend(bad);
    let done = lines.last().and_then(|v| v.str("phase")) == Some("done");
    let end = match stop {
        Ok(status) if status.success() && done => End::Done,
        Ok(status) => End::Died(show(status)),
        Err(end) => end,
    };
    Outcome {
        lines,
        end,
        stderr_tail,
        secs: start.elapsed().as_secs_f64(),
    }
}

/// Kill the child (SIGKILL), reap it, and describe its end with `end`.
fn kill(child: &mut Child, end: impl FnOnce(String) -> End) -> End {
    let _ = child.kill();
    match child.wait() {
        Ok(status) => end(show(status)),
        Err(e) => End::Broken(format!("killed, then cannot wait for its process: {e}")),
    }
}
