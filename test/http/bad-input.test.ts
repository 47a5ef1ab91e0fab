// Hostile and malformed input against real nodes: every refusal is a JSON
// error with a code and the right status, junk on the shared port closes the
// connection, and the nodes keep serving afterwards.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, startCluster, type TestNode } from '../helpers/server.js';

const MAX_VALUE = 1024;
let nodes: TestNode[] = [];
let url: string;

beforeAll(async () => {
  nodes = await startCluster(['x', 'y'], { limits: { maxValueBytes: MAX_VALUE } });
  url = nodes[0]!.url;
});

afterAll(async () => {
  await Promise.allSettled(nodes.map((n) => n.close()));
});

/** Sends a request and checks the answer is a JSON error with `code` and `status`. */
async function expectError(path: string, init: RequestInit, status: number, code: string): Promise<Record<string, unknown>> {
  const res = await fetch(url + path, { ...init, signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  expect(res.status, `${init.method ?? 'GET'} ${path}: ${text}`).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/json');
  const doc = JSON.parse(text) as Record<string, unknown>;
  expect(doc.error).toBe(code);
  expect(typeof doc.message).toBe('string');
  return doc;
}

interface RawAnswer {
  status: number;
  headers: string;
  body: string;
  closed: boolean;
}

/** Writes raw bytes to the node's port; resolves with the first answer, or when the server closes, or after `waitMs`. */
function rawRequest(port: number, parts: Array<string | Buffer>, waitMs = 5_000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      const [head = '', body = ''] = data.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, headers: head.toLowerCase(), body, closed });
    };
    const timer = setTimeout(finish, waitMs);
    sock.on('data', (c) => (data += c.toString('latin1')));
    sock.on('error', () => {});
    sock.on('close', () => {
      closed = true;
      finish();
    });
    sock.on('connect', async () => {
      for (const p of parts) {
        if (sock.destroyed) return;
        sock.write(p);
        await new Promise((r) => setTimeout(r, 5));
      }
    });
  });
}

const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;

