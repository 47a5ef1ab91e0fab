// How objects and errors look on the HTTP wire: the opaque context header,
// sibling documents, percent-decoded binary names and the error-code → status
// table. Shared by the server and the client library.

/** Response and request header carrying the opaque causal context. */
export const CONTEXT_HEADER = 'x-ringkv-context';
/** Last-modified time (ms since the epoch) of a single-valued object. */
export const LAST_MODIFIED_HEADER = 'x-ringkv-last-modified';

/** A 300 Multiple Choices body: every sibling, values base64-encoded. */
export interface SiblingsDocument {
  context: string;
  siblings: Array<{ value: string | null; deleted: boolean; lastModified: number }>;
}

export interface ErrorDocument {
  error: string;
  message: string;
  [detail: string]: unknown;
}

export function encodeContextHeader(context: Uint8Array): string {
  return Buffer.from(context.buffer, context.byteOffset, context.byteLength).toString('base64url');
}

/** Decodes the header strictly: Buffer's base64url decoder skips bad characters silently. */
export function decodeContextHeader(header: string): Buffer | null {
  if (header === '') return null;
  if (!/^[A-Za-z0-9_-]+$/.test(header) || header.length % 4 === 1) throw new TypeError('context header is not base64url');
  return Buffer.from(header, 'base64url');
}

/** Percent-decodes a URL path segment to raw bytes (keys may be binary). */
export function percentDecode(segment: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hex = segment.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new TypeError(`bad percent escape at ${i}`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 0x80) {
      out.push(c);
    } else {
      out.push(...Buffer.from(segment[i]!, 'utf8'));
    }
  }
  return Buffer.from(out);
}

/** Percent-encodes raw bytes for a URL path segment. */
export function percentEncode(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    const ch = String.fromCharCode(b);
    out += /[A-Za-z0-9._~-]/.test(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** HTTP status for each error code: the caller's fault is 4xx, the cluster's 5xx. */
export const STATUS_OF_ERROR: Record<string, number> = {
  BAD_REQUEST: 400,
  BAD_CONTEXT: 400,
  KEY_TOO_LARGE: 400,
  INVALID_BUCKET_PROPS: 400,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  TOO_MANY_SIBLINGS: 409,
  CLUSTER_MISMATCH: 409,
  NOT_A_SET: 409,
  BUCKET_IS_A_SET: 409,
  VALUE_TOO_LARGE: 413,
  BODY_TOO_LARGE: 413,
  INTERNAL: 500,
  QUORUM_FAILED: 503,
  TIMEOUT: 503,
  UNAVAILABLE: 503,
};
