//! The raft type configuration and the replicated command.
//!
//! A client transaction runs on a leader against a bwtx snapshot taken at
//! applied log index `snapshot`; its commit proposes a [`Command::Txn`] with
//! its write set. Every replica's state machine decides the same
//! [`Response`] for it at apply (`design/replication.md` §3). A
//! serializable transaction's proposal also carries the keys it read and the
//! ranges it scanned ([`KeyRange`]); both are left out of JSON when empty
//! (the log's records before they moved to postcard, which still read), and
//! always written in postcard (the log's records now, and the TCP wire).

use serde::{Deserialize, Serialize};

/// A node's id in the cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's types for bwtx: [`Command`] in, [`Response`] out, nodes
    /// as [`openraft::BasicNode`] (its `addr` is the node's `host:port` on
    /// the TCP transport, empty on the in-process network, which routes by
    /// id); terms, leader ids (`leader_id_adv`: a term and a node id), votes
    /// and entries openraft's defaults. Snapshot data is the state
    /// machine's (`StateMachine::SnapshotData`, an open file), no longer
    /// part of the type configuration in openraft 0.10.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
);

/// A log id: the committed leader id (term and node) and an index.
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
/// A raft log entry.
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
/// A raft log entry's payload.
pub type EntryPayload = openraft::alias::EntryPayloadOf<TypeConfig>;
/// A vote (a leader id, and whether a quorum granted it).
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
/// The membership with the log id of the entry that set it.
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
/// A snapshot's description (last log id, membership, id).
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot's data as openraft passes it around: an open snapshot file
/// ([`crate::snapshot::SnapshotFile`]; openraft 0.10 asks only `Send +
/// 'static` of it, so the data never has to be in memory).
pub type SnapshotData = crate::snapshot::SnapshotFile;
/// A snapshot: its description and its file.
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;
/// The leader id a log id carries: a term and the node elected in it.
pub type LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, NodeId>;

/// The log id at `index` of the entry proposed by `node` as leader in
/// `term`.
pub fn log_id(term: u64, node: NodeId, index: u64) -> LogId {
    LogId::new(LeaderId { term, node_id: node }, index)
}

/// The openraft handle of one replica.
pub type Raft = openraft::Raft<TypeConfig, crate::state_machine::StateMachine>;

/// A replicated proposal: the payload of a normal raft log entry.
///
/// Serialized by hand (below) so that `reads` and `ranges` are left out
/// when empty only in human-readable formats (JSON: the log's records in
/// directories written before they moved to postcard), and always written
/// in binary ones (postcard: the log's records now, `keys::encode_entry`,
/// and the TCP transport's messages), which cannot skip a field.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum Command {
    /// A transaction's write set, with the applied log index of the
    /// snapshot it read (its position `P`).
    Txn {
        /// The applied log index the transaction's snapshot reflects.
        snapshot: u64,
        /// Key, and the new value or `None` for a delete; keys unique.
        writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        /// Serializable only: the keys read from the snapshot (found or
        /// absent).
        #[serde(default)]
        reads: Vec<Vec<u8>>,
        /// Serializable only: the key ranges scanned in the snapshot.
        #[serde(default)]
        ranges: Vec<KeyRange>,
    },
    /// Several transactions' proposals in one entry (the leader's
    /// proposer batches those that queue while earlier entries are in
    /// flight). Each is decided in order as a `Txn` at this entry's index
    /// would be, after the ones before it in the batch.
    Batch {
        /// The proposals, in decision order.
        txns: Vec<Proposal>,
    },
    /// Set the tombstone horizon: from this entry on, a tombstone may be
    /// collected once `entries` more entries are applied after its delete,
    /// and a transaction whose snapshot is behind the resulting floor is
    /// refused as too old (`design/replication.md` §3, "Tombstone
    /// collection"). Replicated, so every replica collects alike; 0 is
    /// rejected.
    SetTombstoneHorizon {
        /// The horizon, in log entries.
        entries: u64,
    },
}

/// One transaction's proposal inside a [`Command::Batch`] (serialized by
/// hand, as [`Command`] is).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Proposal {
    /// The applied log index the transaction's snapshot reflects.
    pub snapshot: u64,
    /// Key, and the new value or `None` for a delete; keys unique.
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Serializable only: the keys read from the snapshot (found or absent).
    #[serde(default)]
    pub reads: Vec<Vec<u8>>,
    /// Serializable only: the key ranges scanned in the snapshot.
    #[serde(default)]
    pub ranges: Vec<KeyRange>,
}

