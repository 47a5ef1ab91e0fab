//! Prints the golden vectors the TypeScript twin asserts
//! (test/vectors/engine-vectors.json). Run:
//! `cargo run -p ringkv-engine --example vectors > test/vectors/engine-vectors.json`
//! `tests/vectors.rs` fails if the file and this output drift apart.

use ringkv_engine::codec::{decode_record, encode_context, Attributes, Context};
use ringkv_engine::keys::bkey;
use ringkv_engine::tictac::{leaf_hash, leaf_message, LEAF_KEY};
use ringkv_engine::{position, Config, Engine, Mode};

const NOW: u64 = 1000;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

fn opt_hex(bytes: Option<&[u8]>) -> String {
    bytes.map_or("null".into(), |b| q(&hex(b)))
}

/// One JSON object per line, fields in the given order.
fn object(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}: {v}", q(k)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

fn engine(dir: &std::path::Path, node: &str, epoch: &str) -> Engine {
    let mut cfg = Config::new(dir, node);
    cfg.epoch = Some(epoch.into());
    cfg.flush_every_ms = None;
    Engine::open(cfg).expect("open")
}

fn ctx_of(rec: &[u8]) -> Vec<u8> {
    encode_context(&decode_record(rec).expect("record").context)
}

fn leaf_of(b: &[u8], k: &[u8], rec: &[u8]) -> [u8; 8] {
    leaf_hash(&bkey(b, k), &decode_record(rec).expect("record")).to_be_bytes()
}

/// Attributes as given to coordinate (any order), from strings.
fn attrs(ct: &str, meta: &[(&str, &str)]) -> Attributes {
    Attributes {
        content_type: ct.as_bytes().to_vec(),
        meta: meta.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect(),
    }
}

/// `"contentType": ..., "meta": [[name, value], ...]` of a step with attributes.
fn attrs_fields(a: &Attributes) -> Vec<(&'static str, String)> {
    let text = |b: &[u8]| q(std::str::from_utf8(b).expect("ASCII"));
    let meta: Vec<String> = a.meta.iter().map(|(n, v)| format!("[{}, {}]", text(n), text(v))).collect();
    vec![("contentType", text(&a.content_type)), ("meta", format!("[{}]", meta.join(", ")))]
}

/// Runs one coordinate call at `NOW` and logs its inputs and outputs as a step.
#[allow(clippy::too_many_arguments)]
fn step(
    steps: &mut Vec<String>,
    e: &Engine,
    b: &[u8],
    k: &[u8],
    mode: Mode,
    context: Option<Vec<u8>>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    step_with(steps, e, b, k, mode, context, value, None)
}

/// `step` with the new sibling's attributes (logged as given, unsorted).
#[allow(clippy::too_many_arguments)]
fn step_with(
    steps: &mut Vec<String>,
    e: &Engine,
    b: &[u8],
    k: &[u8],
    mode: Mode,
    context: Option<Vec<u8>>,
    value: Option<&[u8]>,
    attributes: Option<&Attributes>,
) -> Vec<u8> {
    let rec = e
        .coordinate_with(b, k, context.as_deref(), value, attributes.unwrap_or(&Attributes::default()), NOW, mode, false)
        .expect("coordinate");
    let mut fields = vec![
        (
            "mode",
            q(if mode == Mode::Lww { "lww" } else { "siblings" }),
        ),
        ("now", NOW.to_string()),
        ("context", opt_hex(context.as_deref())),
        ("value", opt_hex(value)),
    ];
    if let Some(a) = attributes {
        fields.extend(attrs_fields(a));
    }
    fields.push(("record", q(&hex(&rec))));
    fields.push(("leaf", q(&hex(&leaf_of(b, k, &rec)))));
    steps.push(object(&fields));
    rec
}

fn steps_json(steps: &[String]) -> String {
    format!("[\n      {}\n    ]", steps.join(",\n      "))
}

