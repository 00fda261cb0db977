//! A tree rebuilt from a location table (`design/storage.md` §7, step 1):
//! every listed leaf becomes a cold stub (`super::cold`) at its page id, the inner
//! levels are built bottom-up from the leaves' low fences, and the ids below
//! the table's high-water mark that it does not list go to the free list.
//! No page image is read: leaves fault in on first use.

use bytes::Bytes;
use crossbeam_epoch as epoch;

use super::base::{InnerBase, PageRange};
use super::chain::{Chain, Node};
use super::cold::Cold;
use super::delta::Body;
use super::mapping_table::{MappingTable, Pid, NO_PID};
use super::paging::{PageIo, Paging};
use super::stats::Counters;
use super::tree::{Config, Tree, ROOT_PID_BITS};
use crate::sync::AtomicU64;

/// Largest page-id high-water mark a table may give (ids fit the root word).
const PID_HIGH_MAX: u64 = 1 << 40;

impl Tree {
    /// The tree whose leaves are `leaves` (page id, image address, low
    /// fence; in key order, the first without a low fence), all evicted,
    /// reading through `io`. `Err(reason)` if the list cannot be a tree's
    /// (the caller reports it as corruption of the table).
    pub(crate) fn restore(
        cfg: Config,
        io: Box<dyn PageIo>,
        leaves: &[(Pid, u64, Option<Bytes>)],
        pid_high: u64,
    ) -> Result<Tree, &'static str> {
        cfg.validate().map_err(|_| "invalid tree configuration")?;
        if leaves.is_empty() {
            return Err("location table lists no leaf");
        }
        if pid_high > PID_HIGH_MAX || pid_high >= 1 << ROOT_PID_BITS {
            return Err("location table's page-id high-water mark out of range");
        }
        let mut listed = vec![false; pid_high as usize];
        for (i, (pid, _, low)) in leaves.iter().enumerate() {
            match listed.get_mut(*pid as usize) {
                Some(seen @ false) => *seen = true,
                Some(true) => return Err("location table lists a page id twice"),
                None => return Err("location table lists a page id above its high-water mark"),
            }
            if low.is_none() != (i == 0) {
                return Err("location table: only the first leaf lacks a low fence");
            }
            // The inner levels route by these fences: out of order, a key
            // would be looked for in the wrong leaf.
            if i > 1 && leaves[i - 1].2 >= *low {
                return Err("location table: leaves' low fences not in key order");
            }
        }
        let mut table = MappingTable::new();
        // Counted as each chain is stored (the table is empty now), not by a
        // second pass over every node afterwards.
        table.count_bytes();
        table.restore_ids(pid_high, |pid| listed[pid as usize]);
        // The evicted leaves' cold stubs: most of the open's time (one
        // record allocated and first touched per leaf; building the 320-byte
        // stub nodes they replaced on a second thread was no faster on the
        // loaded 2-core machine measured).
        store_leaves(&table, leaves);
        // Inner levels, bottom-up: each level's pages hold about 3/4 of
        // `inner_max` children (evenly spread), until one page is left. The
        // first level reads the leaves in place (no copy of their list).
        let guard = epoch::pin();
        let fan = ((cfg.inner_max as u128 * 3 / 4) as usize).max(2);
        let mut level: Vec<(Option<Bytes>, Pid)> = if leaves.len() > 1 {
            inner_level(&table, &guard, fan, leaves, |l| (&l.2, l.0))
        } else {
            vec![(None, leaves[0].0)]
        };
        while level.len() > 1 {
            level = inner_level(&table, &guard, fan, &level, |m| (&m.0, m.1));
        }
        let root = level[0].1;
        let mut tree = Tree {
            table,
            root: AtomicU64::new(root),
            cfg: cfg.paged(),
            watermark: AtomicU64::new(0),
            stats: Counters::default(),
            paging: None,
        };
        tree.paging = Some(Box::new(Paging::new(io)));
        Ok(tree)
    }
}

/// Store a cold stub for each leaf at its page id, its range from its own
/// low fence to the next leaf's.
fn store_leaves(table: &MappingTable, leaves: &[(Pid, u64, Option<Bytes>)]) {
    for (i, (pid, addr, low)) in leaves.iter().enumerate() {
        let next = leaves.get(i + 1);
        let range = PageRange::new(
            low.clone(),
            next.and_then(|n| n.2.clone()),
            next.map_or(NO_PID, |n| n.0),
        );
        // The image's newest version is not known without reading it:
        // unbounded, so serializable validation faults the leaf in.
        let max_ts = u64::MAX;
        // Cold (`super::cold`): 16-byte keys take about 110 bytes a leaf,
        // and no 320-byte node is allocated and touched per leaf at open.
        // The read hint is unknown until the chain is read (0).
        table.store_new_cold(*pid, Cold::new(*addr, &range, max_ts, 0, 0));
    }
}

/// Build one inner level over `below` (in key order; `child` gives each
/// member's low fence and page id): `ceil(len / fan)` pages holding the
/// members evenly spread, each linked to its right sibling. Returns the new
/// pages as the next level's members.
fn inner_level<T>(
    table: &MappingTable,
    guard: &epoch::Guard,
    fan: usize,
    below: &[T],
    child: impl Fn(&T) -> (&Option<Bytes>, Pid),
) -> Vec<(Option<Bytes>, Pid)> {
    let groups = below.len().div_ceil(fan);
    let per = below.len() / groups;
    let extra = below.len() % groups;
    let mut bounds = Vec::with_capacity(groups + 1);
    let mut at = 0;
    bounds.push(0);
    for g in 0..groups {
        at += per + usize::from(g < extra);
        bounds.push(at);
    }
    let pids: Vec<Pid> = (0..groups).map(|_| table.alloc(guard)).collect();
    let mut up = Vec::with_capacity(groups);
    for g in 0..groups {
        let members = &below[bounds[g]..bounds[g + 1]];
        let high = below.get(bounds[g + 1]).and_then(|m| child(m).0.clone());
        let sibling = pids.get(g + 1).copied().unwrap_or(NO_PID);
        let (low, first) = child(&members[0]);
        let range = PageRange::new(low.clone(), high, sibling);
        let entries: Vec<(&[u8], Pid)> = members[1..]
            .iter()
            .map(|m| {
                let (low, pid) = child(m);
                (low.as_deref().unwrap_or_default(), pid)
            })
            .collect();
        let inner = InnerBase::new(range, first, &entries);
        table.store_new(pids[g], Chain::base(Node::base(Body::Inner(inner))));
        up.push((low.clone(), pids[g]));
    }
    up
}
