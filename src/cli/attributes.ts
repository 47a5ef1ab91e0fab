// The content type and metadata options of `ringkv put` and how `ringkv get
// --headers` shows them (docs/http.md "Content type and metadata").
import { InvalidArgumentError } from 'commander';
import { META_HEADER_PREFIX } from '../http/wire.js';

/** `--meta name=value`, repeatable: collects into one object (a name given twice keeps the last). */
export function collectMeta(raw: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = raw.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`expected name=value, got '${raw}'`);
  return { ...previous, [raw.slice(0, at).toLowerCase()]: raw.slice(at + 1) };
}

/** A value's attributes as the header lines an HTTP GET answers with. */
export function headerLines(s: { contentType: string; meta: Record<string, string> }): string {
  const lines = [`content-type: ${s.contentType}`, ...Object.entries(s.meta).map(([name, value]) => `${META_HEADER_PREFIX}${name}: ${value}`)];
  return lines.join('\n');
}
