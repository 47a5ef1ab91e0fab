// HTTP edges (issue 11, item 7), each over a raw TCP socket to a real node:
// a standard method a route does not serve answers 405 with `Allow` and a
// JSON body (HEAD without a body); a method outside uWS's nine is closed at
// once without an answer; malformed requests this uWS build cannot parse are
// never answered and are closed by the server (its HTTP idle timeout), and
// nothing after them on that connection is parsed. docs/http.md,
// "Malformed requests", says the same.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROUTE_METHODS } from '../../src/http/api.js';
import { startTestNode, type TestNode } from '../helpers/server.js';

const STANDARD_METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
/** A concrete path for each route pattern. */
const EXAMPLE_PATH: Record<string, string> = {
  '/kv/:bucket/:key': '/kv/b/k',
  '/sets/:bucket/:key': '/sets/b/k',
  '/buckets/:bucket/props': '/buckets/b/props',
  '/ui/assets/:file': '/ui/assets/index.js',
};

let node: TestNode;
beforeAll(async () => {
  node = await startTestNode('m1');
});
afterAll(async () => {
  await node?.close();
});

interface Exchange {
  /** Every byte the server sent. */
  received: string;
  /** The server ended the connection (rather than this test giving up). */
  closedByServer: boolean;
  /** Order in which connections of one test were closed by the server. */
  closedAs: number;
}

let closeOrder = 0;

/** Writes `raw` on a new connection and collects the answer until the server closes it (or waitMs passes: then closedByServer is false). */
function exchange(raw: string | Buffer, waitMs: number): Promise<Exchange> {
  const [host, port] = node.address.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), host);
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ received: Buffer.concat(chunks).toString('latin1'), closedByServer, closedAs: closedByServer ? ++closeOrder : -1 });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? finish(true) : reject(e)));
    socket.write(raw);
  });
}

/** The status line, headers (lower-cased) and body of the first answer in `text`. */
function firstAnswer(text: string): { status: number; headers: Record<string, string>; body: string; rest: string } {
  const end = text.indexOf('\r\n\r\n');
  expect(end).toBeGreaterThan(0);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
  const length = Number(headers['content-length'] ?? 0);
  const body = text.slice(end + 4, end + 4 + length);
  return { status: Number(statusLine!.split(' ')[1]), headers, body, rest: text.slice(end + 4 + length) };
}

