// Seeds as host names (issue 12, item 2): the pure expansion (one seed per
// address, the node's own left out, a name resolved again at each attempt),
// then a real 2-node cluster whose second node is seeded as localhost:PORT
// and started before the first, so it joins on a later attempt.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expandSeeds, namesOf, seedResolver } from '../../src/server/seeds.js';
import { waitFor } from '../helpers/cluster.js';
import { ProcessGroup, minimalEnv, readAdminToken, untilListening } from '../helpers/processes.js';
import { writeTestSecretFile } from '../helpers/secret.js';
import { stablePort } from '../helpers/server.js';

const processes = new ProcessGroup();
afterAll(() => processes.close());

describe('expandSeeds', () => {
  const resolved = new Map([
    ['ringkv.default.svc', ['10.0.0.1', '10.0.0.2', '10.0.0.3']],
    ['ringkv-1.ringkv.default.svc', ['10.0.0.2']],
    ['v6.example', ['fd00::7']],
  ]);

  it('gives one seed per address of a name, the node itself left out, no duplicates, in order', () => {
    expect(expandSeeds(['ringkv.default.svc:8087', '10.0.0.3:8087'], ['ringkv-1.ringkv.default.svc:8087'], resolved)).toEqual(['10.0.0.1:8087', '10.0.0.3:8087']);
  });

  it('keeps IP literals and names that did not resolve (the transport then says why they fail)', () => {
    expect(expandSeeds(['10.9.9.9:1', 'not-yet.example:2', 'v6.example:3'], [], resolved)).toEqual(['10.9.9.9:1', 'not-yet.example:2', '[fd00::7]:3']);
  });

  it('looks up names only, once each', () => {
    expect(namesOf(['a.example:1', '10.0.0.1:2', 'a.example:3', '[::1]:4', 'b:5'])).toEqual(['a.example', 'b']);
  });
});

describe('seedResolver', () => {
  it('resolves afresh at every attempt: addresses that appear later are tried later', async () => {
    const answers: string[][] = [[], ['10.0.0.1'], ['10.0.0.1', '10.0.0.2']];
    const asked: string[] = [];
    const next = seedResolver(['ringkv:8087'], ['10.0.0.2:8087'], async (host) => {
      asked.push(host);
      return answers.shift() ?? [];
    });
    expect(await next()).toEqual(['ringkv:8087']); // nothing yet: the name as given
    expect(await next()).toEqual(['10.0.0.1:8087']);
    expect(await next()).toEqual(['10.0.0.1:8087']); // 10.0.0.2 is this node
    expect(asked).toEqual(['ringkv', 'ringkv', 'ringkv']);
  });

  it('a lookup that fails or hangs leaves the name as given, within the time bound', async () => {
    const failing = seedResolver(['a.example:1'], [], async () => Promise.reject(new Error('ENOTFOUND')));
    expect(await failing()).toEqual(['a.example:1']);
    const hanging = seedResolver(['b.example:1'], [], () => new Promise(() => undefined), 50);
    expect(await hanging()).toEqual(['b.example:1']);
  });

  it('the system resolver: localhost is 127.0.0.1 here', async () => {
    expect(await seedResolver(['localhost:9'], [])()).toContain('127.0.0.1:9');
  });
});

describe('a seed given by host name on real nodes', () => {
  it('n2, seeded as localhost:PORT before n1 listens there, joins once n1 is up', async () => {
    const d = processes.tempDir('ringkv-seeds-');
    const secret = writeTestSecretFile(d.path);
    const port = await stablePort();
    const common = ['--secret-file', secret, '--log-level', 'info'];
    const n2 = processes.startNode(['--node-id', 'n2', '--listen', '127.0.0.1:0', '--data-dir', join(d.path, 'n2'), '--seeds', `localhost:${port}`, ...common], { env: minimalEnv() });
    await untilListening(n2);
    // Its first attempts (one a gossip interval, 1 s) find nobody at 127.0.0.1:PORT; the join must come from a later one.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(n2.output()).not.toMatch(/"msg":"joined cluster"/);
    const n1 = processes.startNode(['--node-id', 'n1', '--listen', `127.0.0.1:${port}`, '--data-dir', join(d.path, 'n1'), ...common], { env: minimalEnv() });
    const address = await untilListening(n1);
    const token = readAdminToken(join(d.path, 'n1'));
    await waitFor(
      async () => {
        const res = await fetch(`http://${address}/status`, { headers: { authorization: `Bearer ${token}` } });
        const doc = (await res.json()) as { members: Array<{ id: string; status: string; partitions: number }> };
        return doc.members.filter((m) => m.status === 'valid' && m.partitions > 0).length === 2;
      },
      30_000,
      'n2 to join through localhost',
    );
    expect(n2.output()).toMatch(/"msg":"joined cluster"/);
    expect(n2.output()).toContain(`"seed":"127.0.0.1:${port}"`);
  }, 90_000);
});
