/**
 * The console's static files, served by the gateway itself so the console works with no internet:
 * GraphiQL 3's own browser build (graphiql.min.js / .css, which bundles graphql-js and CodeMirror 5)
 * running on React 18's UMD builds, all read from node_modules at run time, plus the console's own
 * small script and style sheet beside this file.
 *
 * Why these files and no bundler: GraphiQL 5 ships only ESM with Monaco and web workers, which needs a
 * build step (and a worker-src in the CSP); GraphiQL 3 still ships a ready browser build that takes
 * React and ReactDOM from globals, and React 18 is the last React with UMD builds. So `npm ci` is the
 * whole build: nothing to generate, nothing to go stale, no TypeScript in the browser.
 *
 * Each file is served under a path holding a hash of its content (`/console/<hash>/<name>`), so it
 * can be cached as immutable and a new version is a new URL. Files are read once, on first use, and
 * kept with a gzip copy (GraphiQL's build is 3.4 MB, about 0.6 MB gzipped).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { ServerResponse } from 'node:http';

const require = createRequire(import.meta.url);
const packageDir = (name: string) => dirname(require.resolve(`${name}/package.json`));
const here = dirname(fileURLToPath(import.meta.url));

/** The files, in the order the page loads them; `name` is the last part of its URL. */
const FILES = [
  { name: 'react.js', path: () => join(packageDir('react'), 'umd/react.production.min.js') },
  { name: 'react-dom.js', path: () => join(packageDir('react-dom'), 'umd/react-dom.production.min.js') },
  { name: 'graphiql.js', path: () => join(packageDir('graphiql'), 'graphiql.min.js') },
  { name: 'graphiql.css', path: () => join(packageDir('graphiql'), 'graphiql.min.css') },
  { name: 'console.css', path: () => join(here, 'console.css') },
  { name: 'console.js', path: () => join(here, 'console.js') },
] as const;

export type ConsoleAssetName = (typeof FILES)[number]['name'];

interface Asset {
  url: string;
  type: string;
  body: Buffer;
  gzip: Buffer;
}

let byName: Map<ConsoleAssetName, Asset> | undefined;
let byUrl: Map<string, Asset> | undefined;

function assets(): Map<ConsoleAssetName, Asset> {
  if (byName) return byName;
  byName = new Map();
  byUrl = new Map();
  for (const f of FILES) {
    // The packages' source maps are not served: a browser asking for one gets a 404, which is harmless.
    const body = stripSourceMap(readFileSync(f.path()));
    const hash = createHash('sha256').update(body).digest('base64url').slice(0, 12);
    const asset = { url: `/console/${hash}/${f.name}`, type: f.name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8', body, gzip: gzipSync(body) };
    byName.set(f.name, asset);
    byUrl.set(asset.url, asset);
  }
  return byName;
}

/** The URL a page uses for a console file. */
export function consoleAssetUrl(name: ConsoleAssetName): string {
  return assets().get(name)!.url;
}

const stripSourceMap = (b: Buffer) => Buffer.from(b.toString('utf8').replace(/\n\/[/*][#@] sourceMappingURL=\S+(\s*\*\/)?\s*$/, '\n'), 'utf8');

/**
 * Answers GET/HEAD for a console file; false for any other path. Unknown paths under /console/ are
 * a 404 here (an old hash after an upgrade included), not passed on to other routes.
 */
export function serveConsoleAsset(method: string, path: string, acceptEncoding: string | undefined, res: ServerResponse): boolean {
  if (!path.startsWith('/console/')) return false;
  assets();
  const asset = byUrl!.get(path);
  if (!asset || (method !== 'GET' && method !== 'HEAD')) {
    res.writeHead(asset ? 405 : 404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(asset ? 'use GET' : 'not found');
    return true;
  }
  const gzip = /\bgzip\b/.test(acceptEncoding ?? '');
  const body = gzip ? asset.gzip : asset.body;
  res.writeHead(200, {
    'content-type': asset.type,
    'content-length': body.length,
    // The URL changes with the content, so a browser may keep it for good.
    'cache-control': 'public, max-age=31536000, immutable',
    vary: 'accept-encoding',
    ...(gzip ? { 'content-encoding': 'gzip' } : {}),
  });
  res.end(method === 'HEAD' ? undefined : body);
  return true;
}
