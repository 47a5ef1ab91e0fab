// The partition nemesis's nftables rules on real sockets: a cut drops the
// cluster's own address + port pairs both ways, leaves every other address
// alone, heals, and its table is gone after close. Needs root and `nft`
// (skipped with a reason otherwise; in CI a missing `nft` fails).
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { NftPartitioner, type Endpoint } from './partition.js';

const support = NftPartitioner.probe();
if (!support.ok) {
  if (support.nftMissing && process.env.CI === 'true') throw new Error(`partition test cannot run in CI: ${support.reason}`);
  console.log(`[partition.test] skipped: ${support.reason}`);
}

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function listen(host: string): Promise<Endpoint & { server: net.Server }> {
  const server = net.createServer((s) => s.end('hi'));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { id: host, host, port: (server.address() as net.AddressInfo).port, server };
}

/** Whether a TCP connection from `from` to `to` gets the server's greeting within boundMs. */
function reaches(from: string, to: Endpoint, boundMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: to.host, port: to.port, localAddress: from });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), boundMs);
    s.once('data', () => done(true));
    s.once('error', () => done(false));
  });
}

describe.skipIf(!support.ok)('NftPartitioner', () => {
  it('cuts one side from the other both ways, spares other addresses, and heals', async () => {
    const a = await listen('127.0.0.2');
    const b = await listen('127.0.0.3');
    const c = await listen('127.0.0.4');
    const p = new NftPartitioner();
    cleanups.push(() => p.close());
    p.setup();
    expect(await reaches('127.0.0.2', b, 2_000)).toBe(true);

    p.cut([a], [b, c]);
    // A SYN that is dropped is retried after 1 s: 600 ms without an answer means cut.
    expect(await reaches('127.0.0.2', b, 600)).toBe(false);
    expect(await reaches('127.0.0.3', a, 600)).toBe(false);
    expect(await reaches('127.0.0.4', a, 600)).toBe(false);
    // Inside the majority, and from addresses that are not the cluster's, traffic flows.
    expect(await reaches('127.0.0.3', c, 2_000)).toBe(true);
    expect(await reaches('127.0.0.1', a, 2_000)).toBe(true);
    expect(await reaches('127.0.0.1', b, 2_000)).toBe(true);

    p.heal();
    expect(await reaches('127.0.0.2', b, 2_000)).toBe(true);
    expect(await reaches('127.0.0.3', a, 2_000)).toBe(true);
  });

  it('an established connection carries nothing either way while cut (the server side too); close removes the table', async () => {
    const accepted: net.Socket[] = [];
    const server = net.createServer((s) => accepted.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.3', resolve));
    cleanups.push(() => new Promise<void>((resolve) => {
      for (const s of accepted) s.destroy();
      server.close(() => resolve());
    }));
    const b: Endpoint = { id: 'b', host: '127.0.0.3', port: (server.address() as net.AddressInfo).port };
    const client = net.connect({ host: b.host, port: b.port, localAddress: '127.0.0.2' });
    cleanups.push(() => void client.destroy());
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    for (let i = 0; i < 100 && accepted.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const gotByClient: Buffer[] = [];
    const gotByServer: Buffer[] = [];
    client.on('data', (d) => gotByClient.push(d));
    accepted[0]!.on('data', (d) => gotByServer.push(d));

    const p = new NftPartitioner();
    cleanups.push(() => p.close());
    p.setup();
    // The client's port is not the cluster's: only the server's address + port are known, as in the nemesis.
    p.cut([{ id: 'a', host: '127.0.0.2', port: 1 }], [b]);
    accepted[0]!.write('from the server');
    client.write('from the client');
    await new Promise((r) => setTimeout(r, 600));
    expect(gotByClient).toEqual([]);
    expect(gotByServer).toEqual([]);

    p.close();
    expect(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })).not.toContain(p.table);
  });
});
