// Finding 1 of issue 9, the cause: uWS 20.x (before uWebSockets PR #1662)
// lost the payload of a server send of 16 KiB or more whose writev took no
// more than the frame header, and the client read the next messages' bytes
// as this one's. It happens when a connection's kernel send buffer fills
// while uWS holds no backpressure of its own: on a new connection, whose
// buffer is still small, and a link with a real MTU. So the transports run
// in a child (large-send.child.ts) inside a network namespace it alone uses
// (unshare -rn), loopback at MTU 1500. Bounded: 160 rounds or 70 s, 8000
// requests, 30 s more to exit.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const tsx = path.join(root, 'node_modules/.bin/tsx');
const child = path.join(here, 'large-send.child.ts');

const netns = spawnSync('unshare', ['-rn', 'ip', 'link', 'set', 'lo', 'mtu', '1500', 'up'], { timeout: 5000 });
const canNetns = netns.status === 0;
if (!canNetns) console.warn(`large-send.test.ts skipped: no network namespace (unshare -rn): ${netns.stderr?.toString() ?? netns.error?.message}`);

interface Result {
  rounds: number;
  requests: number;
  ok: number;
  failed: number;
  wrong: number[];
  protocolErrors: number;
  reasons: string[];
}

function run(durationMs: number, total: number, maxRounds: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn('unshare', ['-rn', tsx, child, String(durationMs), String(total), String(maxRounds)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const kill = setTimeout(() => p.kill('SIGKILL'), durationMs + 30_000);
    p.on('close', (code) => {
      clearTimeout(kill);
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as Result);
      } catch {
        reject(new Error(`child exited ${code}: ${out}\n${err}`));
      }
    });
  });
}

describe('finding 1: large replies on new connections whose kernel send buffer fills', () => {
  it.skipIf(!canNetns)(
    'finding 1: replies of 16-116 KiB sent while the client reads nothing arrive whole, with no protocol error',
    async () => {
      // 160 rounds, however long they take on a loaded machine (bounded: 70 s).
      const r = await run(70_000, 8000, 160);
      // Before the fix, a reply's payload went missing within 67-138 rounds (4 runs of 4): "envelope: checksum mismatch (message 2189361152)",
      // that number being the next WebSocket frame's header (0x82 0x7e ...) read where the payload should be.
      expect(r.reasons).toEqual([]);
      expect(r.protocolErrors).toBe(0);
      expect(r.wrong).toEqual([]);
      // enough rounds to have met the fault before the fix (a timeout on a loaded machine is not what this test is about)
      expect(r.rounds).toBeGreaterThanOrEqual(150);
      expect(r.ok).toBeGreaterThan(500);
    },
    120_000,
  );
});
