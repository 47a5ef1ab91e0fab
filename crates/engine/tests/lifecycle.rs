//! Open/close, identity, config checks, metadata and hints.

mod common;

use common::*;
use ringkv_engine::{Config, Engine, ErrorCode, Mode};

#[test]
fn engine_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
}

#[test]
fn identity_is_stored_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(Config::new(dir.path(), "node-a")).unwrap();
    let actor = e.actor().to_owned();
    let epoch = actor.strip_prefix("node-a:").unwrap();
    assert_eq!(epoch.len(), 16);
    assert!(epoch
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(
        e.meta_get("engine.nodeId").unwrap(),
        Some(b"node-a".to_vec())
    );
    assert_eq!(
        e.meta_get("engine.epoch").unwrap(),
        Some(epoch.as_bytes().to_vec())
    );
    assert_eq!(e.meta_get("engine.partitionBits").unwrap(), Some(vec![12]));
    assert_eq!(e.meta_get("engine.treeBranchBits").unwrap(), Some(vec![5]));
    assert_eq!(e.meta_get("engine.treeSegmentBits").unwrap(), Some(vec![5]));
    assert_eq!(
        (
            e.partition_bits(),
            e.tree_branch_bits(),
            e.tree_segment_bits()
        ),
        (12, 5, 5)
    );
    e.close().unwrap();
    // The stored epoch wins over the option on reopen.
    let mut cfg = Config::new(dir.path(), "node-a");
    cfg.epoch = Some("00000000000000ff".into());
    let e = Engine::open(cfg).unwrap();
    assert_eq!(e.actor(), actor);
    e.close().unwrap();
    let mismatch = |cfg: Config| Engine::open(cfg).err().unwrap().code;
    assert_eq!(
        mismatch(Config::new(dir.path(), "node-b")),
        ErrorCode::ConfigMismatch
    );
    let mut cfg = Config::new(dir.path(), "node-a");
    cfg.partition_bits = 7;
    assert_eq!(mismatch(cfg), ErrorCode::ConfigMismatch);
    // A fresh directory with a fixed epoch.
    let d2 = tempfile::tempdir().unwrap();
    assert_eq!(open(d2.path()).actor(), "n1:0000000000000001");
}

/// A crash can lose the tail of the log, and with it key counters of dots
/// already given to other replicas: after an unclean shutdown the engine
/// writes as a new actor (the next epoch), after a clean one as the same.
#[test]
fn an_unclean_shutdown_moves_to_the_next_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    assert_eq!(e.actor(), "n1:0000000000000001");
    e.close().unwrap();
    let e = open(dir.path());
    assert_eq!(e.actor(), "n1:0000000000000001", "clean close keeps the actor");
    drop(e); // no close: as after a crash
    let e = open(dir.path());
    assert_eq!(e.actor(), "n1:0000000000000002");
    assert_eq!(
        e.meta_get("engine.epoch").unwrap(),
        Some(b"0000000000000002".to_vec())
    );
    e.close().unwrap();
    assert_eq!(open(dir.path()).actor(), "n1:0000000000000002");
}

#[test]
fn bad_options_are_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let bad = |f: &dyn Fn(&mut Config)| {
        let mut cfg = Config::new(dir.path(), "n1");
        f(&mut cfg);
        Engine::open(cfg).err().unwrap().code
    };
    assert_eq!(
        bad(&|c| c.node_id = "no:colons".into()),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        bad(&|c| c.node_id = String::new()),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        bad(&|c| c.epoch = Some("ABCDEF0123456789".into())),
        ErrorCode::InvalidArgument
    );
    assert_eq!(bad(&|c| c.partition_bits = 17), ErrorCode::InvalidArgument);
    assert_eq!(
        bad(&|c| c.tree_segment_bits = 0),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        bad(&|c| (c.partition_bits, c.tree_branch_bits, c.tree_segment_bits) = (16, 12, 5)),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        bad(&|c| c.limits.max_key_bytes = 65536),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        bad(&|c| c.limits.max_value_bytes = (16 << 20) + 1),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        bad(&|c| c.limits.max_siblings = 65536),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn meta_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    assert_eq!(e.meta_get("ring").unwrap(), None);
    e.meta_put("ring", b"state-1").unwrap();
    e.meta_put("ring", b"state-2").unwrap();
    e.meta_put(&"n".repeat(255), b"").unwrap();
    assert_eq!(e.meta_get("ring").unwrap(), Some(b"state-2".to_vec()));
    assert_eq!(code(e.meta_put("", b"x")), ErrorCode::InvalidArgument);
    assert_eq!(
        code(e.meta_get(&"n".repeat(256))),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(e.meta_put("engine.nodeId", b"evil")),
        ErrorCode::InvalidArgument
    );
    e.close().unwrap();
    let e = open(dir.path());
    assert_eq!(e.meta_get("ring").unwrap(), Some(b"state-2".to_vec()));
    assert_eq!(e.meta_get(&"n".repeat(255)).unwrap(), Some(vec![]));
}