pub fn vectors_json() -> String {
    let mut out: Vec<String> = Vec::new();

    for (name, b, k) in [
        ("position b/k", &b"b"[..], &b"k"[..]),
        ("position binary key", b"users", &[0u8, 255, 1, 0][..]),
    ] {
        let pos = position(b, k).expect("position");
        out.push(object(&[
            ("name", q(name)),
            ("kind", q("position")),
            ("bucket", q(&hex(b))),
            ("key", q(&hex(k))),
            ("bkey", q(&hex(&bkey(b, k)))),
            ("position", q(&hex(&pos.to_be_bytes()))),
        ]));
    }

    out.push(object(&[
        ("name", q("leaf key")),
        ("kind", q("leafKey")),
        ("leafKey", q(&hex(&*LEAF_KEY))),
    ]));

    let mut ctx = Context::new();
    out.push(object(&[
        ("name", q("empty context")),
        ("kind", q("context")),
        ("context", q(&hex(&encode_context(&ctx)))),
    ]));
    ctx.insert(b"n1:0000000000000001".to_vec(), 2);
    ctx.insert(b"n2:0000000000000002".to_vec(), 1);
    out.push(object(&[
        ("name", q("two-actor context")),
        ("kind", q("context")),
        ("context", q(&hex(&encode_context(&ctx)))),
    ]));

    let (d1, d2) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let n1 = engine(d1.path(), "n1", "0000000000000001");
    let n2 = engine(d2.path(), "n2", "0000000000000002");
    let (b, k) = (&b"b"[..], &b"k"[..]);

    // Leaf hash of a one-sibling record.
    let small = n1
        .coordinate(b, b"leaf", None, Some(b"hello"), NOW, Mode::Siblings, false)
        .expect("coordinate");
    let msg = leaf_message(&bkey(b, b"leaf"), &decode_record(&small).expect("record"));
    out.push(object(&[
        ("name", q("leaf of a one-sibling record")),
        ("kind", q("leaf")),
        ("bucket", q(&hex(b))),
        ("key", q(&hex(b"leaf"))),
        ("record", q(&hex(&small))),
        ("message", q(&hex(&msg))),
        ("leaf", q(&hex(&leaf_of(b, b"leaf", &small)))),
    ]));

    // put v1, concurrent put v2, resolve with v3, delete, then a put
    // with v1's stale context: the tombstone survives beside v5.
    let (s, mut steps) = (Mode::Siblings, Vec::new());
    let r1 = step(&mut steps, &n1, b, k, s, None, Some(b"v1"));
    let r2 = step(&mut steps, &n1, b, k, s, None, Some(b"v2"));
    let r3 = step(&mut steps, &n1, b, k, s, Some(ctx_of(&r2)), Some(b"v3"));
    step(&mut steps, &n1, b, k, s, Some(ctx_of(&r3)), None);
    step(&mut steps, &n1, b, k, s, Some(ctx_of(&r1)), Some(b"v5"));
    out.push(object(&[
        ("name", q("coordinate sequence")),
        ("kind", q("coordinate")),
        ("nodeId", q("n1")),
        ("epoch", q("0000000000000001")),
        ("bucket", q(&hex(b))),
        ("key", q(&hex(k))),
        ("steps", steps_json(&steps)),
    ]));

    // Two lww puts at the same timestamp: the greater dot (higher counter) wins.
    let mut steps = Vec::new();
    step(&mut steps, &n1, b, b"lww", Mode::Lww, None, Some(b"a"));
    step(&mut steps, &n1, b, b"lww", Mode::Lww, None, Some(b"b"));
    out.push(object(&[
        ("name", q("lww sequence")),
        ("kind", q("coordinate")),
        ("nodeId", q("n1")),
        ("epoch", q("0000000000000001")),
        ("bucket", q(&hex(b))),
        ("key", q(&hex(b"lww"))),
        ("steps", steps_json(&steps)),
    ]));

    // Merge: n1 holds r2 (two siblings) for key "m"; n2 wrote concurrently.
    n1.merge(b, b"m", &r2, s, false).expect("seed");
    let local = n1.get(b, b"m").expect("get").expect("present");
    // n2 wrote "w" having seen only v1.
    let incoming = n2
        .coordinate(b, b"m", Some(&ctx_of(&r1)), Some(b"w"), NOW, s, false)
        .expect("coordinate");
    let merged = n1.merge(b, b"m", &incoming, s, false).expect("merge");
    let reverse = n2.merge(b, b"m", &local, s, false).expect("merge");
    assert_eq!(merged, reverse, "merge must commute");
    out.push(object(&[
        ("name", q("merge commutes")),
        ("kind", q("merge")),
        ("mode", q("siblings")),
        ("bucket", q(&hex(b))),
        ("key", q(&hex(b"m"))),
        ("local", q(&hex(&local))),
        ("incoming", q(&hex(&incoming))),
        ("result", q(&hex(&merged))),
        ("leaf", q(&hex(&leaf_of(b, b"m", &merged)))),
    ]));

    // Format 2: a put with a content type and metadata (given unsorted), a
    // concurrent plain put (the default spelled out beside it), then a plain
    // put that resolves both: the record is format 1 again.
    let mut steps = Vec::new();
    let json = attrs("application/json", &[("owner", "ann"), ("a-tag", "x y")]);
    let a1 = step_with(&mut steps, &n1, b, b"attrs", s, None, Some(b"{}"), Some(&json));
    step_with(&mut steps, &n1, b, b"attrs", s, None, Some(b"raw"), None);
    let a3 = step_with(&mut steps, &n1, b, b"attrs", s, Some(ctx_of(&n1.get(b, b"attrs").expect("get").expect("present"))), Some(b"plain"), None);
    assert_eq!((a1[0], a3[0]), (2, 1), "format 2 exactly when a sibling has attributes");
    // A delete never carries attributes.
    step_with(&mut steps, &n1, b, b"attrs", s, Some(ctx_of(&a3)), None, Some(&attrs("text/plain", &[("x", "1")])));
    out.push(object(&[
        ("name", q("coordinate with attributes")),
        ("kind", q("coordinate")),
        ("nodeId", q("n1")),
        ("epoch", q("0000000000000001")),
        ("bucket", q(&hex(b))),
        ("key", q(&hex(b"attrs"))),
        ("steps", steps_json(&steps)),
    ]));

    // Merge of a format-1 record with a concurrent format-2 one.
    let plain = n1.coordinate(b, b"mix", None, Some(b"p"), NOW, s, false).expect("coordinate");
    let with = n2
        .coordinate_with(b, b"mix", None, Some(b"<p/>"), &attrs("text/html", &[("lang", "en")]), NOW, s, false)
        .expect("coordinate");
    let merged = n1.merge(b, b"mix", &with, s, false).expect("merge");
    assert_eq!(merged, n2.merge(b, b"mix", &plain, s, false).expect("merge"), "merge must commute");
    out.push(object(&[
        ("name", q("merge of formats 1 and 2")),
        ("kind", q("merge")),
        ("mode", q("siblings")),
        ("bucket", q(&hex(b))),
        ("key", q(&hex(b"mix"))),
        ("local", q(&hex(&plain))),
        ("incoming", q(&hex(&with))),
        ("result", q(&hex(&merged))),
        ("leaf", q(&hex(&leaf_of(b, b"mix", &merged)))),
    ]));

    // Attributes a client write is refused for, with the code both twins give.
    let many: Vec<(String, String)> = (0..33).map(|i| (format!("k{i:02}"), "v".to_string())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let long_ct = "t".repeat(256);
    let big = "v".repeat(8192);
    let refused: [(&str, Attributes); 7] = [
        ("33 metadata entries", attrs("text/plain", &many)),
        ("a content type of 256 bytes", attrs(&long_ct, &[])),
        ("8193 bytes of metadata", attrs("text/plain", &[("a", &big)])),
        ("an upper-case name", attrs("text/plain", &[("Owner", "ann")])),
        ("a duplicate name", attrs("text/plain", &[("a", "1"), ("a", "2")])),
        ("a line break in a value", attrs("text/plain", &[("a", "1\r\nx: y")])),
        ("an empty content type", attrs("", &[])),
    ];
    for (name, a) in refused {
        let e = n1.coordinate_with(b, b"refused", None, Some(b"v"), &a, NOW, s, false).unwrap_err();
        assert_eq!(n1.get(b, b"refused").expect("get"), None, "a refused write stores nothing");
        let mut fields = vec![("name", q(name)), ("kind", q("refused"))];
        fields.extend(attrs_fields(&a).into_iter().map(|(k, v)| (k, v.replace("\r", "\\r").replace("\n", "\\n"))));
        fields.push(("code", q(e.code.as_str())));
        out.push(object(&fields));
    }

    format!("[\n  {}\n]\n", out.join(",\n  "))
}

#[allow(dead_code)]
fn main() {
    print!("{}", vectors_json());
}
