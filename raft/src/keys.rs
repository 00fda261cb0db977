//! The key layout of a replica's two bwtx `Db`s, and the encodings stored
//! under it.
//!
//! The log store's `Db` (`<node dir>/log`, synced on every commit) holds the
//! `raft/` keys; the state machine's (`<node dir>/state`, buffered) the
//! `sm/` keys (`design/replication.md` §2 argues the split). The data keys
//! live in the state `Db`'s active generation, a keyspace of their own
//! ([`crate::generation`]); every other key in the default keyspace.
//!
//! | key | value |
//! |---|---|
//! | `raft/vote` | the vote (JSON) |
//! | `raft/purged` | the last purged log id (JSON) |
//! | `raft/log/` + index (8 bytes, big-endian) | the log entry: [`encode_entry`] (tag 1, then postcard); JSON in directories written before it |
//! | `sm/applied` | [`AppliedState`]: last applied log id and membership (JSON) |
//! | `sm/active` | the keyspace holding the data keys (`sm.gen.<n>`); absent: the default keyspace |
//! | `sm/data/` + user key, in the active keyspace | [`encode_value`]: last-written log index, then the value or a tombstone |
//! | `sm/tomb/` + index (8 bytes, big-endian) + user key, in the active keyspace | empty: the key's tombstone written at that index ([`tomb_key`]), until it is collected (keys up to [`MAX_INDEXED_KEY_LEN`]) |
//!
//! Big-endian indexes sort the log in index order, so a reverse scan of
//! the log prefix finds the last entry.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::{LogId, StoredMembership};

/// The vote.
pub const VOTE: &[u8] = b"raft/vote";
/// The last purged log id.
pub const PURGED: &[u8] = b"raft/purged";
/// Prefix of the log entries.
pub const LOG_PREFIX: &[u8] = b"raft/log/";
/// The state machine's applied log id and membership.
pub const APPLIED: &[u8] = b"sm/applied";
/// The name of the keyspace that holds the data keys (the active
/// generation, [`crate::generation`]); absent: the default keyspace.
pub const ACTIVE: &[u8] = b"sm/active";
/// Prefix of the replicated user data.
pub const DATA_PREFIX: &[u8] = b"sm/data/";

/// Prefix of the tombstone index: one key per stored tombstone, ordered by
/// the index that wrote it, so the tombstones old enough to collect are a
/// prefix of it (`design/replication.md` §3, "Tombstone collection").
pub const TOMB_PREFIX: &[u8] = b"sm/tomb/";
/// How many log entries a tombstone outlives its delete by, unless a
/// [`crate::types::Command::SetTombstoneHorizon`] entry set another
/// horizon: a commit whose snapshot is that far behind is refused as too
/// old ([`AppliedState::floor`]).
pub const DEFAULT_TOMBSTONE_HORIZON: u64 = 1_000_000;
/// The longest user key: bwtx's limit less the data prefix.
pub const MAX_USER_KEY_LEN: usize = bwtx::tree::MAX_KEY_LEN - DATA_PREFIX.len();
/// The longest user value: bwtx's limit less the 9-byte header.
pub const MAX_USER_VALUE_LEN: usize = bwtx::tree::MAX_VALUE_LEN - VALUE_HEADER;

const VALUE_HEADER: usize = 9;
const TAG_TOMBSTONE: u8 = 0;
const TAG_VALUE: u8 = 1;

/// The key of log entry `index`.
pub fn log_key(index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(LOG_PREFIX.len() + 8);
    k.extend_from_slice(LOG_PREFIX);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The index of log key `key` (a key under [`LOG_PREFIX`]).
pub fn log_index(key: &[u8]) -> Result<u64> {
    let raw: [u8; 8] = key
        .strip_prefix(LOG_PREFIX)
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| Error::Corrupt(format!("log key of {} bytes", key.len())))?;
    Ok(u64::from_be_bytes(raw))
}

/// The bwtx key of user key `key`.
pub fn data_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(DATA_PREFIX.len() + key.len());
    k.extend_from_slice(DATA_PREFIX);
    k.extend_from_slice(key);
    k
}

