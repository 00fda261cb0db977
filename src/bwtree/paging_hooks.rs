//! The paged tree's whole-tree hooks (`design/storage.md` §5.9): the
//! resident leaves in key order, and the test hooks that evict every leaf
//! (`Db::evict_all`), pack every plain stub (`Db::pack_stubs`), unpack
//! every cold one (`Db::unpack_stubs`) and drop cold key sets
//! (`Db::drop_key_sets`), and the key sets' aging pass (KS1). Split from `super::paging`, whose
//! eviction and fault-in they call.

use bytes::Bytes;
use crossbeam_epoch::{self as epoch, Guard};

use super::mapping_table::{Peek, Pid};
use super::tree::{Leaf, Tree};
use crate::sync::Ordering;
use crate::Result;

/// Page ids a whole-table walk looks at under one epoch pin.
const WALK_CHUNK: u64 = 1024;

impl Tree {
    /// The page ids of every resident leaf, in key order (for
    /// [`Tree::evict_all`]).
    pub(crate) fn leaf_pids(&self) -> Vec<Pid> {
        let mut out = Vec::new();
        let mut pos: Option<Bytes> = None;
        loop {
            let guard = epoch::pin();
            let t = pos
                .as_deref()
                .map_or(super::search::Target::Key(&[]), super::search::Target::Key);
            let mut path = super::tree::Path::new();
            // Cold leaves are passed packed.
            let high = match self.descend_leaf::<false, 0, true>(t, &guard, &mut path) {
                Ok((_, Leaf::Cold(cold))) => cold.high().map(Bytes::copy_from_slice),
                Ok((pid, Leaf::Node(head))) => {
                    if !head.is_stub() {
                        out.push(pid);
                    }
                    head.range().high.clone()
                }
                Err(_) => return out,
            };
            match high {
                Some(h) => pos = Some(h),
                None => return out,
            }
        }
    }

    /// Count the page ids for which `f` returns true, peeking every slot
    /// (one epoch pin per [`WALK_CHUNK`] ids; nothing is unpacked but by
    /// `f`).
    fn count_slots(&self, mut f: impl FnMut(Pid, Peek<'_>, &Guard) -> bool) -> usize {
        let (mut n, high) = (0, self.table.high_water());
        for start in (0..high).step_by(WALK_CHUNK as usize) {
            let guard = epoch::pin();
            for pid in start..high.min(start + WALK_CHUNK) {
                n += usize::from(f(pid, self.table.peek(pid, &guard), &guard));
            }
        }
        n
    }

    /// Pack every plain stub into a cold stub (a test hook,
    /// [`crate::Db::pack_stubs`]; the clock's hand packs only the leaves
    /// unused for a turn, PK1). Returns how many were packed.
    #[doc(hidden)]
    pub fn pack_stubs(&self) -> usize {
        let Some(paging) = self.paging.as_deref() else {
            return 0;
        };
        let packed = self.count_slots(|pid, peek, guard| match peek {
            Peek::Node(head) => head.is_stub() && self.table.pack(pid, head, guard),
            _ => false,
        });
        paging.counters.packs.fetch_add(packed as u64, Ordering::Relaxed);
        packed
    }

    /// An aging pass over the key sets of cold leaves (KS1 in
    /// `super::paging`): lower each one's age count, and drop the set of
    /// one whose count was already 0. Returns how many sets it dropped.
    pub(crate) fn age_key_sets(&self) -> usize {
        self.shed_key_sets(true)
    }

    /// Drop the key set of every cold leaf (a test hook,
    /// [`crate::Db::drop_key_sets`]; the aging passes drop only those of
    /// leaves no write used for three, KS1). Returns how many it dropped.
    #[doc(hidden)]
    pub fn drop_key_sets(&self) -> usize {
        self.shed_key_sets(false)
    }

    fn shed_key_sets(&self, aging: bool) -> usize {
        let Some(paging) = self.paging.as_deref() else {
            return 0;
        };
        let dropped = self.count_slots(|pid, peek, guard| match peek {
            Peek::Cold(c) => {
                c.has_keys()
                    && (!aging || paging.key_age.pass(pid))
                    && self.table.replace_cold(pid, c, c.without_keys(), guard)
            }
            _ => false,
        });
        paging
            .counters
            .key_sets_dropped
            .fetch_add(dropped as u64, Ordering::Relaxed);
        dropped
    }

    /// Unpack every cold stub (a test hook, [`crate::Db::unpack_stubs`]).
    /// Returns how many were unpacked.
    #[doc(hidden)]
    pub fn unpack_stubs(&self) -> usize {
        // `load` unpacks.
        self.count_slots(|pid, peek, guard| matches!(peek, Peek::Cold(_)) && self.table.load(pid, guard).is_some())
    }

    /// Evict every resident leaf that W1 lets go (a test hook: forces later
    /// accesses through a fault-in), then sync the page segment once.
    /// Returns how many were evicted.
    #[doc(hidden)]
    pub fn evict_all(&self) -> Result<usize> {
        self.evict(&self.leaf_pids(), true)
    }
}
