/**
 * The landing page at `/`: the query console, GraphiQL served by the gateway itself (no CDN, no
 * internet needed — the machines that run the gateway often have none; see ./console/assets.ts).
 * The page is static markup plus a JSON data block with the demo clients and the example queries;
 * ./console/console.js reads it and mounts GraphiQL. No inline script runs, so the CSP allows
 * scripts from this origin only.
 */
import { consoleAssetUrl } from './console/assets.ts';
import type { PageSources } from './headers.ts';

/** An example query offered in the console; `purpose` names the purpose it is written for. */
export interface ConsoleExample {
  purpose?: string;
  title: string;
  query: string;
  variables?: Record<string, unknown>;
}

/** A demo client whose key the console offers in its picker (demo only: the keys are in the page). */
export interface DemoKey {
  client: string;
  purpose: string;
  key: string;
}

/** What the console page loads besides itself, for its Content-Security-Policy. */
export const CONSOLE_SOURCES: PageSources = {
  script: ["'self'"],
  style: ["'self'"],
  // GraphiQL's style sheet carries its fonts and a few icons as data: URIs.
  font: ['data:'],
  img: ['data:'],
};

export function landingPage(opts: { examples: ConsoleExample[]; demoKeys?: DemoKey[] }): string {
  const config = { endpoint: '/graphql', examples: opts.examples, demoKeys: opts.demoKeys ?? [] };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rostergate console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${consoleAssetUrl('graphiql.css')}">
<link rel="stylesheet" href="${consoleAssetUrl('console.css')}">
</head><body>
<header class="rg-bar"><h1>rostergate</h1>
${opts.demoKeys?.length ? ' <label>demo client <select id="rg-client"></select></label>\n' : ''} <label>example <select id="rg-example"></select></label>
 <span id="rg-status" role="status"></span></header>
<main id="rg-console"><p class="rg-loading">Loading the console… <noscript>(it needs JavaScript)</noscript></p></main>
<script type="application/json" id="rg-config">${jsonForHtml(config)}</script>
<script src="${consoleAssetUrl('react.js')}"></script>
<script src="${consoleAssetUrl('react-dom.js')}"></script>
<script src="${consoleAssetUrl('graphiql.js')}"></script>
<script src="${consoleAssetUrl('console.js')}"></script>
</body></html>`;
}

/** JSON inside a `<script>` data block: `<` escaped, so no string in it can close the element. */
function jsonForHtml(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** The example for a gateway that has none per purpose: what most purposes that see names can run. */
export const EXAMPLE_QUERY = `# One school, its classes, and the students enrolled in each.
query SchoolRoster {
  schools(first: 1) {
    totalCount
    edges {
      node {
        name
        classes(first: 3) {
          totalCount
          edges {
            node {
              title
              enrollments(role: STUDENT, first: 5) {
                totalCount
                edges { node { role person { id givenName familyName grades } } }
              }
            }
          }
        }
      }
    }
  }
}
`;

export const DEFAULT_EXAMPLES: ConsoleExample[] = [{ title: 'School roster', query: EXAMPLE_QUERY }];