/// The longest user key whose tombstone is indexed (and so collected):
/// bwtx's key limit less the index prefix and the 8-byte index. Longer keys
/// (up to [`MAX_USER_KEY_LEN`]) can be deleted; their tombstones stay.
pub const MAX_INDEXED_KEY_LEN: usize = bwtx::tree::MAX_KEY_LEN - TOMB_PREFIX.len() - 8;

/// The tombstone index's key for user key `key` deleted at log index
/// `index`, or `None` if the key is too long to be indexed
/// ([`MAX_INDEXED_KEY_LEN`]).
pub fn tomb_key(index: u64, key: &[u8]) -> Option<Vec<u8>> {
    if key.len() > MAX_INDEXED_KEY_LEN {
        return None;
    }
    let mut k = Vec::with_capacity(TOMB_PREFIX.len() + 8 + key.len());
    k.extend_from_slice(TOMB_PREFIX);
    k.extend_from_slice(&index.to_be_bytes());
    k.extend_from_slice(key);
    Some(k)
}

/// The first tombstone index key after every one of a tombstone written at
/// or below `index`.
pub fn tomb_end(index: u64) -> Option<Vec<u8>> {
    let next = index.checked_add(1)?;
    let mut k = TOMB_PREFIX.to_vec();
    k.extend_from_slice(&next.to_be_bytes());
    Some(k)
}

/// The log index and user key of tombstone index key `raw`.
pub fn tomb_parse(raw: &[u8]) -> Result<(u64, &[u8])> {
    let rest = raw
        .strip_prefix(TOMB_PREFIX)
        .filter(|r| r.len() >= 8)
        .ok_or_else(|| Error::Corrupt(format!("tombstone index key of {} bytes", raw.len())))?;
    let (index, key) = rest.split_at(8);
    let mut b = [0u8; 8];
    b.copy_from_slice(index);
    Ok((u64::from_be_bytes(b), key))
}

/// The first bwtx key after every data key: [`DATA_PREFIX`] with its last
/// byte incremented (`sm/data0`).
pub fn data_end() -> Vec<u8> {
    let mut end = DATA_PREFIX.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// The first key after every key that starts with `prefix`, or `None` if
/// there is none (`prefix` empty or all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// What the state machine has applied: written in the same bwtx commit as
/// the entries it covers, so the two never disagree after a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedState {
    /// The last applied log id.
    pub last_applied: Option<LogId>,
    /// The last applied membership.
    pub membership: StoredMembership,
    /// The tombstone horizon a [`crate::types::Command::SetTombstoneHorizon`]
    /// entry set, if any ([`AppliedState::horizon`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone_horizon: Option<u64>,
    /// The tombstone floor `F` ([`AppliedState::floor`]); absent means 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tombstone_floor: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl AppliedState {
    /// The applied log index, 0 when nothing is applied (raft's first
    /// entry has index 0 too: either way no key was written after it that
    /// a transaction at 0 could miss, since key indexes start at the
    /// writing entry's index and a conflict needs a greater one).
    pub fn index(&self) -> u64 {
        self.last_applied.map_or(0, |l| l.index)
    }

    /// How many entries a tombstone outlives its delete by:
    /// [`DEFAULT_TOMBSTONE_HORIZON`] unless an entry set another.
    pub fn horizon(&self) -> u64 {
        self.tombstone_horizon.unwrap_or(DEFAULT_TOMBSTONE_HORIZON)
    }

    /// The tombstone floor `F`: every tombstone written at an index at or
    /// below it may be gone, and a transaction whose snapshot position is
    /// below it is refused as too old. After each entry at index `I`,
    /// `F = max(F, I - horizon)`: a function of the log prefix alone, so
    /// every replica has the same floor at the same position
    /// (`design/replication.md` §3, "Tombstone collection").
    pub fn floor(&self) -> u64 {
        self.tombstone_floor
    }

    /// Raise the floor for an entry applied at `index`.
    pub fn advance_floor(&mut self, index: u64) {
        self.tombstone_floor = self.tombstone_floor.max(index.saturating_sub(self.horizon()));
    }
}

/// Encode a replicated value: `index` (8 bytes, big-endian), then tag 1 and
/// the value, or tag 0 alone for a delete (a tombstone, kept so a later
/// transaction's validation still sees when the key was last written).
pub fn encode_value(index: u64, value: Option<&[u8]>) -> Vec<u8> {
    let mut v = Vec::with_capacity(VALUE_HEADER + value.map_or(0, <[u8]>::len));
    v.extend_from_slice(&index.to_be_bytes());
    match value {
        Some(val) => {
            v.push(TAG_VALUE);
            v.extend_from_slice(val);
        }
        None => v.push(TAG_TOMBSTONE),
    }
    v
}

