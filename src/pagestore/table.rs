//! The location table (`design/storage.md` §2.5): checkpoint format version
//! 2, where each tree's leaves are on disk. Pure encode and decode: decoding
//! never panics and allocates at most the size of its input; the low fences
//! it returns are slices of the input buffer, not copies (one allocation per
//! leaf fewer at open; the buffer lives as long as any fence does). Written by the
//! incremental checkpoint (`engine::checkpoint`), read at open (`engine::open`).
//!
//! Little-endian integers, CRC32C (Castagnoli).
//! ```text
//! table   = header tree* footer
//! header  = "BWTXCKP\0" (8) | version u32 (= 2) | trees u32 | ts u64                 24 bytes
//! tree    = tree u16 | pad u16 (= 0) | leaves u32 | pid_high u64 | live u64 | leaf*
//!                                                                          24 bytes + leaves
//!           live: the tree's live keys as of `ts` (`Snapshot::len`)
//! leaf    = pid u64 | addr u64 | low_len u32 | low fence (low_len bytes)      20 bytes + fence
//!           low_len u32::MAX: no low fence (the leftmost leaf), no bytes follow
//! footer  = vlog_head u64 | pages_head u64 | crc u32 | "BWTXEND\0" (8)               28 bytes
//!           crc = CRC32C of every byte before it (header, trees, vlog_head, pages_head)
//! ```
//! Trees are listed in increasing `tree` order, each tree's leaves in
//! increasing low-fence order (only the first may have none). A decoder
//! rejects any other order, trailing bytes, or a count the bytes cannot hold.

use bytes::Bytes;

use super::record::Addr;

const MAGIC: &[u8; 8] = b"BWTXCKP\0";
const END: &[u8; 8] = b"BWTXEND\0";
/// Version 1 is the full key-value image of `wal::checkpoint`.
pub(crate) const VERSION: u32 = 2;
const HEADER_LEN: usize = 24;
const TREE_LEN: usize = 24;
const LEAF_LEN: usize = 20;
const FOOTER_LEN: usize = 28;
/// `low_len` of a leaf without a low fence.
const NO_FENCE: u32 = u32::MAX;

/// One leaf: its page id, the address of its newest flushed part, and its
/// low fence (`None`: the leftmost leaf).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leaf {
    pub(crate) pid: u64,
    pub(crate) addr: Addr,
    pub(crate) low: Option<Bytes>,
}

/// One tree's leaves, in key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TreeTable {
    pub(crate) tree: u16,
    /// The tree's page-id high-water mark: ids below it not listed are free.
    pub(crate) pid_high: u64,
    /// The tree's live keys as of the table's timestamp.
    pub(crate) live: u64,
    pub(crate) leaves: Vec<Leaf>,
}

/// A location table as of checkpoint timestamp `ts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Table {
    pub(crate) ts: u64,
    /// In increasing `tree` order.
    pub(crate) trees: Vec<TreeTable>,
    /// The value log's end address when the table was written.
    pub(crate) vlog_head: Addr,
    /// The page store's end address when the table was written.
    pub(crate) pages_head: Addr,
}

/// Encode `t` (its trees and leaves in the order the format requires).
pub(crate) fn encode(t: &Table) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&(t.trees.len() as u32).to_le_bytes());
    b.extend_from_slice(&t.ts.to_le_bytes());
    for tree in &t.trees {
        b.extend_from_slice(&tree.tree.to_le_bytes());
        b.extend_from_slice(&[0; 2]);
        b.extend_from_slice(&(tree.leaves.len() as u32).to_le_bytes());
        b.extend_from_slice(&tree.pid_high.to_le_bytes());
        b.extend_from_slice(&tree.live.to_le_bytes());
        for leaf in &tree.leaves {
            b.extend_from_slice(&leaf.pid.to_le_bytes());
            b.extend_from_slice(&leaf.addr.to_le_bytes());
            match &leaf.low {
                Some(k) => {
                    debug_assert!(k.len() < NO_FENCE as usize);
                    b.extend_from_slice(&(k.len() as u32).to_le_bytes());
                    b.extend_from_slice(k);
                }
                None => b.extend_from_slice(&NO_FENCE.to_le_bytes()),
            }
        }
    }
    b.extend_from_slice(&t.vlog_head.to_le_bytes());
    b.extend_from_slice(&t.pages_head.to_le_bytes());
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(END);
    b
}

