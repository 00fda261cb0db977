//! Blind writes (`design/storage.md` §3, §5.4): version deltas posted on an
//! evicted leaf's stub without reading its image, as the Bw-Tree and LLAMA
//! papers post blind updates. The invariants are P4-P6 in
//! `super::paging`; here are the pieces the paths share:
//!
//! - the stub under a chain ([`stub_of`]) and the chain's deltas
//!   ([`blind_versions`]);
//! - the key fingerprints an evicted stub keeps ([`key_set`],
//!   [`key_live`]), which tell a blind write whether its key was live in
//!   the image, so the commit's live-key count stays exact without
//!   building the page (a stub restored from a table has none until a
//!   blind write reads them from its on-disk chain, [`Tree::blind_check`]);
//! - the decision of a commit's validation ([`Tree::blind_check`]);
//! - a chain rebuilt with a chain's deltas over a new base
//!   ([`rebuilt`]): a fault-in (over the image), an eviction or flush of
//!   the deltas (over a new stub), a relocation (over a moved stub);
//! - the delta flush of a chain's deltas on the stub's on-disk chain
//!   ([`Tree::flush_blind`]);
//! - GC of a chain's deltas among themselves, without the image
//!   ([`Tree::collect_blind`], rules B1-B3; `design/storage.md` §5.6).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use crossbeam_epoch::Guard;

use super::base::LeafBase;
use super::chain::{Chain, Node};
use super::delta::{Body, Payload};
use super::mapping_table::{Peek, Pid};
use super::paging::{detached, DeltaVersion, Paging};
use super::search::delta_find;
use super::tree::Tree;
use crate::sync::Ordering;
use crate::Result;

/// The 64-bit fingerprint of `key` in a [`key_set`], its low bit cleared
/// (the set keeps the key's liveness there). SipHash-1-3 with fixed keys:
/// the sets live in memory only, never on disk.
pub(crate) fn fingerprint(key: &[u8]) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key) & !1
}

/// The fingerprints of `base`'s keys, each with its low bit set if the
/// key's newest version is a value (not a tombstone), sorted.
pub(crate) fn key_set(base: &LeafBase) -> Box<[u64]> {
    let mut set: Vec<u64> = (0..base.len())
        .map(|i| {
            let live = base
                .versions(i)
                .first()
                .is_some_and(|v| v.len != super::base::TOMBSTONE);
            fingerprint(base.keys.key(i)) | u64::from(live)
        })
        .collect();
    set.sort_unstable();
    set.into_boxed_slice()
}

/// Is `key` live in the image whose [`key_set`] is `set`? `false` if the
/// set holds no key with its fingerprint. Exact unless two keys of one
/// leaf share a 64-bit fingerprint (about 2^-58 for a key the leaf lacks).
pub(crate) fn key_live(set: &[u64], key: &[u8]) -> bool {
    let fp = fingerprint(key);
    set.binary_search(&(fp | 1)).is_ok()
}

/// `set` with the liveness of the keys of `versions` (key order, newest
/// first per key) as their newest versions say.
fn key_set_with(set: &[u64], versions: &[DeltaVersion<'_>]) -> Box<[u64]> {
    let mut out: Vec<u64> = set.to_vec();
    let mut last: Option<&[u8]> = None;
    for &(key, _, value) in versions {
        if last == Some(key) {
            continue;
        }
        last = Some(key);
        let fp = fingerprint(key);
        out.retain(|&f| f & !1 != fp);
        out.push(fp | u64::from(value.is_some()));
    }
    out.sort_unstable();
    out.into_boxed_slice()
}

/// The `Evicted` stub at the base of `head`'s chain (`None`: the chain's
/// base is resident).
pub(crate) fn stub_of(head: &Node) -> Option<&Node> {
    if !head.is_evicted() {
        return None;
    }
    let mut node = head;
    while let Some(next) = node.next() {
        node = next;
    }
    Some(node)
}

/// The version deltas of a chain over a stub (P4: nothing else is over
/// one), newest first.
fn deltas(head: &Node) -> impl Iterator<Item = (u64, &Payload)> {
    let mut node = Some(head);
    std::iter::from_fn(move || {
        let n = node?;
        node = n.next();
        match &n.body {
            Body::Version { ts, kv } => Some((*ts, kv)),
            _ => None,
        }
    })
}

/// Every version of the deltas of `head`'s chain over its stub, in key
/// order and newest first per key (as a delta flush takes them).
pub(crate) fn blind_versions(head: &Node) -> Vec<DeltaVersion<'_>> {
    let mut out: Vec<DeltaVersion<'_>> = deltas(head)
        .map(|(ts, kv)| (kv.key(), ts, super::paging::value_slice(kv.value())))
        .collect();
    out.sort_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
    out
}