/// Decode a replicated value: the last-written log index and the value
/// (`None` for a tombstone). A malformed one is [`Error::Corrupt`].
pub fn decode_value(raw: &Bytes) -> Result<(u64, Option<Bytes>)> {
    if raw.len() < VALUE_HEADER {
        return Err(Error::Corrupt(format!("replicated value of {} bytes", raw.len())));
    }
    let mut idx = [0u8; 8];
    idx.copy_from_slice(&raw[..8]);
    let index = u64::from_be_bytes(idx);
    match raw[8] {
        TAG_VALUE => Ok((index, Some(raw.slice(VALUE_HEADER..)))),
        TAG_TOMBSTONE if raw.len() == VALUE_HEADER => Ok((index, None)),
        tag => Err(Error::Corrupt(format!("replicated value tag {tag}"))),
    }
}

/// The first byte of an applied state in postcard ([`encode_applied`]).
/// A JSON one, as builds before it wrote (and as a snapshot file's header
/// still holds), starts with `{`.
pub const APPLIED_POSTCARD: u8 = 1;

/// [`AppliedState`]'s fields for postcard, which cannot skip a field as
/// the JSON form does (`skip_serializing_if`): every field, in order.
#[derive(Deserialize)]
struct AppliedBin {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    tombstone_horizon: Option<u64>,
    tombstone_floor: u64,
}

/// [`AppliedBin`] borrowed, to encode without copying the membership
/// (every apply encodes it): the same fields in the same order.
#[derive(Serialize)]
struct AppliedBinRef<'a> {
    last_applied: &'a Option<LogId>,
    membership: &'a StoredMembership,
    tombstone_horizon: &'a Option<u64>,
    tombstone_floor: &'a u64,
}

/// Encode the applied state as `sm/applied` holds it: [`APPLIED_POSTCARD`],
/// then its fields in postcard. Every apply reads and writes it, and every
/// transaction begun on a replica reads it (its position), so its encoding
/// is on every commit's path (`design/replication.md` §9, "The clients'
/// turn and the applied state").
pub fn encode_applied(state: &AppliedState) -> Vec<u8> {
    let bin = AppliedBinRef {
        last_applied: &state.last_applied,
        membership: &state.membership,
        tombstone_horizon: &state.tombstone_horizon,
        tombstone_floor: &state.tombstone_floor,
    };
    postcard::to_extend(&bin, vec![APPLIED_POSTCARD]).expect("an applied state serializes to postcard")
}

/// Decode an applied state written by [`encode_applied`], or the JSON one
/// of an older directory or a snapshot's header. Anything else, a
/// truncated record or bytes left over is [`Error::Corrupt`], never a
/// panic.
///
/// The floor is at least the applied index less the horizon, as applying
/// every entry leaves it ([`AppliedState::advance_floor`]): a state written
/// before tombstone collection (no floor, read as 0) gets the floor its
/// index implies, so two replicas upgraded at different positions decide
/// the next entries alike (before 2026-12-07 the one upgraded later kept
/// floor 0 for an entry, and took a proposal the other refused as too old).
pub fn decode_applied(raw: &[u8]) -> Result<AppliedState> {
    let mut state = decode_tagged(raw, APPLIED_POSTCARD, "applied state", |bin: AppliedBin| AppliedState {
        last_applied: bin.last_applied,
        membership: bin.membership,
        tombstone_horizon: bin.tombstone_horizon,
        tombstone_floor: bin.tombstone_floor,
    })?;
    state.advance_floor(state.index());
    Ok(state)
}

