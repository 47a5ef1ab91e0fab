// bench/RESULTS.md is made of sections, each between `<!-- NAME:start -->` and
// `<!-- NAME:end -->` markers, rewritten by the benchmark that owns it; text
// outside the markers (the reading of the numbers) is left alone.
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';

const PATH = new URL('./RESULTS.md', import.meta.url);

/** "2 × CPU model, Node vX" — the machine line every section carries. */
export function machineLine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
}

export function today(): string {
  return new Date().toISOString().slice(0, 10);
}

/** Replaces (or appends) the section `name` with `body`. */
export function recordSection(name: string, body: string): void {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const section = `${start}\n${body.trim()}\n${end}`;
  let text = '# Benchmark results\n';
  try {
    text = readFileSync(PATH, 'utf8');
  } catch {
    // the first benchmark run creates the file
  }
  const at = text.indexOf(start);
  const until = text.indexOf(end);
  text = at >= 0 && until > at ? text.slice(0, at) + section + text.slice(until + end.length) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(PATH, text);
}
