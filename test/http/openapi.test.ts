// openapi.yaml must describe exactly the routes src/http/api.ts registers,
// and every error code of STATUS_OF_ERROR with its status, so the document
// cannot silently drift from the server.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { STATUS_OF_ERROR } from '../../src/http/wire.js';

const root = new URL('../../', import.meta.url);
const source = readFileSync(new URL('src/http/api.ts', root), 'utf8');
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
  for (const m of source.matchAll(/\bapp\.(\w+)\(\s*(['"`])([^'"`]+)\2/g)) {
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
