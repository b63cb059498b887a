/**
 * The demo as `rostergate demo` serves it, console included: a small synthetic district synced
 * through the vendor sandboxes into SQLite, the gateway on a loopback port with the demo keys and
 * the per-purpose examples. Shared by the console tests over HTTP and in the browser.
 */
import { join } from 'node:path';
import { startDemo, type Demo } from '../../src/demo/demo.ts';
import { demoExamples } from '../../src/demo/demo-examples.ts';
import { serveStore } from '../../src/runtime.ts';
import { createLogger } from '../../src/log.ts';
import type { RunningGateway } from '../../src/server/gateway.ts';
import type { ConsoleExample } from '../../src/server/landing.ts';
import { tempDir } from './stores.ts';

export interface ConsoleDemo {
  demo: Demo;
  gw: RunningGateway;
  examples: ConsoleExample[];
  /** The demo key of the client with this purpose. */
  keyOf(purpose: string): string;
  close(): Promise<void>;
}

export async function startConsoleDemo(): Promise<ConsoleDemo> {
  const log = createLogger({ level: 'silent' });
  const demo = await startDemo({ dataDir: join(tempDir(), 'demo'), district: { students: 60, teachers: 6, classes: 9 }, log });
  const examples = demoExamples(demo.dataset);
  const gw = await serveStore(demo.store, demo.config, log, { port: 0, privacy: demo.privacy, demoKeys: demo.keys, examples, webhooks: false });
  return {
    demo, gw, examples,
    keyOf: (purpose) => demo.keys.find((k) => k.purpose === purpose)!.key,
    async close() {
      await gw.close();
      await demo.close();
    },
  };
}
