// YCSB properties: the shipped workload files, -P/-p precedence like YCSB,
// and bad properties refused with an error that names them.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { baselineOptions } from '../../bench/ycsb/bindings/baseline.js';
import { ringkvOptions } from '../../bench/ycsb/bindings/ringkv.js';
import {
  parseCommandLine,
  parsePropertiesText,
  readPropertyFile,
  workloadConfig,
  YcsbPropertyError,
  type Properties,
} from '../../bench/ycsb/properties.js';

const workloads = fileURLToPath(new URL('../../bench/ycsb/workloads/', import.meta.url));
const props = (o: Record<string, string>): Properties => new Map(Object.entries(o));
const base = { recordcount: '100', operationcount: '100' };

function refused(fn: () => unknown, property: string, text: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(YcsbPropertyError);
  expect((caught as YcsbPropertyError).property).toBe(property);
  expect((caught as Error).message).toMatch(text);
}

describe('property files', () => {
  it('reads Java properties syntax: = and : separators, comments, continuation lines', () => {
    const p = parsePropertiesText('# comment\n! also a comment\n\na=1\nb : two\nc three\nlong=x\\\n  y\n');
    expect(Object.fromEntries(p)).toEqual({ a: '1', b: 'two', c: 'three', long: 'xy' });
  });

  it('ships workloads A, B, C, D and F with YCSB\'s values (and no E: ringkv has no scans)', () => {
    const expected: Record<string, Partial<Record<string, number | string>>> = {
      workloada: { readproportion: 0.5, updateproportion: 0.5, insertproportion: 0, readmodifywriteproportion: 0, requestdistribution: 'zipfian' },
      workloadb: { readproportion: 0.95, updateproportion: 0.05, insertproportion: 0, requestdistribution: 'zipfian' },
      workloadc: { readproportion: 1, updateproportion: 0, insertproportion: 0, requestdistribution: 'zipfian' },
      workloadd: { readproportion: 0.95, updateproportion: 0, insertproportion: 0.05, requestdistribution: 'latest' },
      workloadf: { readproportion: 0.5, updateproportion: 0, readmodifywriteproportion: 0.5, requestdistribution: 'zipfian' },
    };
    for (const [name, values] of Object.entries(expected)) {
      const c = workloadConfig(readPropertyFile(workloads + name));
      expect(c, name).toMatchObject({ recordcount: 1000, operationcount: 1000, readallfields: true, fieldcount: 10, fieldlength: 100, table: 'usertable', ...values });
    }
    expect(() => readPropertyFile(workloads + 'workloade')).toThrow(YcsbPropertyError);
  });

  it('applies -P files in order, then every -p override, whatever their position (as YCSB)', () => {
    const files: Record<string, Properties> = {
      one: props({ recordcount: '10', readproportion: '0.1', table: 't1' }),
      two: props({ readproportion: '0.2' }),
    };
    const cli = parseCommandLine(['-t', '-p', 'table=override', '-P', 'one', '-db', 'baseline', '-P', 'two', '-threads', '8', '-target', '500', '--json', 'out.json', '-s'], (f) => files[f]!);
    expect(cli).toMatchObject({ phase: 'run', db: 'baseline', jsonPath: 'out.json', workloadName: 'two', status: true });
    expect(Object.fromEntries(cli.props)).toEqual({ recordcount: '10', readproportion: '0.2', table: 'override', threadcount: '8', target: '500' });
  });

  it('reads the typed workload: threads, target (0 = closed loop), time bound (default 60 s), seed', () => {
    expect(workloadConfig(props({ ...base }))).toMatchObject({ threadcount: 1, target: null, maxexecutiontimeMs: 60_000, seed: 1, insertorder: 'hashed', requestdistribution: 'uniform' });
    expect(workloadConfig(props({ ...base, threadcount: '16', target: '2500', maxexecutiontime: '2.5', seed: '42' })))
      .toMatchObject({ threadcount: 16, target: 2500, maxexecutiontimeMs: 2500, seed: 42 });
  });
});

describe('bad properties are refused with a clear error', () => {
  it('scans: ringkv has none', () => {
    refused(() => workloadConfig(props({ ...base, scanproportion: '0.95' })), 'scanproportion', /no range scans/);
  });
  it('unknown or unimplemented distributions', () => {
    refused(() => workloadConfig(props({ ...base, requestdistribution: 'hotspot' })), 'requestdistribution', /not one of uniform, zipfian, latest/);
    refused(() => workloadConfig(props({ ...base, insertorder: 'random' })), 'insertorder', /not one of hashed, ordered/);
  });
  it('numbers that are not numbers, or out of range', () => {
    refused(() => workloadConfig(props({ ...base, recordcount: 'many' })), 'recordcount', /not a number/);
    refused(() => workloadConfig(props({ ...base, threadcount: '2.5' })), 'threadcount', /not an integer/);
    refused(() => workloadConfig(props({ ...base, readproportion: '1.5' })), 'readproportion', /above the maximum 1/);
    refused(() => workloadConfig(props({ ...base, readallfields: 'yes' })), 'readallfields', /not true or false/);
    refused(() => workloadConfig(props({ ...base, insertcount: '200' })), 'insertcount', /exceeds recordcount/);
  });
  it('unbounded runs: operationcount and recordcount are required', () => {
    refused(() => workloadConfig(props({ recordcount: '10' })), 'operationcount', /required/);
    refused(() => workloadConfig(props({ operationcount: '10' })), 'recordcount', /required/);
    refused(() => workloadConfig(props({ ...base, operationcount: '0' })), 'operationcount', /below the minimum 1/);
  });
  it('nothing to do', () => {
    refused(() => workloadConfig(props({ ...base, readproportion: '0', updateproportion: '0' })), 'readproportion', /all 0/);
  });
  it('command-line mistakes', () => {
    refused(() => parseCommandLine(['-P']), '-P', /needs a value/);
    refused(() => parseCommandLine(['-t', '-p', 'novalue']), '-p', /name=value/);
    refused(() => parseCommandLine(['-t', '--frobnicate']), '--frobnicate', /unknown argument/);
    refused(() => parseCommandLine(['-db', 'ringkv']), '-load/-t', /choose the load phase/);
  });
  it('binding properties', () => {
    refused(() => ringkvOptions(props({})), 'ringkv.nodes', /required/);
    refused(() => ringkvOptions(props({ 'ringkv.nodes': 'a:1', 'ringkv.routing': 'smart' })), 'ringkv.routing', /not client or server/);
    refused(() => ringkvOptions(props({ 'ringkv.nodes': 'a:1', 'ringkv.n': '1', 'ringkv.r': '2' })), 'ringkv.r', /exceeds ringkv.n/);
    expect(ringkvOptions(props({ 'ringkv.nodes': 'a:1, b:2', 'ringkv.routing': 'client', 'ringkv.n': '3', 'ringkv.w': '2' })))
      .toMatchObject({ nodes: ['a:1', 'b:2'], routing: 'client', n: 3, w: 2 });
    refused(() => ringkvOptions(props({ 'ringkv.nodes': 'a:1', 'ringkv.w': '2', 'ringkv.dw': '3' })), 'ringkv.dw', /exceeds ringkv.w/);
    refused(() => baselineOptions(props({ 'baseline.address': 'nowhere' }), 1), 'baseline.address', /not host:port/);
  });
});
