// Errors the client library throws. Server errors keep the server's JSON
// error document ({ error, message, ...details }); client-side failures use
// status 0 and their own codes.

/** Codes the client raises itself (the server's codes are in src/http/wire.ts STATUS_OF_ERROR). */
export type ClientErrorCode =
  /** Every node refused the connection or failed before answering. */
  | 'UNREACHABLE'
  /** No answer within the client timeout. */
  | 'CLIENT_TIMEOUT'
  /** The server's answer was not what the API promises. */
  | 'BAD_RESPONSE'
  /** `update` found concurrent siblings and was given no merge function. */
  | 'SIBLINGS_UNRESOLVED';

export class RingkvError extends Error {
  /** HTTP status of the server's answer; 0 when none was received. */
  readonly status: number;
  /** The server's `error` code, or a ClientErrorCode. */
  readonly code: string;
  /** The parsed error document (or whatever the server sent, or client-side details). */
  readonly body: unknown;

  constructor(status: number, code: string, message: string, body: unknown = null, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RingkvError';
    this.status = status;
    this.code = code;
    this.body = body;
  }

  /** Builds the error for a non-success HTTP answer from its body text. */
  static fromResponse(status: number, text: string): RingkvError {
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    if (body !== null && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string') {
      const doc = body as { error: string; message?: unknown };
      const message = typeof doc.message === 'string' ? doc.message : doc.error;
      return new RingkvError(status, doc.error, `${doc.error}: ${message}`, body);
    }
    return new RingkvError(status, `HTTP_${status}`, `HTTP ${status}: ${text.slice(0, 200)}`, body);
  }
}
