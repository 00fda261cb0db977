//! Elle-style list-append histories from real threads, checked for
//! snapshot-isolation anomalies (and, from serializable transactions, for
//! serializability: no dependency cycle of any kind), and written to / read
//! back from JSON lines.
//!
//! `BWTX_HISTORY_TXNS` sets the transactions per thread (default 500);
//! `BWTX_HISTORY_THREADS` and `BWTX_HISTORY_KEYS` override the thread count
//! (default 4) and the number of keys in play, for bigger runs by hand.

use bwtx::history::{self, History, OpKind, WorkloadConfig};
use bwtx::{tree::Config, Db, Isolation, Options};
use bwtx_kit::env;

fn txns() -> usize {
    env::parse::<usize>("BWTX_HISTORY_TXNS").unwrap_or(500)
}

/// `cfg` with the thread and key overrides applied.
fn scaled(cfg: WorkloadConfig) -> WorkloadConfig {
    WorkloadConfig {
        threads: env::parse::<usize>("BWTX_HISTORY_THREADS").unwrap_or(cfg.threads),
        keys: env::parse::<usize>("BWTX_HISTORY_KEYS").map_or(cfg.keys, |k| k as u64),
        ..cfg
    }
}

/// Run, check (at the workload's level), and round-trip one history;
/// returns it.
fn run_and_check(db: &Db, name: &str, cfg: WorkloadConfig) -> History {
    let t0 = std::time::Instant::now();
    let h = history::workload::run(db, cfg);
    let t1 = std::time::Instant::now();
    assert_eq!(h.len(), cfg.threads * cfg.txns_per_thread + 1);
    let report = history::check_with(&h, cfg.isolation);
    eprintln!("{name}: workload {:?}, check {:?}", t1 - t0, t1.elapsed());
    assert!(report.ok, "{name}: {report}");
    assert!(report.anomalies.is_empty());
    let (ok, fail, info) = h.counts();
    assert_eq!(info, 0, "{name}: no commit may end indeterminately");
    assert!(fail > 0, "{name}: expected some conflicts: {report}");
    assert!(ok > fail, "{name}: most transactions should commit: {report}");
    let stats = db.stats();
    assert_eq!(
        stats.conflicts, fail as u64,
        "{name}: every failure is a counted conflict"
    );
    // Every committed writer appears as a commit, in one consecutive range.
    let writers: Vec<u64> = h
        .ops
        .iter()
        .filter(|o| o.kind == OpKind::Ok && o.writes())
        .map(|o| o.commit_ts.unwrap())
        .collect();
    assert_eq!(writers.len() as u64, stats.commits, "{name}");
    let max = writers.iter().max().copied().unwrap_or(0);
    if cfg.isolation == Isolation::Serializable {
        // A commit refused on a read has drawn a timestamp (reads are
        // validated after it) and committed nothing under it.
        assert!(
            max >= stats.commits && max <= stats.commits + fail as u64,
            "{name}: commit timestamps {max} within 1..=commits + refusals"
        );
    } else {
        assert_eq!(max, stats.commits, "{name}: commit timestamps are 1..=commits");
    }
    // The checker did real work: dependencies inferred, reads checked.
    let s = &report.stats;
    assert!(s.ww_edges > 0 && s.wr_edges > 0 && s.rw_edges > 0, "{name}: {report}");
    assert_eq!(
        s.snapshot_reads_checked, s.reads,
        "{name}: every read checked against its snapshot"
    );
    assert_eq!(s.unexplained_fails, 0, "{name}: every abort lost to a real winner");
    if cfg.isolation == Isolation::Serializable {
        assert_eq!(s.g2_components, 0, "{name}: no write skew: {report}");
        // Serializable histories are snapshot-isolated too.
        let si = history::check(&h);
        assert!(si.ok, "{name}: {si}");
    }
    assert!(s.keys > cfg.keys as usize, "{name}: keys rotate");

    let path = std::env::temp_dir().join(format!("bwtx-history-{name}-{}.jsonl", std::process::id()));
    history::json::write(&h, std::fs::File::create(&path).unwrap()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(text.lines().count(), 2 * h.len());
    assert!(
        text.starts_with(r#"{"index":0,"type":"invoke","f":"txn","process":"#),
        "{}",
        &text[..80]
    );
    let back = history::json::parse(&text).unwrap();
    assert_eq!(back, h, "{name}: JSON round trip");
    eprintln!("{name}: {report}");
    h
}

/// Tiny pages (splits and merges all the time) and a busy collector.
fn tiny_db() -> Db {
    Options::new()
        .tree_config(Config::tiny())
        .gc_interval(Some(std::time::Duration::from_millis(1)))
        .in_memory()
        .unwrap()
}

#[test]
fn list_append_default_config() {
    let db = Db::in_memory();
    let cfg = WorkloadConfig {
        txns_per_thread: txns(),
        seed: 1,
        ..WorkloadConfig::default()
    };
    run_and_check(&db, "default", scaled(cfg));
}

#[test]
fn list_append_tiny_pages() {
    let db = tiny_db();
    let cfg = WorkloadConfig {
        txns_per_thread: txns(),
        keys: 6,
        max_writes_per_key: 16,
        seed: 2,
        ..WorkloadConfig::default()
    };
    run_and_check(&db, "tiny", scaled(cfg));
    let stats = db.stats();
    assert!(stats.splits > 0, "tiny pages split: {stats:?}");
}

/// Serializable transactions: the history has no cycle of any kind.
#[test]
fn list_append_serializable() {
    let db = Db::in_memory();
    let cfg = WorkloadConfig {
        txns_per_thread: txns(),
        seed: 4,
        isolation: Isolation::Serializable,
        ..WorkloadConfig::default()
    };
    run_and_check(&db, "serializable", scaled(cfg));
}

/// Serializable transactions on tiny pages with a busy collector, few keys.
#[test]
fn list_append_serializable_tiny_pages() {
    let db = tiny_db();
    let cfg = WorkloadConfig {
        txns_per_thread: txns(),
        keys: 4,
        max_writes_per_key: 16,
        seed: 5,
        isolation: Isolation::Serializable,
        ..WorkloadConfig::default()
    };
    run_and_check(&db, "serializable-tiny", scaled(cfg));
}

/// The checker is not vacuous on real histories: small corruptions of a
/// valid one are each caught.
#[test]
fn checker_rejects_corrupted_real_histories() {
    use bwtx::history::Mop;
    let db = Db::in_memory();
    let cfg = WorkloadConfig {
        txns_per_thread: 100,
        seed: 3,
        ..WorkloadConfig::default()
    };
    let h = history::workload::run(&db, cfg);
    assert!(history::check(&h).ok);
    let kinds = |h: &History| {
        let r = history::check(h);
        assert!(!r.ok && !r.anomalies.is_empty());
        r.kinds()
    };
    let last = h.len() - 1; // the final read of every key
    let final_read = |k: u64| -> usize {
        h.ops[last]
            .txn
            .iter()
            .position(|m| matches!(m, Mop::Read(x, _) if *x == k))
            .unwrap()
    };

    // 1. A committed non-empty read loses its last element.
    let (i, m) = h
        .ops
        .iter()
        .enumerate()
        .take(last)
        .find_map(|(i, o)| {
            let m = o
                .txn
                .iter()
                .position(|m| matches!(m, Mop::Read(_, Some(l)) if !l.is_empty()))?;
            Some((i, m))
        })
        .unwrap();
    let mut bad = h.clone();
    let Mop::Read(_, Some(l)) = &mut bad.ops[i].txn[m] else {
        unreachable!()
    };
    l.pop();
    assert!(kinds(&bad).contains_key("snapshot-read"));

    // 2. A failed append appears in the final read of its key: G1a.
    let (k, v) = h
        .ops
        .iter()
        .filter(|o| o.kind == OpKind::Fail)
        .flat_map(|o| &o.txn)
        .find_map(|m| match m {
            Mop::Append(k, v) => Some((*k, *v)),
            _ => None,
        })
        .unwrap();
    let mut bad = h.clone();
    let m = final_read(k);
    let Mop::Read(_, Some(l)) = &mut bad.ops[last].txn[m] else {
        unreachable!()
    };
    l.push(v);
    assert!(kinds(&bad).contains_key("G1a"));

    // 3. A committed writer relabelled as failed: its values were read, G1a.
    let w = h.ops.iter().position(|o| o.kind == OpKind::Ok && o.writes()).unwrap();
    let mut bad = h.clone();
    bad.ops[w].kind = OpKind::Fail;
    assert!(kinds(&bad).contains_key("G1a"));

    // 4. The last two elements of a final read swapped.
    let (m, _) = h.ops[last]
        .txn
        .iter()
        .enumerate()
        .find(|(_, mop)| matches!(mop, Mop::Read(_, Some(l)) if l.len() >= 2))
        .unwrap();
    let mut bad = h.clone();
    let Mop::Read(_, Some(l)) = &mut bad.ops[last].txn[m] else {
        unreachable!()
    };
    let n = l.len();
    l.swap(n - 1, n - 2);
    assert!(kinds(&bad).contains_key("snapshot-read"));

    // 5. Two writers report one commit timestamp.
    let ws: Vec<usize> = (0..h.len())
        .filter(|&i| h.ops[i].kind == OpKind::Ok && h.ops[i].writes())
        .collect();
    let mut bad = h.clone();
    bad.ops[ws[1]].commit_ts = bad.ops[ws[0]].commit_ts;
    assert!(kinds(&bad).contains_key("duplicate-commit-ts"));

    // 6. The final read taken one commit earlier: stale in real time.
    let mut bad = h.clone();
    let s = bad.ops[last].snapshot_ts.unwrap();
    bad.ops[last].snapshot_ts = Some(s - 1);
    let k = kinds(&bad);
    assert!(
        k.contains_key("stale-snapshot") && k.contains_key("snapshot-read"),
        "{k:?}"
    );
}
