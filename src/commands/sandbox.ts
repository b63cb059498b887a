import { CONNECTORS } from '../../connectors/registry.ts';
import { startSandboxServer } from '../../connectors/sandbox-kit.ts';
import { RosterDataset } from '../demo/dataset.ts';
import { demoConfig, demoViews } from '../demo/demo.ts';
import { onShutdown } from './serve.ts';
import { assertCanListen } from '../server/gateway.ts';
import { stringify } from 'yaml';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export async function sandboxCommand(opts: { port: number; seed?: number; students?: number; rateLimit?: number }): Promise<void> {
  await assertCanListen(opts.port);
  const dataset = RosterDataset.generate({
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.students ? { students: opts.students } : {}),
  });
  const apps = CONNECTORS.flatMap((d) => (d.sandbox ? [d.sandbox] : []));
  const views = demoViews(dataset);
  const sandbox = await startSandboxServer({
    dataset, apps, port: opts.port,
    ...(opts.rateLimit ? { rateLimit: { requests: opts.rateLimit, windowMs: 60_000 } } : {}),
    datasets: new Map(CONNECTORS.flatMap((d) => (d.sandbox ? [[d.sandbox.prefix, views.get(d.type)!] as const] : []))),
  });
  const out = (s: string) => process.stdout.write(s + '\n');
  out(`rostergate sandboxes — local emulators of vendor APIs serving a synthetic district, at ${sandbox.url}`);
  for (const a of apps) out(`  ${a.name.padEnd(36)} ${sandbox.urlOf(a.prefix)}`);
  // A folder of its own for the CSV drops, so two sandboxes side by side never overwrite each other's.
  const drops = mkdtempSync(join(tmpdir(), 'rostergate-sandbox-'));
  const cfg = await demoConfig(sandbox, dataset, drops);
  out('\nA config that reads them (secrets are the sandboxes\' demo credentials; server.openAccess stores and serves every');
  out('field without purposes or keys, for a local experiment only: see docs/privacy.md, "Purposes: who gets what", for the real thing):\n');
  out(stringify({ store: './data/rostergate.db', server: { openAccess: true }, sources: cfg.sources.map((s) => ({ ...s })) }));
  onShutdown(async () => {
    await sandbox.close();
    rmSync(drops, { recursive: true, force: true });
  });
}
