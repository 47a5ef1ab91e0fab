// openapi.yaml must describe exactly the routes src/http/api.ts registers,
// and every error code of STATUS_OF_ERROR with its status, so the document
// cannot silently drift from the server.
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/server.js';
import { parse } from 'yaml';
import { STATUS_OF_ERROR } from '../../src/http/wire.js';

const root = new URL('../../', import.meta.url);
const source = readFileSync(new URL('src/http/api.ts', root), 'utf8');
/** api.ts and the route modules it registers (src/http/*-routes.ts). */
const routeSources = [source, ...readdirSync(new URL('src/http/', root)).filter((f) => f.endsWith('-routes.ts')).map((f) => readFileSync(new URL(`src/http/${f}`, root), 'utf8'))];
const doc = parse(readFileSync(new URL('openapi.yaml', root), 'utf8')) as {
  openapi: string;
  paths: Record<string, Record<string, unknown> & { parameters?: Array<{ $ref?: string; name?: string; in?: string }> }>;
  components: { schemas: Record<string, { enum?: string[]; 'x-status-of-error'?: Record<string, number> }>; parameters: Record<string, { name: string; in: string }> };
};

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const UWS_METHOD: Record<string, string> = { get: 'get', put: 'put', post: 'post', del: 'delete', patch: 'patch', head: 'head', options: 'options', trace: 'trace' };

/** `app.get('/kv/:bucket/:key', ...)` → { method: 'get', path: '/kv/{bucket}/{key}' }. */
function registeredRoutes(): Array<{ method: string; path: string }> {
  const routes: Array<{ method: string; path: string }> = [];
  for (const m of routeSources.flatMap((text) => [...text.matchAll(/\bapp\.(\w+)\(\s*(['"`])([^'"`]+)\2/g)])) {
    const [, fn, , pattern] = m as unknown as [string, string, string, string];
    if (fn === 'any') continue; // fallbacks (405, 404): described in the document's text
    const method = UWS_METHOD[fn];
    if (!method) throw new Error(`unexpected route registration app.${fn}('${pattern}')`);
    routes.push({ method, path: pattern.replace(/:(\w+)/g, '{$1}') });
  }
  return routes;
}

function resolveParam(p: { $ref?: string; name?: string; in?: string }): { name: string; in: string } {
  if (!p.$ref) return { name: p.name!, in: p.in! };
  const name = p.$ref.replace('#/components/parameters/', '');
  const resolved = doc.components.parameters[name];
  if (!resolved) throw new Error(`dangling parameter reference ${p.$ref}`);
  return resolved;
}

describe('openapi.yaml', () => {
  const routes = registeredRoutes();

  it('is OpenAPI 3.1', () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
  });

  it('finds the routes in the source', () => {
    expect(routes.length).toBeGreaterThanOrEqual(12);
    expect(routes).toContainEqual({ method: 'get', path: '/kv/{bucket}/{key}' });
    expect(routes).toContainEqual({ method: 'delete', path: '/kv/{bucket}/{key}' });
  });

  it('documents every registered route with its method', () => {
    const missing = routes.filter((r) => !doc.paths[r.path]?.[r.method]).map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(missing).toEqual([]);
  });

  it('documents no route the server does not have', () => {
    const registered = new Set(routes.map((r) => `${r.method} ${r.path}`));
    const extra: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of Object.keys(item).filter((k) => HTTP_METHODS.includes(k))) {
        if (!registered.has(`${method} ${path}`)) extra.push(`${method.toUpperCase()} ${path}`);
      }
    }
    expect(extra).toEqual([]);
  });

  it('declares every path parameter of a templated path', () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const method of Object.keys(item).filter((k) => HTTP_METHODS.includes(k))) {
        const op = item[method] as { parameters?: Array<{ $ref?: string; name?: string; in?: string }> };
        const declared = [...(item.parameters ?? []), ...(op.parameters ?? [])].map(resolveParam).filter((p) => p.in === 'path').map((p) => p.name);
        expect(declared.sort(), `${method} ${path}`).toEqual([...names].sort());
      }
    }
  });

  it('documents the query parameters each object route accepts', () => {
    // The allowed lists passed to requestOptions(...) in api.ts.
    const allowed = [...source.matchAll(/requestOptions\(req,\s*\[([^\]]*)\]/g)].map((m) => m[1]!.match(/'(\w+)'/g)!.map((s) => s.slice(1, -1)).sort());
    expect(allowed).toHaveLength(2);
    const queryOf = (method: string) =>
      ((doc.paths['/kv/{bucket}/{key}']![method] as { parameters: Array<{ $ref?: string }> }).parameters ?? [])
        .map(resolveParam)
        .filter((p) => p.in === 'query')
        .map((p) => p.name)
        .sort();
    expect(queryOf('get')).toEqual(allowed[0]);
    for (const method of ['put', 'post', 'delete']) expect(queryOf(method)).toEqual(allowed[1]);
  });

  it('finding 7: documents exactly the query parameters each /sets route accepts (no pw on POST)', () => {
    const list = (name: string) => source.match(new RegExp(`const ${name} = \\[([^\\]]*)\\]`))![1]!.match(/'(\w+)'/g)!.map((s) => s.slice(1, -1)).sort();
    const queryOf = (method: string) =>
      ((doc.paths['/sets/{bucket}/{key}']![method] as { parameters: Array<{ $ref?: string }> }).parameters ?? [])
        .map(resolveParam)
        .filter((p) => p.in === 'query')
        .map((p) => p.name)
        .sort();
    expect(queryOf('get')).toEqual(list('SET_READ_QUERY'));
    expect(queryOf('post')).toEqual(list('SET_UPDATE_QUERY'));
  });

  it('lists every error code with the status STATUS_OF_ERROR gives it', () => {
    const codes = doc.components.schemas.ErrorCode!;
    expect([...(codes.enum ?? [])].sort()).toEqual(Object.keys(STATUS_OF_ERROR).sort());
    expect(codes['x-status-of-error']).toEqual(STATUS_OF_ERROR);
  });
});

