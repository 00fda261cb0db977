//! The shell's reads of the past and its counts: `at TS get KEY`,
//! `at TS scan [LO [HI]]`, `at TS len` (time travel, `Db::snapshot_at`),
//! `len` (`Snapshot::len` / `Transaction::len`) and `changes SINCE [N]` (the
//! change stream, `Db::changes_since`).

use std::ops::Bound;

use super::{print_entries, show, Session};

/// Changes `changes SINCE` prints by default.
const CHANGES_SHOWN: usize = 20;

impl Session<'_> {
    /// `len`: the exact key count of the current keyspace in the open
    /// transaction's view, or in a snapshot of everything committed.
    pub(super) fn len(&self) -> Result<(), String> {
        let n = match &self.tx {
            Some(tx) => tx.len_in(&self.ks),
            None => self.db.snapshot().len_in(&self.ks),
        }
        .map_err(|e| e.to_string())?;
        println!("{n} keys");
        Ok(())
    }

    /// `at TS get KEY | at TS scan [LO [HI]] | at TS len`.
    pub(super) fn at(&self, args: &[&str]) -> Result<(), String> {
        let ts: u64 = args[0]
            .parse()
            .map_err(|_| format!("`{}` is not a commit timestamp", args[0]))?;
        let snap = self.db.snapshot_at(ts).map_err(|e| e.to_string())?;
        match (args[1].to_ascii_lowercase().as_str(), &args[2..]) {
            ("get", [key]) => {
                match snap.get_in(&self.ks, key).map_err(|e| e.to_string())? {
                    Some(v) => println!("{}", show(&v)),
                    None => println!("(not found at {ts})"),
                }
                Ok(())
            }
            ("scan", rest) if rest.len() <= 2 => {
                let lo = rest.first().map_or(Bound::Unbounded, |k| Bound::Included(k.as_bytes()));
                let hi = rest.get(1).map_or(Bound::Unbounded, |k| Bound::Excluded(k.as_bytes()));
                print_entries(snap.range_in::<&[u8], _>(&self.ks, (lo, hi)))
            }
            ("len", []) => {
                let n = snap.len_in(&self.ks).map_err(|e| e.to_string())?;
                println!("{n} keys at {ts}");
                Ok(())
            }
            _ => Err("usage: at TS get KEY | at TS scan [LO [HI]] | at TS len".to_owned()),
        }
    }

    /// `changes SINCE [N]`.
    pub(super) fn changes(&self, args: &[&str]) -> Result<(), String> {
        let since: u64 = args[0]
            .parse()
            .map_err(|_| format!("`{}` is not a commit timestamp", args[0]))?;
        let shown = match args.get(1) {
            Some(n) => n.parse().map_err(|_| format!("`{n}` is not a count"))?,
            None => CHANGES_SHOWN,
        };
        let mut changes = self.db.changes_since(since).map_err(|e| e.to_string())?;
        let mut n = 0;
        for change in changes.by_ref().take(shown) {
            let change = change.map_err(|e| e.to_string())?;
            // The default keyspace's writes bare, the others' as `NAME:KEY`.
            let spaces = std::iter::once(("", &change.writes))
                .chain(change.keyspaces.iter().map(|(name, w)| (name.as_str(), w)));
            let ddl = change
                .created
                .iter()
                .map(|n| format!("create keyspace {n}"))
                .chain(change.dropped.iter().map(|n| format!("drop keyspace {n}")));
            let writes: Vec<String> = ddl
                .chain(spaces.flat_map(|(name, writes)| {
                    let at = if name.is_empty() {
                        String::new()
                    } else {
                        format!("{name}:")
                    };
                    writes.iter().map(move |(k, v)| match v {
                        Some(v) => format!("put {at}{} = {}", show(k), show(v)),
                        None => format!("delete {at}{}", show(k)),
                    })
                }))
                .collect();
            println!("{}: {}", change.ts, writes.join("; "));
            n += 1;
        }
        let resume = changes.position();
        let more = changes.next().is_some();
        println!(
            "({n} commits{}; resume with `changes {resume}`)",
            if more { ", more after" } else { "" },
        );
        Ok(())
    }
}
