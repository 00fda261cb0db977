//! The check after reopening: every engine recovers every key's value.

use std::time::Instant;

use bwtx_kit::par::value_of;
use bwtx_kit::rng::mix;

use crate::engines::Engine;

/// A digest of every key's value; panics on a missing key.
pub(crate) fn digest(e: &dyn Engine, keys: &[u64]) -> (u64, usize) {
    let mut sum = 0u64;
    let mut changed = 0;
    for &k in keys {
        let v = e.value(k).unwrap_or_else(|| panic!("{}: key {k:#x} lost", e.name()));
        changed += usize::from(v != value_of(k));
        sum = sum.wrapping_add(mix(k ^ mix(v)));
    }
    (sum, changed)
}

/// Close and reopen every engine that stores keys; every key must read the
/// same value after recovery as before.
pub(crate) fn check(engines: &mut [Box<dyn Engine>], keys: &[u64]) {
    for e in engines.iter_mut().filter(|e| e.stores_keys()) {
        let before = digest(&**e, keys);
        let start = Instant::now();
        e.reopen();
        let reopened = start.elapsed();
        let after = digest(&**e, keys);
        assert_eq!(before, after, "{}: values differ after reopening", e.name());
        println!(
            "  {:<12} reopened in {:.2}s: all {} keys read back unchanged ({} of them overwritten by the passes)",
            e.name(),
            reopened.as_secs_f64(),
            keys.len(),
            before.1
        );
    }
}
