//! Loom model-checking tests for `bwtx` (run with `RUSTFLAGS="--cfg loom --cfg crossbeam_loom"`); the models live in `tests/`.
