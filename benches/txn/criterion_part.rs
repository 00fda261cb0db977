//! The criterion groups: `rmw`, `ro10` and `raw10` per distribution and
//! thread count.

use std::time::Duration;

use bwtx::Db;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};

use crate::engines::{Engine, Subject, READS};
use crate::passes::{raw_pass, rmw_pass, ro_pass, Loaded};
use crate::workload::{Dist, Workload, THREADS};

pub(crate) fn bench_rmw<E: Engine>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    s: &Subject<E>,
    probes: &[u64],
    threads: usize,
) {
    let mut base = 0;
    g.bench_function(BenchmarkId::new(E::NAME, threads), |b| {
        b.iter_custom(|iters| {
            let (t, _) = rmw_pass(s, probes, base, iters as usize, threads);
            base = (base + iters as usize) % probes.len();
            s.e.tidy();
            t.wall
        })
    });
}

pub(crate) fn bench_ro<E: Engine>(g: &mut BenchmarkGroup<'_, WallTime>, e: &E, probes: &[u64], threads: usize) {
    let mut base = 0;
    g.bench_function(BenchmarkId::new(E::NAME, threads), |b| {
        b.iter_custom(|iters| {
            let t = ro_pass(e, probes, base, iters as usize, threads);
            base = (base + iters as usize) % (probes.len() / READS);
            t.wall
        })
    });
}

pub(crate) fn bench_raw(g: &mut BenchmarkGroup<'_, WallTime>, db: &Db, probes: &[u64], threads: usize) {
    let mut base = 0;
    g.bench_function(BenchmarkId::new("bwtx-tree", threads), |b| {
        b.iter_custom(|iters| {
            let t = raw_pass(db, probes, base, iters as usize, threads);
            base = (base + iters as usize) % (probes.len() / READS);
            t.wall
        })
    });
}

pub(crate) fn criterion_part(w: &Workload, l: &Loaded) {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let setup = |g: &mut BenchmarkGroup<'_, WallTime>| {
        g.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(1));
    };
    for d in Dist::ALL {
        let p = w.probes(d);
        let mut g = c.benchmark_group(format!("rmw-{}", d.name()));
        setup(&mut g);
        for t in THREADS {
            bench_rmw(&mut g, &l.bw, p, t);
            bench_rmw(&mut g, &l.skip, p, t);
            bench_rmw(&mut g, &l.locked, p, t);
        }
        g.finish();

        let mut g = c.benchmark_group(format!("ro10-{}", d.name()));
        setup(&mut g);
        for t in THREADS {
            bench_ro(&mut g, &l.bw.e, p, t);
            bench_raw(&mut g, &l.bw.e, p, t);
            bench_ro(&mut g, &l.skip.e, p, t);
            bench_ro(&mut g, &l.locked.e, p, t);
        }
        g.finish();
    }
    c.final_summary();
}
