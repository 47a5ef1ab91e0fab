// The ringkv binding: RingkvClient (src/client), one record per key encoded
// as one value. A write without the key's causal context would become a
// sibling of the stored value, so the binding keeps each key's latest context
// (from every read and write answer) and sends it with the next write; an
// update of a key whose context is not cached reads first, inside the
// measured update.
//
// Properties: ringkv.nodes (host:port,...; required), ringkv.routing
// (server | client), ringkv.r, ringkv.w, ringkv.n, ringkv.dw, ringkv.timeoutms,
// ringkv.contextcache (entries, default 100000, ~20 MB), ringkv.token (else
// RINGKV_TOKEN), ringkv.tlsca (a CA file, PEM: HTTPS to every node, its
// certificate verified against this CA). r, w, n and dw become the
// table's bucket properties (set at init, checked on every node), not
// per-request parameters: the server checks a request's n against the
// bucket's r and w, so n=1 alone would be refused on a default (3,2,2) bucket.
import { readFileSync } from 'node:fs';
import { RingkvClient, RingkvError, type RingkvClientOptions } from '../../../src/client/index.js';
import { YcsbPropertyError, type Properties } from '../properties.js';
import { decodeRecord, encodeRecord, type Fields, type RecordShape } from '../record.js';
import { ContextCache } from './context-cache.js';
import { ErrorLog, type DB, type Status } from './db.js';

export interface RingkvBindingOptions {
  nodes: string[];
  /** The YCSB table, i.e. the bucket. */
  table: string;
  routing: 'client' | 'server';
  r?: number;
  w?: number;
  n?: number;
  dw?: number;
  timeoutMs?: number;
  contextCache: number;
  /** Client token (`ringkv.token`, else RINGKV_TOKEN; empty: none); none for a node without tokens. */
  token?: string;
  /** The cluster CA (PEM, read from `ringkv.tlsca`): the nodes are reached over HTTPS and verified against it. */
  tlsCa?: Buffer;
}

export function ringkvOptions(props: Properties): RingkvBindingOptions {
  const nodes = (props.get('ringkv.nodes') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (nodes.length === 0) throw new YcsbPropertyError('ringkv.nodes', 'is required: a comma-separated list of host:port');
  const routing = props.get('ringkv.routing') ?? 'server';
  if (routing !== 'client' && routing !== 'server') throw new YcsbPropertyError('ringkv.routing', `"${routing}" is not client or server`);
  const int = (name: string, min: number, max: number): number | undefined => {
    const raw = props.get(name);
    if (raw === undefined) return undefined;
    const v = Number(raw);
    if (!Number.isSafeInteger(v) || v < min || v > max) throw new YcsbPropertyError(name, `"${raw}" is not an integer in ${min}..${max}`);
    return v;
  };
  const opts: RingkvBindingOptions = {
    nodes,
    table: props.get('table') ?? 'usertable',
    routing,
    r: int('ringkv.r', 1, 16),
    w: int('ringkv.w', 1, 16),
    n: int('ringkv.n', 1, 16),
    dw: int('ringkv.dw', 0, 16),
    timeoutMs: int('ringkv.timeoutms', 1, 600_000),
    contextCache: int('ringkv.contextcache', 1, 100_000_000) ?? 100_000,
    // An empty ringkv.token means none, whatever RINGKV_TOKEN holds.
    token: (props.get('ringkv.token') ?? process.env.RINGKV_TOKEN) || undefined,
    tlsCa: readCa(props.get('ringkv.tlsca')),
  };
  for (const q of ['r', 'w'] as const) {
    if (opts.n !== undefined && opts[q] !== undefined && opts[q]! > opts.n) throw new YcsbPropertyError(`ringkv.${q}`, `${opts[q]} exceeds ringkv.n ${opts.n}`);
  }
  if (opts.dw !== undefined && opts.w !== undefined && opts.dw > opts.w) throw new YcsbPropertyError('ringkv.dw', `${opts.dw} exceeds ringkv.w ${opts.w}`);
  return opts;
}

function readCa(file: string | undefined): Buffer | undefined {
  if (file === undefined || file === '') return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new YcsbPropertyError('ringkv.tlsca', `cannot read the CA file ${file}: ${(err as Error).message}`);
  }
}

