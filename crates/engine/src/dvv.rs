//! Dotted version vector sets: the coordinator update, the replica sync
//! and the lww reduction (docs/engine.md, "Operations"). Pure functions on
//! decoded records; the engine wraps them in a compare-and-swap loop.

use std::cmp::Ordering;

use crate::codec::{
    canonical_attributes, covers, decode_context, decode_record, encode_record, record_violation,
    shape_violation, Attributes, Context, Dot, Record, Sibling, MAX_CONTEXT_ENTRIES, MAX_SAFE,
};
use crate::config::Limits;
use crate::error::{err, ErrorCode, Result};

/// How concurrent versions of an object are resolved.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Keep every concurrent version as a sibling.
    Siblings,
    /// Keep only the sibling with the greatest (timestamp, actor, counter).
    Lww,
}

/// Does `big` cover every entry of `small`?
fn dominates(big: &Context, small: &Context) -> bool {
    small.iter().all(|(a, &c)| big.get(a).is_some_and(|&b| b >= c))
}

/// Is `s` in the dot-sorted `list`, with the same contents?
fn holds(list: &[Sibling], s: &Sibling) -> bool {
    list.binary_search_by(|x| x.dot.cmp(&s.dot))
        .is_ok_and(|i| list[i] == *s)
}

/// The sync post-condition (debug builds; O((n + m) log)): the context is
/// the join, nothing invented, and an input sibling is dropped only when
/// the other side's context covers it and the other side does not hold it.
fn sync_postcondition(local: &Record, incoming: &Record, out: &Record) -> Option<&'static str> {
    if let Some(why) = shape_violation(out) {
        return Some(why);
    }
    if out.context != join(&local.context, &incoming.context) {
        return Some("context is not the join of the inputs");
    }
    if !out.siblings.iter().all(|s| holds(&local.siblings, s) || holds(&incoming.siblings, s)) {
        return Some("a sibling came from neither input");
    }
    let kept = |mine: &[Sibling], theirs: &Record| {
        mine.iter().all(|s| {
            let shared = theirs.siblings.binary_search_by(|x| x.dot.cmp(&s.dot)).is_ok();
            let dropped = !out.siblings.iter().any(|o| o.dot == s.dot);
            !dropped || (covers(&theirs.context, &s.dot) && !shared)
        })
    };
    if !kept(&local.siblings, incoming) || !kept(&incoming.siblings, local) {
        return Some("a sibling the other side has not seen was dropped");
    }
    None
}

/// Pointwise max of two contexts.
pub fn join(a: &Context, b: &Context) -> Context {
    let mut out = a.clone();
    for (actor, &counter) in b {
        let slot = out.entry(actor.clone()).or_insert(0);
        *slot = (*slot).max(counter);
    }
    out
}

/// Coordinate a client write at actor `me`: drop the stored siblings the
/// client has seen, add a new sibling with the next dot of `me`.
/// `value = None` writes a tombstone, which never carries `attrs` (a
/// tombstone's attributes are the default). `attrs` are canonical (the
/// caller checked them: `codec::canonical_attributes`).
pub fn update(
    stored: &Record,
    ctx: &Context,
    me: &[u8],
    value: Option<&[u8]>,
    attrs: &Attributes,
    now: u64,
) -> Result<Record> {
    let seen = |c: &Context| c.get(me).copied().unwrap_or(0);
    let counter = seen(&stored.context).max(seen(ctx)) + 1;
    if counter > MAX_SAFE {
        return err(
            ErrorCode::InvalidArgument,
            "actor counter exhausted (2^53-1)",
        );
    }
    let dot = Dot {
        actor: me.to_vec(),
        counter,
    };
    let mut siblings: Vec<Sibling> = stored
        .siblings
        .iter()
        .filter(|s| !covers(ctx, &s.dot))
        .cloned()
        .collect();
    // The new dot is above everything `me` ever issued for this key, so it
    // is new; insert at its sorted place.
    let at = siblings.partition_point(|s| s.dot < dot);
    // O(1), and a duplicate dot would store two versions under one event id.
    assert!(
        siblings.get(at).map(|s| &s.dot) != Some(&dot),
        "invariant: update's new dot is above every stored dot of its actor"
    );
    siblings.insert(
        at,
        Sibling {
            dot,
            timestamp: now,
            tombstone: value.is_none(),
            value: value.unwrap_or_default().to_vec(),
            attrs: if value.is_some() { attrs.clone() } else { Attributes::default() },
        },
    );
    let mut context = join(&stored.context, ctx);
    context.insert(me.to_vec(), counter);
    // Every record a client write stores must have a context the client may
    // send back, so the limit counts the entry this write adds for `me`.
    if context.len() > MAX_CONTEXT_ENTRIES {
        return err(
            ErrorCode::BadContext,
            format!(
                "the key's context is full: this write would make it cover {} actors (max {MAX_CONTEXT_ENTRIES})",
                context.len()
            ),
        );
    }
    let out = Record { context, siblings };
    // Costly checks (a pass over both contexts and the siblings): debug only;
    // encode_record re-checks the shape before anything is stored.
    debug_assert_eq!(shape_violation(&out), None, "invariant: update yields a valid DVV set");
    debug_assert!(
        dominates(&out.context, &stored.context) && dominates(&out.context, ctx),
        "invariant: update's context covers the stored and the client context"
    );
    debug_assert!(
        out.siblings.iter().all(|s| (s.dot.actor == me && s.dot.counter == counter) || !covers(ctx, &s.dot)),
        "invariant: update drops every sibling the client has seen"
    );
    Ok(out)
}

