// The ringkv binding with the client library's HTTP stack swapped out: the
// same requests RingkvClient makes with server-driven routing (round-robin
// over ringkv.nodes, docs/http.md), sent through an undici Pool per node, the
// stack the baseline binding uses. Global fetch, which RingkvClient uses,
// costs several times more client CPU per request than undici's Pool; with
// the load generator on the same machine, this mode compares the servers
// rather than the HTTP clients. Selected by ringkv.client=http.
import { Pool } from 'undici';
import { RingkvClient } from '../../../src/client/index.js';
import { decodeRecord, encodeRecord, type Fields, type RecordShape } from '../record.js';
import { ContextCache } from './context-cache.js';
import { ErrorLog, type DB, type Status } from './db.js';
import { applyBucketProps, type RingkvBindingOptions } from './ringkv.js';

const CONTEXT_HEADER = 'x-ringkv-context';

interface Answer {
  status: number;
  context: string | null;
  body: Buffer;
}

export class RingkvHttpBinding implements DB {
  private pools: Pool[] = [];
  private cursor = 0;
  private readonly contexts: ContextCache;
  private readonly errors = new ErrorLog('ringkv(http)');

  constructor(private readonly opts: RingkvBindingOptions, private readonly shape: RecordShape, private readonly threads: number) {
    this.contexts = new ContextCache(opts.contextCache);
  }

  async init(): Promise<void> {
    // Bucket properties through the library (not on the measured path).
    const admin = new RingkvClient({ nodes: this.opts.nodes });
    await applyBucketProps(admin, this.opts);
    const perNode = Math.ceil(this.threads / this.opts.nodes.length) + 1;
    this.pools = this.opts.nodes.map((n) => new Pool(`http://${n.replace(/^https?:\/\//, '')}`, { connections: perNode, pipelining: 1 }));
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.close()));
    this.pools = [];
  }

  async read(table: string, key: string, fields: readonly string[] | null, result?: Fields): Promise<Status> {
    try {
      const got = await this.get(table, key);
      this.contexts.set(key, got.context);
      if (!got.value) return 'NOT_FOUND';
      const record = decodeRecord(got.value, fields);
      if (!record) throw new Error('the stored value is not a YCSB record');
      if (result) Object.assign(result, record);
      return 'OK';
    } catch (err) {
      this.errors.report('read', key, err);
      return 'ERROR';
    }
  }

  async update(table: string, key: string, values: Fields): Promise<Status> {
    try {
      let context = this.contexts.get(key) ?? null;
      let base: Fields | null = null;
      if (context === null) {
        // No cached context: read first, inside the measured update.
        const got = await this.get(table, key);
        context = got.context;
        base = got.value ? decodeRecord(got.value, null) : null;
      }
      await this.put(table, key, encodeRecord(values, this.shape, base), context);
      return 'OK';
    } catch (err) {
      this.errors.report('update', key, err);
      return 'ERROR';
    }
  }

  async insert(table: string, key: string, values: Fields): Promise<Status> {
    try {
      await this.put(table, key, encodeRecord(values, this.shape), this.contexts.get(key) ?? null);
      return 'OK';
    } catch (err) {
      this.errors.report('insert', key, err);
      return 'ERROR';
    }
  }

  /** The first live value (null if none) and the key's context; 300 answers carry the siblings as JSON. */
  private async get(table: string, key: string): Promise<{ value: Buffer | null; context: string | null }> {
    const a = await this.send('GET', table, key, null, null);
    if (a.status === 200) return { value: a.body, context: a.context };
    if (a.status === 404) return { value: null, context: a.context };
    if (a.status === 300) {
      const doc = JSON.parse(a.body.toString('utf8')) as { context?: string; siblings: Array<{ value: string | null; deleted: boolean }> };
      const live = doc.siblings.find((s) => !s.deleted && s.value !== null);
      return { value: live ? Buffer.from(live.value!, 'base64') : null, context: a.context ?? doc.context ?? null };
    }
    throw new Error(`GET answered ${a.status}: ${a.body.toString('utf8').slice(0, 200)}`);
  }

  private async put(table: string, key: string, value: Buffer, context: string | null): Promise<void> {
    const a = await this.send('PUT', table, key, value, context);
    if (a.status !== 204 && a.status !== 200) throw new Error(`PUT answered ${a.status}: ${a.body.toString('utf8').slice(0, 200)}`);
    this.contexts.set(key, a.context);
  }

  private async send(method: 'GET' | 'PUT', table: string, key: string, body: Buffer | null, context: string | null): Promise<Answer> {
    const pool = this.pools[this.cursor++ % this.pools.length]!;
    if (this.cursor >= Number.MAX_SAFE_INTEGER) this.cursor = 0;
    const headers: Record<string, string> = {};
    if (context) headers[CONTEXT_HEADER] = context;
    if (body) headers['content-type'] = 'application/octet-stream';
    const res = await pool.request({
      method,
      path: `/kv/${encodeURIComponent(table)}/${encodeURIComponent(key)}`,
      headers,
      body: body ?? undefined,
      headersTimeout: this.opts.timeoutMs ?? 10_000,
      bodyTimeout: this.opts.timeoutMs ?? 10_000,
    });
    const raw = res.headers[CONTEXT_HEADER];
    return { status: res.statusCode, context: (Array.isArray(raw) ? raw[0] : raw) || null, body: Buffer.from(await res.body.arrayBuffer()) };
  }
}