describe('malformed requests get JSON errors', () => {
  it('refuses a context header that is not base64url, or that decodes to garbage', async () => {
    for (const context of ['not base64!', 'abc$', 'A', '=AAA']) {
      await expectError('/kv/b/k', { method: 'PUT', body: 'v', headers: { 'x-ringkv-context': context } }, 400, 'BAD_CONTEXT');
    }
    for (const bytes of [randomBytes(12), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.alloc(40)]) {
      const context = bytes.toString('base64url');
      await expectError('/kv/b/k', { method: 'PUT', body: 'v', headers: { 'x-ringkv-context': context } }, 400, 'BAD_CONTEXT');
      await expectError('/kv/b/k', { method: 'DELETE', headers: { 'x-ringkv-context': context } }, 400, 'BAD_CONTEXT');
    }
  });

  it('refuses a key over 1024 bytes and accepts one of exactly 1024', async () => {
    await expectError(`/kv/b/${'k'.repeat(1025)}`, { method: 'PUT', body: 'v' }, 400, 'KEY_TOO_LARGE');
    await expectError(`/kv/b/${'%FF'.repeat(1025)}`, { method: 'GET' }, 400, 'KEY_TOO_LARGE');
    await expectError(`/kv/b/${'k'.repeat(2000)}`, { method: 'DELETE' }, 400, 'KEY_TOO_LARGE');
    const ok = await fetch(`${url}/kv/b/${'k'.repeat(1024)}`, { method: 'PUT', body: 'v' });
    expect(ok.status).toBe(204);
  });

  it('refuses a value over the limit (declared length) with 413 and closes the connection', async () => {
    const doc = await expectError('/kv/b/big', { method: 'PUT', body: Buffer.alloc(MAX_VALUE + 1, 1) }, 413, 'BODY_TOO_LARGE');
    expect(doc.limit).toBe(MAX_VALUE);
    const exact = await fetch(`${url}/kv/b/big`, { method: 'PUT', body: Buffer.alloc(MAX_VALUE, 1) });
    expect(exact.status).toBe(204);
    // Refused on the declared length alone, before any of the body is sent.
    const early = await rawRequest(nodes[0]!.server.port, [`PUT /kv/b/big HTTP/1.1\r\nHost: t\r\nContent-Length: ${MAX_VALUE * 100}\r\n\r\n`]);
    expect(early.status).toBe(413);
    expect(early.headers).toContain('content-type: application/json');
    expect(JSON.parse(early.body)).toMatchObject({ error: 'BODY_TOO_LARGE', limit: MAX_VALUE });
    expect(early.closed).toBe(true);
  });

  it('refuses a chunked body that grows over the limit', async () => {
    const piece = 'z'.repeat(400);
    const value = await rawRequest(nodes[0]!.server.port, [
      'PUT /kv/b/chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n',
      chunk(piece),
      chunk(piece),
      chunk(piece),
      chunk(piece),
      '0\r\n\r\n',
    ]);
    expect(value.status).toBe(413);
    expect(JSON.parse(value.body)).toMatchObject({ error: 'BODY_TOO_LARGE', limit: MAX_VALUE });
    expect(value.closed).toBe(true);

    const big = 'p'.repeat(8 * 1024);
    const json = await rawRequest(nodes[0]!.server.port, [
      'PUT /buckets/b/props HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      ...Array.from({ length: 9 }, () => chunk(big)),
      '0\r\n\r\n',
    ]);
    expect(json.status).toBe(413);
    expect(JSON.parse(json.body)).toMatchObject({ error: 'BODY_TOO_LARGE', limit: 64 * 1024 });

    // Under the limit, chunked bodies are fine.
    const small = await rawRequest(nodes[0]!.server.port, [
      'PUT /kv/b/chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
      chunk('ab'),
      chunk('cd'),
      '0\r\n\r\n',
    ]);
    expect(small.status).toBe(204);
    expect(await (await fetch(`${url}/kv/b/chunked`)).text()).toBe('abcd');
  });

  it('refuses a JSON body over 64 KiB with a declared length', async () => {
    const body = JSON.stringify({ props: { n: 3 }, pad: 'x'.repeat(64 * 1024) });
    await expectError('/buckets/b/props', { method: 'PUT', body, headers: { 'content-type': 'application/json' } }, 413, 'BODY_TOO_LARGE');
  });

  it('refuses unknown or invalid bucket properties, naming the fields', async () => {
    const unknown = await expectError('/buckets/b/props', { method: 'PUT', body: JSON.stringify({ props: { colour: 'red' } }) }, 400, 'INVALID_BUCKET_PROPS');
    expect(unknown.fields).toEqual(['colour']);
    expect(String(unknown.message)).toContain('colour');
    const bad = await expectError('/buckets/b/props', { method: 'PUT', body: JSON.stringify({ n: 3, r: 4, mode: 'newest', colour: 1 }) }, 400, 'INVALID_BUCKET_PROPS');
    expect(bad.fields).toEqual(expect.arrayContaining(['r', 'mode', 'colour']));
    for (const body of ['', 'not json', '[1,2]', 'null', '"s"']) {
      await expectError('/buckets/b/props', { method: 'PUT', body }, 400, 'BAD_REQUEST');
    }
  });

  it('refuses invalid quorum values and unknown query parameters', async () => {
    for (const q of ['r=5', 'r=0', 'r=abc', 'r=-1', 'r=1.5', 'r=', 'n=0', 'n=17', 'timeout=0', 'timeout=x']) {
      await expectError(`/kv/b/k?${q}`, {}, 400, 'BAD_REQUEST');
    }
    for (const q of ['w=4', 'w=0', 'w=two', 'dw=3', 'w=1&dw=2']) {
      await expectError(`/kv/b/k?${q}`, { method: 'PUT', body: 'v' }, 400, 'BAD_REQUEST');
    }
    const unknown = await expectError('/kv/b/k?R=1', {}, 400, 'BAD_REQUEST');
    expect(String(unknown.message)).toContain("'R'");
    await expectError('/kv/b/k?w=1', {}, 400, 'BAD_REQUEST'); // w is a write parameter
    await expectError('/kv/b/k?r=1', { method: 'PUT', body: 'v' }, 400, 'BAD_REQUEST'); // r is a read parameter
  });

  it('answers unknown routes with 404 and wrong methods with 405, as JSON', async () => {
    for (const path of ['/', '/nope', '/kv', '/kv/b', '/kv/b/k/extra', '/kv//k', '/buckets/b', '/admin/join/x']) {
      await expectError(path, {}, 404, 'NOT_FOUND');
    }
    // Every route answers the standard methods it does not serve with 405 (issue 11, item 7; was 404 off /kv and /sets).
    await expectError('/status', { method: 'DELETE' }, 405, 'METHOD_NOT_ALLOWED');
    for (const method of ['PATCH', 'OPTIONS']) await expectError('/kv/b/k', { method }, 405, 'METHOD_NOT_ALLOWED');
  });

  it('refuses a bucket containing a 0x00 byte and bad percent escapes', async () => {
    await expectError('/kv/a%00b/k', {}, 400, 'BAD_REQUEST');
    await expectError('/kv/a%00b/k', { method: 'PUT', body: 'v' }, 400, 'BAD_REQUEST');
    await expectError('/kv/%00/k', { method: 'DELETE' }, 400, 'BAD_REQUEST');
    await expectError('/buckets/a%00b/props', {}, 400, 'BAD_REQUEST');
    await expectError('/buckets/a%00b/props', { method: 'PUT', body: '{"n":3}' }, 400, 'BAD_REQUEST');
    await expectError(`/buckets/${'b'.repeat(256)}/props`, {}, 400, 'BAD_REQUEST');
    await expectError(`/kv/${'b'.repeat(256)}/k`, {}, 400, 'BAD_REQUEST');
    await expectError(`/kv/${'b'.repeat(256)}/k`, { method: 'PUT', body: 'v' }, 400, 'BAD_REQUEST');
    await expectError('/kv/b/%zz', {}, 400, 'BAD_REQUEST');
    await expectError('/kv/b/k%4', {}, 400, 'BAD_REQUEST');
    await expectError('/buckets/%G0/props', {}, 400, 'BAD_REQUEST');
  });

  it('refuses malformed admin requests', async () => {
    await expectError('/admin/join', { method: 'POST', body: '{}' }, 400, 'BAD_REQUEST');
    await expectError('/admin/join', { method: 'POST', body: '{"seed":"no port"}' }, 400, 'BAD_REQUEST');
    await expectError('/admin/leave', { method: 'POST', body: '{"node":5}' }, 400, 'BAD_REQUEST');
    await expectError('/admin/leave', { method: 'POST', body: '{"node":"ghost"}' }, 400, 'BAD_REQUEST');
    // An unreachable seed is the cluster's problem (503), not a server bug (500).
    const dead = await closedPort();
    await expectError('/admin/join', { method: 'POST', body: JSON.stringify({ seed: `127.0.0.1:${dead}` }) }, 503, 'UNAVAILABLE');
  });
});

