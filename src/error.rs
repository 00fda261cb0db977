//! The crate's one error type.

/// Errors returned by bwtx.
///
/// The enum is `#[non_exhaustive]`: later releases add variants (conflicts,
/// I/O, corruption) without breaking matches that end in `_ =>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key longer than [`crate::tree::MAX_KEY_LEN`].
    #[error("key of {len} bytes exceeds the limit of {max} bytes")]
    KeyTooLarge {
        /// Length of the rejected key.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value longer than [`crate::tree::MAX_VALUE_LEN`].
    #[error("value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge {
        /// Length of the rejected value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An operation lost its compare-and-swap more times than the retry bound
    /// allows. Nothing was changed; the caller may retry.
    #[error("operation gave up after {attempts} lost compare-and-swap attempts")]
    Contention {
        /// How many attempts were made.
        attempts: u32,
    },
    /// An argument is outside its domain (for example timestamp 0).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A configuration value is out of its allowed range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