describe('HTTP methods', () => {
  it('the route table is openapi.yaml\'s paths and methods', () => {
    const doc = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as { paths: Record<string, Record<string, unknown>> };
    const fromDoc = Object.fromEntries(
      Object.entries(doc.paths).map(([path, item]) => [
        path,
        Object.keys(item)
          .filter((k) => STANDARD_METHODS.includes(k.toUpperCase()))
          .map((k) => k.toUpperCase())
          .sort(),
      ]),
    );
    const fromTable = Object.fromEntries(Object.entries(ROUTE_METHODS).map(([p, ms]) => [p.replace(/:(\w+)/g, '{$1}'), [...ms].sort()]));
    expect(fromTable).toEqual(fromDoc);
  });

  it('every standard method a route does not serve answers 405 with Allow and a JSON body; the connection stays usable', async () => {
    let checked = 0;
    for (const [pattern, methods] of Object.entries(ROUTE_METHODS)) {
      const path = EXAMPLE_PATH[pattern] ?? pattern;
      for (const method of STANDARD_METHODS.filter((m) => !methods.includes(m))) {
        // A body too (a PATCH with data), then a second request on the same connection.
        const raw = `${method} ${path} HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloGET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`;
        const { received } = await exchange(raw, 10_000);
        const answer = firstAnswer(received);
        expect(answer.status, `${method} ${path}`).toBe(405);
        expect(answer.headers.allow, `${method} ${path}`).toBe(methods.join(', '));
        if (method === 'HEAD') {
          expect(answer.headers['content-length']).toBe('0');
        } else {
          expect(answer.headers['content-type']).toBe('application/json');
          expect(JSON.parse(answer.body)).toMatchObject({ error: 'METHOD_NOT_ALLOWED', allow: [...methods] });
        }
        // The next answer on the connection is the ping's: nothing of the 405 (or of its request body) is left over.
        const next = firstAnswer(answer.rest);
        expect(next.status).toBe(200);
        expect(next.body).toBe('pong');
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  }, 60_000);

  it('HEAD of an unknown path answers 404 without a body', async () => {
    const { received } = await exchange('HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\nGET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n', 10_000);
    const answer = firstAnswer(received);
    expect(answer.status).toBe(404);
    expect(answer.headers['content-length']).toBe('0');
    expect(firstAnswer(answer.rest).body).toBe('pong');
  });
});

describe('requests uWS cannot answer', () => {
  const headers = (n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? 'Host: t\r\n' : `X-H${i}: v\r\n`)).join('');
  const then = 'GET /ping HTTP/1.1\r\nHost: t\r\n\r\n';
  // Each is followed by a valid request on the same connection: it must never be answered.
  const closedAtOnce: Record<string, string> = {
    'method QUERY': `QUERY /status HTTP/1.1\r\nHost: t\r\n\r\n${then}`,
    'method PROPFIND': `PROPFIND /kv/b/k HTTP/1.1\r\nHost: t\r\n\r\n${then}`,
    'method FOO': `FOO /status HTTP/1.1\r\nHost: t\r\n\r\n${then}`,
    'lower-case get': `get /ping HTTP/1.1\r\nHost: t\r\n\r\n${then}`,
    'no Host header': `GET /ping HTTP/1.1\r\nX-A: 1\r\n\r\n${then}`,
  };
  const closedByIdleTimeout: Record<string, string> = {
    "'#' in a header name": `GET /ping HTTP/1.1\r\nHost: t\r\nX#Y: 1\r\n\r\n${then}`,
    '49 header fields': `GET /ping HTTP/1.1\r\n${headers(49)}\r\n${then}`,
    'NUL in the URL': `GET /pi\0ng HTTP/1.1\r\nHost: t\r\n\r\n${then}`,
    'NUL in a header value': `GET /ping HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n${then}`,
    'tab after the method': `GET\t/ping HTTP/1.1\r\nHost: t\r\n\r\n${then}`,
    'HTTP/1.0': `GET /ping HTTP/1.0\r\nHost: t\r\n\r\n${then}`,
  };

  it('48 header fields are still served (the limit is one below)', async () => {
    const { received } = await exchange(`GET /ping HTTP/1.1\r\n${headers(47)}Connection: close\r\n\r\n`, 10_000);
    expect(firstAnswer(received).body).toBe('pong');
  });

  it('each is never answered and the server closes it; unknown methods before any idle-timeout close; the node serves on', async () => {
    closeOrder = 0;
    // An incomplete request: the reference for the idle timeout (uWS closes a silent HTTP connection after ~10 s).
    const incomplete = exchange('GET /ping HTTP/1.1\r\nHost: t\r\n', 30_000);
    const atOnce = Object.entries(closedAtOnce).map(async ([name, raw]) => [name, await exchange(raw, 30_000)] as const);
    const idle = Object.entries(closedByIdleTimeout).map(async ([name, raw]) => [name, await exchange(raw, 30_000)] as const);
    const reference = await incomplete;
    expect(reference).toMatchObject({ received: '', closedByServer: true });
    for (const [name, ex] of await Promise.all(atOnce)) {
      expect({ name, received: ex.received, closedByServer: ex.closedByServer }).toEqual({ name, received: '', closedByServer: true });
      expect(ex.closedAs, name).toBeLessThan(reference.closedAs);
    }
    for (const [name, ex] of await Promise.all(idle)) {
      expect({ name, received: ex.received, closedByServer: ex.closedByServer }).toEqual({ name, received: '', closedByServer: true });
    }
    const { received } = await exchange('GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n', 10_000);
    expect(firstAnswer(received).body).toBe('pong');
  }, 60_000);
});
