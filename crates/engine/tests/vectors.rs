//! The golden vectors file must match what the engine produces today.
//! Regenerate with:
//! `cargo run -p ringkv-engine --example vectors > test/vectors/engine-vectors.json`

#[path = "../examples/vectors.rs"]
mod vectors;

#[test]
fn golden_vectors_file_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../test/vectors/engine-vectors.json"
    );
    let stored = std::fs::read_to_string(path).expect("test/vectors/engine-vectors.json");
    assert!(
        stored == vectors::vectors_json(),
        "{path} is stale; regenerate it"
    );
}
