// Content type and user metadata (x-ringkv-meta-*) stored with each value,
// through real nodes: a single value answers with them as headers, siblings
// carry them in the 300 JSON document and in multipart/mixed parts, the
// client library writes and reads them, and the limits answer 400 with a
// typed JSON error and store nothing. Writes go through every node with
// n=1, so most are forwarded to the key's one primary (the kv.put peer
// message carries the attributes).
import { parseMultipart } from '@remix-run/multipart-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/index.js';
import { startCluster, type TestNode } from '../helpers/server.js';

let nodes: TestNode[] = [];

beforeAll(async () => {
  nodes = await startCluster(['x', 'y', 'z']);
});

afterAll(async () => {
  await Promise.allSettled(nodes.map((n) => n.close()));
});

const CONTEXT = 'x-ringkv-context';
const req = (node: TestNode, path: string, init: RequestInit = {}) => fetch(node.url + path, { ...init, signal: AbortSignal.timeout(5_000) });

/** The x-ringkv-meta-* headers of an answer, by name without the prefix. */
function metaOf(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((v, k) => {
    if (k.startsWith('x-ringkv-meta-')) out[k.slice('x-ringkv-meta-'.length)] = v;
  });
  return out;
}

describe('a single value', () => {
  it('reads back with the content type and every x-ringkv-meta-* header it was written with, from every node', async () => {
    for (const [i, writer] of nodes.entries()) {
      const key = `doc${i}`;
      const put = await req(writer, `/kv/meta/${key}?n=1`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', 'x-ringkv-meta-author': 'ann', 'X-Ringkv-Meta-Tags': 'red, blue', 'x-ringkv-meta-empty': '' },
        body: '{"a":1}',
      });
      expect(put.status, await put.text()).toBe(204);
      for (const reader of nodes) {
        const got = await req(reader, `/kv/meta/${key}?n=1`);
        expect(got.status).toBe(200);
        expect(got.headers.get('content-type')).toBe('application/json');
        expect(metaOf(got.headers)).toEqual({ author: 'ann', tags: 'red, blue', empty: '' });
        expect(await got.text()).toBe('{"a":1}');
      }
    }
  });

  it('without a content type reads back as application/octet-stream with no metadata', async () => {
    const put = await req(nodes[0]!, '/kv/meta/plain', { method: 'PUT', body: new Uint8Array([1, 2, 3]) });
    expect(put.status).toBe(204);
    const got = await req(nodes[1]!, '/kv/meta/plain');
    expect(got.headers.get('content-type')).toBe('application/octet-stream');
    expect(metaOf(got.headers)).toEqual({});
    expect(Buffer.from(await got.arrayBuffer())).toEqual(Buffer.from([1, 2, 3]));
  });

  it('a header sent twice is stored as one value joined with ", "', async () => {
    const headers = new Headers({ 'content-type': 'text/plain' });
    headers.append('x-ringkv-meta-k', 'one');
    headers.append('x-ringkv-meta-k', 'two');
    expect((await req(nodes[0]!, '/kv/meta/twice', { method: 'PUT', headers, body: 'v' })).status).toBe(204);
    expect(metaOf((await req(nodes[2]!, '/kv/meta/twice')).headers)).toEqual({ k: 'one, two' });
  });

  it('an overwrite with the context replaces the attributes; returnbody answers with the new ones', async () => {
    const first = await req(nodes[0]!, '/kv/meta/over', { method: 'PUT', headers: { 'content-type': 'text/plain', 'x-ringkv-meta-v': '1' }, body: 'one' });
    const put = await req(nodes[1]!, '/kv/meta/over?returnbody=true', {
      method: 'PUT',
      headers: { [CONTEXT]: first.headers.get(CONTEXT)!, 'content-type': 'text/csv', 'x-ringkv-meta-w': '2' },
      body: 'a,b',
    });
    expect(put.status).toBe(200);
    expect(put.headers.get('content-type')).toBe('text/csv');
    expect(metaOf(put.headers)).toEqual({ w: '2' });
    expect(await put.text()).toBe('a,b');
  });
});

