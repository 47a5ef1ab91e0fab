// YCSB properties: Java-style property files (`-P file`), `-p name=value`
// overrides applied in command-line order after every file, and the typed,
// validated view of the core workload properties the generator uses.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export type Properties = Map<string, string>;

/** A property that is missing, malformed or out of range; the message names it. */
export class YcsbPropertyError extends Error {
  constructor(readonly property: string, message: string) {
    super(`${property}: ${message}`);
    this.name = 'YcsbPropertyError';
  }
}

/**
 * Parses java.util.Properties text: `name=value`, `name: value` or
 * `name value`; `#`/`!` comments; a trailing backslash continues the line.
 */
export function parsePropertiesText(text: string, source = 'properties'): Properties {
  const props: Properties = new Map();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i]!.trim();
    const m = /^([^=:\s]+)\s*(?:[=:]\s*|\s+)?(.*)$/.exec(line);
    if (!m) throw new YcsbPropertyError(`${source}:${i + 1}`, `cannot read the line "${line}"`);
    props.set(m[1]!, m[2]!.trim());
  }
  return props;
}

export function readPropertyFile(path: string): Properties {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new YcsbPropertyError('-P', `cannot read property file ${path}: ${(err as Error).message}`);
  }
  return parsePropertiesText(text, path);
}

export interface CommandLine {
  phase: 'load' | 'run';
  db: string;
  props: Properties;
  /** Where to write the JSON result, if asked. */
  jsonPath: string | null;
  /** The name of the last `-P` file, for reports. */
  workloadName: string;
  /** Print a status line every interval (`-s`). */
  status: boolean;
}

export const USAGE = `usage: tsx bench/ycsb.ts (-load | -t) -db ringkv|baseline [-P file]... [-p name=value]...
                       [-threads n] [-target ops/s] [-s] [--json FILE]`;

/**
 * YCSB's command line: -load / -t, -db, -P (repeatable, files applied in
 * order), -p (overrides, win over files), -threads, -target, -s, plus --json.
 */
export function parseCommandLine(argv: readonly string[], readFile: (path: string) => Properties = readPropertyFile): CommandLine {
  let phase: 'load' | 'run' | null = null;
  let db = 'ringkv';
  let jsonPath: string | null = null;
  let status = false;
  let workloadName = 'custom';
  const files: Properties[] = [];
  const overrides: Properties = new Map();
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new YcsbPropertyError(flag, 'needs a value');
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    switch (arg) {
      case '-load': case 'load': phase = 'load'; break;
      case '-t': case 'run': phase = 'run'; break;
      case '-s': status = true; break;
      case '-db': db = value(i++, arg); break;
      case '-P': {
        const path = value(i++, arg);
        files.push(readFile(path));
        workloadName = basename(path);
        break;
      }
      case '-p': {
        const kv = value(i++, arg);
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new YcsbPropertyError('-p', `expected name=value, got "${kv}"`);
        overrides.set(kv.slice(0, eq), kv.slice(eq + 1));
        break;
      }
      case '-threads': overrides.set('threadcount', value(i++, arg)); break;
      case '-target': overrides.set('target', value(i++, arg)); break;
      case '--json': jsonPath = value(i++, arg); break;
      default: throw new YcsbPropertyError(arg, `unknown argument\n${USAGE}`);
    }
  }
  if (!phase) throw new YcsbPropertyError('-load/-t', `choose the load phase (-load) or the run phase (-t)\n${USAGE}`);
  const props: Properties = new Map();
  for (const f of files) for (const [k, v] of f) props.set(k, v);
  for (const [k, v] of overrides) props.set(k, v);
  return { phase, db, props, jsonPath, workloadName, status };
}

export type RequestDistribution = 'uniform' | 'zipfian' | 'latest';
export type FieldLengthDistribution = 'constant' | 'uniform' | 'zipfian';

/** The core workload and client properties, typed and checked. */
export interface WorkloadConfig {
  table: string;
  recordcount: number;
  operationcount: number;
  insertstart: number;
  insertcount: number;
  fieldcount: number;
  fieldlength: number;
  minfieldlength: number;
  fieldlengthdistribution: FieldLengthDistribution;
  fieldnameprefix: string;
  readallfields: boolean;
  writeallfields: boolean;
  readproportion: number;
  updateproportion: number;
  insertproportion: number;
  readmodifywriteproportion: number;
  requestdistribution: RequestDistribution;
  insertorder: 'hashed' | 'ordered';
  zeropadding: number;
  threadcount: number;
  /** Operations per second over all threads; null runs a closed loop. */
  target: number | null;
  maxexecutiontimeMs: number;
  /** Time-series interval (status.interval, seconds in YCSB). */
  statusIntervalMs: number;
  percentiles: number[];
  seed: number;
}

/** Default time bound when maxexecutiontime is not given (YCSB's default, 0, means unbounded; we always bound). */
export const DEFAULT_MAX_EXECUTION_S = 60;

