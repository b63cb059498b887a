#!/usr/bin/env node
/**
 * `npm run build`: compiles src/ and connectors/ to JavaScript in dist/, so production runs
 * `node dist/src/cli.js` with no TypeScript loader (the container image does; bin/rostergate.mjs,
 * which runs the sources through tsx, stays the development entry point).
 *
 * tsc itself (tsconfig.build.json) rewrites the sources' `./x.ts` imports to `./x.js`
 * (rewriteRelativeImportExtensions, TypeScript ≥ 5.7). Besides the JavaScript, the files the code
 * reads beside itself at run time are copied to the same relative places: the GraphQL schema
 * (src/graphql/type-defs.ts reads ../../schema) and the console's own script and style sheet
 * (src/server/console/assets.ts). GraphiQL and React stay in node_modules, found from dist as from
 * src. A small script rather than a bundler: the output mirrors the source tree file for file, so
 * stack traces and source maps point where one expects.
 *
 * Options: --out DIR (default dist; inside the repository, so node_modules is found from it),
 * --no-check (emit without type checking: for tests, which typecheck separately).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const out = resolve(root, outAt >= 0 ? args[outAt + 1] ?? '' : 'dist');
const check = !args.includes('--no-check');
if (relative(root, out).startsWith('..') || out === root) {
  console.error(`build: --out must be a folder inside ${root} (node_modules is found from there)`);
  process.exit(2);
}

/** Files read at run time relative to the code, as [from, to] relative to the root and to out. */
const ASSETS = [
  ...readdirSync(join(root, 'schema')).filter((f) => f.endsWith('.graphql')).map((f) => `schema/${f}`),
  'src/server/console/console.css',
  'src/server/console/console.js',
];

rmSync(out, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', out, ...(check ? [] : ['--noCheck'])], { stdio: 'inherit', cwd: root });
if (r.status !== 0) process.exit(r.status ?? 1);
for (const f of ASSETS) {
  mkdirSync(dirname(join(out, f)), { recursive: true });
  cpSync(join(root, f), join(out, f));
}

// A `.ts` specifier left in the output would only fail when that code path runs: refuse it now.
const left = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (p.endsWith('.js') && /(?:from\s*|import\s*\(\s*)['"]\.{1,2}\/[^'"]*\.ts['"]/.test(readFileSync(p, 'utf8'))) left.push(relative(root, p));
  }
};
walk(out);
if (left.length) {
  console.error(`build: imports of .ts files left in ${left.join(', ')}`);
  process.exit(1);
}
if (!existsSync(join(out, 'src/cli.js'))) {
  console.error('build: no src/cli.js in the output');
  process.exit(1);
}
console.log(`build: ${relative(root, out) || '.'}/src/cli.js (${check ? 'type-checked' : 'not type-checked'})`);
