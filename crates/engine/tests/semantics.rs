//! Write semantics: siblings, tombstones, lww, merge, limits, validation.

mod common;

use common::*;
use ringkv_engine::codec::{decode_record, encode_record};
use ringkv_engine::{Engine, ErrorCode, Limits, Mode};

const S: Mode = Mode::Siblings;

fn put(e: &Engine, key: &[u8], ctx: Option<&[u8]>, v: &[u8], now: u64) -> Vec<u8> {
    e.coordinate(b"b", key, ctx, Some(v), now, S, false)
        .unwrap()
}

#[test]
fn stale_context_gives_siblings_and_covering_context_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    assert_eq!(e.actor(), "n1:0000000000000001");
    let r0 = put(&e, b"k", None, b"v0", 1);
    let stale = ctx_of(&r0);
    put(&e, b"k", Some(&stale), b"a", 2);
    let r2 = put(&e, b"k", Some(&stale), b"b", 3);
    assert_eq!(values(&r2), vec![Some(b"a".to_vec()), Some(b"b".to_vec())]);
    assert_eq!(e.get(b"b", b"k").unwrap().unwrap(), r2);
    let r3 = put(&e, b"k", Some(&ctx_of(&r2)), b"c", 4);
    assert_eq!(values(&r3), vec![Some(b"c".to_vec())]);
    // An empty context buffer is "no context".
    let r4 = put(&e, b"k", Some(&[]), b"d", 5);
    assert_eq!(values(&r4).len(), 2);
}

#[test]
fn two_clients_writing_back_their_last_read_never_exceed_two_siblings() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut ctx: [Option<Vec<u8>>; 2] = [None, None];
    for i in 0..100u64 {
        let client = (i % 2) as usize;
        let rec = put(
            &e,
            b"k",
            ctx[client].as_deref(),
            format!("{client}:{i}").as_bytes(),
            i,
        );
        assert!(
            values(&rec).len() <= 2,
            "round {i}: {} siblings",
            values(&rec).len()
        );
        // The client reads back what it wrote.
        let read = e.get(b"b", b"k").unwrap().unwrap();
        ctx[client] = Some(ctx_of(&read));
    }
}

#[test]
fn tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let r1 = put(&e, b"k", None, b"v", 1);
    let del = e
        .coordinate(b"b", b"k", Some(&ctx_of(&r1)), None, 2, S, false)
        .unwrap();
    assert_eq!(values(&del), vec![None]);
    let rec = decode(&e.get(b"b", b"k").unwrap().unwrap());
    assert!(rec.siblings[0].tombstone && rec.siblings[0].value.is_empty());
    // A concurrent delete and put both survive.
    let both = e
        .coordinate(b"b", b"k", Some(&ctx_of(&r1)), Some(b"w"), 3, S, false)
        .unwrap();
    assert_eq!(values(&both), vec![None, Some(b"w".to_vec())]);
    // Deleting an absent key stores a tombstone too.
    assert_eq!(
        values(&e.coordinate(b"b", b"new", None, None, 4, S, false).unwrap()),
        vec![None]
    );
}

#[test]
fn lww_keeps_latest_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let lww = |v: &[u8], now| {
        e.coordinate(b"b", b"k", None, Some(v), now, Mode::Lww, false)
            .unwrap()
    };
    lww(b"first", 10);
    let r = lww(b"older", 5);
    assert_eq!(values(&r), vec![Some(b"first".to_vec())]);
    let r = lww(b"newer", 20);
    assert_eq!(values(&r), vec![Some(b"newer".to_vec())]);
    // The context still records every dot issued.
    assert_eq!(
        decode(&r).context.get(&b"n1:0000000000000001"[..]),
        Some(&3)
    );
    // Timestamp tie: the greater dot wins (same actor, higher counter).
    let r = lww(b"tie", 20);
    assert_eq!(values(&r), vec![Some(b"tie".to_vec())]);
}

#[test]
fn merge_is_commutative_and_idempotent() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(da.path());
    let b = Engine::open(config(db.path(), "n2")).unwrap();
    let base = put(&a, b"k", None, b"base", 1);
    b.merge(b"b", b"k", &base, S, false).unwrap();
    let ra = put(&a, b"k", Some(&ctx_of(&base)), b"from-a", 2);
    let rb = put(&b, b"k", Some(&ctx_of(&base)), b"from-b", 3);
    let ab = a.merge(b"b", b"k", &rb, S, false).unwrap();
    let ba = b.merge(b"b", b"k", &ra, S, false).unwrap();
    assert_eq!(ab, ba);
    assert_eq!(
        values(&ab),
        vec![Some(b"from-a".to_vec()), Some(b"from-b".to_vec())]
    );
    assert_eq!(a.tree_roots(), b.tree_roots());
    // Idempotent: merging again changes nothing.
    assert_eq!(a.merge(b"b", b"k", &ab, S, false).unwrap(), ab);
    assert_eq!(a.merge(b"b", b"k", &ra, S, false).unwrap(), ab);
    // A merge into an absent key stores the incoming record as is.
    assert_eq!(a.merge(b"b", b"other", &rb, S, false).unwrap(), rb);
    // A descendant replaces its ancestor.
    let resolved = put(&a, b"k", Some(&ctx_of(&ab)), b"resolved", 4);
    assert_eq!(b.merge(b"b", b"k", &resolved, S, false).unwrap(), resolved);
    // lww merge keeps one.
    let (dc, dd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let c = open(dc.path());
    let d = Engine::open(config(dd.path(), "n2")).unwrap();
    let rc = c
        .coordinate(b"b", b"k", None, Some(b"c"), 9, Mode::Lww, false)
        .unwrap();
    let rd = d
        .coordinate(b"b", b"k", None, Some(b"d"), 8, Mode::Lww, false)
        .unwrap();
    let cd = c.merge(b"b", b"k", &rd, Mode::Lww, false).unwrap();
    assert_eq!(cd, d.merge(b"b", b"k", &rc, Mode::Lww, false).unwrap());
    assert_eq!(values(&cd), vec![Some(b"c".to_vec())]);
}

