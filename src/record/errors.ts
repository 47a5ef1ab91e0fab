// The one error type of the record format and both engines (the Rust
// crate's error.rs): a stable code callers branch on, and a message.

export type EngineErrorCode =
  | 'INVALID_ARGUMENT'
  | 'KEY_TOO_LARGE'
  | 'VALUE_TOO_LARGE'
  | 'TOO_MANY_SIBLINGS'
  | 'BAD_CONTEXT'
  | 'METADATA_TOO_LARGE'
  | 'BAD_METADATA'
  | 'CORRUPT_RECORD'
  | 'CONFIG_MISMATCH'
  | 'CLOSED'
  | 'IO'
  | 'INTERNAL';

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  constructor(code: EngineErrorCode, message: string) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
  }
}