#[test]
fn everything_is_closed_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let rec = e
        .coordinate(b"b", b"k", None, Some(b"v"), 1, Mode::Siblings, false)
        .unwrap();
    e.hint_put("n2", b"b", b"k", &rec).unwrap();
    assert!(!e.is_closed());
    e.close().unwrap();
    assert!(e.is_closed());
    let c = ErrorCode::Closed;
    assert_eq!(
        code(e.coordinate(b"b", b"k", None, Some(b"v"), 1, Mode::Siblings, false)),
        c
    );
    assert_eq!(code(e.merge(b"b", b"k", &rec, Mode::Siblings, false)), c);
    assert_eq!(code(e.get(b"b", b"k")), c);
    assert_eq!(code(e.tree_branches(0)), c);
    assert_eq!(code(e.tree_segments(0, 0)), c);
    assert_eq!(code(e.segment_keys(0, &[0])), c);
    assert_eq!(code(e.hint_put("n2", b"b", b"k", &rec)), c);
    assert_eq!(code(e.hint_list("n2", 10)), c);
    assert_eq!(code(e.hint_delete("n2", b"b", b"k", &rec)), c);
    assert_eq!(code(e.hint_targets()), c);
    assert_eq!(code(e.meta_get("x")), c);
    assert_eq!(code(e.meta_put("x", b"")), c);
    assert_eq!(code(e.flush()), c);
    assert_eq!(code(e.close()), c);
    // CLOSED wins over argument errors.
    assert_eq!(code(e.get(b"", b"")), c);
    // The directory is released and reopens at once.
    let e = open(dir.path());
    assert_eq!(e.get(b"b", b"k").unwrap(), Some(rec));
}

#[test]
fn hints_put_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (d2, d3) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let e = open(dir.path());
    let x = Engine::open(config(d2.path(), "x")).unwrap();
    let y = Engine::open(config(d3.path(), "y")).unwrap();
    let rx = x
        .coordinate(b"b", b"k", None, Some(b"from-x"), 5, Mode::Lww, false)
        .unwrap();
    let ry = y
        .coordinate(b"b", b"k", None, Some(b"from-y"), 9, Mode::Lww, false)
        .unwrap();
    assert_eq!(e.hint_put("n2", b"b", b"k", &rx).unwrap(), rx);
    // Hints merge as sibling sets regardless of the bucket's mode.
    let both = e.hint_put("n2", b"b", b"k", &ry).unwrap();
    assert_eq!(values(&both).len(), 2);
    for i in 0..5 {
        e.hint_put("n2", b"b", format!("o{i}").as_bytes(), &rx)
            .unwrap();
    }
    e.hint_put("n3", b"b", b"k", &rx).unwrap();
    e.hint_put("a", b"b", b"k", &rx).unwrap();
    // Hints live apart from the objects store and its trees.
    assert_eq!(e.get(b"b", b"k").unwrap(), None);
    assert_eq!(e.tree_roots(), vec![0; 4096 * 8]);
    assert_eq!(e.hint_targets().unwrap(), vec!["a", "n2", "n3"]);
    let list = e.hint_list("n2", 100).unwrap();
    assert_eq!(list.len(), 6);
    let order: Vec<u64> = list
        .iter()
        .map(|h| ringkv_engine::position(&h.bucket, &h.key).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "disk-key order");
    let k = list.iter().find(|h| h.key == b"k").unwrap();
    assert_eq!(k.record, both);
    assert_eq!(e.hint_list("n2", 2).unwrap(), list[..2].to_vec());
    assert!(e.hint_list("nobody", 10).unwrap().is_empty());
    // Compare-and-delete: a hint updated since it was read is kept.
    let rx2 = x
        .coordinate(
            b"b",
            b"k",
            Some(&ctx_of(&rx)),
            Some(b"x2"),
            6,
            Mode::Siblings,
            false,
        )
        .unwrap();
    let updated = e.hint_put("n2", b"b", b"k", &rx2).unwrap();
    assert!(!e.hint_delete("n2", b"b", b"k", &both).unwrap());
    assert!(e.hint_delete("n2", b"b", b"k", &updated).unwrap());
    assert!(!e.hint_delete("n2", b"b", b"k", &updated).unwrap());
    assert_eq!(e.hint_list("n2", 100).unwrap().len(), 5);
    for h in e.hint_list("n2", 100).unwrap() {
        assert!(e.hint_delete("n2", &h.bucket, &h.key, &h.record).unwrap());
    }
    assert_eq!(e.hint_targets().unwrap(), vec!["a", "n3"]);
    assert_eq!(
        code(e.hint_put("bad target", b"b", b"k", &rx)),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(e.hint_put("n2", b"b", b"k", b"junk")),
        ErrorCode::CorruptRecord
    );
    assert_eq!(code(e.hint_list("", 1)), ErrorCode::InvalidArgument);
    e.close().unwrap();
    let e = open(dir.path());
    assert_eq!(e.hint_targets().unwrap(), vec!["a", "n3"]);
}
