/**
 * Imports run one way down the layers (docs/architecture.md, "Layers"), type-only imports included,
 * and no file reaches itself through its imports. No allowlist: a new upward import fails here,
 * naming the file, the import and both layers.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  describeViolation,
  importCycles,
  importGraph,
  layerOf,
  layerViolations,
  moduleReferences,
  projectEdges,
  sourceFiles,
  type ImportEdge,
} from '../support/layering.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const FOLDERS = ['src', 'connectors'];

/** Edges of a synthetic file, parsed exactly as the real ones are. */
const edgesOf = (from: string, text: string): ImportEdge[] => projectEdges(from, moduleReferences(from, text));

describe('the layering of src/ and connectors/', () => {
  const edges = importGraph(ROOT, FOLDERS);

  it('gives every file a layer', () => {
    expect(sourceFiles(ROOT, FOLDERS).filter((f) => layerOf(f) === undefined)).toEqual([]);
  });

  it('has no import that goes up a layer (or sideways between feeds and extract)', () => {
    // Guards against a parser that finds nothing: the project has hundreds of internal imports,
    // among them the CLI's lazy import() of each command.
    expect(edges.length).toBeGreaterThan(300);
    expect(edges.some((e) => e.kind === 'dynamic import()' && e.from === 'src/cli-program.ts')).toBe(true);
    expect(layerViolations(edges).map(describeViolation)).toEqual([]);
  });

  it('has no import cycle between files', () => {
    expect(importCycles(edges).map((c) => c.join(' → '))).toEqual([]);
  });
});

describe('the layering checker', () => {
  it('reads every form of import, type-only ones included, and nothing in strings or comments', () => {
    const text = [
      "import { a } from './a.ts';",
      "import type { B } from './b.ts';",
      "export { c } from './c.ts';",
      "export * from './d.ts';",
      "export type { E } from './e.ts';",
      "const f = await import('./f.ts');",
      "let g: import('./g.ts').G;",
      "import h from 'zod';",
      "// import { x } from './commented.ts';",
      "const s = \"import { y } from './in-a-string.ts'\";",
    ].join('\n');
    expect(moduleReferences('src/x.ts', text).map((r) => [r.specifier, r.kind, r.line])).toEqual([
      ['./a.ts', 'import', 1],
      ['./b.ts', 'import type', 2],
      ['./c.ts', 'export from', 3],
      ['./d.ts', 'export from', 4],
      ['./e.ts', 'export from', 5],
      ['./f.ts', 'dynamic import()', 6],
      ['./g.ts', 'import() type', 7],
      ['zod', 'import', 8],
    ]);
  });

  it('flags an upward import, type-only too, naming file, import and both layers', () => {
    const edges = edgesOf('src/store/sqlite.ts', "import type { GraphQLContext } from '../graphql/context.ts';\n");
    const violations = layerViolations(edges);
    expect(violations).toHaveLength(1);
    expect(describeViolation(violations[0]!)).toBe(
      "src/store/sqlite.ts:1 (store) import type '../graphql/context.ts' → src/graphql/context.ts (graphql)",
    );
  });

  it('flags a connector reaching into the assembly, and an import between the peers feeds and extract', () => {
    const connector = edgesOf('connectors/clever/sandbox.ts', "import type { RosterDataset } from '../../src/demo/dataset.ts';");
    expect(layerViolations(connector).map((v) => [v.fromLayer, v.toLayer])).toEqual([['connectors', 'assembly']]);
    const peers = edgesOf('src/extract/extract.ts', "import { readFeed } from '../feeds/webhooks.ts';");
    expect(layerViolations(peers).map((v) => [v.fromLayer, v.toLayer])).toEqual([['extract', 'feeds']]);
  });

  it('flags an import of a file outside every layer', () => {
    const edges = edgesOf('src/sync/runner.ts', "import { x } from '../../bench/floor.ts';");
    expect(layerViolations(edges).map((v) => [v.fromLayer, v.toLayer])).toEqual([['sync', undefined]]);
  });

  it('lets a file import its own layer and the layers below', () => {
    const edges = edgesOf(
      'src/graphql/resolvers.ts',
      [
        "import { a } from './order.ts';",
        "import { b } from '../privacy/generalise.ts';",
        "import { c } from '../sync/ids.ts';",
        "import type { D } from '../../connectors/types.ts';",
        "import { e } from '../errors.ts';",
      ].join('\n'),
    );
    expect(edges).toHaveLength(5);
    expect(layerViolations(edges)).toEqual([]);
  });

  it('finds cycles, a file importing itself included, and no cycle in a chain', () => {
    const edge = (from: string, to: string): ImportEdge => ({ from, to, specifier: to, kind: 'import type', line: 1 });
    expect(importCycles([edge('a.ts', 'b.ts'), edge('b.ts', 'c.ts'), edge('c.ts', 'a.ts'), edge('c.ts', 'd.ts')])).toEqual([['a.ts', 'b.ts', 'c.ts']]);
    expect(importCycles([edge('a.ts', 'a.ts')])).toEqual([['a.ts']]);
    expect(importCycles([edge('a.ts', 'b.ts'), edge('b.ts', 'c.ts'), edge('a.ts', 'c.ts')])).toEqual([]);
  });
});
