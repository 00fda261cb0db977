//! Criterion as the tree and transaction benchmarks set it up (feature
//! `criterion`, so the command-line tool, which uses this crate too, never
//! builds criterion).

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};

/// Criterion for benchmarks with large preloaded structures: 10 samples,
/// 0.5 s of warm-up and 2 s of measurement per benchmark, then the command
/// line's options (`--test`, filters).
pub fn short() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// Flat sampling, and one element per iteration (an operation or a
/// transaction), for a group whose iterations are timed by hand.
pub fn flat(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(1));
}