// ---------------------------------------------------------------------------
// Responses of a real node against the document (issue 9, finding 7): each
// answer's status is listed for its path and method, and a JSON body validates
// against that status's schema. The validator covers the keywords the
// document's schemas use (a test below fails if one is added it does not know).

type Schema = Record<string, unknown>;
const KNOWN_KEYWORDS = new Set([
  '$ref', 'allOf', 'type', 'enum', 'const', 'required', 'properties', 'additionalProperties', 'items', 'minItems', 'maxItems',
  'minimum', 'maximum', 'pattern', 'description', 'example', 'examples', 'default', 'contentEncoding', 'x-status-of-error', 'format',
]);
const full = doc as unknown as { paths: Record<string, Record<string, { responses: Record<string, Schema> }>>; components: Record<string, Record<string, Schema>> };

function deref<T = Schema>(s: Schema): T {
  let cur = s;
  while (typeof cur.$ref === 'string') {
    const [, section, name] = /^#\/components\/(\w+)\/(.+)$/.exec(cur.$ref)!;
    cur = full.components[section!]![name!]!;
    if (!cur) throw new Error(`dangling ${s.$ref as string}`);
  }
  return cur as T;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Problems of `v` against `schema` (empty: it validates). */
function validate(v: unknown, schema: Schema, at = '$'): string[] {
  const s = deref(schema);
  const out: string[] = [];
  for (const sub of (s.allOf as Schema[] | undefined) ?? []) out.push(...validate(v, sub, at));
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    const t = typeOf(v);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) return [...out, `${at}: ${t} is not ${types.join('|')}`];
  }
  if (s.enum && !(s.enum as unknown[]).includes(v)) out.push(`${at}: ${JSON.stringify(v)} not in enum`);
  if ('const' in s && s.const !== v) out.push(`${at}: ${JSON.stringify(v)} is not ${JSON.stringify(s.const)}`);
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum) out.push(`${at}: ${v} < ${s.minimum}`);
    if (typeof s.maximum === 'number' && v > s.maximum) out.push(`${at}: ${v} > ${s.maximum}`);
  }
  if (typeof v === 'string' && typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) out.push(`${at}: does not match ${s.pattern}`);
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) out.push(`${at}: fewer than ${s.minItems} items`);
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) out.push(`${at}: more than ${s.maxItems} items`);
    if (s.items) v.forEach((item, i) => out.push(...validate(item, s.items as Schema, `${at}[${i}]`)));
  }
  if (typeOf(v) === 'object') {
    const obj = v as Record<string, unknown>;
    const props = (s.properties as Record<string, Schema> | undefined) ?? {};
    for (const r of (s.required as string[] | undefined) ?? []) if (!(r in obj)) out.push(`${at}: missing ${r}`);
    for (const [k, val] of Object.entries(obj)) {
      if (props[k]) out.push(...validate(val, props[k]!, `${at}.${k}`));
      else if (s.additionalProperties === false) out.push(`${at}: unexpected ${k}`);
      else if (typeof s.additionalProperties === 'object') out.push(...validate(val, s.additionalProperties as Schema, `${at}.${k}`));
    }
  }
  return out;
}

