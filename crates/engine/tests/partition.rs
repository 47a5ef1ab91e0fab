//! Partition scans (the unit of partition transfer) and tombstone reaping.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use ringkv_engine::{Engine, ErrorCode, Mode, MAX_SCAN_LIMIT};

const S: Mode = Mode::Siblings;

fn small(dir: &std::path::Path) -> Engine {
    open_with(dir, |c| {
        c.partition_bits = 2;
        c.tree_branch_bits = 2;
        c.tree_segment_bits = 2;
    })
}

fn put(e: &Engine, key: &[u8], ctx: Option<&[u8]>, v: Option<&[u8]>) -> Vec<u8> {
    e.coordinate(b"b", key, ctx, v, 1, S, false).unwrap()
}

/// Every page of `partition` from `after`, following `next`.
fn scan_all(e: &Engine, partition: u32, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = e.scan_partition(partition, after.as_deref(), limit).unwrap();
        assert!(page.items.len() <= limit);
        out.extend(page.items.into_iter().map(|i| (i.key, i.record)));
        match page.next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

#[test]
fn scan_pages_cover_each_partition_exactly_once_in_disk_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let e = small(dir.path());
    let mut all = BTreeSet::new();
    for i in 0..200u32 {
        let k = format!("k{i}").into_bytes();
        put(&e, &k, None, Some(b"v"));
        all.insert(k);
    }
    let mut seen = BTreeSet::new();
    for p in 0..4 {
        for limit in [1, 3, 7, 1000] {
            let items = scan_all(&e, p, limit);
            let positions: Vec<u64> = items
                .iter()
                .map(|(k, _)| ringkv_engine::position(b"b", k).unwrap())
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "disk-key order");
            assert!(positions.iter().all(|&pos| (pos >> 62) as u32 == p));
            for (k, rec) in &items {
                assert_eq!(e.get(b"b", k).unwrap().as_ref(), Some(rec));
            }
            if limit == 1 {
                for (k, _) in items {
                    assert!(seen.insert(k), "object in two partitions");
                }
            }
        }
    }
    assert_eq!(seen, all);
}

#[test]
fn next_is_null_exactly_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let e = small(dir.path());
    // An empty partition: one empty page.
    let page = e.scan_partition(0, None, 10).unwrap();
    assert!(page.items.is_empty() && page.next.is_none());
    for i in 0..40u32 {
        put(&e, format!("k{i}").as_bytes(), None, Some(b"v"));
    }
    let n = scan_all(&e, 1, MAX_SCAN_LIMIT).len();
    assert!(n > 2);
    // A page that takes exactly the rest has no next.
    let full = e.scan_partition(1, None, n).unwrap();
    assert_eq!(full.items.len(), n);
    assert!(full.next.is_none());
    let short = e.scan_partition(1, None, n - 1).unwrap();
    let next = short.next.unwrap();
    let last = short.items.last().unwrap();
    let bk = [&last.bucket[..], &[0], &last.key[..]].concat();
    let pos = ringkv_engine::position(&last.bucket, &last.key).unwrap();
    assert_eq!(next, [&pos.to_be_bytes()[..], &bk].concat());
    let rest = e.scan_partition(1, Some(&next), 10).unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next.is_none());
}

#[test]
fn cursor_survives_the_deletion_of_its_object_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (before, cursor, expect_rest) = {
        let e = small(dir.path());
        for i in 0..60u32 {
            let key = format!("k{i}");
            let rec = put(&e, key.as_bytes(), None, Some(b"v"));
            let del = put(&e, key.as_bytes(), Some(&ctx_of(&rec)), None);
            // Half the objects are live again, half stay tombstones.
            if i % 2 == 0 {
                put(&e, key.as_bytes(), Some(&ctx_of(&del)), Some(b"w"));
            }
        }
        let all = scan_all(&e, 2, 1000);
        let page = e.scan_partition(2, None, 5).unwrap();
        let cursor = page.next.clone().unwrap();
        let last = page.items.last().unwrap();
        let rest: Vec<_> = all[5..].iter().map(|(k, _)| k.clone()).collect();
        // Reap the cursor's own object if it is a tombstone; else delete-and-reap it.
        let rec = e.get(b"b", &last.key).unwrap().unwrap();
        let tomb = if values(&rec).iter().all(Option::is_none) {
            rec
        } else {
            put(&e, &last.key, Some(&ctx_of(&rec)), None)
        };
        assert!(e.reap(b"b", &last.key, &tomb).unwrap());
        e.close().unwrap();
        (all.len(), cursor, rest)
    };
    assert!(before > 6);
    let e = small(dir.path());
    let mut got = Vec::new();
    let mut after = Some(cursor);
    while let Some(c) = after {
        let page = e.scan_partition(2, Some(&c), 2).unwrap();
        got.extend(page.items.into_iter().map(|i| i.key));
        after = page.next;
    }
    assert_eq!(got, expect_rest);
}