/// Per key, the newest version at or below `watermark` among the deltas of
/// `head`'s chain over its stub: each is newer than every version of the
/// stub's image (P5), so GC at the watermark drops every version of that
/// key in the image (a fault-in's collection, `super::paging`).
pub(crate) fn newest_at_or_below(head: &Node, watermark: u64) -> HashMap<&[u8], u64> {
    let mut out = HashMap::new();
    if watermark > 0 {
        for (ts, kv) in deltas(head).filter(|&(ts, _)| ts <= watermark) {
            let t = out.entry(kv.key()).or_insert(0);
            *t = ts.max(*t);
        }
    }
    out
}

/// The versions (key, timestamp) of the deltas over `head`'s stub that GC
/// at `watermark` drops without the image (B1 in [`Tree::collect_blind`]):
/// per key, every version older than its newest one at or below the
/// watermark, and that one too if it is a tombstone and `keys` (the stub's
/// key set) says the image does not hold the key live. Without a key set,
/// tombstones stay.
pub(crate) fn blind_garbage<'a>(head: &'a Node, watermark: u64, keys: Option<&[u64]>) -> HashSet<(&'a [u8], u64)> {
    let mut out = HashSet::new();
    let versions = blind_versions(head);
    let mut i = 0;
    while i < versions.len() {
        let key = versions[i].0;
        let end = i + versions[i..].iter().take_while(|v| v.0 == key).count();
        // Newest first: the first at or below the watermark is what every
        // snapshot that can still read sees of the key, or something newer.
        if let Some(at) = (i..end).find(|&j| versions[j].1 <= watermark) {
            let dead = versions[at].2.is_none() && keys.is_some_and(|k| !key_live(k, key));
            let from = if dead { at } else { at + 1 };
            out.extend(versions[from..end].iter().map(|v| (v.0, v.1)));
        }
        i = end;
    }
    out
}

/// A copy of `stub` (an `Evicted` node's body) that shares no bytes with
/// the page it came from, with `max_ts` and `keys` replaced where given.
fn stub_copy(stub: &Body, max: Option<u64>, set: Option<Box<[u64]>>) -> Option<Node> {
    let Body::Evicted {
        addr,
        range,
        max_ts,
        watermark,
        keys,
        hint,
    } = stub
    else {
        return None;
    };
    Some(Node::base(Body::Evicted {
        addr: *addr,
        range: detached(range),
        max_ts: max.unwrap_or(*max_ts),
        watermark: *watermark,
        keys: set.or_else(|| keys.clone()),
        hint: *hint,
    }))
}

/// `head`'s deltas (those `keep` accepts, by key and timestamp) rebuilt
/// over `base`, oldest first, so the new chain reads as the old one over
/// the new base.
pub(crate) fn rebuilt(head: &Node, base: Node, keep: impl Fn(&[u8], u64) -> bool) -> Chain {
    let mut chain = Chain::base(base);
    let kept: Vec<(u64, &Payload)> = deltas(head).filter(|&(ts, kv)| keep(kv.key(), ts)).collect();
    for (ts, kv) in kept.into_iter().rev() {
        chain.push_version(Body::Version { ts, kv: kv.clone() });
    }
    chain
}

/// What a commit's validation learned of a key on a chain over a stub
/// without its image: the newest version's timestamp (`None`: none newer
/// than the stub's `max_ts`, which is at or below the snapshot) and
/// whether the key is live.
pub(crate) struct BlindCheck {
    pub(crate) newest: Option<u64>,
    pub(crate) live: bool,
}

