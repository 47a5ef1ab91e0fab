// docs/configuration.md is generated (npm run docs:config): the committed
// file must be what the schema renders now, and name every option's key,
// variable and flag.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText, resolveStartConfig } from '../../src/config/load.js';
import { START_OPTION_KEYS, envOf, flagOf } from '../../src/config/options.js';
import { renderConfigReference } from '../../src/config/reference.js';

const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The body of the ```yaml block that follows `marker`. */
function yamlBlockAfter(text: string, marker: string): string {
  const from = text.indexOf(marker);
  expect(from, marker).toBeGreaterThan(-1);
  const start = text.lastIndexOf('```yaml\n', from) + '```yaml\n'.length;
  return text.slice(start, text.indexOf('\n```', from) + 1);
}

describe('docs/configuration.md', () => {
  it('is what `npm run docs:config` renders from the schema (run it after changing an option)', () => {
    expect(committed).toBe(renderConfigReference());
  });

  it('has a section per option naming its key, variable and flag', () => {
    for (const key of START_OPTION_KEYS) {
      const section = committed.split(`### \`${key}\`\n`)[1]?.split('\n### ')[0];
      expect(section, key).toBeDefined();
      expect(section).toContain(`\`${envOf(key)}\``);
      expect(section).toContain(`\`${flagOf(key)}`);
    }
  });

  it('its example file is valid, and its bad example gives the output shown', () => {
    const example = parseConfigText(yamlBlockAfter(committed, '# /etc/ringkv/ringkv.yaml, the same'), '/etc/ringkv/ringkv.yaml');
    expect(resolveStartConfig({ file: example }).config.seeds).toHaveLength(3);
    const shown = committed.split('$ cat bad.yaml\n')[1]!.split('\n```')[0]!;
    const [file, output] = shown.split('$ ringkv config check bad.yaml\n') as [string, string];
    let message = '';
    try {
      parseConfigText(file, 'bad.yaml');
    } catch (err) {
      message = (err as ConfigError).message;
    }
    expect(`ringkv: ${message}`).toBe(output);
  });
});

describe('README, "Run it on three machines"', () => {
  it('its config file is valid', () => {
    const { config } = resolveStartConfig({ file: parseConfigText(yamlBlockAfter(readme, '# /etc/ringkv/ringkv.yaml on 10.0.0.2'), '/etc/ringkv/ringkv.yaml') });
    expect(config).toMatchObject({ node_id: 'n2', advertise: '10.0.0.2:8087', seeds: ['10.0.0.1:8087'] });
  });
});