#[test]
fn scan_validates_partition_limit_and_cursor_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let e = small(dir.path());
    put(&e, b"k", None, Some(b"v"));
    let pos = ringkv_engine::position(b"b", b"k").unwrap();
    let p = (pos >> 62) as u32;
    let dk = [&pos.to_be_bytes()[..], b"b\0k"].concat();
    assert!(e.scan_partition(p, Some(&dk), 1).unwrap().items.is_empty());
    let bad = ErrorCode::InvalidArgument;
    assert_eq!(code(e.scan_partition(4, None, 1)), bad);
    assert_eq!(code(e.scan_partition(0, None, 0)), bad);
    assert_eq!(code(e.scan_partition(0, None, MAX_SCAN_LIMIT + 1)), bad);
    assert!(e.scan_partition(0, None, MAX_SCAN_LIMIT).is_ok());
    // Another partition's disk key, a wrong position, a truncated key, empty bytes.
    assert_eq!(code(e.scan_partition((p + 1) % 4, Some(&dk), 1)), bad);
    let mut wrong = dk.clone();
    wrong[7] ^= 1;
    assert_eq!(code(e.scan_partition(p, Some(&wrong), 1)), bad);
    assert_eq!(code(e.scan_partition(p, Some(&dk[..dk.len() - 1]), 1)), bad);
    assert_eq!(code(e.scan_partition(p, Some(&[]), 1)), bad);
    e.close().unwrap();
    assert_eq!(code(e.scan_partition(9, None, 0)), ErrorCode::Closed);
}

#[test]
fn reap_rules() {
    let dir = tempfile::tempdir().unwrap();
    let e = small(dir.path());
    let live = put(&e, b"k", None, Some(b"v"));
    // A record with a live sibling is refused, even if it is the stored one.
    assert_eq!(code(e.reap(b"b", b"k", &live)), ErrorCode::InvalidArgument);
    let del = put(&e, b"k", Some(&ctx_of(&live)), None);
    // Corrupt record; bad names come first.
    assert_eq!(code(e.reap(b"b", b"k", &del[..del.len() - 1])), ErrorCode::CorruptRecord);
    assert_eq!(code(e.reap(b"", b"k", &[9])), ErrorCode::InvalidArgument);
    assert_eq!(code(e.reap(b"b", &[1; 2000], &[9])), ErrorCode::KeyTooLarge);
    // A stale tombstone (the object changed since) is not reaped.
    let stale = put(&e, b"k2", None, None);
    let newer = put(&e, b"k2", None, None); // two tombstone siblings now
    assert!(!e.reap(b"b", b"k2", &stale).unwrap());
    assert_eq!(e.get(b"b", b"k2").unwrap().unwrap(), newer);
    // Absent: false.
    assert!(!e.reap(b"b", b"absent", &del).unwrap());
    // Tombstone siblings only, byte-identical: reaped.
    assert!(e.reap(b"b", b"k2", &newer).unwrap());
    assert!(e.get(b"b", b"k2").unwrap().is_none());
    assert!(!e.reap(b"b", b"k2", &newer).unwrap());
    // A concurrent live sibling of a tombstone blocks reaping.
    let mixed = put(&e, b"k", Some(&ctx_of(&live)), Some(b"w"));
    assert_eq!(values(&mixed), vec![None, Some(b"w".to_vec())]);
    assert_eq!(code(e.reap(b"b", b"k", &mixed)), ErrorCode::InvalidArgument);
    assert!(!e.reap(b"b", b"k", &del).unwrap());
    e.close().unwrap();
    assert_eq!(code(e.reap(b"", b"", &[])), ErrorCode::Closed);
}

