// `ringkv config check FILE`: is a config file valid, and what would a node
// started with it run with (each option, its value and where it came from).
import { accessSync, constants } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError, resolveStartConfig, type ResolvedStartConfig } from '../config/load.js';
import { SECRET_VALUE_ENV, START_OPTIONS, START_OPTION_KEYS, envOf, type OptionSpec } from '../config/options.js';

/** Exit status of `config check` for a file that is not valid. */
export const EXIT_CONFIG_INVALID = 1;

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('config files of `ringkv start` (docs/configuration.md)');
  config
    .command('check <file>')
    .description('check a config file: exit 0 and the options it gives when valid; each bad key and its problem, exit 1, when not')
    .option('--env', 'apply the RINGKV_* environment too, as `ringkv start --config FILE` would')
    .action((file: string, o: { env?: boolean }) => {
      let resolved: ResolvedStartConfig;
      try {
        resolved = resolveStartConfig({ file, env: o.env === true ? process.env : {} });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        process.stderr.write(`ringkv: ${err.message}\n`);
        process.exitCode = EXIT_CONFIG_INVALID;
        return;
      }
      process.stdout.write(`${file}: valid\n${configSummary(resolved)}\n`);
      for (const warning of unreadableFiles(resolved)) process.stderr.write(`ringkv: warning: ${warning}\n`);
    });
}

/** One line per option: key, value (or "-" when unset) and its source. */
export function configSummary({ config, sources }: ResolvedStartConfig): string {
  const rows = START_OPTION_KEYS.map((key) => {
    const v: unknown = config[key];
    // The secret's value from the environment took this option's place (it is never shown).
    const secretVariable = v === undefined && sources[key] === 'env' ? SECRET_VALUE_ENV[key] : undefined;
    if (secretVariable !== undefined) return [key, '(the secret itself, from the environment)', `env ${secretVariable}`] as const;
    const value = v === undefined ? '-' : Array.isArray(v) ? (v.length === 0 ? '(none)' : v.join(', ')) : String(v);
    const source = sources[key] === 'env' ? `env ${envOf(key)}` : sources[key];
    return [key, value, source] as const;
  });
  const keyWidth = Math.max(...rows.map((r) => r[0].length));
  const valueWidth = Math.max(...rows.map((r) => r[1].length));
  return rows.map(([k, v, s]) => `  ${k.padEnd(keyWidth)}  ${v.padEnd(valueWidth)}  ${s}`).join('\n');
}

/** Files the options name that this host cannot read (a check may run elsewhere than the node: a warning, not an error). */
function unreadableFiles({ config }: ResolvedStartConfig): string[] {
  return START_OPTION_KEYS.flatMap((key) => {
    const spec: OptionSpec = START_OPTIONS[key];
    const v = config[key];
    if (spec.path !== true || key === 'data_dir' || typeof v !== 'string') return [];
    try {
      accessSync(v, constants.R_OK);
      return [];
    } catch (err) {
      return [`${key}: ${v} cannot be read here (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`];
    }
  });
}
