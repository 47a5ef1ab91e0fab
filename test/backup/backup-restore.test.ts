// `ringkv backup` and `ringkv restore` as a user runs them (real CLI
// processes) against real clusters in this process: backup → wipe every
// node → restore gives back the same values, siblings and causal contexts;
// restore into a cluster of another size; restore into a cluster with newer
// writes loses nothing and resurrects nothing deleted after the backup; a
// corrupt or truncated file is refused before anything is merged; an
// interrupted backup resumes.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/index.js';
import { BackupReader } from '../../src/backup/format.js';
import { RingkvClient } from '../../src/client/index.js';
import { runBackup } from '../../src/cli/backup.js';
import { waitFor } from '../helpers/cluster.js';
import { CLI } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { converged, start, writeAll } from '../listing/helpers.js';

const exec = promisify(execFile);
const dir = tempDir('ringkv-backup-');
const clusters: RunningServer[][] = [];

async function ringkv(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { timeout: 50_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let clusterNo = 0;
async function cluster(size: number): Promise<RunningServer[]> {
  const name = `c${clusterNo++}`;
  const nodes: RunningServer[] = [];
  nodes.push(await start('n1', `${dir.path}/${name}/n1`, []));
  for (let i = 2; i <= size; i++) nodes.push(await start(`n${i}`, `${dir.path}/${name}/n${i}`, [nodes[0]!.address]));
  await converged(nodes, size);
  clusters.push(nodes);
  return nodes;
}

async function stop(nodes: RunningServer[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.close(500)));
  clusters.splice(clusters.indexOf(nodes), 1);
}

afterAll(async () => {
  await Promise.all(clusters.flat().map((n) => n.close(500)));
  dir.remove();
});

interface Seen {
  status: number;
  context: string | null;
  /** The value (200), or the sorted sibling values (300). */
  values: string[];
}

async function read(address: string, bucket: string, key: string): Promise<Seen> {
  const res = await fetch(`http://${address}/kv/${bucket}/${key}`, { signal: AbortSignal.timeout(10_000) });
  const context = res.headers.get('x-ringkv-context');
  if (res.status === 300) {
    const doc = (await res.json()) as { siblings: Array<{ value: string | null }> };
    return { status: 300, context, values: doc.siblings.map((s) => (s.value === null ? '<deleted>' : Buffer.from(s.value, 'base64').toString())).sort() };
  }
  const text = await res.text();
  return { status: res.status, context, values: res.status === 200 ? [text] : [] };
}

const put = (address: string, bucket: string, key: string, value: string, context?: string | null) =>
  fetch(`http://${address}/kv/${bucket}/${key}`, { method: 'PUT', body: value, headers: context ? { 'x-ringkv-context': context } : {}, signal: AbortSignal.timeout(10_000) }).then(async (r) => {
    await r.arrayBuffer();
    expect(r.status).toBe(204);
  });
const del = (address: string, bucket: string, key: string, context: string | null) =>
  fetch(`http://${address}/kv/${bucket}/${key}`, { method: 'DELETE', headers: context ? { 'x-ringkv-context': context } : {}, signal: AbortSignal.timeout(10_000) }).then(async (r) => {
    await r.arrayBuffer();
    expect(r.status).toBe(204);
  });

const KEYS = Array.from({ length: 600 }, (_, i) => `k${i}`);
const SIBLING_KEYS = KEYS.slice(0, 20);
const DELETED_BEFORE = KEYS.slice(580);
let source: RunningServer[];
let backupFile = '';
/** Every key as the source cluster answered just before the backup. */
const before = new Map<string, Seen>();

beforeAll(async () => {
  source = await cluster(3);
  const a = source[0]!.address;
  await writeAll(a, ['orders', 'users'].flatMap((bucket) => KEYS.map((key) => ({ bucket, key, value: `${bucket}:${key}` }))));
  // Concurrent writes (blind, no context): siblings.
  for (const key of SIBLING_KEYS) await put(source[1]!.address, 'orders', key, `other:${key}`);
  await writeAll(a, DELETED_BEFORE.map((key) => ({ bucket: 'orders', key, value: null })));
  for (const bucket of ['orders', 'users']) for (const key of KEYS) before.set(`${bucket}/${key}`, await read(a, bucket, key));
  expect(before.get('orders/k0')!.status).toBe(300);
  expect(before.get(`orders/${DELETED_BEFORE[0]}`)!.status).toBe(404);
  backupFile = `${dir.path}/all.bak`;
  const run = await ringkv('backup', '--out', backupFile, '--node', source[2]!.address, '--page-size', '50');
  expect(run.code, run.stderr).toBe(0);
  expect(run.stderr).toMatch(/complete/);
  expect(existsSync(`${backupFile}.partial`)).toBe(false);
}, 120_000);

function entriesOf(file: string): Array<{ bucket: string; key: string }> {
  const { reader, close } = BackupReader.open(file);
  try {
    reader.readHeader();
    const out: Array<{ bucket: string; key: string }> = [];
    for (let e = reader.readEntry(); e !== null; e = reader.readEntry()) out.push({ bucket: e.bucket.toString(), key: e.key.toString() });
    return out;
  } finally {
    close();
  }
}

describe('backup and restore', () => {
  it('the backup holds every live object once', () => {
    const entries = entriesOf(backupFile);
    const ids = entries.map((e) => `${e.bucket}/${e.key}`);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [id, seen] of before) if (seen.status !== 404) expect(ids, id).toContain(id);
  });

  it('backup → wipe every node → restore: the same values, siblings and contexts; an old context supersedes with no new sibling', async () => {
    await stop(source);
    const fresh = await cluster(3);
    const run = await ringkv('restore', backupFile, '--node', fresh[0]!.address);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/objects merged from/);
    for (const [id, seen] of before) {
      const [bucket, key] = id.split('/') as [string, string];
      const now = await read(fresh[1]!.address, bucket, key);
      expect({ status: now.status, values: now.values }, id).toEqual({ status: seen.status, values: seen.values });
      if (seen.status !== 404) expect(now.context, id).toBe(seen.context);
    }
    // A write with a context read before the backup supersedes every sibling it saw.
    const key = SIBLING_KEYS[0]!;
    await put(fresh[2]!.address, 'orders', key, 'resolved', before.get(`orders/${key}`)!.context);
    expect(await read(fresh[0]!.address, 'orders', key)).toMatchObject({ status: 200, values: ['resolved'] });
    await stop(fresh);
  }, 90_000);

  it('restores into a cluster of another size (4 nodes), through any node', async () => {
    const four = await cluster(4);
    const run = await ringkv('restore', backupFile, '--node', four[3]!.address, '--batch', '97');
    expect(run.code, run.stderr).toBe(0);
    for (const [id, seen] of [...before].filter((_, i) => i % 5 === 0)) {
      const [bucket, key] = id.split('/') as [string, string];
      const now = await read(four[(key.length + bucket.length) % 4]!.address, bucket, key);
      expect({ status: now.status, values: now.values }, id).toEqual({ status: seen.status, values: seen.values });
    }
    await stop(four);
  }, 90_000);

  it('restores into a cluster with newer writes: newer values stay, concurrent ones become siblings, keys deleted after the backup stay deleted', async () => {
    const live = await cluster(3);
    const a = live[0]!.address;
    const first = `${dir.path}/live.bak`;
    await writeAll(a, KEYS.slice(0, 60).map((key) => ({ bucket: 'users', key, value: `v1:${key}` })));
    const run = await ringkv('backup', '--out', first, '--node', a, '--bucket', 'users');
    expect(run.code, run.stderr).toBe(0);
    // After the backup: overwrites (with context), deletes (with context, then reaped), blind concurrent writes.
    const overwritten = KEYS.slice(0, 20);
    const deleted = KEYS.slice(20, 40);
    const concurrent = KEYS.slice(40, 50);
    for (const key of overwritten) await put(a, 'users', key, `v2:${key}`, (await read(a, 'users', key)).context);
    for (const key of deleted) await del(a, 'users', key, (await read(a, 'users', key)).context);
    for (const key of concurrent) await put(live[1]!.address, 'users', key, `blind:${key}`);
    // The deletes' tombstones are reaped (all three took them): a restore must not bring the keys back.
    await waitFor(async () => {
      for (const n of live) for (const key of deleted) if ((await n.engine.get(Buffer.from('users'), Buffer.from(key))) !== null) return false;
      return true;
    }, 20_000, 'the deletes reaped');
    const restored = await ringkv('restore', first, '--node', live[2]!.address);
    expect(restored.code, restored.stderr).toBe(0);
    for (const key of overwritten) expect(await read(a, 'users', key), key).toMatchObject({ status: 200, values: [`v2:${key}`] });
    for (const key of deleted) expect((await read(a, 'users', key)).status, key).toBe(404);
    for (const key of concurrent) expect(await read(a, 'users', key), key).toMatchObject({ status: 300, values: [`blind:${key}`, `v1:${key}`].sort() });
    for (const key of KEYS.slice(50, 60)) expect(await read(a, 'users', key), key).toMatchObject({ status: 200, values: [`v1:${key}`] });
    await stop(live);
  }, 90_000);

  it('a corrupt or truncated file is refused before anything is merged', async () => {
    const target = await cluster(3);
    const good = readFileSync(backupFile);
    const corrupt = `${dir.path}/corrupt.bak`;
    const bad = Buffer.from(good);
    // A byte near the end: every entry before it is intact, yet none may be merged.
    bad[good.length - 200] = bad[good.length - 200]! ^ 0xff;
    writeFileSync(corrupt, bad);
    const truncated = `${dir.path}/truncated.bak`;
    writeFileSync(truncated, good.subarray(0, good.length - 30));
    for (const file of [corrupt, truncated]) {
      const run = await ringkv('restore', file, '--node', target[0]!.address);
      expect(run.code, file).toBe(1);
      expect(run.stderr).toMatch(/is not an intact backup: .*(corrupt|truncated|digest|ends inside).*nothing was restored/);
    }
    const keys = (await (await fetch(`http://${target[0]!.address}/objects?limit=10`)).json()) as { objects: unknown[] };
    expect(keys.objects).toEqual([]);
    await stop(target);
  }, 60_000);

  it('an interrupted backup (killed) resumes from its checkpoint and completes with every object once', async () => {
    const src = await cluster(3);
    await writeAll(src[0]!.address, KEYS.map((key) => ({ bucket: 'r', key, value: `r:${key}` })));
    const out = `${dir.path}/resumed.bak`;
    const child = spawn(process.execPath, [CLI, 'backup', '--out', out, '--node', src[0]!.address, '--page-size', '5'], { stdio: 'ignore' });
    const checkpoint = `${out}.partial.checkpoint`;
    try {
      await waitFor(() => existsSync(checkpoint) && (JSON.parse(readFileSync(checkpoint, 'utf8')) as { entries: number }).entries >= 50, 30_000, 'a checkpoint past 50 objects');
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(out)).toBe(false);
    const run = await ringkv('backup', '--out', out, '--node', src[1]!.address, '--resume', '--page-size', '200');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/resuming/);
    const ids = entriesOf(out).map((e) => `${e.bucket}/${e.key}`);
    expect(ids.length).toBe(KEYS.length);
    expect(new Set(ids).size).toBe(KEYS.length);
    await stop(src);
  }, 90_000);

  it('a backup of chosen buckets that failed after the first bucket resumes with the second, each object once', async () => {
    const src = await cluster(3);
    await writeAll(src[0]!.address, ['one', 'two'].flatMap((bucket) => KEYS.slice(0, 120).map((key) => ({ bucket, key, value: `${bucket}:${key}` }))));
    const client = new RingkvClient({ nodes: [src[0]!.address] });
    const out = `${dir.path}/two-buckets.bak`;
    // The listing of the second bucket fails at once: the first bucket is complete and checkpointed.
    const failing = new Proxy(client, {
      get: (target, prop) =>
        prop === 'listObjects'
          ? (bucket: string | null, opts: object) => {
              if (bucket === 'two') throw new Error('connection lost');
              return target.listObjects(bucket, opts);
            }
          : (Reflect.get(target, prop, target) as unknown),
    });
    try {
      const options = { out, buckets: ['one', 'two'], force: false, pageSize: 50 };
      await expect(runBackup(failing, { ...options, resume: false })).rejects.toThrow(/connection lost/);
      expect(existsSync(out)).toBe(false);
      expect(await runBackup(client, { ...options, resume: true })).toBe(240);
    } finally {
      client.close();
    }
    const ids = entriesOf(out).map((e) => `${e.bucket}/${e.key}`);
    expect(ids.length).toBe(240);
    expect(new Set(ids).size).toBe(240);
    await stop(src);
  }, 90_000);
});