/// DVV set sync of the local record with an incoming one. A sibling
/// survives if the other side has the same dot or has not seen it; on a
/// shared dot the local copy wins.
pub fn sync(local: &Record, incoming: &Record) -> Record {
    let (a, b) = (&local.siblings, &incoming.siblings);
    let mut siblings = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    // Both lists are sorted by dot: walk them like a merge sort.
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.dot.cmp(&y.dot),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => unreachable!("invariant: sync walks only while a list has siblings left"),
        };
        match order {
            Ordering::Equal => {
                siblings.push(a[i].clone());
                i += 1;
                j += 1;
            }
            Ordering::Less => {
                if !covers(&incoming.context, &a[i].dot) {
                    siblings.push(a[i].clone());
                }
                i += 1;
            }
            Ordering::Greater => {
                if !covers(&local.context, &b[j].dot) {
                    siblings.push(b[j].clone());
                }
                j += 1;
            }
        }
    }
    let out = Record {
        context: join(&local.context, &incoming.context),
        siblings,
    };
    debug_assert_eq!(
        sync_postcondition(local, incoming, &out),
        None,
        "invariant: sync keeps exactly the siblings neither side has superseded"
    );
    out
}

/// In lww mode keep only the greatest sibling by (timestamp, actor, counter).
pub fn apply_mode(rec: &mut Record, mode: Mode) {
    if mode == Mode::Lww && rec.siblings.len() > 1 {
        let best = rec
            .siblings
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| (a.timestamp, &a.dot).cmp(&(b.timestamp, &b.dot)))
            .map(|(i, _)| i)
            .expect("invariant: lww picks from more than one sibling");
        let winner = rec.siblings.swap_remove(best);
        rec.siblings = vec![winner];
    }
    debug_assert!(
        mode == Mode::Siblings || rec.siblings.len() <= 1,
        "invariant: lww leaves at most one sibling"
    );
}

/// Apply the mode, then enforce the sibling limit and the shape limits
/// of the encoding, yielding a record that is safe to encode and store.
pub fn finish(mut rec: Record, mode: Mode, max_siblings: usize) -> Result<Record> {
    // A caller's limit above the encoding's u16 count would let through a
    // record encode_record refuses.
    assert!(
        max_siblings <= u16::MAX as usize,
        "invariant: finish's sibling limit {max_siblings} is within the encoding's 65535"
    );
    apply_mode(&mut rec, mode);
    if rec.siblings.len() > max_siblings {
        return err(
            ErrorCode::TooManySiblings,
            format!(
                "{} siblings exceed the limit of {max_siblings}",
                rec.siblings.len()
            ),
        );
    }
    if rec.siblings.is_empty() {
        // Only reachable when two records each claim to have seen the
        // other's latest versions: they cannot both be genuine.
        return err(
            ErrorCode::CorruptRecord,
            "records are causally inconsistent (no sibling survives)",
        );
    }
    if rec.context.len() > u16::MAX as usize {
        return err(
            ErrorCode::InvalidArgument,
            "context has more than 65535 actors",
        );
    }
    debug_assert_eq!(record_violation(&rec), None, "invariant: finish yields a storable record");
    Ok(rec)
}