export function workloadConfig(props: Properties): WorkloadConfig {
  const str = (name: string, def: string) => props.get(name) ?? def;
  const num = (name: string, def: number, check: { min?: number; max?: number; integer?: boolean } = {}): number => {
    const raw = props.get(name);
    if (raw === undefined) return def;
    const v = Number(raw.trim());
    if (raw.trim() === '' || !Number.isFinite(v)) throw new YcsbPropertyError(name, `"${raw}" is not a number`);
    if (check.integer && !Number.isSafeInteger(v)) throw new YcsbPropertyError(name, `"${raw}" is not an integer`);
    if (check.min !== undefined && v < check.min) throw new YcsbPropertyError(name, `${v} is below the minimum ${check.min}`);
    if (check.max !== undefined && v > check.max) throw new YcsbPropertyError(name, `${v} is above the maximum ${check.max}`);
    return v;
  };
  const bool = (name: string, def: boolean): boolean => {
    const raw = props.get(name);
    if (raw === undefined) return def;
    if (/^true$/i.test(raw.trim())) return true;
    if (/^false$/i.test(raw.trim())) return false;
    throw new YcsbPropertyError(name, `"${raw}" is not true or false`);
  };
  const oneOf = <T extends string>(name: string, def: T, allowed: readonly T[], why = ''): T => {
    const raw = str(name, def).trim();
    if (!(allowed as readonly string[]).includes(raw)) {
      throw new YcsbPropertyError(name, `"${raw}" is not one of ${allowed.join(', ')}${why}`);
    }
    return raw as T;
  };
  const proportion = (name: string, def: number) => num(name, def, { min: 0, max: 1 });

  const scan = proportion('scanproportion', 0);
  if (scan > 0) {
    throw new YcsbPropertyError('scanproportion', `${scan} > 0, but ringkv has no range scans (it is a hashed key-value store); YCSB workload E cannot run against it`);
  }
  const recordcount = num('recordcount', 0, { min: 1, integer: true });
  if (!props.has('recordcount')) throw new YcsbPropertyError('recordcount', 'is required (the number of records the load phase inserts)');
  const insertstart = num('insertstart', 0, { min: 0, integer: true });
  const insertcount = num('insertcount', recordcount - insertstart, { min: 1, integer: true });
  if (recordcount < insertstart + insertcount) {
    throw new YcsbPropertyError('insertcount', `insertstart (${insertstart}) + insertcount (${insertcount}) exceeds recordcount (${recordcount})`);
  }
  const operationcount = num('operationcount', 0, { min: 1, integer: true });
  if (!props.has('operationcount')) throw new YcsbPropertyError('operationcount', 'is required (every run is bounded in operations and in time)');
  const readproportion = proportion('readproportion', 0.95);
  const updateproportion = proportion('updateproportion', 0.05);
  const insertproportion = proportion('insertproportion', 0);
  const readmodifywriteproportion = proportion('readmodifywriteproportion', 0);
  if (readproportion + updateproportion + insertproportion + readmodifywriteproportion <= 0) {
    throw new YcsbPropertyError('readproportion', 'the read, update, insert and read-modify-write proportions are all 0');
  }
  const fieldlength = num('fieldlength', 100, { min: 1, integer: true });
  const minfieldlength = num('minfieldlength', 1, { min: 1, integer: true });
  if (minfieldlength > fieldlength) throw new YcsbPropertyError('minfieldlength', `${minfieldlength} exceeds fieldlength ${fieldlength}`);
  const target = num('target', 0, { min: 0 });
  const percentiles = str('hdrhistogram.percentiles', '95,99,99.9').split(',').map((p) => {
    const v = Number(p.trim());
    if (!Number.isFinite(v) || v <= 0 || v > 100) throw new YcsbPropertyError('hdrhistogram.percentiles', `"${p}" is not a percentile`);
    return v;
  });
  const table = str('table', 'usertable');
  if (table === '' || Buffer.byteLength(table) > 255) throw new YcsbPropertyError('table', 'must be 1..255 bytes (it becomes the ringkv bucket)');

  return {
    table,
    recordcount,
    operationcount,
    insertstart,
    insertcount,
    fieldcount: num('fieldcount', 10, { min: 1, max: 10_000, integer: true }),
    fieldlength,
    minfieldlength,
    fieldlengthdistribution: oneOf('fieldlengthdistribution', 'constant', ['constant', 'uniform', 'zipfian'] as const),
    fieldnameprefix: str('fieldnameprefix', 'field'),
    readallfields: bool('readallfields', true),
    writeallfields: bool('writeallfields', false),
    readproportion,
    updateproportion,
    insertproportion,
    readmodifywriteproportion,
    requestdistribution: oneOf('requestdistribution', 'uniform', ['uniform', 'zipfian', 'latest'] as const,
      ' (YCSB\'s hotspot, sequential and exponential are not implemented)'),
    insertorder: oneOf('insertorder', 'hashed', ['hashed', 'ordered'] as const),
    zeropadding: num('zeropadding', 1, { min: 1, max: 64, integer: true }),
    threadcount: num('threadcount', 1, { min: 1, max: 10_000, integer: true }),
    target: target > 0 ? target : null,
    maxexecutiontimeMs: 1000 * num('maxexecutiontime', DEFAULT_MAX_EXECUTION_S, { min: 0.001 }),
    statusIntervalMs: 1000 * num('status.interval', 1, { min: 0.05 }),
    percentiles,
    seed: num('seed', 1, { integer: true, min: -(2 ** 31), max: 2 ** 31 - 1 }),
  };
}