#[test]
fn merge_rejects_bad_records_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let good = put(&e, b"src", None, b"value", 1);
    let mut rng = Rng(7);
    for cut in 0..good.len() {
        assert_eq!(
            code(e.merge(b"b", b"k", &good[..cut], S, false)),
            ErrorCode::CorruptRecord
        );
    }
    for _ in 0..2000 {
        let mut bytes = good.clone();
        if rng.below(2) == 0 {
            let i = rng.below(bytes.len() as u64) as usize;
            bytes[i] ^= 1 << rng.below(8);
        } else {
            bytes = (0..rng.below(80)).map(|_| rng.next() as u8).collect();
        }
        if let Err(err) = e.merge(b"b", b"k", &bytes, S, false) {
            assert!(
                matches!(
                    err.code,
                    ErrorCode::CorruptRecord | ErrorCode::TooManySiblings
                ),
                "{err}"
            );
        }
        let r = e.coordinate(b"b", b"k2", Some(&bytes), Some(b"v"), 1, S, false);
        if let Err(err) = r {
            assert_eq!(err.code, ErrorCode::BadContext, "{err}");
        }
    }
    // Whatever was merged is still a valid record.
    if let Some(stored) = e.get(b"b", b"k").unwrap() {
        decode(&stored);
    }
}

#[test]
fn causally_inconsistent_merge_is_corrupt() {
    // Each record claims to have seen the other's only sibling.
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mk = |actor: &[u8]| {
        let mut rec = decode(&put(&e, b"tmp", None, b"v", 1));
        // The second call finds two siblings under "tmp"; keep one, or the
        // record is unsorted and refused for that instead.
        rec.siblings.truncate(1);
        rec.siblings[0].dot.actor = actor.to_vec();
        rec.siblings[0].dot.counter = 1;
        rec.context = [(b"x".to_vec(), 1), (b"y".to_vec(), 1)]
            .into_iter()
            .collect();
        encode_record(&rec)
    };
    e.merge(b"b", b"k", &mk(b"x"), S, false).unwrap();
    let refused = e.merge(b"b", b"k", &mk(b"y"), S, false).unwrap_err();
    assert_eq!(refused.code, ErrorCode::CorruptRecord);
    assert!(refused.message.contains("causally inconsistent"), "{}", refused.message);
}

#[test]
fn sibling_limit() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_with(dir.path(), |c| c.limits.max_siblings = 3);
    for i in 0..3 {
        put(&e, b"k", None, b"v", i);
    }
    let before = e.get(b"b", b"k").unwrap();
    let roots = e.tree_roots();
    assert_eq!(
        code(e.coordinate(b"b", b"k", None, Some(b"v"), 9, S, false)),
        ErrorCode::TooManySiblings
    );
    assert_eq!(e.get(b"b", b"k").unwrap(), before, "nothing stored");
    assert_eq!(e.tree_roots(), roots);
    // lww mode never exceeds it.
    e.coordinate(b"b", b"k", None, Some(b"v"), 9, Mode::Lww, false)
        .unwrap();
    // finding 3 (issue 9): a merge is never refused at the configured limit,
    // or replicas holding different full sets could never converge.
    let (d2, d3) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let other = Engine::open(config(d2.path(), "n2")).unwrap();
    let mut rec = Vec::new();
    for i in 0..3 {
        rec = put(&other, b"k", None, b"w", i);
    }
    let fresh = open_with(d3.path(), |c| c.limits.max_siblings = 3);
    let mine = put(&fresh, b"k", None, b"mine", 1);
    let merged = fresh.merge(b"b", b"k", &rec, S, false).unwrap();
    assert_eq!(decode(&merged).siblings.len(), 4);
    assert_eq!(other.merge(b"b", b"k", &mine, S, false).unwrap(), merged);
    // The limit still refuses a client write that leaves too many.
    assert_eq!(
        code(fresh.coordinate(b"b", b"k", None, Some(b"v"), 9, S, false)),
        ErrorCode::TooManySiblings
    );
    let ctx = ctx_of(&merged);
    assert_eq!(
        decode(&fresh.coordinate(b"b", b"k", Some(&ctx), Some(b"v"), 9, S, false).unwrap())
            .siblings
            .len(),
        1
    );
}