/// Decode a record that is `tag` then postcard of `B` (made a `T` by
/// `from_bin`), or JSON of `T` (starting `{`, as older builds wrote it).
/// Anything else, a truncated record or bytes left over is
/// [`Error::Corrupt`] naming `what`, never a panic.
fn decode_tagged<B, T>(raw: &[u8], tag: u8, what: &str, from_bin: impl FnOnce(B) -> T) -> Result<T>
where
    B: serde::de::DeserializeOwned,
    T: serde::de::DeserializeOwned,
{
    match raw.first() {
        Some(&t) if t == tag => from_postcard(&raw[1..])
            .map(from_bin)
            .map_err(|e| Error::Corrupt(format!("{what}: {e}"))),
        Some(b'{') => from_json(raw, what),
        Some(t) => Err(Error::Corrupt(format!("{what}: unknown encoding tag {t}"))),
        None => Err(Error::Corrupt(format!("{what}: an empty record"))),
    }
}

/// The first byte of a log entry in postcard ([`encode_entry`]). A JSON
/// entry, as builds before it wrote, starts with `{`.
pub const ENTRY_POSTCARD: u8 = 1;

/// Encode a log entry: [`ENTRY_POSTCARD`], then the entry in postcard
/// (serde's compact binary format, as the TCP transport sends entries).
/// A batch entry of 7 transfers is about 500 bytes this way against about
/// 1,800 in JSON, and the log commit that makes it durable writes (and
/// syncs) that much less (`design/replication.md` §9, "Entries in
/// postcard").
pub fn encode_entry(entry: &crate::types::Entry) -> Vec<u8> {
    let out = vec![ENTRY_POSTCARD];
    postcard::to_extend(entry, out).expect("raft entries serialize to postcard")
}

/// Decode a log entry written by [`encode_entry`], or the JSON entry of a
/// directory written before it. Anything else, a truncated record or
/// bytes left over is [`Error::Corrupt`], never a panic.
pub fn decode_entry(raw: &[u8]) -> Result<crate::types::Entry> {
    decode_tagged(raw, ENTRY_POSTCARD, "log entry", |e| e)
}

/// Decode exactly one `T` in postcard from `body`: one that does not
/// decode, or has bytes left over, is an error naming why (never a panic).
/// The log's entries ([`decode_entry`]) and the TCP transport's frames
/// (`network::wire::decode`) both decode this way.
pub(crate) fn from_postcard<T: serde::de::DeserializeOwned>(body: &[u8]) -> std::result::Result<T, String> {
    match postcard::take_from_bytes(body) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} bytes left over after a message", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

/// Decode JSON stored under `what`; a malformed record is [`Error::Corrupt`].
pub fn from_json<T: serde::de::DeserializeOwned>(raw: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(raw).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}

