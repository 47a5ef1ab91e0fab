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

/** One name a file takes from a module: `*` for a namespace import, a dynamic import or an `export *`. */
interface Binding {
  from: string;
  target: string;
  name: string;
}

/** The names each import and re-export of a file's text takes from relative modules (as `importsOf` resolves them). */
function bindingsOf(file: string, text: string): Binding[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const target = (spec: string) => relative(ROOT, resolve(dirname(join(ROOT, file)), spec).replace(/\.js$/, '.ts'));
  const out: Binding[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const spec = node.moduleSpecifier.text;
      if (spec.startsWith('.')) {
        const names: string[] = [];
        if (ts.isImportDeclaration(node)) {
          const clause = node.importClause;
          if (clause?.name) names.push('default');
          const nb = clause?.namedBindings;
          if (nb && ts.isNamespaceImport(nb)) names.push('*');
          if (nb && ts.isNamedImports(nb)) names.push(...nb.elements.map((e) => (e.propertyName ?? e.name).text));
        } else {
          const nb = node.exportClause;
          if (nb === undefined || ts.isNamespaceExport(nb)) names.push('*');
          else names.push(...nb.elements.map((e) => (e.propertyName ?? e.name).text));
        }
        out.push(...names.map((name) => ({ from: file, target: target(spec), name })));
      }
    }
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteral(arg) && arg.text.startsWith('.')) out.push({ from: file, target: target(arg.text), name: '*' });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The DVV operations that make or merge a version: only the engines run them (and the record library itself). */
const VERSION_BUILDERS = new Set(['update', 'sync', 'finish', 'applyMode', 'coordinateDetached', '*']);

const BINDING_RULES: Array<{ name: string; breaks(b: Binding): boolean }> = [
  {
    // Every version is made by the engine (Rust in production): a coordinator, a fallback and a replica run one code.
    name: 'outside src/engine and src/record nothing imports update, sync, finish, applyMode or coordinateDetached (or all) of src/record',
    breaks: (b) => inside(b.target, 'src/record') && !inside(b.from, 'src/engine') && !inside(b.from, 'src/record') && VERSION_BUILDERS.has(b.name),
  },
];

function bindingViolations(bindings: readonly Binding[]): string[] {
  return BINDING_RULES.flatMap((rule) => bindings.filter((b) => rule.breaks(b)).map((b) => `${rule.name}: ${b.from} takes '${b.name}' from ${b.target}`));
}

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

  const bindings = sourceFiles(SRC).flatMap((abs) => bindingsOf(relative(ROOT, abs), readFileSync(abs, 'utf8')));

  it('reads the names every source file takes from src/record', () => {
    // Guards the lint itself: the runtime does take the codec from src/record.
    expect(bindings).toContainEqual({ from: 'src/node/put-driver.ts', target: 'src/record/index.ts', name: 'decodeRecord' });
    expect(bindings).toContainEqual({ from: 'src/engine/pure/engine.ts', target: 'src/record/dvv.ts', name: 'update' });
  });

  it('no version is built outside the engines: nothing else takes the DVV operations from src/record', () => {
    expect(bindingViolations(bindings)).toEqual([]);
  });

  it('flags a named, renamed, namespace or dynamic import and a re-export of a version builder, and nothing else', () => {
    const probe = [
      ...bindingsOf('src/node/probe.ts', "import { decodeRecord, finish, update as u } from '../record/index.js';"),
      ...bindingsOf('src/http/probe.ts', "import * as rec from '../record/dvv.js'; export { sync } from '../record/dvv.js';"),
      ...bindingsOf('src/client/probe.ts', "export async function f() { return import('../record/index.js'); }"),
      ...bindingsOf('src/engine/pure/probe.ts', "import { finish, update } from '../../record/dvv.js';"),
      ...bindingsOf('src/record/probe.ts', "import { update } from './dvv.js';"),
      ...bindingsOf('src/node/ok.ts', "import { type ConflictMode, encodeRecord } from '../record/index.js';"),
    ];
    const rule = BINDING_RULES[0]!.name;
    expect(bindingViolations(probe)).toEqual([
      `${rule}: src/node/probe.ts takes 'finish' from src/record/index.ts`,
      `${rule}: src/node/probe.ts takes 'update' from src/record/index.ts`,
      `${rule}: src/http/probe.ts takes '*' from src/record/dvv.ts`,
      `${rule}: src/http/probe.ts takes 'sync' from src/record/dvv.ts`,
      `${rule}: src/client/probe.ts takes '*' from src/record/index.ts`,
    ]);
  });
});
