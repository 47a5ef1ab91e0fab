// Every operation of openapi.yaml against a real node with tokens on (the
// default): without a token 401, with a token whose role (or bucket) is too
// low 403, with the right one served. The operations come from the document
// and each needs a sample request below, so a route added to the API and the
// document without a role, or without a sample here, fails this test; a
// route added to the API alone refuses to register (src/http/auth.ts).
import { readFileSync } from 'node:fs';
import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROLES, type Role } from '../../src/core/tokens.js';
import { ROUTE_ACCESS, guardRoutes } from '../../src/http/auth.js';
import { uWS } from '../../src/transport/uws.js';
import { startTestNode, type TestNode } from '../helpers/server.js';

interface Operation {
  operationId: string;
  security?: unknown[];
  'x-ringkv-role'?: Role;
  'x-ringkv-scope'?: 'bucket' | 'cluster' | 'any';
}
const doc = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as {
  security?: unknown[];
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes?: Record<string, { type: string; scheme: string }> };
};
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
  Object.entries(item)
    .filter(([method]) => METHODS.includes(method))
    .map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
);

interface Sample {
  path: string;
  body?: string;
  /** The bucket a bucket-scoped token must name (the path's). */
  bucket?: string;
  /** What the handler answers when it runs (the request passed the token check). */
  served: number;
  /** The error code of a served answer that is an error (the handler's own refusal, not the token check's). */
  code?: string;
}

const KV = 'authkv';
const SETS = 'authsets';
let revocable = '';
/** One request per operation that the handler serves; the node is alone, so join and leave are refused by the handler itself. */
const SAMPLES: Record<string, () => Sample> = {
  getObject: () => ({ path: `/kv/${KV}/present`, bucket: KV, served: 200 }),
  putObject: () => ({ path: `/kv/${KV}/k1`, body: 'v', bucket: KV, served: 204 }),
  postObject: () => ({ path: `/kv/${KV}/k2`, body: 'v', bucket: KV, served: 204 }),
  deleteObject: () => ({ path: `/kv/${KV}/k3`, bucket: KV, served: 204 }),
  getSet: () => ({ path: `/sets/${SETS}/s1`, bucket: SETS, served: 200 }),
  updateSet: () => ({ path: `/sets/${SETS}/s1`, body: JSON.stringify({ add: ['x'] }), bucket: SETS, served: 200 }),
  getBucketProps: () => ({ path: `/buckets/${KV}/props`, bucket: KV, served: 200 }),
  setBucketProps: () => ({ path: `/buckets/${KV}/props`, body: JSON.stringify({ r: 2 }), bucket: KV, served: 200 }),
  listBuckets: () => ({ path: '/buckets', served: 200 }),
  listKeys: () => ({ path: `/buckets/${KV}/keys`, bucket: KV, served: 200 }),
  listBucketObjects: () => ({ path: `/buckets/${KV}/objects`, bucket: KV, served: 200 }),
  listObjects: () => ({ path: '/objects', served: 200 }),
  ping: () => ({ path: '/ping', served: 200 }),
  // The dashboard's static files (built by npm run build:ui, which npm test runs first).
  dashboard: () => ({ path: '/ui', served: 200 }),
  dashboardAsset: () => ({ path: '/ui/assets/no-such-file.js', served: 404 }),
  dashboardSlash: () => ({ path: '/ui/', served: 308 }),
  status: () => ({ path: '/status', served: 200 }),
  ring: () => ({ path: '/ring', served: 200 }),
  metrics: () => ({ path: '/metrics', served: 200 }),
  join: () => ({ path: '/admin/join', body: '{}', served: 400, code: 'BAD_REQUEST' }),
  leave: () => ({ path: '/admin/leave', body: '{}', served: 400, code: 'BAD_REQUEST' }),
  // Refused by the handlers themselves (an unknown field, no member named): a served drain would stop the node.
  drain: () => ({ path: '/admin/drain', body: JSON.stringify({ bogus: true }), served: 400, code: 'BAD_REQUEST' }),
  forget: () => ({ path: '/admin/forget', body: '{}', served: 400, code: 'BAD_REQUEST' }),
  replace: () => ({ path: '/admin/replace', body: '{}', served: 400, code: 'BAD_REQUEST' }),
  mergeRecords: () => ({ path: '/admin/merge', body: JSON.stringify({ objects: [] }), served: 200 }),
  listTokens: () => ({ path: '/admin/tokens', served: 200 }),
  createToken: () => ({ path: '/admin/tokens', body: JSON.stringify({ role: 'read', label: 'probe' }), served: 201 }),
  revokeToken: () => ({ path: `/admin/tokens/${revocable}`, served: 200 }),
  startRepair: () => ({ path: '/admin/repair', body: JSON.stringify({ partition: 1 << 20 }), served: 400, code: 'BAD_REQUEST' }),
  getRepair: () => ({ path: '/admin/repair/r999', served: 404, code: 'NOT_FOUND' }),
  getAaeStatus: () => ({ path: '/admin/aae', served: 200 }),
  getLogLevel: () => ({ path: '/admin/log-level', served: 200 }),
  setLogLevel: () => ({ path: '/admin/log-level', body: JSON.stringify({ level: 'silent' }), served: 200 }),
};

