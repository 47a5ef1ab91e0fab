//! Engine options and their validation.

use std::path::PathBuf;

use crate::error::{err, ErrorCode, Result};
use crate::keys::{Geometry, HARD_MAX_KEY_BYTES};

pub const HARD_MAX_VALUE_BYTES: usize = 16 << 20;
pub const HARD_MAX_SIBLINGS: usize = 65535;

/// Size limits checked on every write.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Limits {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    pub max_siblings: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 1024,
            max_value_bytes: 1 << 20,
            max_siblings: 100,
        }
    }
}

impl Limits {
    pub fn validate(&self) -> Result<()> {
        if !(1..=HARD_MAX_KEY_BYTES).contains(&self.max_key_bytes) {
            return err(ErrorCode::InvalidArgument, "maxKeyBytes must be 1..=65535");
        }
        if self.max_value_bytes > HARD_MAX_VALUE_BYTES {
            return err(
                ErrorCode::InvalidArgument,
                "maxValueBytes must be <= 16 MiB",
            );
        }
        if !(1..=HARD_MAX_SIBLINGS).contains(&self.max_siblings) {
            return err(ErrorCode::InvalidArgument, "maxSiblings must be 1..=65535");
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub path: PathBuf,
    pub node_id: String,
    /// Epoch for a new data directory; random when `None`. Ignored when the
    /// directory already has one.
    pub epoch: Option<String>,
    pub partition_bits: u8,
    pub tree_branch_bits: u8,
    pub tree_segment_bits: u8,
    /// sled page cache size.
    pub cache_bytes: u64,
    /// Background flush period; `None` or `Some(0)` disables it.
    pub flush_every_ms: Option<u64>,
    pub limits: Limits,
}

impl Config {
    pub fn new(path: impl Into<PathBuf>, node_id: impl Into<String>) -> Config {
        Config {
            path: path.into(),
            node_id: node_id.into(),
            epoch: None,
            partition_bits: 12,
            tree_branch_bits: 5,
            tree_segment_bits: 5,
            cache_bytes: 64 << 20,
            flush_every_ms: Some(500),
            limits: Limits::default(),
        }
    }

    /// Check every option; returns the tree geometry.
    pub fn validate(&self) -> Result<Geometry> {
        check_node_id(&self.node_id)?;
        if let Some(epoch) = &self.epoch {
            check_epoch(epoch)?;
        }
        self.limits.validate()?;
        Geometry::new(
            self.partition_bits,
            self.tree_branch_bits,
            self.tree_segment_bits,
        )
    }
}

/// `[A-Za-z0-9._-]{1,64}`; also the rule for hint targets.
pub fn check_node_id(id: &str) -> Result<()> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return err(
            ErrorCode::InvalidArgument,
            format!("bad nodeId {id:?}: must match [A-Za-z0-9._-]{{1,64}}"),
        );
    }
    Ok(())
}

/// 16 lowercase hex digits.
pub fn check_epoch(epoch: &str) -> Result<()> {
    if epoch.len() != 16
        || !epoch
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return err(
            ErrorCode::InvalidArgument,
            format!("bad epoch {epoch:?}: must be 16 lowercase hex digits"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_and_epoch_rules() {
        assert!(check_node_id("n1").is_ok());
        assert!(check_node_id("A.b_c-9").is_ok());
        assert!(check_node_id(&"x".repeat(64)).is_ok());
        for bad in ["", "a:b", "a b", "é", &"x".repeat(65)] {
            assert!(check_node_id(bad).is_err(), "{bad}");
        }
        assert!(check_epoch("0123456789abcdef").is_ok());
        for bad in [
            "0123456789ABCDEF",
            "0123456789abcde",
            "0123456789abcdef0",
            "g123456789abcdef",
        ] {
            assert!(check_epoch(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_rules() {
        assert!(Limits::default().validate().is_ok());
        let max = Limits {
            max_key_bytes: 65535,
            max_value_bytes: 16 << 20,
            max_siblings: 65535,
        };
        assert!(max.validate().is_ok());
        for bad in [
            Limits {
                max_key_bytes: 65536,
                ..Limits::default()
            },
            Limits {
                max_key_bytes: 0,
                ..Limits::default()
            },
            Limits {
                max_value_bytes: (16 << 20) + 1,
                ..Limits::default()
            },
            Limits {
                max_siblings: 0,
                ..Limits::default()
            },
            Limits {
                max_siblings: 65536,
                ..Limits::default()
            },
        ] {
            assert_eq!(bad.validate().unwrap_err().code, ErrorCode::InvalidArgument);
        }
    }
}
