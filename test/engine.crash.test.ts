// Crash test with real processes: a child writes with durability on and is
// killed with SIGKILL at a random moment; every write it acknowledged must be
// there after reopening. Several kills hit the same data directory.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeRecord, openEngine, type EngineKind } from '../src/engine/index.js';
import { Rand } from './helpers/random.js';
import { tempDir } from './helpers/tmp.js';

const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.mjs', import.meta.url));
const dirs: Array<{ remove(): void }> = [];
afterAll(() => dirs.forEach((d) => d.remove()));

/** Starts the writer, kills it `afterMs` after it is ready, returns the acknowledged indexes. */
function runAndKill(kind: EngineKind, path: string, start: number, afterMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, kind, path, String(start), '8'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
