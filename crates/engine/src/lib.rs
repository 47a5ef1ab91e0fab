//! ringkv storage engine. The byte formats and semantics are fixed by
//! docs/engine.md and shared with the pure-TypeScript twin.

pub mod codec;
pub mod commit;
pub mod config;
pub mod dvv;
pub mod engine;
pub mod error;
pub mod keys;
pub mod tictac;

pub use config::{Config, Limits};
pub use dvv::Mode;
pub use engine::{Engine, KeyRecord, PartitionPage, SegmentKey, MAX_SCAN_LIMIT};
pub use error::{EngineError, ErrorCode, Result};
pub use keys::position;
