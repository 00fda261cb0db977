//! An in-memory [`PageIo`] for the tree's unit tests (`flush_tests`,
//! `smo_tests`): images in a vector, a settable durable timestamp,
//! injectable read failures and a hook on key-set reads.

use bytes::Bytes;
use crossbeam_epoch as epoch;

use super::chain::Delta;
use super::delta::{Body, MergeRecord};
use super::image::{decode_leaf, encode_leaf};
use super::mapping_table::Pid;
use super::search::{route, Target};
use super::tree::Path;
use super::{LeafBase, PageIo, Tree};
use crate::sync::{lock, Arc, AtomicBool, AtomicU64, Mutex, Ordering};
use crate::Result;

/// Images in a vector (address = index), and a settable durable timestamp.
#[derive(Default)]
pub(super) struct MemPages {
    pub(super) images: Mutex<Vec<Bytes>>,
    pub(super) durable: AtomicU64,
    pub(super) reads: AtomicU64,
    /// Reads fail with an I/O error while set.
    pub(super) fail_reads: AtomicBool,
    /// Run (once) at the next key-set read, before it reads.
    #[allow(clippy::type_complexity)]
    pub(super) on_key_set: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl MemPages {
    /// The newest version timestamp in each image written so far.
    pub(super) fn max_ts(&self) -> Vec<u64> {
        lock(&self.images)
            .iter()
            .map(|b| decode_leaf(b).expect("valid image").max_ts())
            .collect()
    }

    /// Every (key, ts) the image at `addr` holds.
    pub(super) fn versions(&self, addr: u64) -> Vec<(Bytes, u64)> {
        let b = decode_leaf(&lock(&self.images)[addr as usize]).expect("valid image");
        (0..b.len())
            .flat_map(|i| {
                let k = Bytes::copy_from_slice(b.keys.key(i));
                b.versions(i).iter().map(move |v| (k.clone(), v.ts)).collect::<Vec<_>>()
            })
            .collect()
    }
}

impl PageIo for MemPages {
    fn read_leaf(&self, _pid: u64, addr: u64) -> Result<LeafBase> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if self.fail_reads.load(Ordering::Relaxed) {
            return Err(crate::Error::Io(std::io::Error::other("injected read failure")));
        }
        let b = lock(&self.images)[addr as usize].clone();
        Ok(decode_leaf(&b).expect("valid image"))
    }
    fn write_leaf(&self, _pid: u64, base: &LeafBase) -> Result<u64> {
        let mut buf = Vec::new();
        encode_leaf(base, &mut buf, None)?;
        let mut images = lock(&self.images);
        images.push(Bytes::from(buf));
        Ok(images.len() as u64 - 1)
    }
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    fn durable_ts(&self) -> u64 {
        self.durable.load(Ordering::Relaxed)
    }
    fn key_set(&self, pid: Pid, addr: u64) -> Result<(Box<[u64]>, u64)> {
        let hook = lock(&self.on_key_set).take();
        if let Some(hook) = hook {
            hook();
        }
        let base = self.read_leaf(pid, addr)?;
        Ok((super::blind::key_set(&base), base.max_ts()))
    }
}

/// Key `i` of the tests.
pub(super) fn key(i: u64) -> String {
    format!("key{i:04}")
}

/// A tree of tiny pages paging over `io`, key `i` written at ts `i + 1`
/// for `i < n`, every image durable.
pub(super) fn paged_tree(io: &Arc<MemPages>, n: u64) -> Tree {
    let mut tree = Tree::with_config(super::Config::tiny()).unwrap();
    tree.set_page_io(Box::new(io.clone()));
    for i in 0..n {
        tree.put(key(i), i + 1, format!("v{i}")).unwrap();
    }
    io.durable.store(u64::MAX, Ordering::Relaxed);
    tree
}

/// Two neighbouring leaves `L`, `R` under one parent, neither the leftmost
/// leaf: `(L, R, parent, the record of a merge of R into L)`, not posted.
pub(super) fn neighbours(tree: &Tree) -> (Pid, Pid, Pid, MergeRecord) {
    let (leaves, _) = tree.list_leaves(u64::MAX).unwrap();
    let guard = epoch::pin();
    for w in leaves.windows(2).skip(1) {
        let (l, r) = (&w[0], &w[1]);
        let low = r.low.clone().unwrap();
        let mut path = Path::new();
        let (pid, _) = tree
            .descend_to::<false, 0>(Target::Key(&low), &guard, &mut path)
            .unwrap();
        assert_eq!(pid, r.pid);
        let parent = path.last().unwrap().pid;
        let parent_head = tree.table.load(parent, &guard).unwrap();
        let right = route(parent_head, Target::Key(&low));
        let left = route(parent_head, Target::Before(&low));
        if right.child == r.pid && right.lo == Some(&low[..]) && left.child == l.pid && left.hi == Some(&low[..]) {
            let merge = MergeRecord {
                left: l.pid,
                right: r.pid,
                lo: left.lo.map(Bytes::copy_from_slice),
                right_low: low.clone(),
                hi: right.hi.map(Bytes::copy_from_slice),
                done: AtomicBool::new(false),
            };
            return (l.pid, r.pid, parent, merge);
        }
    }
    panic!("no two neighbouring leaves under one parent")
}

/// Post `merge`'s index-term-delete on `parent`: the merge is then
/// pending; the record as installed.
pub(super) fn post_merge(tree: &Tree, parent: Pid, merge: MergeRecord) -> Arc<MergeRecord> {
    let guard = epoch::pin();
    let parent_head = tree.table.load(parent, &guard).unwrap();
    let installed = tree
        .table
        .install(
            parent,
            parent_head,
            Delta::new(Body::IndexTermDelete(Arc::new(merge))),
            &guard,
        )
        .ok()
        .expect("the index-term-delete is installed");
    let Body::IndexTermDelete(merge) = &installed.body else {
        unreachable!()
    };
    merge.clone()
}
