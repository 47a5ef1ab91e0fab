#![allow(dead_code)]

use std::path::Path;

use ringkv_engine::codec::{decode_record, encode_context, Record};
use ringkv_engine::{Config, Engine, ErrorCode, Result};

pub const EPOCH: &str = "0000000000000001";

pub fn config(dir: &Path, node: &str) -> Config {
    let mut cfg = Config::new(dir, node);
    cfg.epoch = Some(EPOCH.into());
    cfg.flush_every_ms = None;
    cfg.cache_bytes = 8 << 20;
    cfg
}

pub fn open(dir: &Path) -> Engine {
    Engine::open(config(dir, "n1")).unwrap()
}

pub fn open_with(dir: &Path, f: impl FnOnce(&mut Config)) -> Engine {
    let mut cfg = config(dir, "n1");
    f(&mut cfg);
    Engine::open(cfg).unwrap()
}

pub fn decode(rec: &[u8]) -> Record {
    decode_record(rec).unwrap()
}

/// The client context a reader of `rec` would get back.
pub fn ctx_of(rec: &[u8]) -> Vec<u8> {
    encode_context(&decode(rec).context)
}

/// Sibling values in dot order; `None` for a tombstone.
pub fn values(rec: &[u8]) -> Vec<Option<Vec<u8>>> {
    decode(rec)
        .siblings
        .into_iter()
        .map(|s| (!s.tombstone).then_some(s.value))
        .collect()
}

pub fn code<T: std::fmt::Debug>(r: Result<T>) -> ErrorCode {
    r.unwrap_err().code
}

/// Deterministic xorshift64 so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
