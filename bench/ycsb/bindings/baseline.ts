// The baseline binding: plain HTTP GET/PUT /kv/:table/:key against the bare
// uWebSockets.js map server (bench/baseline/uws-map-server.ts), the HTTP
// front end's ceiling on this machine. Same record encoding as the ringkv
// binding, so both move the same bytes.
//
// Properties: baseline.address (host:port; required). Requests go through an
// undici Pool with keep-alive, one connection per thread (RingkvClient uses
// undici too, so both targets are driven by the same HTTP stack).
import { Pool } from 'undici';
import { YcsbPropertyError, type Properties } from '../properties.js';
import { decodeRecord, encodeRecord, type Fields, type RecordShape } from '../record.js';
import { ErrorLog, type DB, type Status } from './db.js';

export interface BaselineOptions {
  address: string;
  connections: number;
}

export function baselineOptions(props: Properties, threads: number): BaselineOptions {
  const address = (props.get('baseline.address') ?? '').trim().replace(/^https?:\/\//, '');
  if (!/^[^:/\s]+:\d+$/.test(address)) throw new YcsbPropertyError('baseline.address', `"${address}" is not host:port`);
  return { address, connections: threads };
}

export class BaselineBinding implements DB {
  private pool: Pool | null = null;
  private readonly errors = new ErrorLog('baseline');
  private readonly base: string;

  constructor(private readonly opts: BaselineOptions, private readonly shape: RecordShape) {
    this.base = `http://${opts.address}`;
  }

  async init(): Promise<void> {
    this.pool = new Pool(this.base, { connections: this.opts.connections, pipelining: 1 });
  }

  async cleanup(): Promise<void> {
    await this.pool?.close();
    this.pool = null;
  }

  async read(table: string, key: string, fields: readonly string[] | null, result?: Fields): Promise<Status> {
    try {
      const { status, body } = await this.request('GET', path(table, key));
      if (status === 404) return 'NOT_FOUND';
      if (status !== 200) throw new Error(`GET answered ${status}`);
      const record = decodeRecord(body, fields);
      if (!record) throw new Error('the stored value is not a YCSB record');
      if (result) Object.assign(result, record);
      return 'OK';
    } catch (err) {
      this.errors.report('read', key, err);
      return 'ERROR';
    }
  }

  update(table: string, key: string, values: Fields): Promise<Status> {
    return this.put('update', table, key, values);
  }

  insert(table: string, key: string, values: Fields): Promise<Status> {
    return this.put('insert', table, key, values);
  }

  private async put(op: string, table: string, key: string, values: Fields): Promise<Status> {
    try {
      const { status } = await this.request('PUT', path(table, key), encodeRecord(values, this.shape));
      if (status !== 204 && status !== 200) throw new Error(`PUT answered ${status}`);
      return 'OK';
    } catch (err) {
      this.errors.report(op, key, err);
      return 'ERROR';
    }
  }

  private async request(method: 'GET' | 'PUT', urlPath: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
    if (!this.pool) throw new Error('baseline binding used before init()');
    const res = await this.pool.request({ method, path: urlPath, body });
    return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
  }
}

function path(table: string, key: string): string {
  return `/kv/${encodeURIComponent(table)}/${encodeURIComponent(key)}`;
}
