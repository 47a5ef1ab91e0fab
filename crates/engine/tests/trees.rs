//! TicTac trees against a from-scratch rebuild, and segment_keys.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use ringkv_engine::keys::{bkey, disk_key, position_of_bkey, Geometry};
use ringkv_engine::tictac::{leaf_hash, Trees};
use ringkv_engine::{Engine, ErrorCode, Mode};

fn small(dir: &std::path::Path) -> Engine {
    open_with(dir, |c| {
        c.partition_bits = 2;
        c.tree_branch_bits = 2;
        c.tree_segment_bits = 3;
    })
}

/// Trees computed from the stored records alone.
fn expected(e: &Engine, keys: &[Vec<u8>]) -> Trees {
    let g = Geometry::new(
        e.partition_bits(),
        e.tree_branch_bits(),
        e.tree_segment_bits(),
    )
    .unwrap();
    let trees = Trees::new(g);
    for k in keys {
        if let Some(rec) = e.get(b"b", k).unwrap() {
            let bk = bkey(b"b", k);
            trees.apply(position_of_bkey(&bk), leaf_hash(&bk, &decode(&rec)));
        }
    }
    trees
}

fn assert_same(e: &Engine, t: &Trees) {
    assert_eq!(e.tree_roots(), t.roots());
    for p in 0..t.geometry().partitions() {
        assert_eq!(e.tree_branches(p).unwrap(), t.branches(p).unwrap());
        for b in 0..t.geometry().branches() {
            assert_eq!(e.tree_segments(p, b).unwrap(), t.segments(p, b).unwrap());
        }
    }
}

fn random_ops(e: &Engine, other: &Engine, keys: &[Vec<u8>], rng: &mut Rng, n: usize) {
    for i in 0..n {
        let k = &keys[rng.below(keys.len() as u64) as usize];
        let ctx = e
            .get(b"b", k)
            .unwrap()
            .filter(|_| rng.below(2) == 0)
            .map(|r| ctx_of(&r));
        match rng.below(4) {
            0 => drop(
                e.coordinate(
                    b"b",
                    k,
                    ctx.as_deref(),
                    None,
                    i as u64,
                    Mode::Siblings,
                    false,
                )
                .unwrap(),
            ),
            1 => {
                let rec = other
                    .coordinate(b"b", k, None, Some(b"x"), i as u64, Mode::Siblings, false)
                    .unwrap();
                e.merge(b"b", k, &rec, Mode::Siblings, false).unwrap();
            }
            _ => drop(
                e.coordinate(
                    b"b",
                    k,
                    ctx.as_deref(),
                    Some(b"v"),
                    i as u64,
                    Mode::Siblings,
                    false,
                )
                .unwrap(),
            ),
        }
    }
}

#[test]
fn xor_updates_equal_full_rebuild() {
    let (dir, odir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let e = small(dir.path());
    let other = Engine::open(config(odir.path(), "n2")).unwrap();
    let keys: Vec<Vec<u8>> = (0..60).map(|i| format!("key-{i}").into_bytes()).collect();
    let mut rng = Rng(42);
    random_ops(&e, &other, &keys, &mut rng, 400);
    assert_ne!(e.tree_roots(), vec![0; 32]);
    assert_same(&e, &expected(&e, &keys));
    // Never-written partitions read as zeros; bad indexes are rejected.
    assert_eq!(code(e.tree_branches(4)), ErrorCode::InvalidArgument);
    assert_eq!(code(e.tree_segments(0, 4)), ErrorCode::InvalidArgument);
    assert_eq!(code(e.segment_keys(0, &[32])), ErrorCode::InvalidArgument);
    assert_eq!(code(e.segment_keys(4, &[0])), ErrorCode::InvalidArgument);
}

#[test]
fn trees_rebuilt_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let fresh = tempfile::tempdir().unwrap();
    let empty = open(fresh.path());
    // Default shape: 4096 partitions of 32 branches × 32 segments.
    assert_eq!(empty.tree_roots(), vec![0; 4096 * 8]);
    assert_eq!(empty.tree_branches(3).unwrap(), vec![0; 32 * 8]);
    assert_eq!(empty.tree_segments(3, 31).unwrap(), vec![0; 32 * 8]);
    for i in 0..200 {
        e.coordinate(
            b"b",
            format!("k{i}").as_bytes(),
            None,
            Some(b"v"),
            i,
            Mode::Siblings,
            false,
        )
        .unwrap();
    }
    let roots = e.tree_roots();
    let branches: Vec<_> = (0..4096).map(|p| e.tree_branches(p).unwrap()).collect();
    e.close().unwrap();
    let e = open(dir.path());
    assert_eq!(e.tree_roots(), roots);
    for p in 0..4096 {
        assert_eq!(e.tree_branches(p).unwrap(), branches[p as usize]);
    }
    e.close().unwrap();
    // Tree shape may change between runs.
    let e = open_with(dir.path(), |c| c.tree_branch_bits = 4);
    assert_eq!(e.tree_roots(), roots);
    assert_eq!(e.tree_branches(0).unwrap().len(), 16 * 8);
    assert_eq!(e.meta_get("engine.treeBranchBits").unwrap(), Some(vec![4]));
}