/// Reads fields front to back; every read is bounds-checked.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Parse and verify a table; `Err((offset, reason))` names the first damage.
/// Each leaf's low fence is a slice of `input` (no copy).
pub(crate) fn decode(input: &Bytes) -> Result<Table, (u64, &'static str)> {
    let b: &[u8] = input;
    if b.len() < HEADER_LEN + FOOTER_LEN {
        return Err((0, "location table shorter than header and footer"));
    }
    if &b[..8] != MAGIC || b[8..12] != VERSION.to_le_bytes() {
        return Err((0, "bad location table header"));
    }
    let foot = b.len() - FOOTER_LEN;
    if &b[foot + 20..] != END {
        return Err((foot as u64, "bad location table footer"));
    }
    let crc = u32::from_le_bytes(b[foot + 16..foot + 20].try_into().expect("4 bytes"));
    if crc32c::crc32c(&b[..foot + 16]) != crc {
        return Err((foot as u64, "location table checksum mismatch"));
    }
    let mut c = Cursor {
        b: &b[..foot],
        at: 8 + 4,
    };
    let body = |c: &Cursor<'_>| (c.at as u64, "location table entry malformed");
    let n_trees = c.u32().ok_or(body(&c))? as usize;
    let ts = c.u64().ok_or(body(&c))?;
    // Each tree takes at least TREE_LEN bytes, each leaf LEAF_LEN: the
    // capacities stay within the input's size.
    let mut trees: Vec<TreeTable> = Vec::with_capacity(n_trees.min(foot / TREE_LEN));
    for _ in 0..n_trees {
        let at = c.at as u64;
        let (Some(tree), Some(0), Some(n_leaves), Some(pid_high), Some(live)) =
            (c.u16(), c.u16(), c.u32(), c.u64(), c.u64())
        else {
            return Err((at, "location table tree header malformed"));
        };
        if trees.last().is_some_and(|t| t.tree >= tree) {
            return Err((at, "location table trees out of order"));
        }
        let n_leaves = n_leaves as usize;
        let mut leaves: Vec<Leaf> = Vec::with_capacity(n_leaves.min(foot / LEAF_LEN));
        for _ in 0..n_leaves {
            let at = c.at as u64;
            let (Some(pid), Some(addr), Some(low_len)) = (c.u64(), c.u64(), c.u32()) else {
                return Err((at, "location table leaf malformed"));
            };
            let low = match low_len {
                NO_FENCE => None,
                n => {
                    let from = c.at;
                    c.take(n as usize).ok_or(body(&c))?;
                    Some(input.slice(from..c.at))
                }
            };
            let ordered = match (leaves.last().map(|l| &l.low), &low) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(None), Some(_)) => true,
                (Some(Some(prev)), Some(k)) => prev < k,
            };
            if !ordered {
                return Err((at, "location table leaves out of key order"));
            }
            leaves.push(Leaf { pid, addr, low });
        }
        trees.push(TreeTable {
            tree,
            pid_high,
            live,
            leaves,
        });
    }
    if c.at != foot {
        return Err((c.at as u64, "location table has bytes after its last tree"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    Ok(Table {
        ts,
        trees,
        vlog_head: u64_at(foot),
        pages_head: u64_at(foot + 8),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> Table {
        Table {
            ts: 42,
            trees: vec![
                TreeTable {
                    tree: 0,
                    pid_high: 9,
                    live: 3,
                    leaves: vec![
                        Leaf {
                            pid: 1,
                            addr: 1 << 32 | 32,
                            low: None,
                        },
                        Leaf {
                            pid: 4,
                            addr: 2 << 32 | 80,
                            low: Some(Bytes::from_static(b"m")),
                        },
                        Leaf {
                            pid: 7,
                            addr: 2 << 32 | 200,
                            low: Some(Bytes::from_static(b"mz")),
                        },
                    ],
                },
                TreeTable {
                    tree: 3,
                    pid_high: 2,
                    live: 0,
                    leaves: vec![],
                },
            ],
            vlog_head: 5 << 32 | 64,
            pages_head: 2 << 32 | 248,
        }
    }

    #[test]
    fn every_bit_flip_and_cut_is_detected() {
        let t = small();
        let b = encode(&t);
        assert_eq!(decode(&Bytes::from(b.clone())).unwrap(), t);
        for bit in 0..b.len() * 8 {
            let mut d = b.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&d.into()).is_err(), "flip of bit {bit} went unnoticed");
        }
        for cut in 0..b.len() {
            assert!(
                decode(&Bytes::copy_from_slice(&b[..cut])).is_err(),
                "cut at {cut} went unnoticed"
            );
        }
    }

    /// A table whose crc is right but whose body is wrong is still refused.
    #[test]
    fn well_checksummed_nonsense_is_refused() {
        let reseal = |mut t: Vec<u8>| {
            let foot = t.len() - FOOTER_LEN;
            let crc = crc32c::crc32c(&t[..foot + 16]);
            t[foot + 16..foot + 20].copy_from_slice(&crc.to_le_bytes());
            t
        };
        let mut out_of_order = small();
        out_of_order.trees[0].leaves.swap(1, 2);
        let mut fence_late = small();
        fence_late.trees[0].leaves[2].low = None;
        let mut trees_swapped = small();
        trees_swapped.trees.swap(0, 1);
        for t in [out_of_order, fence_late, trees_swapped] {
            assert!(decode(&encode(&t).into()).is_err(), "{t:?}");
        }
        let mut huge = encode(&small());
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes()); // trees
        assert!(decode(&reseal(huge).into()).is_err());
    }

    fn arb_table() -> impl Strategy<Value = Table> {
        let leaf = (any::<u64>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..6));
        let tree = (any::<u64>(), proptest::collection::vec(leaf, 0..6));
        (
            any::<u64>(),
            proptest::collection::btree_map(any::<u16>(), tree, 0..4),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(ts, trees, vlog_head, pages_head)| Table {
                ts,
                trees: trees
                    .into_iter()
                    .map(|(tree, (pid_high, leaves))| {
                        let mut keys: Vec<Vec<u8>> = leaves.iter().map(|l| l.2.clone()).collect();
                        keys.sort();
                        keys.dedup();
                        TreeTable {
                            tree,
                            pid_high,
                            live: pid_high.wrapping_mul(7),
                            leaves: keys
                                .into_iter()
                                .zip(&leaves)
                                .enumerate()
                                .map(|(i, (k, l))| Leaf {
                                    pid: l.0,
                                    addr: l.1,
                                    low: (i > 0).then(|| Bytes::from(k)),
                                })
                                .collect(),
                        }
                    })
                    .collect(),
                vlog_head,
                pages_head,
            })
    }

    proptest! {
        #[test]
        fn round_trip(t in arb_table()) {
            prop_assert_eq!(decode(&encode(&t).into()).unwrap(), t);
        }
    }
}
