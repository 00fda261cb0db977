//! Structure modifications happen and keep the tree exact: growth through
//! splits, shrinking through merges down to a single leaf, and bad input.

use bwtx::tree::{Config, Tree, MAX_KEY_LEN};
use bwtx::Error;

fn k(i: u32) -> [u8; 4] {
    i.to_be_bytes()
}

#[test]
fn grows_by_splits_and_shrinks_by_merges() {
    let tree = Tree::with_config(Config::tiny()).unwrap();
    let n = 3000u32;
    for i in 0..n {
        tree.put(k(i * 7919 % n), 1, k(i)).unwrap();
    }
    let s = tree.stats();
    assert!(s.splits > 500, "{s:?}");
    assert!(s.root_grows >= 3, "{s:?}");
    for i in 0..n {
        assert_eq!(tree.get(k(i * 7919 % n), 1).unwrap().as_deref(), Some(&k(i)[..]));
    }
    // Delete all but every 100th key, then collect: pages empty and merge.
    for i in 0..n {
        if i % 100 != 0 {
            tree.delete(k(i), 2).unwrap();
        }
    }
    tree.collect_garbage(2);
    tree.collect_garbage(2);
    let s = tree.stats();
    assert!(s.merges > 100, "{s:?}");
    let keys: Vec<_> = tree.range::<&[u8], _>(.., 2).map(|r| r.unwrap().0).collect();
    let want: Vec<_> = (0..n)
        .filter(|i| i % 100 == 0)
        .map(|i| bytes::Bytes::copy_from_slice(&k(i)))
        .collect();
    assert_eq!(keys, want);
    let rev: Vec<_> = tree.range::<&[u8], _>(.., 2).rev().map(|r| r.unwrap().0).collect();
    assert_eq!(rev.len(), want.len());
    // Old snapshots at or above the watermark still read exactly.
    assert_eq!(tree.get(k(5), 2).unwrap(), None);
    // Delete the rest: the tree collapses to one empty leaf and still works.
    for i in (0..n).step_by(100) {
        tree.delete(k(i), 3).unwrap();
    }
    tree.collect_garbage(3);
    tree.collect_garbage(3);
    assert_eq!(tree.range::<&[u8], _>(.., 3).count(), 0);
    let s = tree.stats();
    assert!(s.root_shrinks >= 1, "{s:?}");
    tree.put(b"again", 4, b"v").unwrap();
    assert_eq!(tree.get(b"again", 4).unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn oversize_key_is_an_error_not_a_panic() {
    let tree = Tree::new();
    let big = vec![0u8; MAX_KEY_LEN + 1];
    assert!(matches!(tree.put(&big, 1, b"v"), Err(Error::KeyTooLarge { .. })));
    assert!(matches!(tree.get(&big, 1), Err(Error::KeyTooLarge { .. })));
    assert!(matches!(tree.delete(&big, 1), Err(Error::KeyTooLarge { .. })));
    let ok = vec![7u8; MAX_KEY_LEN];
    tree.put(&ok, 1, b"v").unwrap();
    assert_eq!(tree.get(&ok, 1).unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn invalid_config_is_rejected() {
    let bad = Config {
        leaf_max: 1,
        ..Config::default()
    };
    assert!(matches!(Tree::with_config(bad), Err(Error::InvalidConfig(_))));
    let bad = Config {
        leaf_min: 100,
        leaf_max: 128,
        ..Config::default()
    };
    assert!(matches!(Tree::with_config(bad), Err(Error::InvalidConfig(_))));
}

#[test]
fn large_values_are_shared_not_copied() {
    let tree = Tree::with_config(Config::tiny()).unwrap();
    let big = bytes::Bytes::from(vec![9u8; 1 << 20]);
    tree.install(bytes::Bytes::from_static(b"big"), 1, Some(big.clone()))
        .unwrap();
    for i in 0..100u32 {
        tree.put(k(i), 2, b"x").unwrap(); // consolidations and splits around it
    }
    let got = tree.get(b"big", 5).unwrap().unwrap();
    assert_eq!(got.len(), 1 << 20);
    assert_eq!(got.as_ptr(), big.as_ptr(), "the value's buffer is the one we installed");
}

/// The default configuration (wide inner pages) grows and collapses too.
#[test]
fn default_config_grows_and_collapses() {
    let tree = Tree::new();
    let n = 60_000u32;
    for i in 0..n {
        tree.put(k(i.wrapping_mul(2_654_435_761)), 1, k(i)).unwrap();
    }
    let s = tree.stats();
    assert!(s.splits > 400 && s.root_grows >= 2, "{s:?}");
    assert_eq!(tree.iter(1).count(), n as usize);
    for i in 0..n {
        tree.delete(k(i.wrapping_mul(2_654_435_761)), 2).unwrap();
    }
    for _ in 0..10 {
        tree.collect_garbage(2);
    }
    let s = tree.stats();
    assert!(s.merges > 400 && s.root_shrinks >= 1, "{s:?}");
    assert_eq!(tree.iter(2).count(), 0);
    assert_eq!(tree.iter(1).count(), 0, "versions below the watermark are gone");
    tree.put(b"after", 3, b"v").unwrap();
    assert_eq!(tree.get(b"after", 3).unwrap().as_deref(), Some(&b"v"[..]));
}

/// Keys put in ascending or descending order (a bulk load) leave the leaves
/// about 7/8 full: a leaf whose newest write is its last (first) key splits
/// near its end (start), not in the middle, which would leave every leaf the
/// load passed half full. Keys put in between afterwards split those leaves
/// in the middle, and every key reads back in order.
#[test]
fn ordered_puts_fill_leaves() {
    let n = 64_000u32;
    for descending in [false, true] {
        let tree = Tree::new(); // leaves of at most 128 keys
        for i in 0..n {
            let i = if descending { n - 1 - i } else { i };
            tree.put(k(2 * i), 1, b"v").unwrap();
        }
        // Half-full leaves would take n / 64 = 1000 splits; 7/8-full ones
        // about n / 112 = 571.
        let s = tree.stats();
        assert!(s.splits > 400 && s.splits < 650, "descending {descending}: {s:?}");
        for i in 0..n {
            tree.put(k(2 * i + 1), 2, b"w").unwrap();
        }
        let s = tree.stats();
        assert!(s.splits > 1000, "descending {descending}: {s:?}");
        let keys: Vec<_> = tree.range::<&[u8], _>(.., 2).map(|r| r.unwrap().0).collect();
        assert_eq!(keys.len(), 2 * n as usize);
        assert!(keys.iter().enumerate().all(|(i, key)| key[..] == k(i as u32)));
    }
}

/// Inner pages fill alike: the index entries an ascending load posts arrive
/// at the parent's end (a descending load's second, after the leftmost
/// child), so an inner page also splits near its end (start).
#[test]
fn ordered_puts_fill_inner_pages() {
    let cfg = Config {
        leaf_max: 16,
        leaf_min: 2,
        inner_max: 16,
        inner_min: 2,
        ..Config::default()
    };
    let n = 100_000u32;
    for descending in [false, true] {
        let tree = Tree::with_config(cfg.clone()).unwrap();
        for i in 0..n {
            let i = if descending { n - 1 - i } else { i };
            tree.put(k(i), 1, b"v").unwrap();
        }
        // Ascending: full leaves of 16 keys, 6,250 of them. Inner pages of
        // about 15 children: 417 + 28 + 2 + the root; of about 8 (split in
        // the middle) 781 + 98 + 12 + 2 + the root. Descending: leaves of
        // 15 keys (a split at 17 keys leaves 15 on the right), 6,667 of them;
        // inner pages of 15 children: 444 + 30 + 2 + the root; of about 8:
        // 833 + 104 + 13 + 2 + the root.
        let (lo, hi) = if descending { (7_050, 7_300) } else { (6_600, 6_800) };
        let s = tree.stats();
        assert!(s.page_ids > lo && s.page_ids < hi, "descending {descending}: {s:?}");
        assert_eq!(tree.iter(1).count(), n as usize);
    }
}