#[test]
fn segment_keys_returns_exactly_the_requested_segments() {
    let dir = tempfile::tempdir().unwrap();
    let e = small(dir.path());
    let g = Geometry::new(2, 2, 3).unwrap();
    let mut by_segment: HashMap<(u32, u32), BTreeMap<Vec<u8>, Vec<u8>>> = HashMap::new();
    for i in 0..300 {
        let k = format!("key-{i}").into_bytes();
        let rec = e
            .coordinate(b"b", &k, None, Some(b"v"), i, Mode::Siblings, false)
            .unwrap();
        let bk = bkey(b"b", &k);
        let pos = position_of_bkey(&bk);
        by_segment
            .entry((g.partition(pos), g.segment(pos)))
            .or_default()
            .insert(
                disk_key(pos, &bk),
                leaf_hash(&bk, &decode(&rec)).to_be_bytes().to_vec(),
            );
    }
    let mut rng = Rng(3);
    for _ in 0..50 {
        let p = rng.below(4) as u32;
        let segs: Vec<u32> = (0..rng.below(6)).map(|_| rng.below(32) as u32).collect();
        let mut want = BTreeMap::new();
        for &s in &segs {
            if let Some(m) = by_segment.get(&(p, s)) {
                want.extend(m.clone());
            }
        }
        let got = e.segment_keys(p, &segs).unwrap();
        let got_keys: Vec<Vec<u8>> = got
            .iter()
            .map(|sk| {
                disk_key(
                    position_of_bkey(&bkey(&sk.bucket, &sk.key)),
                    &bkey(&sk.bucket, &sk.key),
                )
            })
            .collect();
        assert_eq!(
            got_keys,
            want.keys().cloned().collect::<Vec<_>>(),
            "disk-key order, exact set"
        );
        for sk in &got {
            let bk = bkey(&sk.bucket, &sk.key);
            assert_eq!(
                sk.hash.to_vec(),
                want[&disk_key(position_of_bkey(&bk), &bk)]
            );
            assert_eq!(sk.bucket, b"b");
        }
    }
    // The union of all segments of all partitions is every key.
    let all: usize = (0..4)
        .map(|p| {
            e.segment_keys(p, &(0..32).collect::<Vec<_>>())
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(all, 300);
    // Segment hashes agree with segment_keys.
    for p in 0..4 {
        for b in 0..4 {
            let segs = e.tree_segments(p, b).unwrap();
            for s in 0..8u32 {
                let keys = e.segment_keys(p, &[b * 8 + s]).unwrap();
                let x = keys
                    .iter()
                    .fold(0u64, |acc, k| acc ^ u64::from_be_bytes(k.hash));
                assert_eq!(x.to_be_bytes(), segs[s as usize * 8..s as usize * 8 + 8]);
            }
        }
    }
}
