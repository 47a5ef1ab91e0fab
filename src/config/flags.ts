// The flags of `ringkv start`, generated from the option schema: one per
// option, no defaults here (a flag not given leaves the option to the
// environment, the config file or the schema's default).
import { Option, type Command } from 'commander';
import { START_OPTIONS, START_OPTION_KEYS, envOf, flagOf, type OptionSpec, type StartOptionKey } from './options.js';

/** The commander option of each schema key. */
export function startFlagOptions(): Map<StartOptionKey, Option> {
  return new Map(
    START_OPTION_KEYS.map((key) => {
      const spec: OptionSpec = START_OPTIONS[key];
      const shownDefault = spec.defaultText ?? (spec.default === undefined || (Array.isArray(spec.default) && spec.default.length === 0) ? undefined : String(spec.default));
      const help = `${firstSentence(spec.description)} (env ${envOf(key)}${shownDefault === undefined ? '' : `; default ${shownDefault}`})`;
      const flags = spec.kind === 'boolean' ? flagOf(key) : `${flagOf(key)} <${spec.value}>`;
      return [key, new Option(flags, help)];
    }),
  );
}

function firstSentence(text: string): string {
  const end = text.search(/\.(\s|$)/);
  return end === -1 ? text : text.slice(0, end);
}

/** Adds every option's flag to `cmd`; returns a reader of the flags given, as strings (true for a boolean flag). */
export function addStartFlags(cmd: Command): (opts: Record<string, unknown>) => Partial<Record<StartOptionKey, string | boolean>> {
  const options = startFlagOptions();
  for (const option of options.values()) cmd.addOption(option);
  return (opts) => {
    const given: Partial<Record<StartOptionKey, string | boolean>> = {};
    for (const [key, option] of options) {
      const v = opts[option.attributeName()];
      if (typeof v === 'string' || typeof v === 'boolean') given[key] = v;
    }
    return given;
  };
}