describe('finding 7: responses of a real node conform to openapi.yaml', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode('oa');
  });
  afterAll(async () => {
    await node?.close();
  });

  it('the validator knows every keyword the schemas use', () => {
    const unknown = new Set<string>();
    const walk = (s: unknown, inProps = false): void => {
      if (Array.isArray(s)) return s.forEach((x) => walk(x));
      if (s === null || typeof s !== 'object') return;
      for (const [k, v] of Object.entries(s)) {
        if (!inProps && !KNOWN_KEYWORDS.has(k)) unknown.add(k);
        if (k === 'example' || k === 'examples' || k === 'x-status-of-error' || k === 'default' || k === 'enum' || k === 'const') continue;
        if (k === 'properties') for (const p of Object.values(v as object)) walk(p);
        else walk(v);
      }
    };
    for (const s of Object.values(full.components.schemas!)) walk(s);
    expect([...unknown]).toEqual([]);
  });

  /** Sends one request; checks its status is listed for `path`/`method` and its JSON body validates. */
  async function conforms(method: string, path: string, url: string, init: RequestInit = {}): Promise<number> {
    const res = await fetch(node.url + url, { method: method.toUpperCase(), ...init, signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    const op = full.paths[path]![method];
    const listed = op?.responses ?? {};
    const documented = listed[String(res.status)] ?? listed.default;
    expect(documented, `${method.toUpperCase()} ${url} answered ${res.status}, not listed for ${path} (${text})`).toBeDefined();
    const response = deref<{ content?: Record<string, { schema?: Schema }> }>(documented!);
    if (res.headers.get('content-type') === 'application/json') {
      const schema = response.content?.['application/json']?.schema;
      expect(schema, `${method} ${url} ${res.status}: JSON body but no JSON schema`).toBeDefined();
      expect(validate(JSON.parse(text), schema!), `${method.toUpperCase()} ${url} ${res.status}: ${text}`).toEqual([]);
    }
    return res.status;
  }

  it('object, set, bucket and node routes answer as documented', async () => {
    const kv = '/kv/{bucket}/{key}';
    expect(await conforms('put', kv, '/kv/oa/k', { body: 'v' })).toBe(204);
    expect(await conforms('get', kv, '/kv/oa/k')).toBe(200);
    expect(await conforms('put', kv, '/kv/oa/k2?returnbody=true', { body: 'v2' })).toBe(200);
    // Two blind writes: siblings.
    expect(await conforms('put', kv, '/kv/oa/s', { body: 'a' })).toBe(204);
    expect(await conforms('put', kv, '/kv/oa/s?returnbody=true', { body: 'b' })).toBe(300);
    expect(await conforms('get', kv, '/kv/oa/s')).toBe(300);
    expect(await conforms('get', kv, '/kv/oa/missing')).toBe(404);
    const ctx = (await fetch(`${node.url}/kv/oa/k`)).headers.get('x-ringkv-context')!;
    expect(await conforms('delete', kv, '/kv/oa/k', { headers: { 'x-ringkv-context': ctx } })).toBe(204);
    expect(await conforms('get', kv, '/kv/oa/k')).toBe(404);
    expect(await conforms('get', kv, '/kv/oa/k?r=9')).toBe(400);
    expect(await conforms('put', kv, '/kv/oa/k?returnbody=AAA', { body: 'x' })).toBe(400);
    expect(await conforms('put', kv, '/kv/oa/k?bogus=1', { body: 'x' })).toBe(400);
    expect(await conforms('put', kv, '/kv/oa/k', { body: 'x', headers: { 'x-ringkv-context': '!!' } })).toBe(400);
    expect(await conforms('get', kv, '/kv/oa/k?n=1')).toBe(404);
    expect(await conforms('get', '/sets/{bucket}/{key}', '/sets/oa/k')).toBe(409);
    for (const [path, url] of [['/ping', '/ping'], ['/status', '/status'], ['/ring', '/ring'], ['/buckets/{bucket}/props', '/buckets/oa/props'], ['/admin/log-level', '/admin/log-level']] as const) {
      expect(await conforms('get', path, url)).toBe(200);
    }
    const json = { 'content-type': 'application/json' };
    expect(await conforms('post', '/admin/log-level', '/admin/log-level', { body: '{"level":"silent"}', headers: json })).toBe(200);
    expect(await conforms('post', '/admin/log-level', '/admin/log-level', { body: '{"level":"loud"}', headers: json })).toBe(400);
    expect(await conforms('post', '/admin/log-level', '/admin/log-level', { body: '{"level":"debug","x":1}', headers: json })).toBe(400);
    // Listings (docs/listing.md).
    for (const [path, url] of [['/buckets', '/buckets'], ['/buckets/{bucket}/keys', '/buckets/oa/keys'], ['/buckets/{bucket}/objects', '/buckets/oa/objects'], ['/objects', '/objects?limit=2']] as const) {
      expect(await conforms('get', path, url)).toBe(200);
    }
    expect(await conforms('get', '/buckets/{bucket}/keys', '/buckets/oa/keys?cursor=AAAA')).toBe(400);
  });

  it('a 405 is listed, with an Allow header the document names', async () => {
    const res = await fetch(`${node.url}/kv/oa/k`, { method: 'PATCH', body: 'x' });
    expect(res.status).toBe(405);
    const documented = deref<{ headers?: Record<string, unknown>; content: Record<string, { schema: Schema }> }>(full.paths['/kv/{bucket}/{key}']!.get!.responses['405']!);
    expect(Object.keys(documented.headers ?? {})).toContain('Allow');
    expect(res.headers.get('allow')).toBe('GET, PUT, POST, DELETE');
    expect(validate(await res.json(), documented.content['application/json']!.schema)).toEqual([]);
  });
});
