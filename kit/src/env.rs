//! Knobs read from environment variables: benchmark sizes, soak lengths,
//! switches. Numbers may be written with `_` separators (`1_000_000`).

use std::str::FromStr;

/// A switch that is on unless set to `0` (unset: on).
pub fn flag(name: &str) -> bool {
    std::env::var(name).map_or(true, |v| v != "0")
}

/// `name` as a number, `None` if unset; panics with "`name` must be a number"
/// if it is set to anything else (a typo should not silently run the default).
pub fn number<T: FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number")),
    )
}

/// `name` parsed as a `T`, `None` if unset or unparsable (soak sizes of
/// tests, where the default is always safe).
pub fn parse<T: FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}
