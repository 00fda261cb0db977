//! The checks after a kill: reopen the directory and compare what survived
//! with what the child acknowledged and what earlier rounds showed.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Excluded, Included};
use std::path::Path;

use crate::parent::{few, History, Report};
use crate::workload::{acct, base, digest, key_round, num, options, parse_log, scan, ACCOUNTS, INIT, KEEP_ROUNDS};

/// Reopen the directory after round `round`'s kill and check everything;
/// `Err` describes what is wrong.
pub(crate) fn check_round(
    dir: &Path,
    round: u64,
    rep: &Report,
    h: &mut History,
    cache: Option<u64>,
) -> Result<(), String> {
    let db = options(cache)
        .checkpoint_bytes(0)
        .gc_interval(None)
        .open(dir)
        .map_err(|e| format!("recovery failed: {e}"))?;
    let read_ts = db.snapshot().ts();
    // The change stream after the previous check: exactly the commits since,
    // each once, in order (every commit of the workload writes).
    let changes: Result<Vec<(u64, BTreeSet<String>)>, String> = db
        .changes_since(h.read_ts)
        .map_err(|e| format!("changes_since({}): {e}", h.read_ts))
        .and_then(|ch| {
            ch.map(|c| {
                c.map(|c| {
                    (
                        c.ts,
                        c.writes
                            .iter()
                            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                            .collect(),
                    )
                })
                .map_err(|e| format!("change stream: {e}"))
            })
            .collect()
        });
    let st = db.stats();
    h.torn_tails += st.torn_tails;
    h.replayed += st.replayed;
    let kv = scan(&db);
    // Nothing commits meanwhile: the count is the scan's.
    let len = db.snapshot().len();
    // Keyspace "mirror" (the child's, paged or not) holds exactly
    // the l/ records of the default keyspace: a transaction writing to both
    // is all or nothing. (Only looked up: `Db::keyspace` would create it.)
    let mut mirror_errs = Vec::new();
    if db.keyspaces().map_err(|e| e.to_string())?.iter().any(|n| n == "mirror") {
        let m = db.keyspace("mirror").map_err(|e| e.to_string())?;
        let s = db.snapshot();
        let got: BTreeMap<String, String> = s
            .range_in::<&[u8], _>(&m, ..)
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let want: BTreeMap<String, String> = kv
            .iter()
            .filter(|(k, _)| k.starts_with("l/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if got != want {
            let only_default: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
            let only_mirror: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
            mirror_errs.push(format!(
                "keyspace mirror differs from the l/ records: only in default {}, only in mirror {}",
                few(&only_default),
                few(&only_mirror)
            ));
        }
        if s.len_in(&m).map_err(|e| e.to_string())? != got.len() as u64 {
            mirror_errs.push("Snapshot::len_in(mirror) differs from its scan".to_string());
        }
    } else if rep.ready {
        mirror_errs.push("the child created keyspace mirror, recovery lost it".to_string());
    }
    drop(db);
    h.max_keys = h.max_keys.max(kv.len());
    let mut errs: Vec<String> = mirror_errs;

    // The child's own recovery saw what the previous check saw.
    if let Some((ts, n, hash)) = rep.open {
        if ts != h.read_ts {
            errs.push(format!(
                "child recovered read_ts {ts}, the previous check saw {}",
                h.read_ts
            ));
        }
        if let Some(prev) = &h.prev_digest {
            if (n, hash) != *prev {
                errs.push(format!(
                    "child recovered {n} keys (digest {hash:x}), the previous check saw {prev:?}"
                ));
            }
        }
    }
    if len != kv.len() as u64 {
        errs.push(format!(
            "Snapshot::len says {len} keys after recovery, a scan finds {}",
            kv.len()
        ));
    }
    match &changes {
        Err(e) => errs.push(e.clone()),
        Ok(changes) => {
            let ts: Vec<u64> = changes.iter().map(|c| c.0).collect();
            if !ts.iter().copied().eq(h.read_ts + 1..=read_ts) {
                errs.push(format!(
                    "the change stream after {} holds {} commits ({}), not every one up to {read_ts}",
                    h.read_ts,
                    ts.len(),
                    few(&ts)
                ));
            }
            let by_ts: BTreeMap<u64, &BTreeSet<String>> = changes.iter().map(|(t, k)| (*t, k)).collect();
            for (id, ts) in &rep.acked {
                if !by_ts.get(ts).is_some_and(|keys| keys.contains(&format!("l/{id}"))) {
                    errs.push(format!(
                        "acknowledged {id} at ts {ts} is not in the change stream with its writes"
                    ));
                }
            }
        }
    }
    // Timestamps: acknowledged ones are new, unique, and recovered.
    let mut acks: Vec<(String, u64)> = rep.acked.clone();
    acks.extend(rep.init.map(|ts| ("<init>".to_string(), ts)));
    acks.extend(rep.purge.map(|(_, ts)| ("<purge>".to_string(), ts)));
    for (id, ts) in &acks {
        if *ts <= h.read_ts {
            errs.push(format!(
                "{id} acknowledged at ts {ts} <= the recovered read_ts {} it started from",
                h.read_ts
            ));
        }
        if *ts > read_ts {
            errs.push(format!(
                "{id} acknowledged at ts {ts} > the recovered read_ts {read_ts}"
            ));
        }
        if !h.acked_ts.insert(*ts) {
            errs.push(format!("ts {ts} acknowledged twice (again by {id})"));
        }
    }
    if read_ts < h.read_ts {
        errs.push(format!("read_ts went back from {} to {read_ts}", h.read_ts));
    }

    // Accounts and bases: all or none; once there, always there.
    let accts: Vec<Option<i64>> = (0..ACCOUNTS)
        .map(|i| kv.get(&acct(i)).map(|v| num(v.as_bytes())))
        .collect();
    let bases: Vec<Option<i64>> = (0..ACCOUNTS)
        .map(|i| kv.get(&base(i)).map(|v| num(v.as_bytes())))
        .collect();
    let present = accts.iter().chain(&bases).filter(|v| v.is_some()).count();
    if present != 0 && present != 2 * ACCOUNTS {
        errs.push(format!("init partly visible: accounts {accts:?} bases {bases:?}"));
    }
    if present == 0 && (h.initialized || rep.init.is_some()) {
        errs.push("the accounts vanished (or an acknowledged init is missing)".into());
    }
    h.initialized |= present != 0;

    // Transactions: each whole or absent.
    let mut delta = [0i64; ACCOUNTS];
    let mut logs: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, v) in kv.range::<str, _>((Included("l/"), Excluded("l0"))) {
        let id = &k[2..];
        let (from, to, amount, n) = parse_log(v);
        delta[from] -= amount;
        delta[to] += amount;
        logs.insert(id, n);
        let have: Vec<usize> = (0..n)
            .filter(|j| kv.get(&format!("t/{id}/{j}")).is_some_and(|x| x == id))
            .collect();
        if have.len() != n {
            errs.push(format!(
                "transaction {id} partly visible: l/ present, t/ keys {have:?} of 0..{n}"
            ));
        }
    }
    for (k, v) in kv.range::<str, _>((Included("t/"), Excluded("t0"))) {
        let id = k[2..].rsplit_once('/').map_or("", |(id, _)| id);
        let j: usize = k
            .rsplit_once('/')
            .and_then(|(_, j)| j.parse().ok())
            .unwrap_or(usize::MAX);
        if v != id || logs.get(id).is_none_or(|&n| j >= n) {
            errs.push(format!("stray key {k} = {v:?} (its l/ record: {:?})", logs.get(id)));
        }
    }
    // Balances: exactly the surviving transfers.
    if present == 2 * ACCOUNTS {
        let total: i64 = accts.iter().map(|v| v.unwrap()).sum();
        if total != ACCOUNTS as i64 * INIT {
            errs.push(format!("total {total} != {}", ACCOUNTS as i64 * INIT));
        }
        for i in 0..ACCOUNTS {
            let want = bases[i].unwrap() + delta[i];
            if accts[i] != Some(want) {
                errs.push(format!(
                    "account {i} = {:?}, but base {:?} + surviving transfers {} = {want}",
                    accts[i], bases[i], delta[i]
                ));
            }
        }
    } else if !logs.is_empty() {
        errs.push(format!("{} transactions without accounts", logs.len()));
    }

    // The purge of this round: whole or absent, and exactly what it should
    // have deleted.
    let marker = format!("p/{round:06}");
    let purged_upto = round.checked_sub(KEEP_ROUNDS);
    let purged = kv.contains_key(&marker);
    if rep.purge.is_some() && !purged {
        errs.push(format!("acknowledged purge {marker} missing"));
    }
    if purged {
        let upto = purged_upto.expect("no purge before round KEEP_ROUNDS");
        h.purges += 1;
        let expect = h
            .model
            .keys()
            .filter(|k| key_round(k).is_some_and(|r| r <= upto))
            .count();
        if kv[&marker] != expect.to_string() {
            errs.push(format!(
                "{marker} deleted {} keys, the previous check had {expect} to delete",
                kv[&marker]
            ));
        }
        if let Some(k) = kv.keys().find(|k| key_round(k).is_some_and(|r| r <= upto)) {
            errs.push(format!("purge {marker} present but {k} survives"));
        }
        h.acked.retain(|id, _| id[..6].parse::<u64>().unwrap() > upto);
    }

    // History: the keys of earlier rounds are as the previous check saw them
    // (unless purged just now); this round adds only its own keys.
    let model: BTreeMap<String, String> = kv
        .iter()
        .filter(|(k, _)| k.starts_with("t/") || k.starts_with("l/") || k.starts_with("p/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut lost = Vec::new();
    for (k, v) in &h.model {
        let gone_by_purge = purged && key_round(k).is_some_and(|r| Some(r) <= purged_upto);
        match model.get(k) {
            Some(x) if x == v => {}
            None if gone_by_purge => {}
            x => lost.push(format!("{k}: was {v:?}, now {x:?}")),
        }
    }
    if !lost.is_empty() {
        errs.push(format!("earlier rounds' data changed: {}", few(&lost)));
    }
    let new: Vec<&String> = model
        .keys()
        .filter(|k| !h.model.contains_key(*k) && key_round(k).map_or(**k != marker, |r| r != round))
        .collect();
    if !new.is_empty() {
        errs.push(format!("keys of earlier rounds appeared: {}", few(&new)));
    }

    // Every acknowledged transaction is present.
    for (id, ts) in &rep.acked {
        h.acked.insert(id.clone(), *ts);
    }
    let missing: Vec<String> = h
        .acked
        .iter()
        .filter(|(id, _)| !logs.contains_key(id.as_str()))
        .map(|(id, ts)| format!("{id}@{ts}"))
        .collect();
    if !missing.is_empty() {
        errs.push(format!("acknowledged transactions missing: {}", few(&missing)));
    }
    let round_prefix = format!("{round:06}.");
    let acked_now: BTreeSet<&str> = rep.acked.iter().map(|(id, _)| id.as_str()).collect();
    h.present_unacked += logs
        .keys()
        .filter(|id| id.starts_with(&round_prefix) && !acked_now.contains(*id))
        .count() as u64;
    h.commits_acked += rep.acked.len() as u64;
    h.ckpt_started += rep.ckpt_started;
    h.ckpt_done += rep.ckpt_done;

    h.model = model;
    h.read_ts = read_ts;
    h.prev_digest = Some((kv.len(), digest(&kv)));
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n"))
    }
}
