// `ringkv status` rendering (src/cli/status.ts renderStatus) from fixture
// documents: plain aligned columns (no console.table index column, no
// quotes), and transfers summed per node, however many partitions move.
import { describe, expect, it } from 'vitest';
import { bytes, eta, memberTransfers, renderStatus, type StatusDocument } from '../../src/cli/status.js';
import type { TransferSummary } from '../../src/core/transfer-progress.js';

const summary = (o: Partial<TransferSummary> = {}): TransferSummary => ({
  sending: 0,
  receiving: 0,
  moved: { objects: 0, bytes: 0 },
  rate: { objectsPerSec: 0, bytesPerSec: 0 },
  remainingObjects: 0,
  etaSeconds: 0,
  ...o,
});

/** n1's view while n4 joins: 8,190 per-partition transfer entries (what the old output printed on one line). */
const fixture = (): StatusDocument => ({
  node: 'n1',
  address: '127.0.0.1:8087',
  cluster: 'ringkv',
  joined: true,
  ring: { version: 7, claimant: 'n1', partitions: 4096, digest: '7-abc' },
  members: [
    { id: 'n1', address: '127.0.0.1:8087', zone: 'a', status: 'valid', partitions: 1024, health: 'self', phi: 0 },
    { id: 'n2', address: '127.0.0.1:8088', zone: 'b', status: 'valid', partitions: 1024, health: 'up', phi: 0.42 },
    { id: 'n3', address: '127.0.0.1:8089', zone: null, status: 'valid', partitions: 1024, health: 'suspect', phi: 12.3456 },
    { id: 'n4', address: '127.0.0.1:8090', zone: null, status: 'valid', partitions: 1024, health: 'up', phi: 0.1 },
  ] as StatusDocument['members'],
  transfers: Array.from({ length: 8190 }, (_, i) => ({ partition: i % 4096, to: 'n4', sent: 3, pass: 1 })),
  transferSummary: summary({ sending: 8190, moved: { objects: 12_345, bytes: 3 * 1024 * 1024 }, rate: { objectsPerSec: 410.4, bytesPerSec: 102_400 }, remainingObjects: 2_000, etaSeconds: 125 }),
});

describe('renderStatus', () => {
  it('members as a table with a header row, one row each, no index column and no quotes', () => {
    const doc = fixture();
    const out = renderStatus(doc, [{ node: 'n1', summary: doc.transferSummary! }, { node: 'n2', summary: summary() }]);
    const lines = out.split('\n');
    expect(lines[0]).toBe('cluster ringkv, seen from n1: ring v7, 4096 partitions, claimant n1');
    const header = lines.findIndex((l) => l.startsWith('ID '));
    expect(lines[header]!.split(/\s+/)).toEqual(['ID', 'ADDRESS', 'ZONE', 'STATUS', 'HEALTH', 'PHI', 'PARTITIONS']);
    expect(lines.slice(header + 1, header + 5).map((l) => l.split(/\s+/))).toEqual([
      ['n1', '127.0.0.1:8087', 'a', 'valid', 'self', '0.0', '1,024'],
      ['n2', '127.0.0.1:8088', 'b', 'valid', 'up', '0.4', '1,024'],
      ['n3', '127.0.0.1:8089', '-', 'valid', 'suspect', '12.3', '1,024'],
      ['n4', '127.0.0.1:8090', '-', 'valid', 'up', '0.1', '1,024'],
    ]);
    // Columns line up: every member row has its address where the header has ADDRESS.
    const at = lines[header]!.indexOf('ADDRESS');
    for (const l of lines.slice(header + 1, header + 5)) expect(l.slice(at, at + 9)).toBe('127.0.0.1');
    expect(out).not.toMatch(/\(index\)|'|│|┌/);
  });

  it('transfers: one row per node that has any, never one entry per partition', () => {
    const doc = fixture();
    const out = renderStatus(doc, [
      { node: 'n1', summary: doc.transferSummary! },
      { node: 'n2', summary: summary() },
      { node: 'n4', summary: summary({ receiving: 3072, moved: { objects: 900, bytes: 1536 }, rate: null, remainingObjects: 0, etaSeconds: null }) },
    ]);
    const lines = out.split('\n');
    const header = lines.findIndex((l) => l.startsWith('NODE '));
    expect(lines[header]!.split(/\s{2,}/)).toEqual(['NODE', 'TO SEND', 'TO RECEIVE', 'OBJECTS MOVED', 'BYTES MOVED', 'RATE', 'ETA']);
    const rows = lines.slice(header + 1).filter((l) => l.trim() !== '');
    // n2 has nothing pending: no row.
    expect(rows.map((r) => r.split(/\s{2,}/))).toEqual([
      ['n1', '8,190', '0', '12,345', '3.0 MiB', '410 obj/s, 100.0 KiB/s', '2 min 5 s'],
      ['n4', '0', '3,072', '900', '1.5 KiB', '-', '-'],
    ]);
    // The old output: 8,190 entries, ~200 KB on one line.
    expect(out.length).toBeLessThan(2_000);
  });

  it('a member that could not be asked shows as unknown, with the reason', () => {
    const out = renderStatus(fixture(), [{ node: 'n3', summary: null, error: 'fetch failed (ECONNREFUSED)' }]);
    expect(out).toMatch(/^n3\s+\?\s+\?/m);
    expect(out).toContain('n3: not asked: fetch failed (ECONNREFUSED)');
  });

  it('no transfers anywhere: says so', () => {
    const out = renderStatus(fixture(), [{ node: 'n1', summary: summary() }, { node: 'n2', summary: summary() }]);
    expect(out).toMatch(/\nno partition transfers in progress\n$/);
  });

  it('units: bytes and durations', () => {
    expect([bytes(0), bytes(1023), bytes(1024), bytes(5 * 1024 ** 3)]).toEqual(['0 B', '1023 B', '1.0 KiB', '5.0 GiB']);
    expect([eta(null), eta(0), eta(59), eta(61), eta(7_500)]).toEqual(['-', '0 s', '59 s', '1 min 1 s', '2 h 5 min']);
  });
});

describe('memberTransfers', () => {
  it('asks every member that has not left (itself from the document), and records who could not be asked', async () => {
    const doc = fixture();
    doc.members.push({ id: 'n5', address: '127.0.0.1:8091', zone: null, status: 'left', partitions: 0, health: 'suspect' } as StatusDocument['members'][number]);
    const asked: string[] = [];
    const client = {
      status: async (node?: string) => {
        asked.push(node ?? '');
        if (node === '127.0.0.1:8089') throw new Error('connect ECONNREFUSED');
        return { ...fixture(), node: 'x', transferSummary: summary({ receiving: node === '127.0.0.1:8090' ? 5 : 0 }) };
      },
    };
    const got = await memberTransfers(client, doc);
    expect(asked.sort()).toEqual(['127.0.0.1:8088', '127.0.0.1:8089', '127.0.0.1:8090']);
    expect(got.map((t) => [t.node, t.summary?.sending ?? null, t.summary?.receiving ?? null, t.error ?? null])).toEqual([
      ['n1', 8190, 0, null],
      ['n2', 0, 0, null],
      ['n3', null, null, 'connect ECONNREFUSED'],
      ['n4', 0, 5, null],
    ]);
  });
});