describe('junk on the shared port', () => {
  it('closes a connection that sends raw non-HTTP bytes', async () => {
    const port = nodes[0]!.server.port;
    // uWS drops an unparseable request at once; a short fragment that never
    // completes a request is dropped by its HTTP idle timeout (about 10 s).
    const [big, short, binary] = await Promise.all([
      rawRequest(port, [randomBytes(4096)], 20_000),
      rawRequest(port, ['GARBAGE\r\n\r\n'], 20_000),
      rawRequest(port, [Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x0d, 0x0a, 0x0d, 0x0a])], 20_000),
    ]);
    for (const answer of [big, short, binary]) {
      expect(answer.closed).toBe(true);
      expect(answer.status === 0 || answer.status === 400).toBe(true);
    }
  }, 30_000);

  it('closes a /peer WebSocket that sends frames that are not msgpack, or not a hello', async () => {
    const attempt = (payload: Buffer | string, binary: boolean) =>
      new Promise<{ code: number; reason: string }>((resolve, reject) => {
        const ws = new WebSocket(`ws://${nodes[1]!.address}/peer`);
        const timer = setTimeout(() => {
          ws.terminate();
          reject(new Error('peer endpoint kept the junk connection open'));
        }, 10_000);
        ws.on('open', () => ws.send(payload, { binary }));
        ws.on('error', () => {});
        ws.on('close', (code, reason) => {
          clearTimeout(timer);
          resolve({ code, reason: reason.toString() });
        });
      });
    const results = await Promise.all([
      attempt(Buffer.from([0xc1, 0xff, 0x00, 0x13]), true),
      attempt(randomBytes(1000), true),
      attempt('{"kind":"hello"}', false),
      attempt(Buffer.from([0x93, 0x01, 0x02, 0x03]), true), // valid msgpack [1,2,3], not a frame
    ]);
    for (const r of results) expect(r.code).not.toBe(1000);
  });
});