describe('client tokens on every route of openapi.yaml', () => {
  let node: TestNode;
  let admin = '';
  const tokens = new Map<string, string>();

  const call = async (method: string, path: string, token: string | null, body?: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${node.url}${path}`, {
      method,
      body,
      headers: { ...headers, ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      signal: AbortSignal.timeout(10_000),
      redirect: 'manual', // a redirect is the answer under test, not followed
    });
    const text = await res.text();
    let json: Record<string, unknown> | null = null;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // not JSON (a value, metrics, pong)
    }
    return { status: res.status, json, headers: res.headers };
  };
  /** A token of `role` (cluster-wide, or on `bucket`), made once through the API with the admin token. */
  const tokenFor = async (role: Role, bucket?: string): Promise<string> => {
    const key = `${role}@${bucket ?? '*'}`;
    if (!tokens.has(key)) {
      const made = await call('POST', '/admin/tokens', admin, JSON.stringify({ role, ...(bucket ? { bucket } : {}) }));
      expect(made.status, JSON.stringify(made.json)).toBe(201);
      tokens.set(key, made.json!.token as string);
    }
    return tokens.get(key)!;
  };

  beforeAll(async () => {
    node = await startTestNode('auth', { auth: { required: true } });
    // The node created a new cluster: its first admin token is in the data directory, readable by the owner only.
    const file = node.server.adminTokenFile!;
    expect(file).toMatch(/admin\.token$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    admin = readFileSync(file, 'utf8').trim();
    expect(admin).toMatch(/^rkv_[A-Za-z0-9_-]{43}$/);
    expect((await call('PUT', `/buckets/${SETS}/props`, admin, JSON.stringify({ type: 'set' }))).status).toBe(200);
    expect((await call('PUT', `/kv/${KV}/present`, admin, 'here')).status).toBe(204);
  });
  afterAll(async () => {
    await node?.close();
  });

  it('the document declares the bearer scheme for every operation but /ping and /ui, with a role and scope that match the server', () => {
    expect(doc.components.securitySchemes?.bearerToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearerToken: [] }]);
    const documented = new Set<string>();
    for (const { method, path, op } of operations) {
      const key = `${method} ${path.replace(/\{(\w+)\}/g, ':$1')}`;
      documented.add(key);
      const access = ROUTE_ACCESS[key];
      expect(access, `${key} has no entry in ROUTE_ACCESS`).toBeDefined();
      if (op.security !== undefined && op.security.length === 0) {
        expect(access, key).toBe('open');
        continue;
      }
      expect(access, key).toEqual({ role: op['x-ringkv-role'], scope: op['x-ringkv-scope'] });
      expect(SAMPLES[op.operationId], `no sample request for ${op.operationId}`).toBeDefined();
    }
    // And the server has no route the document does not describe.
    expect(Object.keys(ROUTE_ACCESS).filter((k) => !documented.has(k))).toEqual([]);
  });

  it('only /ping and the dashboard\'s static files are open; so is a route-less registration impossible', () => {
    expect(operations.filter(({ op }) => op.security?.length === 0).map((o) => o.path)).toEqual(['/ping', '/ui', '/ui/', '/ui/assets/{file}']);
    const app = guardRoutes(uWS.App(), { auth: { required: true }, tokens: () => ({}) });
    expect(() => app.get('/new-route', () => undefined)).toThrow(/no entry in ROUTE_ACCESS/);
    expect(() => app.post('/ping', () => undefined)).toThrow(/no entry in ROUTE_ACCESS/);
  });

  for (const { method, path, op } of operations) {
    it(`${method} ${path} (${op.operationId})`, async () => {
      const sampleOf = SAMPLES[op.operationId];
      expect(sampleOf, `no sample request for ${op.operationId}`).toBeDefined();
      if (op.operationId === 'revokeToken') {
        const made = await call('POST', '/admin/tokens', admin, JSON.stringify({ role: 'read', label: 'to revoke' }));
        revocable = made.json!.id as string;
      }
      const sample = sampleOf!();
      const open = op.security !== undefined && op.security.length === 0;
      if (open) {
        expect((await call(method, sample.path, null, sample.body)).status).toBe(sample.served);
        return;
      }
      const role = op['x-ringkv-role']!;
      const scope = op['x-ringkv-scope']!;

      // No token, a malformed header, a token that is not one: 401 with the scheme to use.
      for (const header of [null, 'Basic YTpi', `Bearer rkv_${'A'.repeat(43)}`, 'Bearer']) {
        const res = header === null ? await call(method, sample.path, null, sample.body) : await call(method, sample.path, null, sample.body, { authorization: header });
        expect(res.status, `${header}`).toBe(401);
        expect(res.json).toMatchObject({ error: 'UNAUTHORIZED' });
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="ringkv"');
      }

      // A role below the one needed: 403, naming the role needed.
      const below = ROLES[ROLES.indexOf(role) - 1];
      if (below !== undefined) {
        const res = await call(method, sample.path, await tokenFor(below), sample.body);
        expect(res.status, `role ${below}`).toBe(403);
        expect(res.json).toMatchObject({ error: 'FORBIDDEN', role });
      }
      // Bucket-scoped tokens of a high enough role: another bucket's never counts; this bucket's only where the scope allows.
      if (role === 'read' || role === 'write') {
        const other = await call(method, sample.path, await tokenFor('write', 'elsewhere'), sample.body);
        expect(other.status, 'token of another bucket').toBe(scope === 'any' ? sample.served : 403);
        if (scope !== 'any') expect(other.json).toMatchObject({ error: 'FORBIDDEN' });
        if (sample.bucket !== undefined) {
          const own = await call(method, sample.path, await tokenFor(role, sample.bucket), sample.body);
          expect(own.status, 'token of this bucket').toBe(scope === 'cluster' ? 403 : sample.served);
        }
      } else {
        // Cluster routes refuse every bucket-scoped token, whatever its role.
        expect((await call(method, sample.path, await tokenFor('write', sample.bucket ?? KV), sample.body)).status).toBe(403);
      }

      // The role itself, then admin (which covers every role): served by the handler.
      for (const held of [role, 'admin' as const]) {
        if (op.operationId === 'revokeToken' && held === 'admin' && role === 'admin') continue;
        const res = await call(method, sample.path, await tokenFor(held), sample.body);
        expect(res.status, `role ${held}: ${JSON.stringify(res.json)}`).toBe(sample.served);
        if (sample.code !== undefined) expect(res.json).toMatchObject({ error: sample.code });
      }
    });
  }

  it('a catch-all (404, 405) answers only a valid token; a revoked token is refused everywhere at once', async () => {
    expect((await call('GET', '/no/such/route', null)).status).toBe(401);
    expect((await call('GET', '/no/such/route', await tokenFor('metrics'))).status).toBe(404);
    expect((await call('PATCH', `/kv/${KV}/k`, null)).status).toBe(401);
    expect((await call('PATCH', `/kv/${KV}/k`, await tokenFor('read'))).status).toBe(405);

    const made = await call('POST', '/admin/tokens', admin, JSON.stringify({ role: 'admin', label: 'short-lived' }));
    const { id, token } = made.json as { id: string; token: string };
    expect((await call('GET', '/status', token)).status).toBe(200);
    const listed = (await call('GET', '/admin/tokens', admin)).json as { tokens: Array<{ id: string; role: string; revokedAtMs: number | null }> };
    expect(listed.tokens.find((t) => t.id === id)).toMatchObject({ role: 'admin', revokedAtMs: null });
    // The list never shows a token or its hash.
    expect(JSON.stringify(listed)).not.toContain(token.slice(4));
    expect(JSON.stringify(listed)).not.toMatch(/[0-9a-f]{64}/);

    expect((await call('DELETE', `/admin/tokens/${id}`, admin)).status).toBe(200);
    for (const path of ['/status', '/admin/tokens', `/kv/${KV}/present`]) expect((await call('GET', path, token)).status).toBe(401);
    for (const unknown of ['0123456789abcdef', '__proto__', 'constructor', '%00']) {
      const res = await call('DELETE', `/admin/tokens/${unknown}`, admin);
      expect(res.status, unknown).toBe(404);
      expect(res.json).toMatchObject({ error: 'UNKNOWN_TOKEN' });
    }
  });

  it('refuses bad token grants with 400 and counts refused requests by reason', async () => {
    for (const body of [{ role: 'root' }, { role: 'admin', bucket: KV }, { role: 'read', colour: 'red' }, { role: 'read', label: 'x'.repeat(200) }]) {
      const res = await call('POST', '/admin/tokens', admin, JSON.stringify(body));
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(['BAD_REQUEST', 'INVALID_TOKEN_GRANT']).toContain(res.json!.error);
    }
    const metrics = await (await fetch(`${node.url}/metrics`, { headers: { authorization: `Bearer ${admin}` } })).text();
    expect(metrics).toMatch(/ringkv_http_auth_refused_total\{reason="missing",node="auth"\} [1-9]/);
    expect(metrics).toMatch(/ringkv_http_auth_refused_total\{reason="invalid",node="auth"\} [1-9]/);
    expect(metrics).toMatch(/ringkv_http_auth_refused_total\{reason="forbidden",node="auth"\} [1-9]/);
  });
});
