import { log } from '../log.ts';
import { startDemo } from '../demo/demo.ts';
import { demoExamples } from '../demo/demo-examples.ts';
import { serveStore } from '../runtime.ts';
import { formatSummary, progressHooks } from '../sync/progress.ts';
import { onShutdown } from './serve.ts';
import { assertCanListen } from '../server/gateway.ts';

export async function demoCommand(opts: { port: number; data: string; students?: number }): Promise<void> {
  const port = opts.port;
  // The sync takes a while: a port that is taken should fail before it, not after.
  await assertCanListen(port);
  const out = (s: string) => process.stdout.write(s + '\n');
  out('rostergate demo — a synthetic district (no real people) served by local vendor sandboxes');
  const demo = await startDemo({
    dataDir: opts.data,
    district: opts.students ? { students: opts.students } : {},
    log,
    hooks: progressHooks(log),
  });
  for (const s of demo.summaries) out(formatSummary(s));
  const gw = await serveStore(demo.store, demo.config, log, {
    port,
    privacy: demo.privacy,
    demoKeys: demo.keys,
    examples: demoExamples(demo.dataset),
  });
  onShutdown(async () => {
    await gw.close();
    await demo.close();
  });
  out('');
  out(`  Sandboxes (vendor emulators): ${demo.sandbox.url}`);
  out(`  Store:                        ${demo.config.store}`);
  out(`  Open the console:             ${gw.url}/`);
  out(`  GraphQL endpoint:             ${gw.url}/graphql`);
  out('');
  out('  Demo API keys (send as the x-api-key header; the console has a picker):');
  for (const k of demo.keys) out(`    ${k.client.padEnd(16)} purpose ${k.purpose.padEnd(12)} ${k.key}`);
  out('');
  out('  Try (names for the LMS; pseudonyms for analytics):');
  out(`    curl -s ${gw.url}/graphql -H 'content-type: application/json' -H 'x-api-key: ${demo.keys[0]!.key}' \\`);
  out(`      -d '{"query":"{ schools { totalCount edges { node { name classes(first: 2) { edges { node { title enrollments(first: 3) { edges { node { role person { givenName familyName } } } } } } } } } } }"}'`);
  out('');
  out('  Ctrl+C stops the gateway and the sandboxes.');
}
