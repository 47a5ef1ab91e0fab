// Calls to the node that served the page, with the pasted token. Every
// failure becomes an ApiError saying what the user can do about it.
export class ApiError extends Error {
  constructor(
    /** HTTP status; 0 when the node did not answer at all. */
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  /** A line for the page: who refused what, and why. */
  describe(): string {
    if (this.status === 0) return `no answer: ${this.message}`;
    return `${this.code} (${this.status}): ${this.message}`;
  }
}

const TIMEOUT_MS = 4_000;

export async function request(path: string, token: string, init: { method?: string; body?: unknown; timeoutMs?: number } = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  if (token !== '') headers.authorization = `Bearer ${token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method: init.method ?? 'GET',
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(init.timeoutMs ?? TIMEOUT_MS),
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'UNREACHABLE', err instanceof Error ? err.message : String(err));
  }
  if (!res.ok) {
    let doc: { error?: unknown; message?: unknown } = {};
    try {
      doc = (await res.json()) as typeof doc;
    } catch {
      // not JSON: the status says enough
    }
    throw new ApiError(res.status, typeof doc.error === 'string' ? doc.error : `HTTP_${res.status}`, typeof doc.message === 'string' ? doc.message : res.statusText);
  }
  return res;
}

export async function getJson<T>(path: string, token: string): Promise<T> {
  return (await (await request(path, token)).json()) as T;
}

export async function getText(path: string, token: string): Promise<string> {
  return (await request(path, token)).text();
}

/** A POST; `timeoutMs` for the admin routes that answer only once done (drain, forget). */
export async function postJson<T>(path: string, token: string, body: unknown, timeoutMs?: number): Promise<T> {
  return (await (await request(path, token, { method: 'POST', body, timeoutMs })).json()) as T;
}

const TOKEN_KEY = 'ringkv.dashboard.token';

/** The token lives in this tab's sessionStorage only: gone when the tab closes, never sent anywhere but this node. */
export const tokenStore = {
  get: (): string => sessionStorage.getItem(TOKEN_KEY) ?? '',
  set: (token: string): void => sessionStorage.setItem(TOKEN_KEY, token),
  clear: (): void => sessionStorage.removeItem(TOKEN_KEY),
};