export class RingkvBinding implements DB {
  private client: RingkvClient | null = null;
  private readonly contexts: ContextCache;
  private readonly errors = new ErrorLog('ringkv');

  constructor(private readonly opts: RingkvBindingOptions, private readonly shape: RecordShape) {
    this.contexts = new ContextCache(opts.contextCache);
  }

  async init(): Promise<void> {
    const clientOpts: RingkvClientOptions = { nodes: this.opts.nodes, routing: this.opts.routing, token: this.opts.token };
    if (this.opts.tlsCa !== undefined) clientOpts.tls = { ca: this.opts.tlsCa };
    if (this.opts.timeoutMs !== undefined) clientOpts.timeoutMs = this.opts.timeoutMs;
    this.client = new RingkvClient(clientOpts);
    await applyBucketProps(this.client, this.opts);
    // Client-driven routing needs the ring before the measured phase: until it arrives requests are server-driven.
    if (this.opts.routing === 'client') await this.client.refreshRing();
  }

  async cleanup(): Promise<void> {
    this.client?.close();
    this.client = null;
  }

  /** The cached context count (for tests and reports). */
  get cachedContexts(): number {
    return this.contexts.size;
  }

  async read(table: string, key: string, fields: readonly string[] | null, result?: Fields): Promise<Status> {
    try {
      const got = await this.live().get(table, key);
      this.contexts.set(key, got.context);
      if (!got.found) return 'NOT_FOUND';
      const record = decodeRecord(got.values[0]!, fields);
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
      await this.write(table, key, values, this.contexts.get(key));
      return 'OK';
    } catch (err) {
      if (err instanceof RingkvError && err.code === 'TOO_MANY_SIBLINGS') {
        // Our cached context was stale (concurrent writers): read afresh and retry once.
        try {
          await this.write(table, key, values, undefined);
          return 'OK';
        } catch (again) {
          err = again;
        }
      }
      this.errors.report('update', key, err);
      return 'ERROR';
    }
  }

  async insert(table: string, key: string, values: Fields): Promise<Status> {
    try {
      const { context } = await this.live().put(table, key, encodeRecord(values, this.shape), this.writeOptions(this.contexts.get(key) ?? null));
      this.contexts.set(key, context);
      return 'OK';
    } catch (err) {
      this.errors.report('insert', key, err);
      return 'ERROR';
    }
  }

  /** Writes the record; without a cached context, reads the key first for its context and the fields the update leaves alone. */
  private async write(table: string, key: string, values: Fields, cached: string | undefined): Promise<void> {
    let context: string | null = cached ?? null;
    let base: Fields | null = null;
    if (cached === undefined) {
      const got = await this.live().get(table, key);
      context = got.context;
      base = got.found ? decodeRecord(got.values[0]!, null) : null;
    }
    const res = await this.live().put(table, key, encodeRecord(values, this.shape, base), this.writeOptions(context));
    this.contexts.set(key, res.context);
  }

  private writeOptions(context: string | null) {
    return { context };
  }

  private live(): RingkvClient {
    if (!this.client) throw new Error('ringkv binding used before init()');
    return this.client;
  }
}

/** Sets the table's bucket n/r/w/dw if given, and waits (bounded) until every listed node has them. */
export async function applyBucketProps(client: RingkvClient, opts: RingkvBindingOptions): Promise<void> {
  const wanted: Partial<Record<'n' | 'r' | 'w' | 'dw', number>> = {};
  for (const q of ['n', 'r', 'w', 'dw'] as const) if (opts[q] !== undefined) wanted[q] = opts[q];
  if (Object.keys(wanted).length === 0) return;
  await client.setBucketProps(opts.table, wanted, { node: opts.nodes[0] });
  const deadline = Date.now() + 15_000;
  for (const node of opts.nodes) {
    for (;;) {
      const props = (await client.bucketProps(opts.table, { node })) as unknown as Record<string, unknown>;
      if (Object.entries(wanted).every(([k, v]) => props[k] === v)) break;
      if (Date.now() > deadline) throw new Error(`bucket ${opts.table} props ${JSON.stringify(wanted)} did not reach ${node} within 15 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