/// The most bytes of keys, values, read keys and range bounds one
/// transaction may propose ([`Proposal::bytes`]), and about the most one
/// log entry holds: a batch stops before it would pass it (unless it is
/// one proposal). Well under the TCP frame limit (64 MiB) and bwtx's
/// largest commit (2 GiB), so that no entry the log takes fails to
/// replicate or to apply.
pub const MAX_PROPOSAL_BYTES: usize = 32 << 20;

impl Proposal {
    /// Bytes of keys, values, read keys and range bounds, with the most
    /// their encoding adds to each ([`WRITE_OVERHEAD`], [`READ_OVERHEAD`],
    /// [`RANGE_OVERHEAD`]): an entry's encoding is at most its proposals'
    /// bytes and a few more per proposal.
    pub fn bytes(&self) -> usize {
        proposal_bytes(&self.writes, &self.reads, &self.ranges)
    }
}

/// The most an entry's encoding adds to one write's key and value: two
/// lengths (varints: at most 5 bytes below 32 GiB) and the value's option
/// tag. Counted in [`Proposal::bytes`], so that a proposal of many small
/// writes within [`MAX_PROPOSAL_BYTES`] also encodes within the TCP frame
/// limit (before 2026-12-07 only keys and values counted: 11 million 3-byte
/// keys passed as 32 MiB and encoded past 64 MiB, an entry no follower
/// could receive).
pub const WRITE_OVERHEAD: usize = 11;
/// [`WRITE_OVERHEAD`] for a read key: its length.
pub const READ_OVERHEAD: usize = 5;
/// [`WRITE_OVERHEAD`] for a range: two lengths and the end's option tag.
pub const RANGE_OVERHEAD: usize = 11;

/// [`Proposal::bytes`] of a proposal's parts (a [`Command::Txn`]'s too).
pub(crate) fn proposal_bytes(writes: &[(Vec<u8>, Option<Vec<u8>>)], reads: &[Vec<u8>], ranges: &[KeyRange]) -> usize {
    let writes: usize = writes
        .iter()
        .map(|(k, v)| WRITE_OVERHEAD + k.len() + v.as_ref().map_or(0, Vec::len))
        .sum();
    let reads: usize = reads.iter().map(|r| READ_OVERHEAD + r.len()).sum();
    let ranges: usize = ranges
        .iter()
        .map(|r| RANGE_OVERHEAD + r.start.len() + r.end.as_ref().map_or(0, Vec::len))
        .sum();
    writes + reads + ranges
}

/// Serialize a transaction's fields into `out` (a struct or a struct
/// variant): `reads` and `ranges` skipped when empty in a human-readable
/// format, always written in a binary one.
macro_rules! txn_fields {
    ($out:ident, $keep:expr, $snapshot:expr, $writes:expr, $reads:expr, $ranges:expr) => {{
        $out.serialize_field("snapshot", $snapshot)?;
        $out.serialize_field("writes", $writes)?;
        if $keep || !$reads.is_empty() {
            $out.serialize_field("reads", $reads)?;
        } else {
            $out.skip_field("reads")?;
        }
        if $keep || !$ranges.is_empty() {
            $out.serialize_field("ranges", $ranges)?;
        } else {
            $out.skip_field("ranges")?;
        }
        $out.end()
    }};
}

impl Serialize for Command {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStructVariant;
        let keep = !s.is_human_readable();
        match self {
            Command::Txn {
                snapshot,
                writes,
                reads,
                ranges,
            } => {
                let mut out = s.serialize_struct_variant("Command", 0, "Txn", 4)?;
                txn_fields!(out, keep, snapshot, writes, reads, ranges)
            }
            Command::Batch { txns } => {
                let mut out = s.serialize_struct_variant("Command", 1, "Batch", 1)?;
                out.serialize_field("txns", txns)?;
                out.end()
            }
            Command::SetTombstoneHorizon { entries } => {
                let mut out = s.serialize_struct_variant("Command", 2, "SetTombstoneHorizon", 1)?;
                out.serialize_field("entries", entries)?;
                out.end()
            }
        }
    }
}

impl Serialize for Proposal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let keep = !s.is_human_readable();
        let mut out = s.serialize_struct("Proposal", 4)?;
        txn_fields!(out, keep, &self.snapshot, &self.writes, &self.reads, &self.ranges)
    }
}

impl Proposal {
    /// The log entry's command for this proposal alone.
    pub fn into_command(self) -> Command {
        Command::Txn {
            snapshot: self.snapshot,
            writes: self.writes,
            reads: self.reads,
            ranges: self.ranges,
        }
    }
}

