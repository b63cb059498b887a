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
 * Each file is served under a path that changes with its content (`/console/<version>/<name>`), so
 * it can be cached as immutable and an upgrade is a new URL. A file is read when a browser first asks
 * for it and kept, with its gzip copy made then too (GraphiQL's build is 3.4 MB, about 0.7 MB
 * gzipped): a gateway whose console nobody opens reads only the packages' package.json files.
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
const packageVersion = (name: string) => (JSON.parse(readFileSync(join(packageDir(name), 'package.json'), 'utf8')) as { version: string }).version;
const here = dirname(fileURLToPath(import.meta.url));
const hashOf = (path: string) => createHash('sha256').update(readFileSync(path)).digest('base64url').slice(0, 12);

/**
 * The files, in the order the page loads them: `name` is the last part of its URL, `version` the
 * part before it — a package's name and version for the packages' files (pinned, so that is their
 * content), a hash of the content for the console's own.
 */
const FILES = [
  { name: 'react.js', pkg: 'react', file: 'umd/react.production.min.js' },
  { name: 'react-dom.js', pkg: 'react-dom', file: 'umd/react-dom.production.min.js' },
  { name: 'graphiql.js', pkg: 'graphiql', file: 'graphiql.min.js' },
  { name: 'graphiql.css', pkg: 'graphiql', file: 'graphiql.min.css' },
  { name: 'console.css', file: 'console.css' },
  { name: 'console.js', file: 'console.js' },
] as const;

export type ConsoleAssetName = (typeof FILES)[number]['name'];

interface Asset {
  url: string;
  path: string;
  type: string;
  body?: Buffer;
  gzip?: Buffer;
}

let byName: Map<ConsoleAssetName, Asset> | undefined;
let byUrl: Map<string, Asset> | undefined;

/** Where each file is and its URL: read once, without reading the large files themselves. */
function assets(): Map<ConsoleAssetName, Asset> {
  if (byName) return byName;
  byName = new Map();
  byUrl = new Map();
  for (const f of FILES) {
    const path = 'pkg' in f ? join(packageDir(f.pkg), f.file) : join(here, f.file);
    const version = 'pkg' in f ? `${f.pkg}@${packageVersion(f.pkg)}` : hashOf(path);
    const asset = { url: `/console/${version}/${f.name}`, path, type: f.name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8' };
    byName.set(f.name, asset);
    byUrl.set(asset.url, asset);
  }
  return byName;
}

/** The URL a page uses for a console file. */
export function consoleAssetUrl(name: ConsoleAssetName): string {
  return assets().get(name)!.url;
}

/** The file without its last line if that names a source map (the JS and the CSS comment forms); a slice, not a copy. */
function stripSourceMap(b: Buffer): Buffer {
  const at = b.lastIndexOf('\n', b.lastIndexOf('sourceMappingURL='));
  return at >= 0 && b.length - at < 300 && /^\n\/[/*][#@] sourceMappingURL=/.test(b.subarray(at, at + 24).toString('latin1')) ? b.subarray(0, at + 1) : b;
}

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
  // The packages' source maps are not served: a browser asking for one gets a 404, which is harmless.
  asset.body ??= stripSourceMap(readFileSync(asset.path));
  const gzip = /\bgzip\b/.test(acceptEncoding ?? '');
  const body = gzip ? (asset.gzip ??= gzipSync(asset.body)) : asset.body;
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
