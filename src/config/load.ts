// The options of `ringkv start` from their three sources, with precedence
// flags > RINGKV_* environment > config file > defaults. Each source is
// checked on its own, so a problem names where it is (`listen` in the file,
// RINGKV_LISTEN, --listen); the merged result is checked as a whole (options
// that go together). Pure but for readConfigFile: no process.env read here.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument, isMap, isScalar } from 'yaml';
import type { z } from 'zod';
import {
  CONFIG_FILE_SCHEMA,
  SECRET_VALUE_ENV,
  START_OPTIONS,
  START_OPTION_KEYS,
  envOf,
  flagOf,
  type OptionSpec,
  type StartConfig,
  type StartOptionKey,
  type StartOptionValues,
} from './options.js';

export type Source = 'flag' | 'env' | 'file' | 'default';

export interface ConfigProblem {
  /** Where the value is: the file's key, the variable or the flag (or several, for options that go together). */
  where: string;
  message: string;
  /** The line in the config file, when the problem is there. */
  line?: number;
}

/** A configuration that cannot run; `problems` says each key and what is wrong with it. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly problems: readonly ConfigProblem[],
    /** The config file the problems are in, when they are in one. */
    readonly file?: string,
  ) {
    super(formatProblems(problems, file));
  }
}

/** `bad config file node.yaml:` then one `  key: problem (line n)` per problem. */
export function formatProblems(problems: readonly ConfigProblem[], file?: string): string {
  const lines = problems.map((p) => `  ${p.where}: ${p.message}${p.line === undefined ? '' : ` (line ${p.line})`}`);
  // Problems of flags and variables may come with the file's: the header names the file, each line its key, variable or flag.
  return `${file === undefined ? 'bad configuration' : `bad config file ${file}`}:\n${lines.join('\n')}`;
}

export interface ConfigFile {
  path: string;
  values: StartOptionValues;
}

/** Keys people write for the secret itself: told where a secret goes instead of "unknown key". */
const SECRET_KEYS = new Set(['secret', 'cluster_secret', 'previous_secret', 'cluster_previous_secret', 'token', 'admin_token']);

/** The problem with a key no option has: a secret, a near miss (nodeId, node-id), or plainly unknown. */
function unknownKeyProblem(key: string): string {
  if (SECRET_KEYS.has(key)) return 'a secret never goes in the config file: name a file with secret_file (mode 0600), or set RINGKV_CLUSTER_SECRET';
  const normal = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/-/g, '_').toLowerCase();
  if ((START_OPTION_KEYS as string[]).includes(normal)) return `unknown key; did you mean ${normal}?`;
  return 'unknown key (docs/configuration.md lists every option)';
}

function problemsOf(error: z.ZodError, where: (key: string) => string, line: (key: string) => number | undefined): ConfigProblem[] {
  return error.issues.flatMap((issue): ConfigProblem[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => ({ where: where(k), message: unknownKeyProblem(k), line: line(k) }));
    }
    const key = String(issue.path[0] ?? '');
    const inner = issue.path.length > 1 ? `[${issue.path.slice(1).join('.')}]` : '';
    return [{ where: `${where(key)}${inner}`, message: issue.message, line: line(key) }];
  });
}

/**
 * A config file's text (YAML) checked against the schema. Relative paths
 * are taken from the file's directory (`path`), as a service manager's
 * working directory is rarely the file's.
 */
export function parseConfigText(text: string, path: string): ConfigFile {
  const lineCounter = new LineCounter();
  // YAML 1.2 core schema: `yes`, `on` and `0777` stay strings or decimals, never a surprise boolean or octal.
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true, schema: 'core' });
  const syntax = [...doc.errors, ...doc.warnings].map((e) => ({
    where: 'yaml',
    // The first line without its " at line 2, column 1:" (the line is given as ours are).
    message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''),
    line: e.linePos?.[0]?.line,
  }));
  if (syntax.length > 0) throw new ConfigError(syntax, path);
  const lineOf = new Map<string, number>();
  if (isMap(doc.contents)) {
    for (const pair of doc.contents.items) {
      if (isScalar(pair.key) && pair.key.range) lineOf.set(String(pair.key.value), lineCounter.linePos(pair.key.range[0]).line);
    }
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([{ where: 'yaml', message: 'expected a mapping of option: value at the top level' }], path);
  }
  const checked = CONFIG_FILE_SCHEMA.safeParse(raw);
  if (!checked.success) {
    const problems = problemsOf(checked.error, (k) => k, (k) => lineOf.get(k));
    throw new ConfigError(problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0)), path);
  }
  const values: StartOptionValues = { ...checked.data };
  const base = dirname(resolve(path));
  for (const key of START_OPTION_KEYS) {
    const spec: OptionSpec = START_OPTIONS[key];
    const v = values[key];
    if (spec.path === true && typeof v === 'string' && !isAbsolute(v)) (values as Record<string, unknown>)[key] = resolve(base, v);
  }
  return { path, values };
}

/** Reads and checks a config file (ConfigError when it cannot be read or is wrong). */
export function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ where: 'file', message: `cannot read it: ${(err as Error).message}` }], path);
  }
  return parseConfigText(text, path);
}

