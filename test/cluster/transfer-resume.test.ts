// A partition transfer survives a restart of the giving node: its plan and
// cursors are persisted, it resumes where it stopped, and the new replica
// ends up with every object.
import { afterAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { waitFor } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

const OBJECTS = 3_000;
const running: RunningServer[] = [];
const dir = tempDir('ringkv-resume-');
afterAll(async () => {
  await Promise.all(running.map((s) => s.close(200)));
  dir.remove();
});

const base = (): Partial<ServerOptions> => ({
  peerSecrets: TEST_PEER_SECRETS,
  logger: pino({ level: 'silent' }),
  node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000 },
  antiEntropy: { intervalMs: 1e9 }, // only the transfer may fill the new replica
  transfers: { intervalMs: 20, batch: 50, catchUpAfterMs: 1e9 },
});

async function countOn(server: RunningServer): Promise<number> {
  let total = 0;
  for (let p = 0; p < 2 ** server.engine.partitionBits; p++) {
    let after: Buffer | null = null;
    do {
      const page: { items: unknown[]; next: Buffer | null } = await server.engine.scanPartition(p, after, 1_000);
      total += page.items.length;
      after = page.next;
    } while (after);
  }
  return total;
}

describe('partition transfer', () => {
  it('resumes from its persisted cursor after the giver restarts', async () => {
    let a = await startServer({ ...base(), nodeId: 'a', port: 0, dataDir: `${dir.path}/a` } as ServerOptions);
    running.push(a);
    for (let i = 0; i < OBJECTS; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) =>
        a.engine.coordinate({ bucket: Buffer.from('r'), key: Buffer.from(`k${i + j}`), context: null, value: Buffer.from('v'), now: 1, mode: 'siblings', durable: false })));
    }
    const b = await startServer({ ...base(), nodeId: 'b', port: 0, dataDir: `${dir.path}/b`, seeds: [a.address] } as ServerOptions);
    running.push(b);
    await waitFor(() => a.transfers.status().reduce((s, t) => s + t.sent, 0) >= 600, 20_000, 'transfer under way');

    const port = a.port;
    await a.close(200);
    running.splice(running.indexOf(a), 1);
    const sentBefore = await countOn(b);
    expect(sentBefore).toBeLessThan(OBJECTS);

    a = await startServer({ ...base(), nodeId: 'a', port, dataDir: `${dir.path}/a` } as ServerOptions);
    running.push(a);
    // The plan came back from disk, with progress: not started over.
    expect(a.transfers.status().length).toBeGreaterThan(0);
    expect(a.transfers.status().some((t) => t.sent > 0)).toBe(true);

    await waitFor(() => a.transfers.status().every((t) => t.pass === 2), 60_000, 'first pass done');
    expect(await countOn(b)).toBe(OBJECTS);
    // Resumed, not restarted: after the restart a sent only what b did not have yet (plus the batch in flight at the stop).
    expect(a.transfers.totals.objects).toBeLessThanOrEqual(OBJECTS - sentBefore + 50);
  }, 120_000);
});