impl Tree {
    /// Can a commit at snapshot `snapshot_ts` validate its write of `key`
    /// on `head` (the chain of page `pid`, over a stub) without the page
    /// (P5)? Yes if a delta holds the key (its newest version), or if the
    /// stub's `max_ts` is at or below the snapshot (no version on disk is
    /// newer): then the stub's key set tells whether the key is live. A
    /// stub that has none (restored from a table, its `max_ts` unknown)
    /// gets both read from its on-disk chain (`PageIo::key_set`: the parts read,
    /// no page built, no value read) and CASed in with it
    /// ([`Tree::with_key_set`]). Only while the chain is shorter than the
    /// consolidation threshold (longer chains are faulted in and
    /// consolidated). Returns the head to install on with the check;
    /// `Ok(None)`: fault the leaf in (also when the chain moved while its
    /// key set was read, as R2 in `super::read_through`).
    pub(crate) fn blind_check<'g>(
        &'g self,
        paging: &Paging,
        pid: Pid,
        head: &'g Node,
        key: &[u8],
        snapshot_ts: u64,
        guard: &'g Guard,
    ) -> Result<Option<(&'g Node, BlindCheck)>> {
        if head.chain_len >= self.cfg.leaf_chain {
            return Ok(None);
        }
        if let Some(Some(hit)) = delta_find(head, key, u64::MAX) {
            let newest = Some(hit.ts());
            return Ok(Some((
                head,
                BlindCheck {
                    newest,
                    live: hit.is_live(),
                },
            )));
        }
        let Some(Body::Evicted { addr, max_ts, keys, .. }) = stub_of(head).map(|s| &s.body) else {
            return Ok(None);
        };
        // A stub restored from a table does not know its `max_ts` (it is
        // `u64::MAX`) until its key set is read.
        if *max_ts > snapshot_ts && (keys.is_some() || *max_ts != u64::MAX) {
            return Ok(None);
        }
        if let Some(keys) = keys {
            return Ok(Some((
                head,
                BlindCheck {
                    newest: None,
                    live: key_live(keys, key),
                },
            )));
        }
        let (set, chain_max) = match paging.io.key_set(pid, *addr) {
            Ok(read) => read,
            Err(_) if !matches!(self.table.peek(pid, guard), Peek::Node(h) if std::ptr::eq(h, head)) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        paging.counters.key_set_reads.fetch_add(1, Ordering::Relaxed);
        let live = key_live(&set, key);
        let max_ts = if *max_ts == u64::MAX {
            chain_max
        } else {
            (*max_ts).max(chain_max)
        };
        // The set lost its CAS (the chain moved meanwhile: a relocation, a
        // packing hand): fault the leaf in now, in `prepare`, rather than
        // at the install, after the commit took its timestamp, where only a
        // merge may fault in (G1, `design/storage.md` §5.2).
        let Some(head) = self.with_key_set(pid, head, set, max_ts, guard) else {
            return Ok(None);
        };
        if max_ts > snapshot_ts {
            return Ok(None);
        }
        Ok(Some((head, BlindCheck { newest: None, live })))
    }

    /// Replace `head` (a chain over a stub without a key set) by the same
    /// chain over a copy of the stub that has `set` and `max_ts`; returns
    /// the new head, or `None` if the chain changed meanwhile (the set is
    /// then dropped; the next blind write reads it again).
    fn with_key_set<'g>(
        &'g self,
        pid: Pid,
        head: &'g Node,
        set: Box<[u64]>,
        max_ts: u64,
        guard: &'g Guard,
    ) -> Option<&'g Node> {
        let stub = stub_of(head).and_then(|s| stub_copy(&s.body, Some(max_ts), Some(set)))?;
        self.table
            .replace(pid, head, rebuilt(head, stub, |_, _| true), guard)
            .ok()
    }

    /// GC of the chain `head` (version deltas over a stub of page `pid`)
    /// at `watermark`, without the image: the deltas [`blind_garbage`]
    /// names are dropped, the rest rebuilt over a copy of the stub and
    /// CASed in. Returns the versions dropped (0 if the CAS lost: the
    /// next sweep looks again). Rules:
    /// - B1 (what goes). Every delta is newer than every version of the
    ///   image (P5). So for a key whose newest delta version at or below
    ///   the watermark is `v`, the older delta versions are hidden from
    ///   every snapshot that can read (none is below the watermark), and
    ///   so are the image's versions of the key (a fault-in drops those,
    ///   `newest_at_or_below`). `v` itself goes only if it is a tombstone
    ///   and the image does not hold the key live (the key set; none:
    ///   kept): then the image reads the key as absent at every such
    ///   snapshot, as `v` did. A tombstone over a live image value stays.
    /// - B2 (nothing else changes). The stub's address, `max_ts`, key set
    ///   and watermark are the same, so a commit that validated blind on
    ///   the old chain (P5) and installs on the new one by a fresh descent
    ///   learns the same: B1 never drops a key's newest version but a
    ///   tombstone over a non-live key, whose check over the stub alone
    ///   says the same (not live, nothing newer than `max_ts`).
    /// - B3 (one CAS). The new chain replaces `head` by one CAS on the
    ///   slot, as a fault-in's does: a blind write, eviction, flush or
    ///   fault-in that moved the chain meanwhile makes it lose, and nothing
    ///   is dropped.
    pub(crate) fn collect_blind(&self, pid: Pid, head: &Node, watermark: u64, guard: &Guard) -> u64 {
        let Some(stub) = stub_of(head) else {
            return 0;
        };
        let Body::Evicted { keys, .. } = &stub.body else {
            return 0;
        };
        let garbage = blind_garbage(head, watermark, keys.as_deref());
        if garbage.is_empty() {
            return 0;
        }
        let Some(copy) = stub_copy(&stub.body, None, None) else {
            return 0;
        };
        let chain = rebuilt(head, copy, |k, ts| !garbage.contains(&(k, ts)));
        match self.table.replace(pid, head, chain, guard) {
            Ok(_) => {
                let n = garbage.len() as u64;
                self.stats.versions_dropped.fetch_add(n, Ordering::Relaxed);
                n
            }
            Err(_) => 0,
        }
    }

    /// Write the deltas of `head` (a chain over a stub of page `pid`) at or
    /// below `limit` as a delta flush on the stub's on-disk chain, then CAS
    /// in a new stub at the new head, with the deltas above `limit` kept
    /// over it (P6). Returns the chain head that holds every version of the
    /// page at or below `limit`, and whether the CAS won; `None`: the page
    /// store declined (fault the page in instead, and write it whole).
    pub(crate) fn flush_blind(
        &self,
        paging: &Paging,
        pid: Pid,
        head: &Node,
        limit: u64,
        guard: &Guard,
    ) -> Result<Option<(u64, bool)>> {
        match self.blind_chain(paging, pid, head, limit)? {
            None => Ok(None),
            Some((addr, None)) => Ok(Some((addr, true))),
            Some((addr, Some(chain))) => Ok(Some((addr, self.replace_evicted(paging, pid, head, chain, guard)))),
        }
    }

    /// [`Tree::flush_blind`] up to the CAS: the new chain head and the chain
    /// to CAS in (`None`: nothing to write, the stub's head holds it all).
    pub(crate) fn blind_chain(
        &self,
        paging: &Paging,
        pid: Pid,
        head: &Node,
        limit: u64,
    ) -> Result<Option<(u64, Option<Chain>)>> {
        let Some(Body::Evicted {
            addr,
            range,
            max_ts,
            watermark,
            keys,
            ..
        }) = stub_of(head).map(|s| &s.body)
        else {
            return Ok(None);
        };
        let versions = blind_versions(head);
        let written: Vec<DeltaVersion<'_>> = versions.iter().filter(|v| v.1 <= limit).copied().collect();
        if written.is_empty() {
            return Ok(Some((*addr, None)));
        }
        // P5 says every delta is newer than the chain; should the page store
        // know the chain newer, its append would skip versions: fault in.
        if let Some(upto) = paging.io.chain_upto(*addr) {
            if written.iter().any(|v| v.1 <= upto) {
                return Ok(None);
            }
        }
        let Some(new) = paging.io.write_delta_on(pid, *addr, &written)? else {
            return Ok(None);
        };
        paging.counters.pages_written.fetch_add(1, Ordering::Relaxed);
        paging.counters.delta_flushes.fetch_add(1, Ordering::Relaxed);
        let top = written.iter().map(|v| v.1).max().unwrap_or(0);
        let stub = Node::base(Body::Evicted {
            addr: new,
            range: detached(range),
            max_ts: (*max_ts).max(top),
            watermark: *watermark,
            keys: keys.as_deref().map(|k| key_set_with(k, &written)),
            // A delta flush: two parts at least.
            hint: 0,
        });
        Ok(Some((new, Some(rebuilt(head, stub, |_, ts| ts > limit)))))
    }
}