/** A string from the environment or a flag as the option's type; left as it is when it does not convert (the schema then says what was expected). */
function fromString(spec: OptionSpec, raw: string | boolean): unknown {
  if (typeof raw === 'boolean') return raw;
  switch (spec.kind) {
    case 'string':
      return raw;
    case 'integer':
      return /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : raw;
    case 'boolean': {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      return raw;
    }
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  }
}

/** Values given as strings (the environment, flags), converted and checked; `where` names each key's variable or flag. */
function fromStrings(raw: Partial<Record<StartOptionKey, string | boolean>>, where: (key: StartOptionKey) => string): StartOptionValues {
  const typed: Record<string, unknown> = {};
  for (const key of START_OPTION_KEYS) {
    const v = raw[key];
    if (v !== undefined) typed[key] = fromString(START_OPTIONS[key], v);
  }
  const checked = CONFIG_FILE_SCHEMA.safeParse(typed);
  if (!checked.success) throw new ConfigError(problemsOf(checked.error, (k) => where(k as StartOptionKey), () => undefined));
  return checked.data;
}

/** The options set in an environment (RINGKV_*; an empty variable counts as unset). */
export function envValues(env: NodeJS.ProcessEnv): StartOptionValues {
  const raw: Partial<Record<StartOptionKey, string>> = {};
  for (const key of START_OPTION_KEYS) {
    const v = env[envOf(key)];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  return fromStrings(raw, envOf);
}

/** The options given as flags (strings as commander parsed them; true for a boolean flag). */
export function flagValues(raw: Partial<Record<StartOptionKey, string | boolean>>): StartOptionValues {
  return fromStrings(raw, flagOf);
}

export interface ResolvedStartConfig {
  config: StartConfig;
  /** Where each option's value came from ('default' also for options left unset). */
  sources: Record<StartOptionKey, Source>;
}

export interface StartConfigSources {
  /** The flags given, as commander parsed them (src/config/flags.ts). */
  flags?: Partial<Record<StartOptionKey, string | boolean>>;
  env?: NodeJS.ProcessEnv;
  /** A config file's path (read here) or its checked values. */
  file?: string | ConfigFile;
}

/** Runs each source's check and gathers every problem (so one run shows them all). */
function gather<T>(problems: ConfigProblem[], files: string[], check: () => T): T | undefined {
  try {
    return check();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
    if (err.file !== undefined) files.push(err.file);
    return undefined;
  }
}

/** The options `ringkv start` runs with: flags > environment > file > defaults, checked as a whole. */
export function resolveStartConfig(s: StartConfigSources): ResolvedStartConfig {
  const env = s.env ?? {};
  const problems: ConfigProblem[] = [];
  const files: string[] = [];
  const flags = gather(problems, files, () => flagValues(s.flags ?? {}));
  const fromEnv = gather(problems, files, () => envValues(env));
  const file = typeof s.file === 'string' ? gather(problems, files, () => readConfigFile(s.file as string)) : s.file;
  if (problems.length > 0) throw new ConfigError(problems, files[0]);
  const layers: Array<[Source, StartOptionValues]> = [
    ['flag', flags ?? {}],
    ['env', fromEnv ?? {}],
    ['file', file?.values ?? {}],
  ];
  const values: Record<string, unknown> = {};
  const sources = {} as Record<StartOptionKey, Source>;
  for (const key of START_OPTION_KEYS) {
    const spec: OptionSpec = START_OPTIONS[key];
    const layer = layers.find(([, v]) => v[key] !== undefined);
    sources[key] = layer?.[0] ?? 'default';
    values[key] = layer ? layer[1][key] : spec.default;
  }
  // The secret's value in the environment outranks a secret file named in the config file.
  for (const [key, variable] of Object.entries(SECRET_VALUE_ENV) as Array<[StartOptionKey, string]>) {
    if ((sources[key] === 'file' || sources[key] === 'default') && (env[variable] ?? '') !== '') {
      values[key] = undefined;
      sources[key] = 'env';
    }
  }
  // RINGKV_TLS_CA may be set for the client commands alone: without a key and certificate it turns nothing on.
  if (sources.tls_ca === 'env' && values.tls_key === undefined) {
    values.tls_ca = undefined;
    sources.tls_ca = 'default';
  }
  if (values.data_dir === undefined) values.data_dir = `./.ringkv/${String(values.node_id)}`;
  const where = (key: StartOptionKey): string => {
    switch (sources[key]) {
      case 'flag':
        return flagOf(key);
      case 'env':
        return envOf(key);
      default:
        return key;
    }
  };
  if ((values.tls_key === undefined) !== (values.tls_cert === undefined)) {
    const given: StartOptionKey = values.tls_key === undefined ? 'tls_cert' : 'tls_key';
    const missing: StartOptionKey = given === 'tls_key' ? 'tls_cert' : 'tls_key';
    problems.push({ where: where(given), message: `needs ${missing} too (a key and its certificate go together)` });
  }
  if (values.tls_ca !== undefined && values.tls_key === undefined) {
    problems.push({ where: where('tls_ca'), message: 'needs tls_key and tls_cert (the CA checks peers of a TLS node)' });
  }
  if (values.insecure_loopback === true && values.secret_file !== undefined) {
    problems.push({ where: `${where('insecure_loopback')}, ${where('secret_file')}`, message: 'give either a cluster secret or insecure loopback mode, not both' });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: values as StartConfig, sources };
}