/// A range of user keys a serializable transaction scanned: `start`
/// included, `end` excluded (`None`: to the end of the keyspace).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    /// The first key of the range.
    pub start: Vec<u8>,
    /// The first key after the range, or `None` for no bound.
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|e| key < e)
    }

    /// `ranges` sorted by start and joined where they overlap or touch:
    /// the same keys, each once. A transaction that scanned in a loop
    /// proposes each part of the key space once, and every replica
    /// validates it once (before 2026-12-08 each scan was proposed and
    /// walked at apply again).
    pub fn merged(mut ranges: Vec<KeyRange>) -> Vec<KeyRange> {
        ranges.sort_by(|a, b| a.start.cmp(&b.start));
        let mut out: Vec<KeyRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            if let Some(last) = out.last_mut() {
                // `last` reaches `r`'s start (ends are exclusive).
                if last.end.as_ref().is_none_or(|e| r.start <= *e) {
                    last.end = match (last.end.take(), r.end) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                    continue;
                }
            }
            out.push(r);
        }
        out
    }
}

/// What a conflicting transaction did with the key another wrote first
/// (mapped to [`bwtx::ConflictReason`] for the client).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Conflicted {
    /// It wrote the key (first committer wins; both isolation levels).
    #[default]
    Write,
    /// Serializable: it read the key (found or absent).
    Read,
    /// Serializable: the key lies in this range, which it scanned (an
    /// insert, update or delete inside it counts).
    Range(KeyRange),
}

/// The state machine's outcome for one log entry; every replica computes
/// the same one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A blank or membership entry: nothing to report.
    Empty,
    /// The transaction committed; its writes carry log index `index`.
    Committed {
        /// The entry's log index: the commit's position in the log.
        index: u64,
    },
    /// An entry applied after the transaction's snapshot (at log index
    /// `winner` > `snapshot`) wrote `key`, which the transaction wrote
    /// (first committer wins) or, serializable, read or scanned past: nothing
    /// was written.
    Conflict {
        /// The first such key: written keys are checked first (in the
        /// proposal's order), then read keys, then scanned ranges.
        key: Vec<u8>,
        /// The log index of that later write.
        winner: u64,
        /// The transaction's snapshot position.
        snapshot: u64,
        /// What the transaction did with `key`.
        #[serde(default)]
        reason: Conflicted,
    },
    /// The proposal is malformed (a key or value over bwtx's limits, a key
    /// written twice, a snapshot position not before the entry): nothing
    /// was written. Clients built on `Txn` never propose one.
    Rejected {
        /// What is wrong.
        reason: String,
    },
    /// The transaction's snapshot position is below the tombstone floor:
    /// a tombstone it would have to be validated against may be gone, so it
    /// is refused, whatever it wrote; nothing was written. Running it again
    /// on a fresh snapshot may succeed.
    TooOld {
        /// The transaction's snapshot position.
        snapshot: u64,
        /// The floor: the oldest snapshot position a commit may have.
        oldest: u64,
    },
    /// The outcomes of a [`Command::Batch`], one per proposal, in order.
    Batch {
        /// One outcome per proposal.
        outcomes: Vec<Response>,
    },
}

impl std::fmt::Display for Command {
    /// A summary (openraft 0.10 logs entries with it): the kind and sizes,
    /// not the keys and values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Txn {
                snapshot,
                writes,
                reads,
                ranges,
            } => write!(
                f,
                "txn(snapshot {snapshot}, {} writes, {} reads, {} ranges)",
                writes.len(),
                reads.len(),
                ranges.len()
            ),
            Command::Batch { txns } => write!(f, "batch({} txns)", txns.len()),
            Command::SetTombstoneHorizon { entries } => write!(f, "set tombstone horizon({entries})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeyRange;

    fn r(start: &str, end: Option<&str>) -> KeyRange {
        KeyRange {
            start: start.as_bytes().to_vec(),
            end: end.map(|e| e.as_bytes().to_vec()),
        }
    }

    /// Overlapping and touching ranges join (ends are exclusive: `[a, c)`
    /// and `[c, f)` cover `[a, f)`); a gap keeps them apart; the same scan
    /// a thousand times is one range.
    #[test]
    fn ranges_merge_where_they_overlap_or_touch() {
        let mut many = vec![r("q/", Some("q0")); 1000];
        many.extend([
            r("c", Some("f")),
            r("a", Some("c")),
            r("d", Some("e")),
            r("g", Some("h")),
            r("x", None),
            r("y", Some("z")),
        ]);
        assert_eq!(
            KeyRange::merged(many),
            vec![r("a", Some("f")), r("g", Some("h")), r("q/", Some("q0")), r("x", None)]
        );
        assert_eq!(KeyRange::merged(vec![]), vec![]);
    }
}