#[test]
fn reap_removes_the_leaf() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let e = small(d1.path());
    let never = small(d2.path());
    for i in 0..30u32 {
        let k = format!("k{i}");
        put(&e, k.as_bytes(), None, Some(b"v"));
        put(&never, k.as_bytes(), None, Some(b"v"));
    }
    let r = put(&e, b"gone", None, Some(b"x"));
    let del = put(&e, b"gone", Some(&ctx_of(&r)), None);
    assert_ne!(e.tree_roots(), never.tree_roots());
    assert!(e.reap(b"b", b"gone", &del).unwrap());
    assert_eq!(e.tree_roots(), never.tree_roots());
    let pos = ringkv_engine::position(b"b", b"gone").unwrap();
    let p = (pos >> 62) as u32;
    assert_eq!(e.tree_branches(p).unwrap(), never.tree_branches(p).unwrap());
    // Reopening rebuilds the same trees from disk.
    e.close().unwrap();
    assert_eq!(small(d1.path()).tree_roots(), never.tree_roots());
}

#[test]
fn reap_races_with_writes_without_losing_either() {
    // A write racing a reap either lands first (the reap returns false) or
    // after (it starts from an absent object); trees stay consistent.
    for round in 0..20u32 {
        let dir = tempfile::tempdir().unwrap();
        let e = Arc::new(small(dir.path()));
        let key = format!("k{round}").into_bytes();
        let r = put(&e, &key, None, Some(b"v"));
        let del = put(&e, &key, Some(&ctx_of(&r)), None);
        let writer = {
            let (e, key) = (e.clone(), key.clone());
            std::thread::spawn(move || put(&e, &key, None, Some(b"new")))
        };
        let reaped = e.reap(b"b", &key, &del).unwrap();
        let written = writer.join().unwrap();
        let stored = e.get(b"b", &key).unwrap().unwrap();
        assert_eq!(stored, written);
        if reaped {
            // The write started from nothing: only its own sibling.
            assert_eq!(values(&stored), vec![Some(b"new".to_vec())]);
        } else {
            assert_eq!(values(&stored), vec![None, Some(b"new".to_vec())]);
        }
        // Trees equal a fresh rebuild from disk.
        let roots = e.tree_roots();
        Arc::try_unwrap(e).ok().unwrap().close().unwrap();
        assert_eq!(small(dir.path()).tree_roots(), roots);
    }
}

#[test]
fn drop_partition_deletes_its_objects_only_and_their_leaves() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let e = small(d1.path());
    let others = small(d2.path());
    let target = 1u32;
    let mut in_target = 0u64;
    for i in 0..200u32 {
        let k = format!("k{i}");
        put(&e, k.as_bytes(), None, Some(b"v"));
        let p = (ringkv_engine::position(b"b", k.as_bytes()).unwrap() >> 62) as u32;
        if p == target {
            in_target += 1;
        } else {
            put(&others, k.as_bytes(), None, Some(b"v"));
        }
    }
    assert!(in_target > 0);
    let actor = e.actor().to_string();
    assert_eq!(code(e.drop_partition(4)), ErrorCode::InvalidArgument);
    assert_eq!(e.drop_partition(target).unwrap(), in_target);
    // Closed, as after a crash: the next open is a new actor.
    assert_eq!(code(e.get(b"b", b"k0")), ErrorCode::Closed);
    let e = small(d1.path());
    assert_ne!(e.actor(), actor);
    assert!(scan_all(&e, target, 7).is_empty());
    // Every other partition keeps its objects; the dropped one's tree is empty again (rebuilt from disk).
    for p in 0..4u32 {
        assert_eq!(scan_all(&e, p, 50), scan_all(&others, p, 50));
        assert_eq!(e.tree_branches(p).unwrap(), others.tree_branches(p).unwrap());
    }
    assert_eq!(e.tree_roots(), others.tree_roots());
}