#[test]
fn client_write_never_stores_a_context_over_the_client_limit() {
    // Task B (issue 9): the limit counts the coordinator's own entry.
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let wide = |n: usize| {
        let ctx: ringkv_engine::codec::Context =
            (0..n).map(|i| (format!("c{i:04}").into_bytes(), 1)).collect();
        ringkv_engine::codec::encode_context(&ctx)
    };
    assert_eq!(
        code(e.coordinate(b"b", b"k", Some(&wide(1024)), Some(b"v"), 1, S, false)),
        ErrorCode::BadContext
    );
    assert_eq!(e.get(b"b", b"k").unwrap(), None);
    let r = e
        .coordinate(b"b", b"k", Some(&wide(1023)), Some(b"v"), 1, S, false)
        .unwrap();
    assert_eq!(decode(&r).context.len(), 1024);
    let back = ctx_of(&r);
    e.coordinate(b"b", b"k", Some(&back), Some(b"w"), 2, S, false)
        .unwrap();
}

#[test]
fn size_limits_and_name_validation() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_with(dir.path(), |c| {
        c.limits = Limits {
            max_key_bytes: 8,
            max_value_bytes: 16,
            max_siblings: 100,
        }
    });
    let co = |b: &[u8], k: &[u8], v: &[u8]| e.coordinate(b, k, None, Some(v), 1, S, false);
    assert!(co(b"b", &[7; 8], &[1; 16]).is_ok());
    assert_eq!(code(co(b"b", &[7; 9], b"v")), ErrorCode::KeyTooLarge);
    assert_eq!(code(co(b"b", &[7; 8], &[1; 17])), ErrorCode::ValueTooLarge);
    assert_eq!(code(co(b"b", b"", b"v")), ErrorCode::InvalidArgument);
    assert_eq!(code(co(b"", b"k", b"v")), ErrorCode::InvalidArgument);
    assert_eq!(code(co(b"a\0b", b"k", b"v")), ErrorCode::InvalidArgument);
    assert_eq!(
        code(co(&[b'x'; 256], b"k", b"v")),
        ErrorCode::InvalidArgument
    );
    assert!(co(&[b'x'; 255], b"k", b"").is_ok());
    assert_eq!(code(e.get(b"b", &[7; 9])), ErrorCode::KeyTooLarge);
    assert_eq!(
        code(e.merge(b"b", &[7; 9], b"", S, false)),
        ErrorCode::KeyTooLarge
    );
    assert_eq!(
        code(e.coordinate(b"b", b"k", None, Some(b"v"), 1 << 53, S, false)),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(e.coordinate(b"b", b"k", Some(&[9]), Some(b"v"), 1, S, false)),
        ErrorCode::BadContext
    );
    assert_eq!(e.get(b"b", b"absent").unwrap(), None);
    // Keys may hold any bytes, including 0x00.
    let r = co(b"b", b"\0k\0", b"v").unwrap();
    assert_eq!(e.get(b"b", b"\0k\0").unwrap().unwrap(), r);
    assert!(decode_record(&r).is_ok());
}

/// A fallback coordinator's version (`dvv::coordinate_detached`) is the one
/// the engine's own coordinate makes on a key it holds no record of, given
/// the same actor: coordinator and replicas run one code.
#[test]
fn coordinate_detached_is_coordinate_on_an_absent_key() {
    use ringkv_engine::codec::{encode_context, Attributes, Context};
    use ringkv_engine::dvv::coordinate_detached;
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let me = e.actor().as_bytes().to_vec();
    let mut rng = Rng(7);
    for i in 0..200u64 {
        let mut ctx = Context::new();
        for a in ["a", "n1:0000000000000001", "z/f3"] {
            if rng.next() % 2 == 0 {
                ctx.insert(a.as_bytes().to_vec(), 1 + rng.next() % 5);
            }
        }
        let ctx = encode_context(&ctx);
        let value = (rng.next() % 4 != 0).then(|| format!("v{i}").into_bytes());
        let attrs = if rng.next() % 2 == 0 {
            Attributes::default()
        } else {
            Attributes { content_type: b"text/plain".to_vec(), meta: vec![(b"m".to_vec(), b"x".to_vec()), (b"b".to_vec(), b"y".to_vec())] }
        };
        let mode = if rng.next() % 3 == 0 { Mode::Lww } else { S };
        let key = format!("k{i}").into_bytes();
        let stored = e.coordinate_with(b"b", &key, Some(&ctx), value.as_deref(), &attrs, i, mode, false).unwrap();
        let detached = coordinate_detached(&ctx, &me, value.as_deref(), &attrs, i, mode, e.limits()).unwrap();
        assert_eq!(detached, stored, "write {i}");
    }
}
