// Crash test with real processes: a child writes with durability on and is
// killed with SIGKILL at a random moment; every write it acknowledged must be
// there after reopening. Several kills hit the same data directory.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeRecord, openEngine, type EngineKind } from '../src/engine/index.js';
import { Rand } from './helpers/random.js';
import { tempDir } from './helpers/tmp.js';

const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.mjs', import.meta.url));
const dirs: Array<{ remove(): void }> = [];
afterAll(() => dirs.forEach((d) => d.remove()));

/** Starts the writer, kills it `afterMs` after it is ready, returns the acknowledged indexes. */
function runAndKill(kind: EngineKind, path: string, start: number, afterMs: number, script: string[] = [WRITER]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...script, kind, path, String(start), '8'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: number[] = [];
    let buffered = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') setTimeout(() => child.kill('SIGKILL'), afterMs);
        else if (line.startsWith('ack ')) acked.push(Number(line.slice(4)));
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`writer exited with ${code}: ${stderr}`));
    });
  });
}

describe.each(['native', 'pure'] as const)('%s engine survives SIGKILL', (kind) => {
  it('keeps every acknowledged durable write across three kills', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const rand = new Rand(kind === 'native' ? 7 : 8);
    const acked: number[] = [];
    for (let round = 0; round < 3; round++) {
      // Each round writes fresh keys; earlier rounds' keys must survive too.
      const got = await runAndKill(kind, dir.path, round * 1_000_000, rand.int(150, 600));
      expect(got.length, `round ${round} acknowledged some writes`).toBeGreaterThan(0);
      acked.push(...got);
    }
    const engine = await openEngine(kind, { path: dir.path, nodeId: 'crash' });
    // Each kill was an unclean shutdown: a new epoch each time (a crash may have lost key counters of dots
    // already given to other replicas; a new actor never issues them again).
    const epochs = new Set<string>();
    for (const i of acked) {
      const record = await engine.get(Buffer.from('crash'), Buffer.from(`k${i}`));
      for (const s of record ? decodeRecord(record).siblings : []) epochs.add(s.actor.toString('utf8'));
    }
    expect(epochs.size).toBe(3);
    expect(epochs.has(engine.actor)).toBe(false);
    const bucket = Buffer.from('crash');
    const missing: number[] = [];
    for (const i of acked) {
      const record = await engine.get(bucket, Buffer.from(`k${i}`));
      const values = record ? decodeRecord(record).siblings.map((s) => s.value.toString()) : [];
      if (!values.includes(`v${i}`)) missing.push(i);
    }
    await engine.close();
    expect(missing, `${missing.length} of ${acked.length} acknowledged writes lost`).toEqual([]);
  });
});

// The reaper child runs the TypeScript sources through tsx (no build needed).
// It first writes tombstones and flushes them, then reaps them with several
// reaps in flight and no other writes, printing "ack <i>" once reap returned
// true. reap is durable by itself, so no acknowledged reap may come back.
const REAPER = `
const { openEngine } = await import(${JSON.stringify(pathToFileURL(fileURLToPath(new URL('../src/engine/index.ts', import.meta.url))).href)});
const [kind, path, startArg, inFlightArg] = process.argv.slice(2);
const engine = await openEngine(kind, { path, nodeId: 'crash', flushEveryMs: 0 });
const bucket = Buffer.from('reap');
const start = Number(startArg);
const records = [];
for (let i = start; i < start + 20000; i += 1000) {
  const batch = Array.from({ length: 1000 }, (_, j) => engine.coordinate({
    bucket, key: Buffer.from('r' + (i + j)), context: null, value: null, now: 1, mode: 'siblings', durable: false }));
  records.push(...(await Promise.all(batch)));
}
await engine.flush();
let next = 0;
async function reaper() {
  while (next < records.length) {
    const n = next++;
    if (!(await engine.reap(bucket, Buffer.from('r' + (start + n)), records[n]))) throw new Error('reap refused ' + n);
    process.stdout.write('ack ' + (start + n) + '\\n');
  }
}
process.stdout.write('ready\\n');
await Promise.all(Array.from({ length: Number(inFlightArg) }, reaper));
await new Promise(() => {}); // wait for the kill
`;

describe.each(['native', 'pure'] as const)('%s engine reap survives SIGKILL', (kind) => {
  it('never brings back an acknowledged reap', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const script = join(dir.path, 'reaper.mjs');
    writeFileSync(script, REAPER);
    const data = join(dir.path, 'data');
    const rand = new Rand(kind === 'native' ? 17 : 18);
    const acked: number[] = [];
    for (let round = 0; round < 2; round++) {
      const got = await runAndKill(kind, data, round * 1_000_000, rand.int(150, 600), ['--import', 'tsx', script]);
      expect(got.length, `round ${round} acknowledged some reaps`).toBeGreaterThan(0);
      acked.push(...got);
    }
    const engine = await openEngine(kind, { path: data, nodeId: 'crash' });
    const bucket = Buffer.from('reap');
    const back: number[] = [];
    for (const i of acked) if ((await engine.get(bucket, Buffer.from(`r${i}`))) !== null) back.push(i);
    await engine.close();
    expect(back, `${back.length} of ${acked.length} acknowledged reaps undone`).toEqual([]);
  });
});
