//! # bwtx-kit
//!
//! The helpers bwtx's benchmarks, examples, tests and command-line tool share,
//! written once:
//!
//! - [`rng`]: SplitMix64, a tiny deterministic generator, and its finalizer
//!   [`rng::mix`];
//! - [`zipf`]: YCSB's zipfian ranks;
//! - [`env`](mod@env): sizes and switches read from environment variables;
//! - [`machine`]: the load average and the file system a path is on, printed
//!   beside benchmark results;
//! - [`alloc`]: a counting global allocator for heap-bytes-per-key figures;
//! - `criterion_setup` (feature `criterion`): criterion as the benchmarks
//!   set it up;
//! - [`par`]: the thread fan-out, value function and probe walk the benchmarks
//!   measure with.
//!
//! ## Why a crate, and why without bwtx
//!
//! It is a workspace member (`publish = false`) that every target reaches as a
//! crate, with no path-attribute includes. Its only dependency is criterion (optional,
//! feature `criterion`); in particular it does not depend on `bwtx`: the `bwtx` command-line tool is a binary of the `bwtx` package and
//! the library's history workload (feature `history`) draws its choices from
//! [`rng::SplitMix64`], so `bwtx` depends on this crate (optionally, through
//! its `cli` and `history` features), and a dependency back on `bwtx` would be
//! a cycle. Helpers that need bwtx's types (the `FaultFs` set-ups, database
//! dumps) live with the tests that use them, in `tests/common/`.
//!
//! Publishing `bwtx` with its `cli` or `history` feature would need this crate
//! published too.

pub mod alloc;
#[cfg(feature = "criterion")]
pub mod criterion_setup;
pub mod env;
pub mod machine;
pub mod par;
pub mod rng;
pub mod ycsb;
pub mod zipf;

pub use rng::SplitMix64;
pub use zipf::Zipf;