/// Reconciles encoded records of one key in memory, as merging them into
/// one replica would: a left fold of `sync`, each step finished in `mode`,
/// bounded by the encoding only (the read path never refuses for sibling
/// count). No storage: the coordinator's merge of replica answers runs the
/// replicas' code. One record comes back as it is.
pub fn reconcile(records: &[&[u8]], mode: Mode) -> Result<Vec<u8>> {
    let Some((first, rest)) = records.split_first() else {
        return err(ErrorCode::InvalidArgument, "reconcile needs at least one record");
    };
    if rest.is_empty() {
        return Ok(first.to_vec());
    }
    let mut acc = decode_record(first)?;
    for bytes in rest {
        acc = finish(sync(&acc, &decode_record(bytes)?), mode, u16::MAX as usize)?;
    }
    Ok(encode_record(&acc))
}

/// Coordinates a new version of a key in memory, as `Engine::coordinate`
/// does over an empty stored record, with `actor` making the dot: the
/// version a fallback coordinator builds under a one-off actor (it keeps no
/// record of the key, docs/cluster.md "The fallback's dot"). No storage: the
/// coordinator and the replicas that merge the version run one code.
///
/// Checks, first failure wins: `limits` valid (`INVALID_ARGUMENT`), `actor`
/// 1..=255 bytes (`INVALID_ARGUMENT`), `now <= 2^53-1` (`INVALID_ARGUMENT`),
/// the value within `max_value_bytes` (`VALUE_TOO_LARGE`), the attributes
/// (`canonical_attributes`), the context (`BAD_CONTEXT`); then `update`
/// (`BAD_CONTEXT` when the context is full, `INVALID_ARGUMENT` when the
/// actor's counter is exhausted) and `finish` in `mode`. `attrs` are as the
/// client gave them (this checks and sorts them); a tombstone drops them.
pub fn coordinate_detached(
    context: &[u8],
    actor: &[u8],
    value: Option<&[u8]>,
    attrs: &Attributes,
    now: u64,
    mode: Mode,
    limits: &Limits,
) -> Result<Vec<u8>> {
    limits.validate()?;
    if actor.is_empty() || actor.len() > u8::MAX as usize {
        return err(ErrorCode::InvalidArgument, "actor must be 1..=255 bytes");
    }
    if now > MAX_SAFE {
        return err(ErrorCode::InvalidArgument, "timestamp above 2^53-1");
    }
    if value.is_some_and(|v| v.len() > limits.max_value_bytes) {
        return err(
            ErrorCode::ValueTooLarge,
            format!("value is longer than {} bytes", limits.max_value_bytes),
        );
    }
    let attrs = canonical_attributes(&attrs.content_type, &attrs.meta)?;
    let ctx = decode_context(context)?;
    let out = finish(update(&Record::default(), &ctx, actor, value, &attrs, now)?, mode, limits.max_siblings)?;
    // Nothing stored was there to keep: the one sibling is the new dot.
    debug_assert!(
        out.siblings.len() == 1 && out.siblings[0].dot.actor == actor,
        "invariant: a detached coordination yields exactly its new sibling"
    );
    Ok(encode_record(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HARD_MAX: usize = u16::MAX as usize;

    fn put(stored: &Record, ctx: &Context, me: &str, v: &str, now: u64) -> Record {
        update(stored, ctx, me.as_bytes(), Some(v.as_bytes()), &Attributes::default(), now).unwrap()
    }

    fn values(r: &Record) -> Vec<&[u8]> {
        r.siblings.iter().map(|s| s.value.as_slice()).collect()
    }

    #[test]
    fn stale_context_makes_siblings_and_full_context_collapses() {
        let empty = Record::default();
        let r1 = put(&empty, &Context::new(), "a", "v1", 1);
        let r2 = put(&r1, &Context::new(), "a", "v2", 2);
        assert_eq!(values(&r2), vec![&b"v1"[..], b"v2"]);
        let r3 = put(&r2, &r2.context, "a", "v3", 3);
        assert_eq!(values(&r3), vec![&b"v3"[..]]);
        assert_eq!(r3.context.get(&b"a"[..]), Some(&3));
        // Round trip through bytes keeps everything.
        assert_eq!(decode_record(&encode_record(&r3)).unwrap(), r3);
    }

    #[test]
    fn counter_uses_client_context_too() {
        let mut ctx = Context::new();
        ctx.insert(b"a".to_vec(), 9);
        let r = put(&Record::default(), &ctx, "a", "v", 1);
        assert_eq!(r.siblings[0].dot.counter, 10);
    }

    #[test]
    fn tombstone() {
        let r1 = put(&Record::default(), &Context::new(), "a", "v", 1);
        let r2 = update(&r1, &r1.context, b"a", None, &Attributes::default(), 2).unwrap();
        assert_eq!(r2.siblings.len(), 1);
        assert!(r2.siblings[0].tombstone && r2.siblings[0].value.is_empty());
    }

    #[test]
    fn lww_keeps_greatest() {
        let r1 = put(&Record::default(), &Context::new(), "b", "old", 5);
        let mut r2 = put(&r1, &Context::new(), "a", "new", 7);
        apply_mode(&mut r2, Mode::Lww);
        assert_eq!(values(&r2), vec![&b"new"[..]]);
        // Timestamp tie: the greater actor wins.
        let r1 = put(&Record::default(), &Context::new(), "b", "b", 5);
        let mut r2 = put(&r1, &Context::new(), "a", "a", 5);
        apply_mode(&mut r2, Mode::Lww);
        assert_eq!(values(&r2), vec![&b"b"[..]]);
    }

    #[test]
    fn sync_is_commutative_and_idempotent() {
        let base = put(&Record::default(), &Context::new(), "a", "base", 1);
        let x = put(&base, &base.context, "a", "x", 2);
        let y = put(&base, &base.context, "b", "y", 3);
        let xy = sync(&x, &y);
        let yx = sync(&y, &x);
        assert_eq!(encode_record(&xy), encode_record(&yx));
        assert_eq!(values(&xy), vec![&b"x"[..], b"y"]);
        assert_eq!(sync(&xy, &xy), xy);
        assert_eq!(sync(&xy, &x), xy);
        assert_eq!(sync(&x, &xy), xy);
        // A descendant replaces its ancestor.
        assert_eq!(sync(&base, &x), x);
        assert_eq!(sync(&x, &base), x);
    }

    /// Replicas coordinating writes with stale or fresh contexts and syncing
    /// in random pairs, in both modes: after every step the record is a
    /// valid DVV set (the debug post-conditions of update, sync and finish
    /// run too), sync commutes, and replicas that all synced agree.
    #[test]
    fn random_histories_keep_every_invariant() {
        let mut seed = 0xD1B5_4A32_D192_ED03u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let actors: [&[u8]; 3] = [b"n1", b"n2", b"n3"];
        for round in 0..200 {
            let mode = if round % 4 == 0 { Mode::Lww } else { Mode::Siblings };
            let mut replicas = vec![Record::default(); 3];
            for step in 0..30u64 {
                let r = next(3) as usize;
                if next(2) == 0 {
                    // A client read a random replica (or nothing) and writes through r.
                    let ctx = match next(4) {
                        0 => Context::new(),
                        i => replicas[i as usize - 1].context.clone(),
                    };
                    let value = (next(5) != 0).then_some(&b"v"[..]);
                    let stored = &replicas[r];
                    match finish(update(stored, &ctx, actors[r], value, &Attributes::default(), step).unwrap(), mode, 100) {
                        Ok(rec) => replicas[r] = rec,
                        Err(e) => assert_eq!(e.code, ErrorCode::TooManySiblings),
                    }
                } else {
                    let o = next(3) as usize;
                    let (x, y) = (&replicas[r], &replicas[o]);
                    if x.siblings.is_empty() || y.siblings.is_empty() {
                        continue;
                    }
                    let xy = sync(x, y);
                    assert_eq!(xy, sync(y, x), "sync commutes");
                    replicas[r] = finish(xy, mode, HARD_MAX).unwrap();
                }
                let rec = &replicas[r];
                assert_eq!(record_violation(rec), None, "round {round} step {step}: {rec:?}");
                assert_eq!(decode_record(&encode_record(rec)).unwrap(), *rec);
            }
            // Everyone learns everything: all replicas end equal.
            let live: Vec<Record> = replicas.into_iter().filter(|r| !r.siblings.is_empty()).collect();
            let Some(first) = live.first() else { continue };
            let all = live.iter().skip(1).fold(first.clone(), |acc, r| finish(sync(&acc, r), mode, HARD_MAX).unwrap());
            for r in &live {
                assert_eq!(finish(sync(r, &all), mode, HARD_MAX).unwrap(), all, "round {round}");
            }
        }
    }

    /// The sync post-condition is not vacuous: it names a dropped or an
    /// invented sibling and a wrong context.
    #[test]
    fn sync_postcondition_catches_wrong_results() {
        let base = put(&Record::default(), &Context::new(), "a", "base", 1);
        let x = put(&base, &base.context, "a", "x", 2);
        let y = put(&base, &base.context, "b", "y", 3);
        let good = sync(&x, &y);
        assert_eq!(sync_postcondition(&x, &y, &good), None);
        let mut dropped = good.clone();
        dropped.siblings.remove(1);
        assert_eq!(
            sync_postcondition(&x, &y, &dropped),
            Some("a sibling the other side has not seen was dropped")
        );
        let mut invented = good.clone();
        invented.siblings[0].value = b"other".to_vec();
        assert_eq!(sync_postcondition(&x, &y, &invented), Some("a sibling came from neither input"));
        let mut context = good.clone();
        context.context.insert(b"c".to_vec(), 1);
        assert_eq!(sync_postcondition(&x, &y, &context), Some("context is not the join of the inputs"));
    }

    #[test]
    #[should_panic(expected = "invariant: finish's sibling limit")]
    fn finish_refuses_a_limit_past_the_encoding() {
        let r = put(&Record::default(), &Context::new(), "a", "v", 1);
        let _ = finish(r, Mode::Siblings, HARD_MAX + 1);
    }

    #[test]
    fn reconcile_folds_sync_and_finish() {
        let base = put(&Record::default(), &Context::new(), "a", "base", 1);
        let x = encode_record(&put(&base, &base.context, "a", "x", 2));
        let y = encode_record(&put(&base, &base.context, "b", "y", 3));
        let xy = reconcile(&[&x, &y], Mode::Siblings).unwrap();
        assert_eq!(xy, encode_record(&sync(&decode_record(&x).unwrap(), &decode_record(&y).unwrap())));
        assert_eq!(values(&decode_record(&reconcile(&[&x, &y], Mode::Lww).unwrap()).unwrap()), vec![&b"y"[..]]);
        // One record: as it is, unread. None: refused.
        assert_eq!(reconcile(&[b"not a record"], Mode::Siblings).unwrap(), b"not a record".to_vec());
        assert_eq!(reconcile(&[], Mode::Siblings).unwrap_err().code, ErrorCode::InvalidArgument);
        assert_eq!(reconcile(&[&x, b"junk"], Mode::Siblings).unwrap_err().code, ErrorCode::CorruptRecord);
        // Each side covering the other's live dot: no sibling survives.
        let mut ctx = Context::new();
        ctx.insert(b"a".to_vec(), 1);
        ctx.insert(b"b".to_vec(), 1);
        let only = |me: &str| {
            let r = put(&Record::default(), &Context::new(), me, me, 1);
            encode_record(&Record { context: ctx.clone(), siblings: r.siblings })
        };
        let (p, q) = (only("a"), only("b"));
        assert_eq!(reconcile(&[&p, &q], Mode::Siblings).unwrap_err().code, ErrorCode::CorruptRecord);
    }

    #[test]
    fn coordinate_detached_makes_one_new_dot_for_the_given_actor() {
        let limits = Limits::default();
        let (meta, ct) = (vec![(b"z".to_vec(), b"1".to_vec()), (b"a".to_vec(), b"2".to_vec())], b"text/plain".to_vec());
        let attrs = Attributes { content_type: ct.clone(), meta };
        // The client saw a:3 and n1:f7:2; the one-off actor has issued nothing: its dot is 1.
        let mut ctx = Context::new();
        ctx.insert(b"a".to_vec(), 3);
        ctx.insert(b"n1/f7".to_vec(), 2);
        let bytes = coordinate_detached(&crate::codec::encode_context(&ctx), b"n1/f0", Some(b"v"), &attrs, 5, Mode::Siblings, &limits).unwrap();
        let r = decode_record(&bytes).unwrap();
        assert_eq!(r.siblings.len(), 1);
        assert_eq!((r.siblings[0].dot.actor.as_slice(), r.siblings[0].dot.counter, r.siblings[0].timestamp), (&b"n1/f0"[..], 1, 5));
        // The metadata is sorted; the context is the client's plus the new dot.
        assert_eq!(r.siblings[0].attrs.meta[0].0, b"a".to_vec());
        assert_eq!(r.siblings[0].attrs.content_type, ct);
        let mut want = ctx.clone();
        want.insert(b"n1/f0".to_vec(), 1);
        assert_eq!(r.context, want);
        // A tombstone drops the attributes; no context is the empty one.
        let t = decode_record(&coordinate_detached(&[], b"x", None, &attrs, 0, Mode::Lww, &limits).unwrap()).unwrap();
        assert!(t.siblings[0].tombstone && t.siblings[0].attrs.is_default());
    }

    #[test]
    fn coordinate_detached_checks_its_inputs_in_order() {
        let l = Limits { max_key_bytes: 8, max_value_bytes: 4, max_siblings: 2 };
        let d = Attributes::default();
        let run = |ctx: &[u8], actor: &[u8], v: Option<&[u8]>, a: &Attributes, now: u64, l: &Limits| {
            coordinate_detached(ctx, actor, v, a, now, Mode::Siblings, l).unwrap_err().code
        };
        let bad_limits = Limits { max_siblings: 0, ..l.clone() };
        assert_eq!(run(b"junk", b"", Some(b"12345"), &d, 0, &bad_limits), ErrorCode::InvalidArgument);
        assert_eq!(run(b"junk", b"", Some(b"12345"), &d, 0, &l), ErrorCode::InvalidArgument);
        assert_eq!(run(b"junk", &[b'a'; 256], Some(b"12345"), &d, 0, &l), ErrorCode::InvalidArgument);
        assert_eq!(run(b"junk", b"a", Some(b"12345"), &d, MAX_SAFE + 1, &l), ErrorCode::InvalidArgument);
        assert_eq!(run(b"junk", b"a", Some(b"12345"), &d, 0, &l), ErrorCode::ValueTooLarge);
        let empty_ct = Attributes { content_type: Vec::new(), meta: Vec::new() };
        assert_eq!(run(b"junk", b"a", Some(b"1234"), &empty_ct, 0, &l), ErrorCode::BadMetadata);
        assert_eq!(run(b"junk", b"a", Some(b"1234"), &d, 0, &l), ErrorCode::BadContext);
        // A context of 1024 other actors is full once the new actor is added.
        let full: Context = (0..MAX_CONTEXT_ENTRIES).map(|i| (format!("w{i:04}").into_bytes(), 1)).collect();
        let full = crate::codec::encode_context(&full);
        assert_eq!(run(&full, b"a", Some(b"1234"), &d, 0, &l), ErrorCode::BadContext);
        // ... but not when the actor is one of them.
        assert!(coordinate_detached(&full, b"w0000", None, &d, 0, Mode::Siblings, &l).is_ok());
        // The actor's counter at 2^53-1 has no next dot.
        let mut spent = Context::new();
        spent.insert(b"a".to_vec(), MAX_SAFE);
        assert_eq!(run(&crate::codec::encode_context(&spent), b"a", None, &d, 0, &l), ErrorCode::InvalidArgument);
    }

    #[test]
    fn finish_enforces_limit() {
        let mut r = Record::default();
        for i in 0..3 {
            r = put(&r, &Context::new(), "a", &i.to_string(), i);
        }
        assert_eq!(
            finish(r.clone(), Mode::Siblings, 2).unwrap_err().code,
            ErrorCode::TooManySiblings
        );
        assert_eq!(
            finish(r.clone(), Mode::Siblings, 3).unwrap().siblings.len(),
            3
        );
        assert_eq!(finish(r, Mode::Lww, 1).unwrap().siblings.len(), 1);
    }
}