describe('siblings', () => {
  let context = '';

  beforeAll(async () => {
    // Three concurrent versions: two values with their own attributes and a blind delete.
    await req(nodes[0]!, '/kv/meta/sibs', { method: 'PUT', headers: { 'content-type': 'application/json', 'x-ringkv-meta-from': 'x' }, body: '[1]' });
    await req(nodes[1]!, '/kv/meta/sibs', { method: 'PUT', headers: { 'content-type': 'text/plain; charset=utf-8', 'x-ringkv-meta-from': 'y', 'x-ringkv-meta-lang': 'en' }, body: 'héllo' });
    await req(nodes[2]!, '/kv/meta/sibs', { method: 'DELETE' });
  });

  it('the 300 JSON document gives each sibling its content type and metadata', async () => {
    const got = await req(nodes[2]!, '/kv/meta/sibs');
    expect(got.status).toBe(300);
    const doc = (await got.json()) as { context: string; siblings: Array<{ value: string | null; deleted: boolean; contentType: string; meta: Record<string, string> }> };
    context = doc.context;
    const seen = doc.siblings.map((s) => ({ value: s.value && Buffer.from(s.value, 'base64').toString(), deleted: s.deleted, contentType: s.contentType, meta: s.meta }));
    expect(seen).toHaveLength(3);
    expect(seen).toEqual(expect.arrayContaining([
      { value: '[1]', deleted: false, contentType: 'application/json', meta: { from: 'x' } },
      { value: 'héllo', deleted: false, contentType: 'text/plain; charset=utf-8', meta: { from: 'y', lang: 'en' } },
      { value: null, deleted: true, contentType: 'application/octet-stream', meta: {} },
    ]));
  });

  it('Accept: multipart/mixed answers one part per sibling with its own headers', async () => {
    const got = await req(nodes[0]!, '/kv/meta/sibs', { headers: { accept: 'multipart/mixed' } });
    expect(got.status).toBe(300);
    const type = got.headers.get('content-type')!;
    expect(type).toMatch(/^multipart\/mixed; boundary=/);
    expect(got.headers.get(CONTEXT)).toBe(context);
    const boundary = /boundary=(.+)$/.exec(type)![1]!;
    // Parsed with the multipart library directly, not the client's code.
    const parts = [...parseMultipart(new Uint8Array(await got.arrayBuffer()), { boundary })].map((p) => ({
      headers: Object.fromEntries(Object.entries(p.headers).filter(([k]) => k !== 'x-ringkv-last-modified')),
      body: Buffer.from(p.bytes).toString(),
    }));
    expect(parts).toEqual(expect.arrayContaining([
      { headers: { 'content-type': 'application/json', 'x-ringkv-meta-from': 'x' }, body: '[1]' },
      { headers: { 'content-type': 'text/plain; charset=utf-8', 'x-ringkv-meta-from': 'y', 'x-ringkv-meta-lang': 'en' }, body: 'héllo' },
      { headers: { 'content-type': 'application/octet-stream', 'x-ringkv-deleted': 'true' }, body: '' },
    ]));
    expect(parts).toHaveLength(3);
  });

  it('the client reads them from either form the same way', async () => {
    const client = new RingkvClient({ nodes: nodes.map((n) => n.address) });
    try {
      const viaJson = await client.get('meta', 'sibs');
      const viaMultipart = await client.get('meta', 'sibs', { multipart: true });
      const shape = (r: typeof viaJson) => r.siblings.map((s) => ({ value: s.value?.toString() ?? null, deleted: s.deleted, contentType: s.contentType, meta: s.meta, lastModified: s.lastModified }));
      expect(shape(viaMultipart)).toEqual(shape(viaJson));
      expect(viaMultipart.context).toBe(viaJson.context);
      expect(shape(viaJson).map((s) => s.contentType).sort()).toEqual(['application/json', 'application/octet-stream', 'text/plain; charset=utf-8']);
      expect(viaJson.siblings.every((s) => s.lastModified > 0)).toBe(true);
    } finally {
      await client.close();
    }
  });
});

