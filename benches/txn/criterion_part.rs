//! The criterion groups: `rmw`, `ro10` and `raw10` per distribution and
//! thread count.

use bwtx::Db;
use bwtx_kit::criterion_setup;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId};

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
    let mut c = criterion_setup::short();
    let setup = criterion_setup::flat;
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
