//! `bwtx history --out FILE [--isolation snapshot|serializable]`: run a
//! concurrent list-append workload whose transactions begin at that level,
//! write its history as Elle-format JSON lines, and check it with the
//! in-repo checker for the anomalies that level forbids (under serializable,
//! every dependency cycle, G2 included).

use std::path::PathBuf;

use bwtx::history::{self, WorkloadConfig};
use clap::Args;

use crate::bench::IsolationArg;

/// Options of `bwtx history`.
#[derive(Args, Clone, Debug)]
pub struct HistoryArgs {
    /// Where to write the history (Elle JSON, one operation per line).
    #[arg(long)]
    pub out: PathBuf,
    /// Client threads.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Transactions per thread.
    #[arg(long, default_value_t = 200)]
    pub txns: usize,
    /// Keys in play at any moment (fewer keys: more conflicts).
    #[arg(long, default_value_t = 8)]
    pub keys: u64,
    /// Micro-operations per transaction: uniformly 1 to this.
    #[arg(long, default_value_t = 4)]
    pub max_ops: usize,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The isolation level the transactions begin with (`Db::begin_with`),
    /// and the one the history is checked for.
    #[arg(long, value_enum, default_value = "snapshot")]
    pub isolation: IsolationArg,
}

/// Run, write, check; returns the exit status (1 if anomalies were found).
pub fn run(args: &HistoryArgs) -> i32 {
    // Bounded so that a mistyped number is a usage error, not a failed
    // thread spawn or an allocation of the whole address space.
    if !(1..=1024).contains(&args.threads)
        || !(1..=1 << 20).contains(&args.keys)
        || !(1..=1 << 16).contains(&args.max_ops)
        || args.txns > 1 << 24
    {
        eprintln!(
            "error: --threads must be 1 to 1024, --keys 1 to 1048576, --max-ops 1 to 65536 and --txns at most 16777216"
        );
        return 2;
    }
    // The output file first: a path that cannot be written fails now, not
    // after the run.
    if let Err(e) = std::fs::File::create(&args.out) {
        eprintln!("error: cannot write {}: {e}", args.out.display());
        return 2;
    }
    let db = bwtx::Db::in_memory();
    let cfg = WorkloadConfig {
        threads: args.threads,
        txns_per_thread: args.txns,
        keys: args.keys,
        max_ops_per_txn: args.max_ops,
        seed: args.seed,
        isolation: args.isolation.level(),
        ..WorkloadConfig::default()
    };
    let h = history::workload::run(&db, cfg);
    let (ok, fail, info) = h.counts();
    let written = std::fs::File::create(&args.out).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        history::json::write(&h, &mut w)?;
        std::io::Write::flush(&mut w)
    });
    if let Err(e) = written {
        eprintln!("error: cannot write {}: {e}", args.out.display());
        return 2;
    }
    println!(
        "wrote {} operations ({ok} ok, {fail} fail, {info} info) to {}",
        h.len(),
        args.out.display()
    );
    println!("checked for {} isolation", args.isolation.name());
    let report = history::check_with(&h, args.isolation.level());
    print!("{report}");
    if report.ok {
        0
    } else {
        1
    }
}
