/**
 * The import graph of src/ and connectors/, and the two rules it must obey: imports run one way
 * down the layers of docs/architecture.md ("Layers"), and no file reaches itself through imports.
 *
 * Parsed with the TypeScript compiler API rather than a regular expression so that every form of
 * import counts — static, `import type`, `export … from`, dynamic `import()` and `import('…').T`
 * type queries — and nothing inside a string or comment does. Hand-written rather than a linter
 * plugin (dependency-cruiser, eslint-plugin-boundaries) because the rule is ~30 lines here and the
 * layer order is project knowledge that belongs beside its test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * Bottom to top. A file may import its own layer or any layer below it. Layers in one inner array
 * are peers: neither may import the other (feeds and extract both read what graphql decides and
 * nothing in one needs the other).
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['kernel'],
  ['model'],
  ['connectors'],
  ['store'],
  ['privacy'],
  ['sync'],
  ['graphql'],
  ['feeds', 'extract'],
  ['server'],
  ['assembly'],
];

/** Which layer a repository-relative path (forward slashes) belongs to; undefined if none. */
export function layerOf(path: string): string | undefined {
  if (path === 'src/errors.ts' || path === 'src/log.ts' || path === 'src/secret.ts') return 'kernel';
  if (path.startsWith('connectors/')) return 'connectors';
  if (['src/cli.ts', 'src/cli-program.ts', 'src/exit-codes.ts', 'src/runtime.ts'].includes(path)) return 'assembly';
  const folder = /^src\/([^/]+)\//.exec(path)?.[1];
  switch (folder) {
    case 'kernel':
    case 'model':
    case 'store':
    case 'privacy':
    case 'sync':
    case 'graphql':
    case 'feeds':
    case 'extract':
    case 'server':
      return folder;
    case 'config':
    case 'tenants':
    case 'jobs':
    case 'commands':
    case 'demo':
      return 'assembly';
    default:
      return undefined;
  }
}

function rankOf(layer: string): number {
  const rank = LAYERS.findIndex((peers) => peers.includes(layer));
  if (rank < 0) throw new Error(`unknown layer ${layer}`);
  return rank;
}

export type ImportKind = 'import' | 'import type' | 'export from' | 'dynamic import()' | 'import() type';

export interface ModuleReference {
  specifier: string;
  kind: ImportKind;
  line: number;
}

/** Every module a source text refers to, in order of appearance. */
export function moduleReferences(fileName: string, text: string): ModuleReference[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: ModuleReference[] = [];
  const add = (literal: ts.Node, kind: ImportKind) => {
    if (!ts.isStringLiteralLike(literal)) return; // import(variable): nothing static to check
    const line = source.getLineAndCharacterOfPosition(literal.getStart(source)).line + 1;
    found.push({ specifier: literal.text, kind, line });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      add(node.moduleSpecifier, node.importClause?.isTypeOnly ? 'import type' : 'import');
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node.moduleSpecifier, 'export from');
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, 'import');
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      if (argument) add(argument, 'dynamic import()');
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, 'import() type');
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

export interface ImportEdge extends ModuleReference {
  /** Repository-relative paths with forward slashes. */
  from: string;
  to: string;
}

/** A project file's imports of other project files (packages and node: builtins are not edges). */
export function projectEdges(from: string, references: readonly ModuleReference[]): ImportEdge[] {
  return references
    .filter((reference) => reference.specifier.startsWith('.'))
    .map((reference) => ({
      ...reference,
      from,
      to: join(dirname(from), reference.specifier).split(sep).join('/'),
    }));
}

export interface LayerViolation {
  edge: ImportEdge;
  fromLayer: string | undefined;
  toLayer: string | undefined;
}

/** Edges that go up (or sideways between peers), or touch a file that has no layer. */
export function layerViolations(edges: readonly ImportEdge[]): LayerViolation[] {
  const violations: LayerViolation[] = [];
  for (const edge of edges) {
    const fromLayer = layerOf(edge.from);
    const toLayer = layerOf(edge.to);
    const allowed =
      fromLayer !== undefined &&
      toLayer !== undefined &&
      (fromLayer === toLayer || rankOf(toLayer) < rankOf(fromLayer));
    if (!allowed) violations.push({ edge, fromLayer, toLayer });
  }
  return violations;
}

export function describeViolation({ edge, fromLayer, toLayer }: LayerViolation): string {
  return (
    `${edge.from}:${edge.line} (${fromLayer ?? 'no layer'}) ${edge.kind} '${edge.specifier}' ` +
    `→ ${edge.to} (${toLayer ?? 'no layer'})`
  );
}

/**
 * Every group of files that import each other, directly or through others (Tarjan's strongly
 * connected components; a file importing itself counts too). Each cycle is sorted by path.
 */
export function importCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    if (!next.has(from)) next.set(from, new Set());
    if (!next.has(to)) next.set(to, new Set());
    next.get(from)!.add(to);
  }
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const connect = (file: string): void => {
    index.set(file, counter);
    low.set(file, counter);
    counter += 1;
    stack.push(file);
    onStack.add(file);
    for (const target of next.get(file)!) {
      if (!index.has(target)) {
        connect(target);
        low.set(file, Math.min(low.get(file)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file)!, index.get(target)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || next.get(file)!.has(file)) cycles.push(component.sort());
  };
  for (const file of next.keys()) if (!index.has(file)) connect(file);
  return cycles;
}

/** Every .ts file under the given folders of the repository at `root`, repository-relative. */
export function sourceFiles(root: string, folders: readonly string[]): string[] {
  const files: string[] = [];
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) files.push(relative(root, path).split(sep).join('/'));
    }
  };
  for (const folder of folders) walk(resolve(root, folder));
  return files.sort();
}

/** The project-internal import graph of the given folders. */
export function importGraph(root: string, folders: readonly string[]): ImportEdge[] {
  return sourceFiles(root, folders).flatMap((file) =>
    projectEdges(file, moduleReferences(file, readFileSync(join(root, file), 'utf8'))),
  );
}
