//! Concurrent writers, CAS retries, tree consistency and group commit.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;

use common::*;
use ringkv_engine::{Engine, Limits, Mode};

#[test]
fn two_concurrent_writes_to_one_key_both_survive() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let e = Arc::new(open(dir.path()));
        let start = Arc::new(Barrier::new(2));
        let handles: Vec<_> = [b"left", b"rght"]
            .into_iter()
            .map(|v| {
                let (e, start) = (e.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    e.coordinate(b"b", b"k", None, Some(v), 1, Mode::Siblings, false)
                        .unwrap()
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let vals: HashSet<_> = values(&e.get(b"b", b"k").unwrap().unwrap())
            .into_iter()
            .collect();
        assert_eq!(
            vals,
            HashSet::from([Some(b"left".to_vec()), Some(b"rght".to_vec())])
        );
    }
}

#[test]
fn many_threads_hammering_one_key_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(open_with(dir.path(), |c| {
        c.limits = Limits {
            max_siblings: 1000,
            ..Limits::default()
        }
    }));
    let (threads, per) = (8, 40);
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (e, start) = (e.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for i in 0..per {
                    let v = format!("{t}-{i}");
                    e.coordinate(
                        b"b",
                        b"k",
                        None,
                        Some(v.as_bytes()),
                        1,
                        Mode::Siblings,
                        false,
                    )
                    .unwrap();
                    // Other keys too, so trees see concurrent XORs across keys.
                    e.coordinate(
                        b"b",
                        format!("{t}-{i}").as_bytes(),
                        None,
                        Some(b"x"),
                        1,
                        Mode::Siblings,
                        false,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let rec = decode(&e.get(b"b", b"k").unwrap().unwrap());
    assert_eq!(rec.siblings.len(), threads * per);
    let counters: Vec<u64> = rec.siblings.iter().map(|s| s.dot.counter).collect();
    assert_eq!(counters, (1..=(threads * per) as u64).collect::<Vec<_>>());
    let roots = e.tree_roots();
    e.close().unwrap();
    assert_eq!(
        open(dir.path()).tree_roots(),
        roots,
        "lock-free tree equals rebuild"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

#[test]
fn durable_writes_group_commit_and_survive() {
    let dir = tempfile::tempdir().unwrap();
    // No background flush: only the durable path can put data on disk.
    let e = Arc::new(open(dir.path()));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let e = e.clone();
            thread::spawn(move || {
                for i in 0..25 {
                    let k = format!("{t}/{i}");
                    e.coordinate(
                        b"b",
                        k.as_bytes(),
                        None,
                        Some(b"v"),
                        1,
                        Mode::Siblings,
                        true,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // Snapshot the files while the engine is still open and unflushed by
    // close(): what the snapshot holds was made durable by the writes.
    let snap = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), snap.path());
    let copy = open(snap.path());
    for t in 0..8 {
        for i in 0..25 {
            assert!(
                copy.get(b"b", format!("{t}/{i}").as_bytes())
                    .unwrap()
                    .is_some(),
                "{t}/{i}"
            );
        }
    }
    assert_eq!(copy.tree_roots(), e.tree_roots());
    e.close().unwrap();
    let e = open(dir.path());
    assert!(e.get(b"b", b"7/24").unwrap().is_some());
}

#[test]
fn durable_merge_and_meta_put_flush() {
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let e = open(dir.path());
    let o = Engine::open(config(other.path(), "n2")).unwrap();
    let rec = o
        .coordinate(b"b", b"k", None, Some(b"v"), 1, Mode::Siblings, false)
        .unwrap();
    e.merge(b"b", b"k", &rec, Mode::Siblings, true).unwrap();
    e.meta_put("ring", b"r").unwrap();
    let snap = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), snap.path());
    let copy = open(snap.path());
    assert_eq!(copy.get(b"b", b"k").unwrap(), Some(rec));
    assert_eq!(copy.meta_get("ring").unwrap(), Some(b"r".to_vec()));
}
