// docs/configuration.md is generated (npm run docs:config): the committed
// file must be what the schema renders now, and name every option's key,
// variable and flag.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { START_OPTION_KEYS, envOf, flagOf } from '../../src/config/options.js';
import { renderConfigReference } from '../../src/config/reference.js';

const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

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
});