describe('after all of it', () => {
  it('every node still answers /ping and serves a normal put/get', async () => {
    for (const n of nodes) {
      const ping = await fetch(`${n.url}/ping`, { signal: AbortSignal.timeout(5_000) });
      expect(ping.status).toBe(200);
      expect(await ping.text()).toBe('pong');
      const put = await fetch(`${n.url}/kv/after/${n.server.node.id}`, { method: 'PUT', body: 'still here', signal: AbortSignal.timeout(5_000) });
      expect(put.status).toBe(204);
      const get = await fetch(`${nodes[0]!.url}/kv/after/${n.server.node.id}`, { signal: AbortSignal.timeout(5_000) });
      expect(get.status).toBe(200);
      expect(await get.text()).toBe('still here');
    }
  });
});

describe('finding 7: smaller contract gaps', () => {
  it('finding 7: returnbody is a boolean; anything else is a 400', async () => {
    await expectError('/kv/f7/k?returnbody=AAA', { method: 'PUT', body: 'v' }, 400, 'BAD_REQUEST');
    const yes = await fetch(`${url}/kv/f7/k?returnbody=true`, { method: 'PUT', body: 'v' });
    expect(yes.status).toBe(200);
    expect(await yes.text()).toBe('v');
    const no = await fetch(`${url}/kv/f7/k?returnbody=false`, { method: 'PUT', body: 'v' });
    expect(no.status).toBe(204);
  });

  it('finding 7: ?n=1 alone shrinks the bucket r and w to 1', async () => {
    const put = await fetch(`${url}/kv/f7/n1?n=1`, { method: 'PUT', body: 'one' });
    expect(put.status, await put.clone().text()).toBe(204);
    const get = await fetch(`${url}/kv/f7/n1?n=1`);
    expect(get.status).toBe(200);
    expect(await get.text()).toBe('one');
    // An explicit r over n is still refused.
    await expectError('/kv/f7/n1?n=1&r=2', {}, 400, 'BAD_REQUEST');
  });

  it('finding 7: a 405 carries Allow', async () => {
    const res = await fetch(`${url}/kv/f7/k`, { method: 'PATCH', body: 'x' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, PUT, POST, DELETE');
    expect(((await res.json()) as { error: string }).error).toBe('METHOD_NOT_ALLOWED');
    const sets = await fetch(`${url}/sets/f7/k`, { method: 'PUT', body: '{}' });
    expect(sets.status).toBe(405);
    expect(sets.headers.get('allow')).toBe('GET, POST');
  });

  it('finding 7: an empty key is a 400 with a JSON error, not 404 no route', async () => {
    await expectError('/kv/f7/', { method: 'PUT', body: 'v' }, 400, 'BAD_REQUEST');
    await expectError('/kv/f7/', {}, 400, 'BAD_REQUEST');
    await expectError('/sets/f7/', {}, 400, 'BAD_REQUEST');
  });
});
