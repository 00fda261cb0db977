//! The crate's error type: bwtx's errors (conflicts included), raft's
//! leadership and shutdown errors, and storage failures.

use crate::types::NodeId;

/// Errors of the replication layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An error of the local bwtx database, or the replicated transaction's
    /// first-committer-wins conflict ([`bwtx::Error::Conflict`], whose
    /// `winner` and `snapshot` are raft log indexes here).
    Bwtx(bwtx::Error),
    /// This node is not the leader; `leader` is the one it knows of, if any.
    NotLeader {
        /// The current leader known to this node.
        leader: Option<NodeId>,
    },
    /// Raft failed otherwise (stopped node, quorum not reached, a storage
    /// error reported by openraft, a bad snapshot...).
    Raft(String),
    /// A record of the replica's `Db` (a log entry, the vote, a value, a
    /// snapshot) does not decode.
    Corrupt(String),
    /// The replicas refused the proposal as malformed (a key or value over
    /// bwtx's limits, a key written twice, a snapshot position not before
    /// its entry), or it could not be sent to the leader at all (its
    /// request over the wire's frame limit, `network::wire::MAX_FRAME`):
    /// nothing was written, and proposing it again cannot help.
    /// [`crate::Txn`] never proposes a malformed one unless a bug does.
    Rejected(String),
}

impl Error {
    /// True for a first-committer-wins conflict: running the transaction
    /// again on a fresh snapshot may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Bwtx(e) if e.is_conflict())
    }

    /// True when retrying on another node (the leader) may help.
    pub fn is_not_leader(&self) -> bool {
        matches!(self, Error::NotLeader { .. })
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Bwtx(e) => write!(f, "{e}"),
            Error::NotLeader { leader: Some(l) } => write!(f, "not the leader; node {l} is"),
            Error::NotLeader { leader: None } => write!(f, "not the leader; no leader known"),
            Error::Raft(msg) => write!(f, "raft: {msg}"),
            Error::Corrupt(msg) => write!(f, "corrupt replica record: {msg}"),
            Error::Rejected(reason) => write!(f, "proposal rejected: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bwtx(e) => Some(e),
            _ => None,
        }
    }
}

impl From<bwtx::Error> for Error {
    fn from(e: bwtx::Error) -> Self {
        Error::Bwtx(e)
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
