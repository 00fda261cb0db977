//! Elle-format JSON lines: writing histories and parsing them back.
//!
//! One event per line. Each operation is an `invoke` line (reads unknown,
//! `null`) and a completion line (`ok`, `fail` or `info`), e.g.
//!
//! ```text
//! {"index":0,"type":"invoke","f":"txn","process":3,"time":0,"value":[["append",5,12],["r",5,null]]}
//! {"index":1,"type":"ok","f":"txn","process":3,"time":1,"value":[["append",5,12],["r",5,[1,2,12]]],"snapshot_ts":7,"commit_ts":9}
//! ```
//!
//! When every operation has logical times, the lines are in time order
//! (invocations and completions interleave as they happened); otherwise each
//! operation's invoke line directly precedes its completion. `time`,
//! `snapshot_ts` and `commit_ts` are written only when known. The parser
//! accepts exactly this shape (any key order, extra keys ignored, invoke
//! lines optional) with a small hand-written JSON reader.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io;

use super::model::{History, Mop, Op, OpKind};

/// Render `history` as JSON lines (each line ends in `\n`).
pub fn to_string(history: &History) -> String {
    let ops = &history.ops;
    let timed = ops.iter().all(|o| o.invoked_at.is_some() && o.completed_at.is_some());
    // (op index, is completion)
    let mut events: Vec<(usize, bool)> = Vec::with_capacity(ops.len() * 2);
    if timed {
        let mut te: Vec<(u64, usize, bool)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            te.push((o.invoked_at.unwrap_or(0), i, false));
            te.push((o.completed_at.unwrap_or(0), i, true));
        }
        te.sort_by_key(|&(t, i, done)| (t, done, i));
        events.extend(te.into_iter().map(|(_, i, done)| (i, done)));
    } else {
        for i in 0..ops.len() {
            events.push((i, false));
            events.push((i, true));
        }
    }
    let mut s = String::new();
    for (index, (i, done)) in events.into_iter().enumerate() {
        let o = &ops[i];
        let (ty, time) = if done {
            (o.kind.as_str(), o.completed_at)
        } else {
            ("invoke", o.invoked_at)
        };
        let _ = write!(
            s,
            r#"{{"index":{index},"type":"{ty}","f":"txn","process":{}"#,
            o.process
        );
        if let Some(t) = time {
            let _ = write!(s, r#","time":{t}"#);
        }
        s.push_str(r#","value":["#);
        for (j, m) in o.txn.iter().enumerate() {
            if j > 0 {
                s.push(',');
            }
            match m {
                Mop::Append(k, v) => {
                    let _ = write!(s, r#"["append",{k},{v}]"#);
                }
                Mop::Read(k, Some(l)) if done => {
                    let _ = write!(s, r#"["r",{k},["#);
                    for (n, v) in l.iter().enumerate() {
                        if n > 0 {
                            s.push(',');
                        }
                        let _ = write!(s, "{v}");
                    }
                    s.push_str("]]");
                }
                Mop::Read(k, _) => {
                    let _ = write!(s, r#"["r",{k},null]"#);
                }
            }
        }
        s.push(']');
        if done {
            if let Some(t) = o.snapshot_ts {
                let _ = write!(s, r#","snapshot_ts":{t}"#);
            }
            if let Some(t) = o.commit_ts {
                let _ = write!(s, r#","commit_ts":{t}"#);
            }
        }
        s.push_str("}\n");
    }
    s
}

/// Write `history` as JSON lines to `out`.
pub fn write(history: &History, mut out: impl io::Write) -> io::Result<()> {
    out.write_all(to_string(history).as_bytes())
}

/// A JSON-lines history that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "history line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parse JSON lines written by [`to_string`] (or Elle list-append histories
/// of the same shape) back into a history. Blank lines are skipped.
pub fn parse(text: &str) -> Result<History, ParseError> {
    let mut ops = Vec::new();
    // process -> time of its pending invocation
    let mut pending: HashMap<u64, Option<u64>> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let err = |message: String| ParseError { line: n + 1, message };
        if line.trim().is_empty() {
            continue;
        }
        let value = Reader::new(line).document().map_err(err)?;
        let Json::Obj(fields) = value else {
            return Err(err("expected an object".into()));
        };
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let num = |name: &str| -> Result<Option<u64>, String> {
            match field(name) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::Num(v)) => Ok(Some(*v)),
                Some(_) => Err(format!("`{name}` is not a non-negative integer")),
            }
        };
        let Some(Json::Str(ty)) = field("type") else {
            return Err(err("missing string field `type`".into()));
        };
        let process = num("process")
            .map_err(err)?
            .ok_or_else(|| err("missing `process`".into()))?;
        let time = num("time").map_err(err)?;
        let kind = match ty.as_str() {
            "invoke" => {
                if pending.insert(process, time).is_some() {
                    return Err(err(format!("process {process} invoked twice without completing")));
                }
                continue;
            }
            "ok" => OpKind::Ok,
            "fail" => OpKind::Fail,
            "info" => OpKind::Info,
            other => return Err(err(format!("unknown type {other:?}"))),
        };
        let txn = match field("value") {
            Some(Json::Arr(mops)) => mops.iter().map(mop).collect::<Result<Vec<_>, _>>().map_err(err)?,
            _ => return Err(err("`value` is not an array of micro-operations".into())),
        };
        ops.push(Op {
            process,
            kind,
            txn,
            snapshot_ts: num("snapshot_ts").map_err(err)?,
            commit_ts: num("commit_ts").map_err(err)?,
            invoked_at: pending.remove(&process).flatten(),
            completed_at: time,
        });
    }
    Ok(History { ops })
}

fn mop(j: &Json) -> Result<Mop, String> {
    let bad = || format!("bad micro-operation {j:?}");
    let Json::Arr(parts) = j else { return Err(bad()) };
    let [Json::Str(f), Json::Num(k), v] = &parts[..] else {
        return Err(bad());
    };
    match (f.as_str(), v) {
        ("append", Json::Num(v)) => Ok(Mop::Append(*k, *v)),
        ("r", Json::Null) => Ok(Mop::Read(*k, None)),
        ("r", Json::Arr(l)) => {
            let l = l
                .iter()
                .map(|e| match e {
                    Json::Num(v) => Ok(*v),
                    _ => Err(bad()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Mop::Read(*k, Some(l)))
        }
        _ => Err(bad()),
    }
}

/// The JSON subset histories use: integers are non-negative and fit a u64.
#[derive(Debug)]
enum Json {
    Null,
    Bool(#[allow(dead_code)] bool),
    Num(u64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

struct Reader<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(s: &'a str) -> Self {
        Reader {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    fn document(mut self) -> Result<Json, String> {
        let v = self.value(0)?;
        self.ws();
        if self.pos != self.s.len() {
            return Err(format!("trailing characters at column {}", self.pos + 1));
        }
        Ok(v)
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at column {}", c as char, self.pos + 1))
        }
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(format!("unexpected token at column {}", self.pos + 1))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 64 {
            return Err("nesting too deep".into());
        }
        match self.peek() {
            None => Err("unexpected end of line".into()),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::Str),
            Some(b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("expected `,` or `]` at column {}", self.pos + 1)),
                    }
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let mut fields = Vec::new();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Json::Obj(fields));
                }
                loop {
                    if self.peek() != Some(b'"') {
                        return Err(format!("expected a field name at column {}", self.pos + 1));
                    }
                    let k = self.string()?;
                    self.expect(b':')?;
                    fields.push((k, self.value(depth + 1)?));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Obj(fields));
                        }
                        _ => return Err(format!("expected `,` or `}}` at column {}", self.pos + 1)),
                    }
                }
            }
            Some(c) => Err(format!("unexpected `{}` at column {}", c as char, self.pos + 1)),
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        let mut v: u64 = 0;
        while let Some(&c @ b'0'..=b'9') = self.s.get(self.pos) {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .ok_or_else(|| format!("number at column {} does not fit a u64", start + 1))?;
            self.pos += 1;
        }
        if matches!(self.s.get(self.pos), Some(b'.' | b'e' | b'E')) {
            return Err(format!("non-integer number at column {}", start + 1));
        }
        Ok(Json::Num(v))
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err("unterminated string".into());
            };
            self.pos += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|_| "invalid UTF-8 in string".into()),
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err("unterminated escape".into());
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = self.s.get(self.pos..self.pos + 4).ok_or("short \\u escape")?;
                            let code = std::str::from_utf8(hex)
                                .ok()
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or("bad \\u escape")?;
                            self.pos += 4;
                            let ch = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        _ => return Err(format!("bad escape at column {}", self.pos)),
                    }
                }
                _ => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(timed: bool) -> History {
        let mut ops = vec![
            Op::new(
                3,
                OpKind::Ok,
                vec![
                    Mop::Append(5, 12),
                    Mop::Read(5, Some(vec![1, 2, 12])),
                    Mop::Read(6, Some(vec![])),
                ],
            )
            .with_ts(7, 9),
            Op::new(1, OpKind::Fail, vec![Mop::Append(5, 13), Mop::Read(6, None)]).with_ts(7, 7),
            Op::new(2, OpKind::Info, vec![Mop::Append(u64::MAX, 0)]),
            Op::new(4, OpKind::Ok, vec![]),
        ];
        if timed {
            // Overlapping: 1 invoked at 0, 3 at 1, 3 done at 2, 1 done at 3, ...
            let times = [(1, 2), (0, 3), (4, 6), (5, 7)];
            for (o, (a, b)) in ops.iter_mut().zip(times) {
                o.invoked_at = Some(a);
                o.completed_at = Some(b);
            }
        }
        History::new(ops)
    }

    #[test]
    fn round_trip() {
        for timed in [false, true] {
            let h = sample(timed);
            let text = to_string(&h);
            assert_eq!(text.lines().count(), 2 * h.len());
            assert_eq!(parse(&text).unwrap(), h, "{text}");
        }
    }

    #[test]
    fn elle_shape() {
        let text = to_string(&sample(false));
        let first: Vec<&str> = text.lines().take(2).collect();
        assert_eq!(
            first[0],
            r#"{"index":0,"type":"invoke","f":"txn","process":3,"value":[["append",5,12],["r",5,null],["r",6,null]]}"#
        );
        assert_eq!(
            first[1],
            r#"{"index":1,"type":"ok","f":"txn","process":3,"value":[["append",5,12],["r",5,[1,2,12]],["r",6,[]]],"snapshot_ts":7,"commit_ts":9}"#
        );
        // Timed histories interleave events in time order.
        let timed = to_string(&sample(true));
        let types: Vec<String> = parse_types(&timed);
        assert_eq!(
            types,
            ["invoke 1", "invoke 3", "ok 3", "fail 1", "invoke 2", "invoke 4", "info 2", "ok 4"]
        );
    }

    fn parse_types(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| {
                let Json::Obj(f) = Reader::new(l).document().unwrap() else {
                    panic!()
                };
                let get = |n: &str| f.iter().find(|(k, _)| k == n).map(|(_, v)| v).unwrap();
                match (get("type"), get("process")) {
                    (Json::Str(t), Json::Num(p)) => format!("{t} {p}"),
                    _ => panic!(),
                }
            })
            .collect()
    }

    #[test]
    fn lenient_and_strict_parsing() {
        // Whitespace, key order, extra keys and missing invokes are fine.
        let h = parse(" { \"value\" : [ [\"r\", 1, [ 2 , 3 ] ] ], \"process\":0, \"type\":\"ok\", \"note\":\"a\\\"b\\u00e9\" }\n\n")
            .unwrap();
        assert_eq!(h.ops, [Op::new(0, OpKind::Ok, vec![Mop::Read(1, Some(vec![2, 3]))])]);
        for bad in [
            "[1]",
            r#"{"type":"ok","process":1,"value":[["append",1]]}"#,
            r#"{"type":"ok","process":1,"value":[["w",1,2]]}"#,
            r#"{"type":"ok","process":-1,"value":[]}"#,
            r#"{"type":"ok","process":1.5,"value":[]}"#,
            r#"{"type":"ok","process":99999999999999999999,"value":[]}"#,
            r#"{"type":"ok","process":1,"value":[]} x"#,
            r#"{"type":"maybe","process":1,"value":[]}"#,
            r#"{"type":"ok","value":[]}"#,
            r#"{"type":"ok","process":1,"value":[["r",1,[1,"2"]]]}"#,
            r#"{"type":"ok","process":1,"value":[["r",1,[1,2]]"#,
        ] {
            let e = parse(&format!("\n{bad}")).unwrap_err();
            assert_eq!(e.line, 2, "{bad}: {e}");
        }
        let twice =
            "{\"type\":\"invoke\",\"process\":1,\"value\":[]}\n{\"type\":\"invoke\",\"process\":1,\"value\":[]}";
        assert!(parse(twice).unwrap_err().message.contains("twice"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Arbitrary text, and a valid history with bytes replaced,
        /// inserted or cut, parse to a history or an error: never a panic.
        #[test]
        fn any_input_parses_or_errs(
            junk in ".{0,200}",
            timed: bool,
            edits in proptest::collection::vec((0usize..4096, 0u8..=255, 0u8..3), 0..8),
        ) {
            let _ = parse(&junk);
            let mut bytes = to_string(&sample(timed)).into_bytes();
            for (at, byte, kind) in edits {
                let at = at % (bytes.len() + 1);
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => bytes.truncate(at),
                }
            }
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
