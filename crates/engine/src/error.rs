//! Stable error codes shared with the TypeScript twin (docs/engine.md, "Errors").

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ErrorCode {
    InvalidArgument,
    KeyTooLarge,
    ValueTooLarge,
    TooManySiblings,
    BadContext,
    /// A content type or metadata entry over a limit (docs/engine.md).
    MetadataTooLarge,
    /// A malformed content type or metadata entry.
    BadMetadata,
    CorruptRecord,
    ConfigMismatch,
    Closed,
    Io,
    Internal,
}

impl ErrorCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::KeyTooLarge => "KEY_TOO_LARGE",
            ErrorCode::ValueTooLarge => "VALUE_TOO_LARGE",
            ErrorCode::TooManySiblings => "TOO_MANY_SIBLINGS",
            ErrorCode::BadContext => "BAD_CONTEXT",
            ErrorCode::MetadataTooLarge => "METADATA_TOO_LARGE",
            ErrorCode::BadMetadata => "BAD_METADATA",
            ErrorCode::CorruptRecord => "CORRUPT_RECORD",
            ErrorCode::ConfigMismatch => "CONFIG_MISMATCH",
            ErrorCode::Closed => "CLOSED",
            ErrorCode::Io => "IO",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EngineError {
    pub code: ErrorCode,
    pub message: String,
}

impl EngineError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        EngineError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for EngineError {}

/// Every storage failure is `IO`: callers cannot act on sled's finer detail.
impl From<sled::Error> for EngineError {
    fn from(e: sled::Error) -> Self {
        EngineError::new(ErrorCode::Io, e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// Shorthand used throughout the crate: `err(ErrorCode::X, "why")`.
pub(crate) fn err<T>(code: ErrorCode, message: impl Into<String>) -> Result<T> {
    Err(EngineError::new(code, message))
}
