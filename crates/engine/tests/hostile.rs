//! Hostile record bytes reaching merge, hint_put and reap: each is refused
//! with a typed error (never a panic, which the N-API layer would turn into
//! INTERNAL) and changes nothing, or is a valid record and merges.

mod common;

use common::*;
use ringkv_engine::codec::{decode_record, encode_record};
use ringkv_engine::{ErrorCode, Mode};

#[test]
fn mutated_records_are_refused_or_merged_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    // A 3-sibling record with a tombstone: every field kind is present.
    let mut good = Vec::new();
    for (i, v) in [Some(&b"x"[..]), None, Some(b"yy")].into_iter().enumerate() {
        good = e.coordinate(b"b", b"src", None, v, 10 + i as u64, Mode::Siblings, false).unwrap();
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut merged, mut refused) = (0, 0);
    for i in 0..1_500u64 {
        let mut bytes = good.clone();
        match rng.below(4) {
            0 => bytes.truncate(rng.below(good.len() as u64) as usize),
            1 => {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] ^= 1 << rng.below(8);
            }
            2 => {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] = rng.next() as u8;
            }
            _ => bytes.push(rng.next() as u8),
        }
        let key = format!("k{}", i % 7);
        let before = e.get(b"b", key.as_bytes()).unwrap();
        let roots = e.tree_roots();
        let mode = if i % 3 == 0 { Mode::Lww } else { Mode::Siblings };
        match e.merge(b"b", key.as_bytes(), &bytes, mode, false) {
            Ok(stored) => {
                let rec = decode_record(&stored).unwrap();
                assert_eq!(encode_record(&rec), stored);
                merged += 1;
            }
            Err(err) => {
                // A valid but hostile pair (each side claims the other's
                // dots) is CORRUPT_RECORD too; the context can only
                // overflow with 65535 actors, which 1 500 merges cannot.
                assert_eq!(err.code, ErrorCode::CorruptRecord, "{err}");
                assert_eq!(e.get(b"b", key.as_bytes()).unwrap(), before, "refused merge changed the record");
                assert_eq!(e.tree_roots(), roots, "refused merge changed the trees");
                refused += 1;
            }
        }
        match e.hint_put("n2", b"b", key.as_bytes(), &bytes) {
            Ok(_) => {}
            Err(err) => assert_eq!(err.code, ErrorCode::CorruptRecord, "{err}"),
        }
        if let Err(err) = e.reap(b"b", key.as_bytes(), &bytes) {
            assert!(matches!(err.code, ErrorCode::CorruptRecord | ErrorCode::InvalidArgument), "{err}");
        }
    }
    assert!(merged > 50 && refused > 50, "merged {merged}, refused {refused}");
    // The trees still equal a rebuild from what is stored.
    let roots = e.tree_roots();
    e.close().unwrap();
    let e = open(dir.path());
    assert_eq!(e.tree_roots(), roots);
}
