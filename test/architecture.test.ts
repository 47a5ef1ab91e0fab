// Dependency rules of src/ (an architecture lint): every import of every
// source file, static or dynamic, parsed with the TypeScript compiler and
// resolved to a path, checked against the layering docs/cluster.md draws.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');

interface Import {
  /** Importing file, relative to the repository (src/...). */
  from: string;
  /** Imported module as written. */
  spec: string;
  /** Resolved path relative to the repository (src/...), or the package name for a bare import. */
  target: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The imports of one file's text (`file` is its repository-relative path). */
function importsOf(file: string, text: string): Import[] {
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles.map(({ fileName: spec }) => {
    if (!spec.startsWith('.')) return { from: file, spec, target: spec };
    const abs = resolve(dirname(join(ROOT, file)), spec).replace(/\.js$/, '.ts');
    return { from: file, spec, target: relative(ROOT, abs) };
  });
}

const inside = (path: string, dir: string): boolean => path === dir || path.startsWith(`${dir}/`);

interface Rule {
  name: string;
  /** Whether an import breaks the rule. */
  breaks(i: Import): boolean;
}

const RULES: Rule[] = [
  {
    // The runtime uses the engine through its interface and shares formats through src/record.
    name: 'nothing outside src/engine imports src/engine/pure',
    breaks: (i) => inside(i.target, 'src/engine/pure') && !inside(i.from, 'src/engine'),
  },
  {
    // The record library sits under both engines and the runtime: pure, no I/O.
    name: 'src/record imports only itself, src/util, core/types and @noble/hashes',
    breaks: (i) =>
      inside(i.from, 'src/record') &&
      !(inside(i.target, 'src/record') || inside(i.target, 'src/util') || i.target === 'src/core/types.ts' || i.target.startsWith('@noble/hashes/')),
  },
  {
    // The runtime's parts depend on narrow contexts (src/node/context.ts and their own), never on the node class: only its facade knows it.
    name: 'no file in src/node but node.ts imports node.ts',
    breaks: (i) => i.target === 'src/node/node.ts' && inside(i.from, 'src/node') && i.from !== 'src/node/node.ts',
  },
];

function violations(imports: readonly Import[]): string[] {
  return RULES.flatMap((rule) => imports.filter((i) => rule.breaks(i)).map((i) => `${rule.name}: ${i.from} imports '${i.spec}'`));
}

describe('dependency rules of src/', () => {
  const all = sourceFiles(SRC).flatMap((abs) => importsOf(relative(ROOT, abs), readFileSync(abs, 'utf8')));

  it('reads the imports of every source file', () => {
    // Guards the lint itself: a broken walk or parse would pass vacuously.
    expect(all.length).toBeGreaterThan(200);
    expect(all).toContainEqual(expect.objectContaining({ from: 'src/engine/pure/engine.ts', target: 'src/record/dvv.ts' }));
  });

  it('holds for every import', () => {
    expect(violations(all)).toEqual([]);
  });

  it('flags a static or dynamic import of the pure engine from the runtime, a record module reaching up, and a node part importing the node', () => {
    const probe = [
      ...importsOf('src/node/probe.ts', "import { PureEngine } from '../engine/pure/index.js';"),
      ...importsOf('src/http/probe.ts', "export async function f() { return import('../engine/pure/engine.js'); }"),
      ...importsOf('src/engine/native/probe.ts', "import { SimDisk } from '../pure/store.js';"),
      ...importsOf('src/record/probe.ts', "import type { Engine } from '../engine/types.js';"),
      ...importsOf('src/node/gossip.ts', "import type { RingkvNode } from './node.js';"),
      ...importsOf('src/http/probe.ts', "import type { RingkvNode } from '../node/node.js';"),
    ];
    expect(violations(probe)).toEqual([
      "nothing outside src/engine imports src/engine/pure: src/node/probe.ts imports '../engine/pure/index.js'",
      "nothing outside src/engine imports src/engine/pure: src/http/probe.ts imports '../engine/pure/engine.js'",
      "src/record imports only itself, src/util, core/types and @noble/hashes: src/record/probe.ts imports '../engine/types.js'",
      "no file in src/node but node.ts imports node.ts: src/node/gossip.ts imports './node.js'",
    ]);
  });
});