describe('the client library', () => {
  it('put takes contentType and meta; get returns them on the value', async () => {
    const client = new RingkvClient({ nodes: nodes.map((n) => n.address) });
    try {
      await client.put('meta', 'lib', '<p>hi</p>', { contentType: 'text/html', meta: { owner: 'bob', rev: '7' } });
      const got = await client.get('meta', 'lib');
      expect(got.values.map(String)).toEqual(['<p>hi</p>']);
      expect(got.siblings[0]).toMatchObject({ contentType: 'text/html', meta: { owner: 'bob', rev: '7' } });
      // A concurrent write with other attributes: both come back as siblings, each with its own.
      await client.put('meta', 'lib', 'plain');
      const both = await client.get('meta', 'lib', { multipart: true });
      expect(both.siblings.map((s) => [s.value?.toString(), s.contentType, s.meta]).sort()).toEqual([
        ['<p>hi</p>', 'text/html', { owner: 'bob', rev: '7' }],
        ['plain', 'application/octet-stream', {}],
      ]);
      const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
      const refused = await client.put('meta', 'lib2', 'v', { meta: many }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 400, code: 'METADATA_TOO_LARGE' });
      const badValue = await client.put('meta', 'lib2', 'v', { meta: { k: 'caf\u00e9' } }).catch((e: unknown) => e);
      // Refused by the client itself: a header would lose the non-ASCII bytes on the way.
      expect(badValue).toMatchObject({ status: 0, code: 'BAD_METADATA' });
      expect((await client.get('meta', 'lib2')).found).toBe(false);
    } finally {
      await client.close();
    }
  });
});

describe('limits', () => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ['33 metadata entries', Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`x-ringkv-meta-k${i}`, 'v'])), 'METADATA_TOO_LARGE'],
    ['a 65-byte name', { [`x-ringkv-meta-${'n'.repeat(65)}`]: 'v' }, 'METADATA_TOO_LARGE'],
    ['8193 bytes of metadata', { 'x-ringkv-meta-a': 'v'.repeat(4096), 'x-ringkv-meta-b': 'v'.repeat(4095) }, 'METADATA_TOO_LARGE'],
    ['a 256-byte content type', { 'content-type': `text/${'x'.repeat(251)}` }, 'METADATA_TOO_LARGE'],
    ['an empty metadata name', { 'x-ringkv-meta-': 'v' }, 'BAD_METADATA'],
    ['an empty content type', { 'content-type': '' }, 'BAD_METADATA'],
  ];
  for (const [name, headers, code] of cases) {
    it(`${name}: 400 ${code}, nothing stored`, async () => {
      const key = `limit-${name.replace(/\W+/g, '-')}`;
      for (const node of nodes) {
        const res = await req(node, `/kv/meta/${key}?n=1`, { method: 'PUT', headers, body: 'v' });
        const text = await res.text();
        expect(res.status, text).toBe(400);
        expect(res.headers.get('content-type')).toBe('application/json');
        expect(JSON.parse(text)).toMatchObject({ error: code, message: expect.any(String) });
      }
      expect((await req(nodes[0]!, `/kv/meta/${key}?n=1`)).status).toBe(404);
    });
  }

  it('at the limits a write is stored: 32 entries, a 64-byte name, 8192 bytes, a 255-byte content type', async () => {
    const meta = Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`x-ringkv-meta-k${String(i).padStart(2, '0')}`, 'v']));
    meta[`x-ringkv-meta-${'n'.repeat(64)}`] = 'v'.repeat(8192 - 31 * 4 - 64);
    const contentType = `text/${'x'.repeat(250)}`;
    const put = await req(nodes[1]!, '/kv/meta/at-limits?n=1', { method: 'PUT', headers: { ...meta, 'content-type': contentType }, body: 'v' });
    expect(put.status, await put.text()).toBe(204);
    const got = await req(nodes[2]!, '/kv/meta/at-limits?n=1');
    expect(got.headers.get('content-type')).toBe(contentType);
    expect(Object.keys(metaOf(got.headers))).toHaveLength(32);
  });
});