/// Encode `value` as JSON (our types always serialize).
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("raft records serialize to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_bad_ones_are_errors() {
        let v = Bytes::from(encode_value(7, Some(b"abc")));
        assert_eq!(decode_value(&v).unwrap(), (7, Some(Bytes::from_static(b"abc"))));
        let t = Bytes::from(encode_value(u64::MAX, None));
        assert_eq!(decode_value(&t).unwrap(), (u64::MAX, None));
        assert!(decode_value(&Bytes::from_static(b"short")).is_err());
        let mut bad = encode_value(1, None);
        bad[8] = 9;
        assert!(decode_value(&Bytes::from(bad)).is_err());
    }

    /// A batch entry of `n` bank transfers (two account writes each), a
    /// serializable proposal among them.
    fn transfers(n: usize) -> crate::types::Entry {
        use crate::types::{log_id, Command, EntryPayload, KeyRange, Proposal};
        let txns = (0..n)
            .map(|i| Proposal {
                snapshot: 4_000 + i as u64,
                writes: vec![
                    (data_key(format!("acct/{:04}", i).as_bytes()), Some(b"1017".to_vec())),
                    (
                        data_key(format!("acct/{:04}", i + 50).as_bytes()),
                        Some(b"983".to_vec()),
                    ),
                ],
                reads: if i == 0 { vec![b"acct/0099".to_vec()] } else { vec![] },
                ranges: if i == 0 {
                    vec![KeyRange {
                        start: b"a".to_vec(),
                        end: Some(b"b".to_vec()),
                    }]
                } else {
                    vec![]
                },
            })
            .collect();
        crate::types::Entry {
            log_id: log_id(3, 1, 4_321),
            payload: EntryPayload::Normal(Command::Batch { txns }),
        }
    }

    /// Three voters and a learner.
    fn members() -> openraft::Membership<crate::types::NodeId, openraft::BasicNode> {
        use std::collections::BTreeSet;
        openraft::Membership::new_with_defaults(vec![BTreeSet::from([1, 2, 3])], [4])
    }

    fn entries() -> Vec<crate::types::Entry> {
        use crate::types::{log_id, EntryPayload};
        vec![
            transfers(7),
            crate::types::Entry {
                log_id: log_id(2, 3, 17),
                payload: EntryPayload::Blank,
            },
            crate::types::Entry {
                log_id: log_id(2, 3, 18),
                payload: EntryPayload::Membership(members()),
            },
        ]
    }

    /// The entry as JSON text: a comparison that needs no `PartialEq`.
    fn text(e: &crate::types::Entry) -> String {
        String::from_utf8(to_json(e)).unwrap()
    }

    #[test]
    fn entries_round_trip_in_postcard_and_old_json_ones_still_decode() {
        for e in entries() {
            let raw = encode_entry(&e);
            assert_eq!(raw[0], ENTRY_POSTCARD);
            assert_eq!(text(&decode_entry(&raw).unwrap()), text(&e));
            // A directory written before the change holds JSON entries.
            assert_eq!(text(&decode_entry(&to_json(&e)).unwrap()), text(&e));
        }
        // The point of the encoding: a 7-transfer batch is a fraction of
        // its JSON.
        let e = transfers(7);
        let (bin, json) = (encode_entry(&e).len(), to_json(&e).len());
        assert!(bin * 3 < json, "postcard {bin} bytes, JSON {json}");
    }

    /// Every truncation of `raw` and `raw` with a byte more do not decode;
    /// no flipped bit after the tag panics (one may still decode: the
    /// `Db`'s records carry the CRC that catches it).
    fn damage_is_an_error_never_a_panic<T>(raw: &[u8], decode: impl Fn(&[u8]) -> Result<T>) {
        for cut in 0..raw.len() {
            assert!(decode(&raw[..cut]).is_err(), "cut at {cut} of {}", raw.len());
        }
        let mut long = raw.to_vec();
        long.push(0);
        assert!(decode(&long).is_err());
        for i in 1..raw.len() {
            for bit in 0..8 {
                let mut bad = raw.to_vec();
                bad[i] ^= 1 << bit;
                let _ = decode(&bad);
            }
        }
        assert!(decode(&[7, 1, 2]).is_err());
        assert!(decode(b"").is_err());
    }

    #[test]
    fn damaged_entries_are_errors_never_panics() {
        for e in entries() {
            damage_is_an_error_never_a_panic(&encode_entry(&e), decode_entry);
        }
        assert!(decode_entry(b"{\"log_id\":").is_err());
    }

    fn applied_states() -> Vec<AppliedState> {
        use crate::types::log_id;
        vec![
            AppliedState::default(),
            AppliedState {
                last_applied: Some(log_id(3, 2, 4711)),
                membership: StoredMembership::new(Some(log_id(2, 1, 9)), members()),
                tombstone_horizon: Some(500),
                tombstone_floor: 4211,
            },
        ]
    }

    #[test]
    fn applied_states_round_trip_in_postcard_and_json_ones_still_decode() {
        for a in applied_states() {
            let raw = encode_applied(&a);
            assert_eq!(raw[0], APPLIED_POSTCARD);
            assert_eq!(decode_applied(&raw).unwrap(), a);
            // An older directory, and a snapshot's header, hold JSON.
            assert_eq!(decode_applied(&to_json(&a)).unwrap(), a);
        }
    }

    #[test]
    fn damaged_applied_states_are_errors_never_panics() {
        for a in applied_states() {
            damage_is_an_error_never_a_panic(&encode_applied(&a), decode_applied);
        }
        assert!(decode_applied(b"{\"last_applied\":").is_err());
    }

    #[test]
    fn ends_bound_their_prefixes() {
        let end = data_end();
        assert!(data_key(&[0xff; 64]) < end && data_key(b"") < end);
        assert!(end.as_slice() > DATA_PREFIX && !end.starts_with(DATA_PREFIX));
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn log_keys_sort_by_index() {
        assert!(log_key(255) < log_key(256));
        assert!(log_key(0) < log_key(u64::MAX));
        assert_eq!(log_index(&log_key(1234)).unwrap(), 1234);
        assert!(log_index(b"raft/log/x").is_err());
    }
}
